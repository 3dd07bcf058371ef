//! Experiment specs: TOML in `experiments/`, parsed strictly (`deny_unknown_fields`),
//! then resolved (defaults filled, models looked up in the registry) into an
//! [`Experiment`] before anything runs. The spec hash is the sha256 of the resolved
//! experiment's canonical JSON, so it changes exactly when what would run changes.

mod locate;
mod raw;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::experiments::Params;
use crate::models::registry::Registry;
use crate::record::tolerance::Tolerance;

pub use locate::SpecSource;
pub use raw::{Kind, RawSpec};

/// A validated, resolved experiment: the only thing the runner accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Names `results/<name>/`.
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// Kind-specific parameters, keyed by kind (`{"inventory": {...}}`).
    pub params: Params,
    /// Tolerances `gapbench reproduce` compares metrics under (`[reproduce]`; exact when
    /// absent, and then left out of the canonical JSON so the hash is unchanged).
    #[serde(default, skip_serializing_if = "Tolerance::is_exact")]
    pub reproduce: Tolerance,
}

impl Experiment {
    pub fn kind(&self) -> Kind {
        self.params.kind()
    }

    /// sha256 of the canonical JSON of the resolved experiment.
    pub fn hash(&self) -> Result<String> {
        crate::record::canonical::canonical_hash(self)
    }
}

/// Read, parse and resolve a spec file.
pub fn load(path: &Path, registry: &Registry) -> Result<Experiment> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::input(path.display().to_string(), e.to_string()))?;
    let src = SpecSource::new(path, &text);
    let raw: RawSpec = src.parse()?;
    raw.resolve(&src, registry)
}

/// Default seed when a spec names none: fixed, so runs are reproducible by default.
pub const DEFAULT_SEED: u64 = 20_260_101;

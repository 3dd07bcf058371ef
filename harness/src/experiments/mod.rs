//! Experiment kinds. Each kind is one module with its spec table, its resolution, and an
//! [`ExperimentKind`] implementation; the runner gives every kind resume, sharding,
//! merging and run records for free.
//!
//! Adding a kind: a module here, a variant in [`Params`] and in `spec::Kind`, a table
//! field in `spec::RawSpec`, and one arm in [`instantiate`].

pub mod cluster;
pub mod compression;
pub mod inventory;
pub mod substitution;

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::models::fetch::Cache;
use crate::models::registry::Registry;
use crate::record::{ModelUse, Sample};
use crate::spec::Kind;

/// Resolved, kind-specific parameters. Serialised keyed by kind: `{"inventory": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Params {
    Inventory(inventory::InventoryParams),
    Substitution(Box<substitution::SubstitutionParams>),
    Compression(Box<compression::CompressionParams>),
    Cluster(Box<cluster::ClusterParams>),
}

impl Params {
    pub fn kind(&self) -> Kind {
        match self {
            Params::Inventory(_) => Kind::Inventory,
            Params::Substitution(_) => Kind::Substitution,
            Params::Compression(_) => Kind::Compression,
            Params::Cluster(_) => Kind::Cluster,
        }
    }
}

/// Dotted metric name → value.
pub type Metrics = BTreeMap<String, f64>;

/// What a kind needs from the outside world while it runs.
pub struct RunContext {
    pub registry: Registry,
    pub cache: Cache,
    pub device: Device,
    pub seed: u64,
    /// Repository root (for paths in specs that are relative to it).
    pub root: PathBuf,
}

/// One experiment kind, as the runner sees it.
pub trait ExperimentKind: Send + Sync {
    /// Stable item ids in canonical order. Sharding and resume work on these.
    fn items(&self) -> Vec<String>;

    /// Run one item. The output becomes one line of `samples.jsonl`; it must be a pure
    /// function of the spec, the seed and the item (no timings), so reruns are identical.
    fn run_item(&self, ctx: &RunContext, item: &str) -> Result<serde_json::Value>;

    /// Reduce all samples (in item order) to metrics. Pure, so a resumed or merged run
    /// summarises to the same numbers as an uninterrupted one.
    fn summarise(&self, samples: &[Sample]) -> Result<Metrics>;

    /// Models this run reads, with pinned file hashes, for the record.
    fn models(&self) -> Vec<ModelUse>;

    /// The numeric type computation runs in, for the record.
    fn dtype(&self) -> String {
        "f32".into()
    }

    /// When a re-run sample's bytes differ from the recorded one (a reproduction on
    /// another machine), how far apart they are in this kind's own decision units
    /// (`record::drift`). `None`: no such measure; reproduce falls back to the largest
    /// relative difference over the sample's numbers.
    fn sample_drift(
        &self,
        _recorded: &serde_json::Value,
        _reproduced: &serde_json::Value,
    ) -> Result<Option<crate::record::drift::Drift>> {
        Ok(None)
    }
}

/// The kind registry: resolved parameters → the object that runs them.
pub fn instantiate(params: &Params, seed: u64) -> Box<dyn ExperimentKind> {
    match params {
        Params::Inventory(p) => Box::new(inventory::Inventory::new(p.clone())),
        Params::Substitution(p) => Box::new(substitution::Substitution::new((**p).clone(), seed)),
        Params::Compression(p) => Box::new(compression::CompressionKind::new((**p).clone(), seed)),
        Params::Cluster(p) => Box::new(cluster::Cluster::new((**p).clone(), seed)),
    }
}

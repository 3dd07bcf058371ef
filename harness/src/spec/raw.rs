//! The spec as written: strict TOML types. Each experiment kind owns one optional table
//! named after it; the table's types live with the kind in `experiments/`.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::Result;
use crate::experiments::{self, Params};
use crate::models::registry::Registry;
use crate::record::tolerance::Tolerance;
use crate::spec::{Experiment, SpecSource, DEFAULT_SEED};

/// Every experiment kind. Adding a kind: one variant here, one table field in
/// [`RawSpec`], one module in `experiments/`, one arm in `experiments::resolve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Inventory,
    Substitution,
    Compression,
    Cluster,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[Kind::Inventory, Kind::Substitution, Kind::Compression, Kind::Cluster];

    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Inventory => "inventory",
            Kind::Substitution => "substitution",
            Kind::Compression => "compression",
            Kind::Cluster => "cluster",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// Names `results/<name>/`: lowercase letters, digits, `-` and `_`.
    pub name: Spanned<String>,
    pub kind: Spanned<Kind>,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub inventory: Option<Spanned<experiments::inventory::RawInventory>>,
    pub substitution: Option<Spanned<experiments::substitution::RawSubstitution>>,
    pub compression: Option<Spanned<experiments::compression::RawCompression>>,
    pub cluster: Option<Spanned<experiments::cluster::RawCluster>>,
    /// Tolerances for `gapbench reproduce` (exact when absent). Not `Spanned`: toml 0.8
    /// cannot deserialise a spanned table that only `[[reproduce.across_machines]]`
    /// creates implicitly; errors name the field instead (`reproduce.metric[0]`).
    pub reproduce: Option<Tolerance>,
}

impl RawSpec {
    pub fn resolve(self, src: &SpecSource, registry: &Registry) -> Result<Experiment> {
        let name = self.name.get_ref();
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
        {
            return Err(src.error_at(
                self.name.span(),
                format!("field `name`: `{name}` must be lowercase letters, digits, `-` or `_`"),
            ));
        }
        let kind = *self.kind.get_ref();
        // A table for another kind is almost certainly a mistake in `kind`.
        let tables = [
            (Kind::Inventory, self.inventory.as_ref().map(|t| t.span())),
            (Kind::Substitution, self.substitution.as_ref().map(|t| t.span())),
            (Kind::Compression, self.compression.as_ref().map(|t| t.span())),
            (Kind::Cluster, self.cluster.as_ref().map(|t| t.span())),
        ];
        for (k, span) in tables {
            if let (true, Some(span)) = (k != kind, span) {
                return Err(src.error_at(span, format!("table `[{k}]` does not belong to kind `{kind}`")));
            }
        }
        let params: Params = match kind {
            Kind::Inventory => experiments::inventory::resolve(self.inventory, src, registry)?,
            Kind::Substitution => experiments::substitution::spec::resolve(self.substitution, src, registry)?,
            Kind::Compression => experiments::compression::spec::resolve(self.compression, src, registry)?,
            Kind::Cluster => experiments::cluster::spec::resolve(self.cluster, src, registry)?,
        };
        let reproduce = self.reproduce.unwrap_or_default();
        reproduce.validate("reproduce").map_err(|e| {
            let at = src.table_offset("reproduce");
            src.error_at(at..at, e.to_string())
        })?;
        Ok(Experiment {
            reproduce,
            name: name.clone(),
            description: self.description.unwrap_or_default(),
            seed: self.seed.unwrap_or(DEFAULT_SEED),
            params,
        })
    }
}

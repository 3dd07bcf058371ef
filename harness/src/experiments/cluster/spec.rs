//! The `[cluster]` table: which models to fingerprint, how many benign nuisance draws
//! each (the members of an identity cluster), and the clustering settings.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::experiments::substitution::spec::{default_batch, default_max_seq_len, default_probes, Sweep};
use crate::experiments::Params;
use crate::models::registry::{ModelEntry, Registry};
use crate::probes;
use crate::spec::SpecSource;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterParams {
    pub probes: String,
    pub probe_sha256: String,
    pub tokens: usize,
    pub max_seq_len: usize,
    pub batch_size: usize,
    /// Benign nuisance draws per model (batch size, threads, probe order).
    pub draws: usize,
    /// `standard` or `tiny`; every checkpoint is fingerprinted. None: no zoo.
    pub zoo: Option<String>,
    /// Train the zoo's runs from `seed + zoo_seed_offset` (0: the standard seeds): a
    /// population held out from every analysis choice made on the standard one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub zoo_seed_offset: u64,
    pub real: Option<RealModels>,
    /// Principal components kept before clustering.
    pub pca_components: usize,
    /// Largest k KMeans tries (k is chosen by silhouette).
    pub k_max: usize,
}

/// The registry model and the variants of it that form further identities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealModels {
    pub model: ModelEntry,
    /// Each severity of each sweep is one identity (one distinct set of weights).
    pub variants: Vec<Sweep>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    #[serde(default = "default_probes")]
    pub probes: String,
    #[serde(default = "default_tokens")]
    pub tokens: usize,
    #[serde(default = "default_max_seq_len")]
    pub max_seq_len: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    pub draws: usize,
    pub zoo: Option<String>,
    #[serde(default)]
    pub zoo_seed_offset: u64,
    pub real: Option<RawReal>,
    #[serde(default = "default_pca")]
    pub pca_components: usize,
    #[serde(default = "default_k_max")]
    pub k_max: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReal {
    pub model: Spanned<String>,
    #[serde(default)]
    pub variants: Vec<Sweep>,
}

fn default_tokens() -> usize {
    256
}
fn default_pca() -> usize {
    5
}
fn default_k_max() -> usize {
    40
}

pub fn resolve(raw: Option<Spanned<RawCluster>>, src: &SpecSource, registry: &Registry) -> Result<Params> {
    let Some(raw) = raw else {
        return Err(Error::input(src.path.display().to_string(), "kind `cluster` needs a `[cluster]` table"));
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let bad = |field: &str, m: String| src.error_at(span.clone(), format!("field `cluster.{field}`: {m}"));
    let probe_set =
        probes::shipped(&probes::dataset_dir(), &raw.probes).map_err(|e| bad("probes", e.to_string()))?;
    if raw.tokens < 16 || raw.max_seq_len == 0 || raw.batch_size == 0 {
        return Err(bad("tokens", "tokens >= 16, max_seq_len >= 1 and batch_size >= 1 required".into()));
    }
    if raw.draws < 2 {
        return Err(bad("draws", "at least 2 draws per model (an identity cluster needs members)".into()));
    }
    if raw.pca_components < 2 || raw.k_max < 2 {
        return Err(bad("pca_components", "pca_components and k_max must be >= 2".into()));
    }
    if let Some(z) = &raw.zoo {
        if z != "standard" && z != "tiny" {
            return Err(bad("zoo", format!("`{z}`: expected `standard` or `tiny`")));
        }
    }
    let real = match raw.real {
        None => None,
        Some(r) => {
            let model = registry
                .get(r.model.get_ref())
                .map_err(|e| src.error_at(r.model.span(), format!("field `cluster.real.model`: {e}")))?
                .clone();
            let mut labels = std::collections::BTreeSet::new();
            for s in &r.variants {
                if !labels.insert(s.label.clone())
                    || s.label.is_empty()
                    || s.label.contains('/')
                    || s.label == "ref"
                {
                    return Err(bad(
                        "real.variants",
                        format!("label `{}` is empty, repeated, `ref` or holds `/`", s.label),
                    ));
                }
                for (_, sev) in s.points() {
                    s.at(sev).map_err(|e| bad("real.variants", e.to_string()))?;
                }
            }
            Some(RealModels { model, variants: r.variants })
        }
    };
    if raw.zoo.is_none() && raw.zoo_seed_offset != 0 {
        return Err(bad("zoo_seed_offset", "needs a `zoo`".into()));
    }
    if raw.zoo.is_none() && real.is_none() {
        return Err(bad("zoo", "name a zoo, a real model, or both".into()));
    }
    Ok(Params::Cluster(Box::new(ClusterParams {
        probes: raw.probes,
        probe_sha256: probe_set.sha256().to_string(),
        tokens: raw.tokens,
        max_seq_len: raw.max_seq_len,
        batch_size: raw.batch_size,
        draws: raw.draws,
        zoo: raw.zoo,
        zoo_seed_offset: raw.zoo_seed_offset,
        real,
        pca_components: raw.pca_components,
        k_max: raw.k_max,
    })))
}

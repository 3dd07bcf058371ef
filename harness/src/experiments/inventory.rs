//! `inventory`: load every registry model and record what it is — architecture,
//! parameter count, tensor dtypes, file sha256s. The first real experiment: it proves
//! spec → registry → fetch → load → record end to end before any fingerprint exists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::experiments::{ExperimentKind, Metrics, Params, RunContext};
use crate::models::fetch;
use crate::models::inspect::{inspect_gguf, inspect_safetensors, Inventory as FileInventory};
use crate::models::registry::{Format, ModelEntry, Registry};
use crate::record::hashing::sha256_file;
use crate::record::{ModelUse, Sample};
use crate::spec::SpecSource;

/// `[inventory]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    /// Registry model names; every registry model when absent.
    pub models: Option<Vec<Spanned<String>>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryParams {
    /// Resolved registry entries, pins included, so the spec hash covers them.
    pub models: Vec<ModelEntry>,
}

pub fn resolve(raw: Option<Spanned<RawInventory>>, src: &SpecSource, registry: &Registry) -> Result<Params> {
    let names = raw.and_then(|r| r.into_inner().models);
    let models = match names {
        None => registry.models.clone(),
        Some(names) => {
            let mut out = Vec::new();
            for n in names {
                let entry = registry
                    .get(n.get_ref())
                    .map_err(|e| src.error_at(n.span(), format!("field `models`: {e}")))?;
                out.push(entry.clone());
            }
            out
        }
    };
    if models.is_empty() {
        return Err(Error::input(src.path.display().to_string(), "field `models`: no models to inventory"));
    }
    Ok(Params::Inventory(InventoryParams { models }))
}

pub struct Inventory {
    params: InventoryParams,
}

impl Inventory {
    pub fn new(params: InventoryParams) -> Self {
        Inventory { params }
    }

    fn entry(&self, name: &str) -> Result<&ModelEntry> {
        self.params
            .models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| Error::run(format!("unknown item `{name}`")))
    }
}

#[derive(Serialize, Deserialize)]
struct InventorySample {
    name: String,
    family: String,
    format: Format,
    declared_architecture: String,
    inventory: FileInventory,
    files: BTreeMap<String, FileFact>,
}

#[derive(Serialize, Deserialize)]
struct FileFact {
    sha256: String,
    bytes: u64,
}

impl ExperimentKind for Inventory {
    fn items(&self) -> Vec<String> {
        self.params.models.iter().map(|m| m.name.clone()).collect()
    }

    fn run_item(&self, ctx: &RunContext, item: &str) -> Result<serde_json::Value> {
        let entry = self.entry(item)?;
        let (dir, _) = fetch::fetch(entry, &ctx.registry, &ctx.cache)?;
        let primary = dir.join(&entry.primary_file().path);
        let inventory = match entry.format {
            Format::Gguf => inspect_gguf(&primary)?,
            Format::Safetensors => inspect_safetensors(&primary)?,
        };
        if inventory.architecture != entry.architecture {
            return Err(Error::model(
                &primary,
                format!(
                    "registry says architecture `{}`, the file says `{}`",
                    entry.architecture, inventory.architecture
                ),
            ));
        }
        let mut files = BTreeMap::new();
        for f in &entry.files {
            let p = dir.join(&f.path);
            let bytes = std::fs::metadata(&p).map_err(Error::io(&p))?.len();
            files.insert(f.path.clone(), FileFact { sha256: sha256_file(&p)?, bytes });
        }
        let sample = InventorySample {
            name: entry.name.clone(),
            family: entry.family.clone(),
            format: entry.format,
            declared_architecture: entry.architecture.clone(),
            inventory,
            files,
        };
        serde_json::to_value(sample).map_err(|e| Error::run(e.to_string()))
    }

    fn summarise(&self, samples: &[Sample]) -> Result<Metrics> {
        let mut m = Metrics::new();
        m.insert("models.count".into(), samples.len() as f64);
        let mut total = 0u64;
        for s in samples {
            let inv: InventorySample = serde_json::from_value(s.output.clone())
                .map_err(|e| Error::run(format!("sample `{}`: {e}", s.item)))?;
            let key = |k: &str| format!("models.{}.{k}", inv.name);
            total += inv.inventory.n_params;
            m.insert(key("params"), inv.inventory.n_params as f64);
            m.insert(key("tensors"), inv.inventory.n_tensors as f64);
            m.insert(key("bytes"), inv.files.values().map(|f| f.bytes).sum::<u64>() as f64);
            for (dtype, n) in &inv.inventory.params_by_dtype {
                m.insert(key(&format!("params_by_dtype.{dtype}")), *n as f64);
            }
            for (fact, v) in &inv.inventory.facts {
                m.insert(key(&format!("facts.{fact}")), *v as f64);
            }
        }
        m.insert("models.params_total".into(), total as f64);
        Ok(m)
    }

    fn models(&self) -> Vec<ModelUse> {
        self.params.models.iter().map(ModelUse::of).collect()
    }

    fn dtype(&self) -> String {
        "as-stored".into()
    }
}

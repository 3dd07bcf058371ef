//! The run directory and the two JSON documents that describe a run: `record.json`
//! (provenance) and `summary.json` (the machine-readable metrics contract).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::atomic::{write_atomic, write_json_atomic};
use crate::record::env::Environment;
use crate::record::shard::Shard;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Complete,
    Failed,
}

/// One model a run used, with the sha256 of every file it read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUse {
    pub name: String,
    pub files: BTreeMap<String, String>,
}

impl ModelUse {
    /// A registry entry with its pinned file hashes.
    pub fn of(entry: &crate::models::registry::ModelEntry) -> Self {
        Self {
            name: entry.name.clone(),
            files: entry.files.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    pub total: usize,
    /// Items this run is responsible for (all, or this shard's).
    pub assigned: usize,
    /// Items found already done in `samples.jsonl` when resuming.
    pub resumed: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub experiment: String,
    pub kind: String,
    pub run_id: String,
    pub spec_hash: String,
    pub seed: u64,
    pub status: RunStatus,
    pub dtype: String,
    pub device: String,
    pub models: Vec<ModelUse>,
    pub environment: Environment,
    pub shard: Option<Shard>,
    /// Run directories merged into this one (`gapbench merge`).
    pub merged_from: Vec<String>,
    pub items: ItemCounts,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub wall_seconds: Option<f64>,
    /// Times this run was resumed with `--resume`.
    pub resumed_at: Vec<DateTime<Utc>>,
    /// The environment of each resumed part, in the order of `resumed_at`: a resume may
    /// run on another machine or commit than the one in `environment` (which is the first
    /// part's), and a reader must be able to see that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_environments: Vec<Environment>,
    pub error: Option<String>,
}

/// `summary.json`: every experiment keeps this shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub experiment: String,
    pub run_id: String,
    pub spec_hash: String,
    pub metrics: BTreeMap<String, f64>,
}

/// Paths inside one run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// Create `results/<experiment>/<run-id>/`, choosing a run id that does not exist yet.
    pub fn create(results: &Path, experiment: &str, spec_hash: &str, suffix: &str) -> Result<(Self, String)> {
        let base = format!("{}-{}{}", Utc::now().format("%Y%m%dT%H%M%SZ"), &spec_hash[..8], suffix);
        let parent = results.join(experiment);
        std::fs::create_dir_all(&parent).map_err(Error::io(&parent))?;
        for n in 0.. {
            let id = if n == 0 { base.clone() } else { format!("{base}.{n}") };
            let path = parent.join(&id);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok((RunDir::new(path), id)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::Io { path, source: e }),
            }
        }
        unreachable!("an unbounded loop returns")
    }

    pub fn spec(&self) -> PathBuf {
        self.path.join("spec.json")
    }
    pub fn record(&self) -> PathBuf {
        self.path.join("record.json")
    }
    pub fn summary(&self) -> PathBuf {
        self.path.join("summary.json")
    }
    pub fn samples(&self) -> PathBuf {
        self.path.join("samples.jsonl")
    }

    pub fn run_id(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    pub fn read_record(&self) -> Result<Record> {
        read_json(&self.record())
    }

    pub fn read_summary(&self) -> Result<Summary> {
        read_json(&self.summary())
    }

    pub fn write_record(&self, record: &Record) -> Result<()> {
        write_json_atomic(&self.record(), record)
    }

    pub fn write_summary(&self, summary: &Summary) -> Result<()> {
        write_json_atomic(&self.summary(), summary)
    }

    /// Point `results/<experiment>/LATEST` at this run.
    pub fn mark_latest(&self) -> Result<()> {
        let parent = self.path.parent().ok_or_else(|| Error::run("run dir has no parent"))?;
        write_atomic(&parent.join("LATEST"), format!("{}\n", self.run_id()).as_bytes())
    }
}

/// The run `results/<experiment>/LATEST` names.
pub fn latest_run(results: &Path, experiment: &str) -> Result<RunDir> {
    let latest = results.join(experiment).join("LATEST");
    let id = std::fs::read_to_string(&latest).map_err(Error::io(&latest))?;
    Ok(RunDir::new(results.join(experiment).join(id.trim())))
}

/// A run named on the command line: a run directory, or an experiment folder
/// (`results/<experiment>`) meaning its LATEST run.
pub fn resolve_run(path: &Path) -> Result<RunDir> {
    if path.join("LATEST").is_file() {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        return latest_run(path.parent().unwrap_or(Path::new(".")), &name);
    }
    if !path.join("summary.json").is_file() {
        return Err(Error::input(
            path.display().to_string(),
            "not a run directory (no summary.json) nor an experiment folder (no LATEST)",
        ));
    }
    Ok(RunDir::new(path))
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::input(path.display().to_string(), e.to_string()))
}

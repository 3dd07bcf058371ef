//! Canonical JSON: keys sorted (serde_json's default map is a BTreeMap), no insignificant
//! whitespace. Spec hashes and fingerprint digests are sha256 over these bytes, so two
//! machines that resolve the same spec agree on its hash.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::run(format!("serialising to JSON: {e}")))
}

/// Compact canonical bytes.
pub fn to_canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(&to_value(value)?).map_err(|e| Error::run(format!("serialising to JSON: {e}")))
}

/// Pretty, key-sorted bytes for files people read.
pub fn to_pretty_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(&to_value(value)?).map_err(|e| Error::run(format!("serialising to JSON: {e}")))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of the canonical JSON of `value`.
pub fn canonical_hash<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(sha256_hex(&to_canonical_json(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":3}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":{"x":3,"y":2},"b":1}"#).unwrap();
        assert_eq!(canonical_hash(&a).unwrap(), canonical_hash(&b).unwrap());
        assert_eq!(to_canonical_json(&a).unwrap(), br#"{"a":{"x":3,"y":2},"b":1}"#);
    }
}

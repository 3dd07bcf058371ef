//! `samples.jsonl`: one line per finished item. Lines are appended as items finish (so an
//! interrupted run keeps its work) and rewritten in item order when the run completes (so
//! a resumed or merged run is byte-identical to an uninterrupted one).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::atomic::write_atomic;
use crate::record::canonical::to_canonical_json;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub item: String,
    pub output: serde_json::Value,
}

/// Read finished samples. A last line cut off by a crash (no trailing newline, or not
/// valid JSON) is dropped: that item simply runs again. A bad line elsewhere is an error.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { path: path.into(), source: e }),
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let lines: Vec<&str> = complete.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Sample>(line) {
            Ok(s) => out.push(s),
            Err(_) if i + 1 == lines.len() => {
                tracing::warn!("{}: dropping a torn last line; its item will run again", path.display())
            }
            Err(e) => {
                return Err(Error::input(
                    format!("{}:{}", path.display(), i + 1),
                    format!("not a sample: {e}"),
                ))
            }
        }
    }
    Ok(out)
}

/// Append one sample and flush it to disk.
pub fn append_sample(path: &Path, sample: &Sample) -> Result<()> {
    let mut line = to_canonical_json(sample)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(Error::io(path))?;
    f.write_all(&line).map_err(Error::io(path))?;
    f.sync_data().map_err(Error::io(path))
}

/// Order samples by the experiment's item order, checking each item appears once.
pub fn order_samples(samples: Vec<Sample>, items: &[String]) -> Result<Vec<Sample>> {
    let rank: BTreeMap<&str, usize> = items.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let mut seen = BTreeMap::new();
    for s in samples {
        let Some(&r) = rank.get(s.item.as_str()) else {
            return Err(Error::run(format!("sample for unknown item `{}`", s.item)));
        };
        if seen.insert(r, s).is_some() {
            return Err(Error::run(format!("item `{}` appears twice", items[r])));
        }
    }
    Ok(seen.into_values().collect())
}

/// Rewrite the whole file atomically in the given order.
pub fn write_samples(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut bytes = Vec::new();
    for s in samples {
        bytes.extend(to_canonical_json(s)?);
        bytes.push(b'\n');
    }
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_line_is_dropped_but_inner_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("samples.jsonl");
        let s = |i: &str| Sample { item: i.into(), output: serde_json::json!({"x": 1}) };
        append_sample(&p, &s("a")).unwrap();
        append_sample(&p, &s("b")).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"item":"c","out"#).unwrap();
        assert_eq!(read_samples(&p).unwrap().len(), 2);
        std::fs::write(&p, "garbage\n{\"item\":\"a\",\"output\":1}\n").unwrap();
        let e = read_samples(&p).unwrap_err().to_string();
        assert!(e.contains("samples.jsonl:1"), "{e}");
    }

    #[test]
    fn ordering_follows_items_and_rejects_duplicates() {
        let items = vec!["x".to_string(), "y".to_string()];
        let s = |i: &str| Sample { item: i.into(), output: serde_json::Value::Null };
        let got = order_samples(vec![s("y"), s("x")], &items).unwrap();
        assert_eq!(got[0].item, "x");
        assert!(order_samples(vec![s("x"), s("x")], &items).is_err());
        assert!(order_samples(vec![s("z")], &items).is_err());
    }

    #[test]
    fn floats_read_back_bit_exact() {
        // A resumed run summarises samples read from disk, an uninterrupted one summarises
        // them from memory; both must see the same f64 bits. serde_json's default float
        // parser is off by one ulp for values like these (its float_roundtrip feature fixes
        // that), which once made a resumed summary differ in the last digit.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("samples.jsonl");
        let xs = [0.09120981249326165_f64, 1725105382.8699625, 2.0461933687302629e-7, 1e-300, 0.1];
        let mut rng = 0x9e3779b97f4a7c15_u64;
        let mut all: Vec<f64> = xs.to_vec();
        for _ in 0..2000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let x = f64::from_bits(rng >> 2);
            if x.is_finite() {
                all.push(x);
            }
        }
        let s = Sample { item: "a".into(), output: serde_json::json!(all) };
        write_samples(&p, std::slice::from_ref(&s)).unwrap();
        let back = read_samples(&p).unwrap();
        let got: Vec<f64> = serde_json::from_value(back[0].output.clone()).unwrap();
        for (a, b) in all.iter().zip(&got) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a:e} read back as {b:e}");
        }
    }
}

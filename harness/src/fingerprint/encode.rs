//! Canonical binary encoding of a [`Fingerprint`]; its sha256 is the fingerprint digest.
//!
//! Fixed field order, little-endian, no padding, every f32 stored as its exact bits (so
//! encoding is a pure function of the values and decoding gives them back bit for bit):
//!
//! ```text
//! magic      "GBFP"
//! version    u16
//! model_id   str16          (u16 byte length + UTF-8)
//! probe_set  str16
//! probe_sha  [u8; 32]       (the probe set's sha256, raw)
//! tokens     u32
//! d_model    u32
//! config     seed u64, spectrum_k u16, mean_sketch u16, moment_sketch u16,
//!            logit_sketch u16, outlier_k u16, outlier_factor f64, outlier_score u8
//! layers     u16 count, then u16 each
//! lineage    u8 block count, then blocks
//! identity   u8 block count, then blocks
//! block      name str8, kind u8 (0 real, 1 index), rows u16, cols u16, rows*cols f32
//! ```
//!
//! A 32-block model (34 residual positions) with the default configuration and logits
//! encodes to under 4 KiB.

use crate::error::{Error, Result};
use crate::fingerprint::stats::OutlierScore;
use crate::fingerprint::{Block, BlockKind, Fingerprint, FingerprintConfig, Meta};

const MAGIC: &[u8; 4] = b"GBFP";

pub fn encode(fp: &Fingerprint) -> Result<Vec<u8>> {
    let mut w = Writer(Vec::with_capacity(4096));
    let m = &fp.meta;
    w.0.extend_from_slice(MAGIC);
    w.u16(m.version);
    w.str16(&m.model_id)?;
    w.str16(&m.probe_set)?;
    let sha = hex::decode(&m.probe_sha256).ok().filter(|b| b.len() == 32).ok_or_else(|| {
        Error::run(format!("fingerprint: probe sha256 `{}` is not 32 hex bytes", m.probe_sha256))
    })?;
    w.0.extend_from_slice(&sha);
    w.u32(m.tokens_used);
    w.u32(m.d_model);
    let c = &m.config;
    w.0.extend_from_slice(&c.seed.to_le_bytes());
    for v in [c.spectrum_k, c.mean_sketch, c.moment_sketch, c.logit_sketch, c.outlier_k] {
        w.u16(small(v, "config size")?);
    }
    w.0.extend_from_slice(&c.outlier_factor.to_le_bytes());
    w.0.push(match c.outlier_score {
        OutlierScore::MaxAbs => 0,
        OutlierScore::MeanAbs => 1,
    });
    w.u16(small(m.layers.len(), "layer count")?);
    for &l in &m.layers {
        w.u16(l);
    }
    for ch in [&fp.lineage, &fp.identity] {
        w.0.push(u8::try_from(ch.len()).map_err(|_| Error::run("fingerprint: more than 255 blocks"))?);
        for b in ch {
            if b.values.len() != b.rows * b.cols {
                return Err(Error::run(format!(
                    "fingerprint: block `{}` is not {} x {}",
                    b.name, b.rows, b.cols
                )));
            }
            let name = b.name.as_bytes();
            w.0.push(u8::try_from(name.len()).map_err(|_| Error::run("fingerprint: block name too long"))?);
            w.0.extend_from_slice(name);
            w.0.push(match b.kind {
                BlockKind::Real => 0,
                BlockKind::Index => 1,
            });
            w.u16(small(b.rows, "block rows")?);
            w.u16(small(b.cols, "block cols")?);
            for v in &b.values {
                w.0.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    Ok(w.0)
}

pub fn decode(bytes: &[u8]) -> Result<Fingerprint> {
    let mut r = Reader { b: bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(bad(0, "not a gapbench fingerprint (magic `GBFP` missing)"));
    }
    let version = r.u16()?;
    if version != super::FINGERPRINT_VERSION {
        return Err(bad(
            4,
            &format!("fingerprint version {version}, this build reads {}", super::FINGERPRINT_VERSION),
        ));
    }
    let model_id = r.str16()?;
    let probe_set = r.str16()?;
    let probe_sha256 = hex::encode(r.take(32)?);
    let tokens_used = r.u32()?;
    let d_model = r.u32()?;
    let seed = u64::from_le_bytes(r.array()?);
    let mut sizes = [0usize; 5];
    for s in &mut sizes {
        *s = r.u16()? as usize;
    }
    let outlier_factor = f64::from_le_bytes(r.array()?);
    let outlier_score = match r.u8()? {
        0 => OutlierScore::MaxAbs,
        1 => OutlierScore::MeanAbs,
        k => return Err(bad(r.at - 1, &format!("unknown outlier score {k}"))),
    };
    let config = FingerprintConfig {
        seed,
        spectrum_k: sizes[0],
        mean_sketch: sizes[1],
        moment_sketch: sizes[2],
        logit_sketch: sizes[3],
        outlier_k: sizes[4],
        outlier_factor,
        outlier_score,
    };
    let n_layers = r.u16()? as usize;
    let layers = (0..n_layers).map(|_| r.u16()).collect::<Result<Vec<_>>>()?;
    let mut channels = Vec::new();
    for _ in 0..2 {
        let n = r.u8()? as usize;
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u8()? as usize;
            let at = r.at;
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|_| bad(at, "block name is not UTF-8"))?
                .to_string();
            let kind = match r.u8()? {
                0 => BlockKind::Real,
                1 => BlockKind::Index,
                k => return Err(bad(r.at - 1, &format!("block `{name}`: unknown kind {k}"))),
            };
            let (rows, cols) = (r.u16()? as usize, r.u16()? as usize);
            let at = r.at;
            let values: Vec<f32> = r
                .take(rows * cols * 4)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(bad(at, &format!("block `{name}` holds a non-finite value")));
            }
            blocks.push(Block { name, kind, rows, cols, values });
        }
        channels.push(blocks);
    }
    if r.at != bytes.len() {
        return Err(bad(r.at, &format!("{} trailing bytes", bytes.len() - r.at)));
    }
    let identity = channels.pop().unwrap_or_default();
    let lineage = channels.pop().unwrap_or_default();
    Ok(Fingerprint {
        meta: Meta { version, model_id, probe_set, probe_sha256, tokens_used, d_model, layers, config },
        lineage,
        identity,
    })
}

fn small(v: usize, what: &str) -> Result<u16> {
    u16::try_from(v).map_err(|_| Error::run(format!("fingerprint: {what} {v} does not fit in 16 bits")))
}

fn bad(at: usize, msg: &str) -> Error {
    Error::input("fingerprint bytes", format!("at byte {at}: {msg}"))
}

struct Writer(Vec<u8>);

impl Writer {
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str16(&mut self, s: &str) -> Result<()> {
        self.u16(small(s.len(), "string length")?);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| bad(self.at, "truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn str16(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map(str::to_string).map_err(|_| bad(at, "string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::distance;
    use crate::fingerprint::tests::{fp_of, synthetic};

    #[test]
    fn thirty_two_block_fingerprint_fits_in_4_kib() {
        // 32 blocks → 34 residual positions (embedding, 32 blocks, final norm).
        let (layers, logits) = synthetic(34, 48, 64, 11);
        let fp = fp_of(&layers, &logits);
        let bytes = encode(&fp).unwrap();
        assert!(bytes.len() <= 4096, "encoded size {} bytes", bytes.len());
        eprintln!("34-position fingerprint: {} bytes", bytes.len());
    }

    #[test]
    fn round_trip_is_exact() {
        let (layers, logits) = synthetic(5, 30, 20, 12);
        let fp = fp_of(&layers, &logits);
        let bytes = encode(&fp).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back, fp);
        assert_eq!(encode(&back).unwrap(), bytes);
        assert_eq!(back.digest().unwrap(), fp.digest().unwrap());
    }

    #[test]
    fn digest_is_stable_and_one_ulp_is_tiny() {
        let (layers, logits) = synthetic(4, 40, 16, 13);
        let a = fp_of(&layers, &logits);
        assert_eq!(a.digest().unwrap(), fp_of(&layers, &logits).digest().unwrap());
        assert_eq!(a.digest().unwrap().len(), 64);
        // One ulp in one activation.
        let mut nudged = layers.clone();
        let x = &mut nudged[2].1.data[17];
        *x = f32::from_bits(x.to_bits() + 1);
        let b = fp_of(&nudged, &logits);
        let d = distance(&a, &b).unwrap();
        assert!(d.identity.total < 1e-5, "{:?}", d.identity);
        assert!(d.lineage.total < 1e-5, "{:?}", d.lineage);
        // Any change of a stored value changes the digest.
        let mut c = a.clone();
        let v = &mut c.identity[0].values[0];
        *v = f32::from_bits(v.to_bits() ^ 1);
        assert_ne!(c.digest().unwrap(), a.digest().unwrap());
    }

    #[test]
    fn corrupt_bytes_are_input_errors() {
        let (layers, logits) = synthetic(3, 20, 8, 14);
        let bytes = encode(&fp_of(&layers, &logits)).unwrap();
        for cut in [0, 3, 10, 60, bytes.len() - 1] {
            let e = decode(&bytes[..cut]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).unwrap_err().to_string().contains("trailing"));
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(decode(&wrong).is_err());
        // A NaN planted in the last value is refused.
        let mut nan = bytes;
        let n = nan.len();
        nan[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(decode(&nan).unwrap_err().to_string().contains("non-finite"));
    }
}

//! `bit-flips`: flip `k` random bits (the severity), modelling storage or transfer
//! corruption and fault-injection tampering (rowhammer-style) of a model file.
//!
//! Two representations:
//! - `stored` (default): bits of the file's own encoding of each tensor, as
//!   [`WeightSet::stored_type`] records it: for the SmolLM2 GGUF the Q4_1 blocks of the
//!   matrices (4-bit codes plus f16 scale and min per 32 values), the Q8_0 embedding and
//!   the f32 norms. Bits are drawn uniformly over all encoded bits, so a flip lands in a
//!   code (one value moves by a multiple of the scale) or in a scale/min (a whole block
//!   of 32 values moves), in proportion to their share of the file. The block is
//!   re-encoded from the current values (exact, since they were decoded from that
//!   encoding), flipped and decoded. At most one flip per block.
//! - `f32`: bits of the IEEE-754 f32 value of random weights (one flip per value),
//!   optionally restricted to a `field` (mantissa, exponent, sign). Useful for the subtle
//!   end of the curve (`field = "mantissa"`) and for f32 checkpoints.
//!
//! Values are drawn over *all* tensors, norms included. A flip whose result is inf or
//! NaN (f32: an exponent-MSB flip of a value with |x| ≥ 2; stored: e.g. an f16 scale
//! exponent becoming all ones) is redrawn unless `allow_non_finite`: a non-finite weight
//! poisons every later activation and is caught by any check, so it says nothing about a
//! fingerprint's sensitivity. Finite but huge results (an f32 exponent-MSB flip of
//! |x| < 2 gives ~|x|·2¹²⁸) are kept: they are the realistic catastrophic case.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::{tensor_change, Attack, AttackReport, ChaCha20Rng, WeightSet};
use crate::error::{CandleContext, Error, Result};

/// Which bits of the IEEE-754 f32 may flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BitField {
    /// Any of the 32 bits.
    #[default]
    Any,
    /// Bits 0..=22.
    Mantissa,
    /// Bits 23..=30.
    Exponent,
    /// Bit 31.
    Sign,
}

impl BitField {
    fn range(self) -> std::ops::RangeInclusive<u32> {
        match self {
            BitField::Any => 0..=31,
            BitField::Mantissa => 0..=22,
            BitField::Exponent => 23..=30,
            BitField::Sign => 31..=31,
        }
    }
}

/// Which encoding of the weights the bits are flipped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Representation {
    /// The bytes of the source file's own encoding of each tensor (Q4_1 blocks, Q8_0
    /// blocks, f32 norms for the SmolLM2 GGUF), as [`WeightSet::stored_type`] records it.
    #[default]
    Stored,
    /// The IEEE-754 f32 value of each weight.
    F32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BitFlips {
    /// Number of bits flipped (an integer ≥ 0).
    pub severity: f64,
    pub representation: Representation,
    /// Which f32 bits may flip (only with `representation = "f32"`).
    pub field: BitField,
    pub allow_non_finite: bool,
}

impl Default for BitFlips {
    fn default() -> Self {
        Self {
            severity: 10.0,
            representation: Representation::Stored,
            field: BitField::Any,
            allow_non_finite: false,
        }
    }
}

impl Attack for BitFlips {
    fn name(&self) -> &'static str {
        "bit-flips"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let k = self.severity;
        if !(k >= 0.0 && k.fract() == 0.0 && k <= 1e9) {
            return Err(Error::input("bit-flips", format!("severity is a bit count, got {k}")));
        }
        match self.representation {
            Representation::F32 => self.flip_f32(w, k as usize, rng),
            Representation::Stored if self.field == BitField::Any => self.flip_stored(w, k as usize, rng),
            Representation::Stored => Err(Error::input(
                "bit-flips",
                "`field` restricts f32 bits: use it with representation = \"f32\"",
            )),
        }
    }
}

/// Cumulative offsets of each tensor's `unit` count (values or bits), in name order.
fn offsets(w: &WeightSet, unit: impl Fn(&str) -> usize) -> (Vec<String>, Vec<usize>, usize) {
    let names: Vec<String> = w.names().cloned().collect();
    let mut starts = Vec::with_capacity(names.len());
    let mut acc = 0usize;
    for n in &names {
        starts.push(acc);
        acc += unit(n);
    }
    (names, starts, acc)
}

/// Decode one block of `g` from its bytes.
fn decode_block(g: GgmlDType, bytes: &[u8]) -> Result<Vec<f32>> {
    let q =
        qtensor_from_ggml(g, bytes, vec![g.block_size()], &Device::Cpu).ctx("decoding a flipped block")?;
    q.dequantize(&Device::Cpu).and_then(|t| t.to_vec1::<f32>()).ctx("decoding a flipped block")
}

impl BitFlips {
    fn flip_f32(&self, w: &mut WeightSet, k: usize, rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let (names, starts, total) = offsets(w, |n| w.get(n).map_or(0, |t| t.data.len()));
        // Draw every flip first: (tensor, index) -> bit, one per value.
        let mut flips: BTreeMap<(usize, usize), u32> = BTreeMap::new();
        let mut attempts = 0usize;
        while flips.len() < k {
            attempts += 1;
            if attempts > 100 * k + 1000 || total == 0 {
                return Err(Error::run(format!("bit-flips: could not place {k} admissible flips")));
            }
            let g = rng.gen_range(0..total);
            let bit = rng.gen_range(self.field.range());
            let ti = starts.partition_point(|&s| s <= g) - 1;
            let idx = g - starts[ti];
            let x = w.get(&names[ti]).map_or(0.0, |t| t.data[idx]);
            if flips.contains_key(&(ti, idx))
                || (!self.allow_non_finite && !f32::from_bits(x.to_bits() ^ (1 << bit)).is_finite())
            {
                continue;
            }
            flips.insert((ti, idx), bit);
        }
        let mut rep = AttackReport::new(self);
        let mut by_tensor: Vec<Vec<(usize, u32)>> = vec![vec![]; names.len()];
        for (&(ti, idx), &bit) in &flips {
            by_tensor[ti].push((idx, bit));
        }
        for (ti, fl) in by_tensor.iter().enumerate() {
            if fl.is_empty() {
                continue;
            }
            let name = &names[ti];
            let t = w.expect_mut(name)?;
            let before = t.clone();
            for &(idx, bit) in fl {
                let old = t.data[idx];
                t.data[idx] = f32::from_bits(old.to_bits() ^ (1 << bit));
                rep.details.push(format!("{name}[{idx}] bit {bit}: {old:e} -> {:e}", t.data[idx]));
            }
            rep.push(tensor_change(name, &before, t));
        }
        Ok(rep.finish())
    }

    /// Flip bits of each tensor's stored encoding: the flipped block is re-encoded from
    /// the current values (exact for values that came from that encoding), one bit of its
    /// bytes flipped, and decoded back. At most one flip per block.
    fn flip_stored(&self, w: &mut WeightSet, k: usize, rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let encoded_bits = |n: &str| -> usize {
            let g = w.stored_type(n);
            let len = w.get(n).map_or(0, |t| t.data.len());
            if len % g.block_size() != 0 {
                return 0;
            }
            len / g.block_size() * g.type_size() * 8
        };
        let (names, starts, total) = offsets(w, encoded_bits);
        // (tensor, block) -> (decoded values, description)
        let mut flips: BTreeMap<(usize, usize), (Vec<f32>, String)> = BTreeMap::new();
        let mut attempts = 0usize;
        while flips.len() < k {
            attempts += 1;
            if attempts > 100 * k + 1000 || total == 0 {
                return Err(Error::run(format!("bit-flips: could not place {k} admissible flips")));
            }
            let gbit = rng.gen_range(0..total);
            let ti = starts.partition_point(|&s| s <= gbit) - 1;
            let name = &names[ti];
            let g = w.stored_type(name);
            let (bs, ts) = (g.block_size(), g.type_size());
            let bit = gbit - starts[ti];
            let (block, in_block) = (bit / 8 / ts, bit % (8 * ts));
            if flips.contains_key(&(ti, block)) {
                continue;
            }
            let t = w.get(name).ok_or_else(|| Error::run("vanished tensor"))?;
            let vals = &t.data[block * bs..(block + 1) * bs];
            let q = QTensor::quantize(&Tensor::from_slice(vals, bs, &Device::Cpu).ctx("block")?, g)
                .ctx(format!("encoding a block of `{name}` as {g:?}"))?;
            let mut bytes = q.data().ctx("block bytes")?.to_vec();
            bytes[in_block / 8] ^= 1 << (in_block % 8);
            let new = decode_block(g, &bytes)?;
            if !self.allow_non_finite && new.iter().any(|x| !x.is_finite()) {
                continue;
            }
            let what = format!("{name} block {block} ({g:?}) byte {} bit {}", in_block / 8, in_block % 8);
            flips.insert((ti, block), (new, what));
        }
        let mut rep = AttackReport::new(self);
        let mut by_tensor: Vec<Vec<(usize, Vec<f32>)>> = vec![vec![]; names.len()];
        for ((ti, block), (new, what)) in flips {
            by_tensor[ti].push((block, new));
            rep.details.push(what);
        }
        for (ti, blocks) in by_tensor.into_iter().enumerate() {
            if blocks.is_empty() {
                continue;
            }
            let name = &names[ti];
            let t = w.expect_mut(name)?;
            let before = t.clone();
            for (block, new) in blocks {
                let bs = new.len();
                t.data[block * bs..(block + 1) * bs].copy_from_slice(&new);
            }
            rep.push(tensor_change(name, &before, t));
        }
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn flips_exactly_k_bits() {
        for field in [BitField::Any, BitField::Mantissa, BitField::Exponent, BitField::Sign] {
            let spec = BitFlips {
                severity: 25.0,
                representation: Representation::F32,
                field,
                allow_non_finite: false,
            };
            let (w, rep) = check(&VariantSpec::BitFlips(spec));
            let base = toy(4);
            let mut bits = 0;
            for (n, t) in w.iter() {
                for (a, b) in t.data.iter().zip(&base.get(n).unwrap().data) {
                    let x = a.to_bits() ^ b.to_bits();
                    bits += x.count_ones();
                    assert!(a.is_finite());
                    if x != 0 {
                        assert!(field.range().contains(&x.trailing_zeros()), "{field:?}");
                    }
                }
            }
            assert_eq!(bits, 25, "{field:?}");
            assert_eq!((rep.details.len(), rep.n_changed), (25, 25));
        }
    }

    #[test]
    fn zero_flips_and_bad_counts() {
        let (w, rep) = check(&VariantSpec::BitFlips(BitFlips { severity: 0.0, ..Default::default() }));
        assert_eq!((w, rep.n_changed), (toy(4), 0));
        let mut w = toy(4);
        assert!(VariantSpec::BitFlips(BitFlips { severity: 1.5, ..Default::default() })
            .apply(&mut w, 1)
            .is_err());
        let mantissa_stored = BitFlips { field: BitField::Mantissa, ..Default::default() };
        assert!(VariantSpec::BitFlips(mantissa_stored).apply(&mut w, 1).is_err());
        assert_eq!(w, toy(4));
    }

    /// Flips in stored Q4_1 / Q8_0 blocks change values of at most one 32-value block per
    /// flip, and leave everything else bit-identical.
    #[test]
    fn stored_flips_stay_inside_their_blocks() {
        use std::collections::{BTreeMap, BTreeSet};
        let mut base = toy(4);
        // Make the values exactly representable in their stored types, as a GGUF set is.
        let mut stored = BTreeMap::new();
        for n in base.matrices() {
            let g = if n == "token_embd.weight" { GgmlDType::Q8_0 } else { GgmlDType::Q4_1 };
            super::super::modify(&mut base, &n, |t| {
                let q = QTensor::quantize(&t.to_tensor(&Device::Cpu)?, g).unwrap();
                *t = super::super::WTensor::from_tensor(&q.dequantize(&Device::Cpu).unwrap())?;
                Ok(())
            })
            .unwrap();
            stored.insert(n, g);
        }
        let base = base.with_stored_types(stored);
        let spec = VariantSpec::BitFlips(BitFlips { severity: 40.0, ..Default::default() });
        let mut a = base.clone();
        let rep = spec.apply(&mut a, 3).unwrap();
        let mut b = base.clone();
        assert_eq!(spec.apply(&mut b, 3).unwrap(), rep);
        assert_eq!(a, b);
        assert_eq!(a.diff(&base).unwrap(), rep.changes);
        assert_eq!(rep.details.len(), 40);
        assert!(rep.n_changed >= 1 && rep.n_changed <= 40 * 32, "{}", rep.n_changed);
        for (n, t) in a.iter() {
            let bs = base.stored_type(n).block_size();
            let before = &base.get(n).unwrap().data;
            let blocks: BTreeSet<usize> = t
                .data
                .iter()
                .zip(before)
                .enumerate()
                .filter(|(_, (x, y))| x.to_bits() != y.to_bits())
                .map(|(i, _)| i / bs)
                .collect();
            let flipped = rep.details.iter().filter(|d| d.starts_with(&format!("{n} block "))).count();
            assert!(blocks.len() <= flipped, "{n}: {} blocks changed, {flipped} flipped", blocks.len());
            assert!(t.data.iter().all(|x| x.is_finite()));
        }
    }
}

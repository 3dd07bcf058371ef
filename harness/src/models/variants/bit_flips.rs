//! `bit-flips`: flip `k` random bits (the severity) of random values, modelling storage
//! or transfer corruption and fault-injection tampering (rowhammer-style) of a file.
//!
//! Bits are flipped in the f32 representation of the weight set, not in the file's own
//! encoding (4-bit nibbles and f16 scales for the shipped Q4_1): the f32 form is common
//! to every checkpoint format here, and the effect of one flip is then a fixed,
//! interpretable change of one value. Values are drawn uniformly over *all* values of all
//! tensors (norms included), bits uniformly within `field`, one flip per value at most
//! (so `k` flips change exactly `k` values). A flip whose result is inf or NaN (an exponent-MSB flip of a value with
//! |x| ≥ 2, or any flip of an exponent already near all-ones) is redrawn unless
//! `allow_non_finite`: a non-finite weight poisons every later activation and is caught
//! by any check, so it says nothing about a fingerprint's sensitivity. Finite
//! exponent-MSB flips (|x| < 2 becomes ~|x|·2¹²⁸) are kept: they are the realistic
//! catastrophic case. Use `field = "mantissa"` for the subtle end of the curve.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{tensor_change, Attack, AttackReport, ChaCha20Rng, WeightSet};
use crate::error::{Error, Result};

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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BitFlips {
    /// Number of bits flipped (an integer ≥ 0).
    pub severity: f64,
    pub field: BitField,
    pub allow_non_finite: bool,
}

impl Default for BitFlips {
    fn default() -> Self {
        Self { severity: 10.0, field: BitField::Any, allow_non_finite: false }
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
        let k = k as usize;
        let total = w.n_values();
        let names: Vec<String> = w.names().cloned().collect();
        let mut starts = Vec::with_capacity(names.len());
        let mut acc = 0usize;
        for n in &names {
            starts.push(acc);
            acc += w.get(n).map_or(0, |t| t.data.len());
        }
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
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn flips_exactly_k_bits() {
        for field in [BitField::Any, BitField::Mantissa, BitField::Exponent, BitField::Sign] {
            let spec = BitFlips { severity: 25.0, field, allow_non_finite: false };
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
    }
}

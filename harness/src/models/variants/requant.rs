//! `requant`: re-quantize every weight matrix to another ggml type and back to f32, what a
//! host serving "the same model" from a differently quantized file computes with
//! (same-family substitution). 1-D tensors (norms) stay f32, as in llama.cpp; k-quant
//! types fall back per tensor like llama.cpp does ([`QuantType::for_row_len`]).
//!
//! Severity is set by `to`: [`Attack::severity`] reports the compression factor against
//! f32, 32 / bits-per-weight (q8_0: 3.76, q4_0: 7.11).

use candle_core::quantized::QTensor;
use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::{modify, Attack, AttackReport, ChaCha20Rng, WTensor, WeightSet};
use crate::error::{CandleContext, Error, Result};
use crate::models::gguf_llama::QuantType;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Requant {
    pub to: QuantType,
}

impl Default for Requant {
    fn default() -> Self {
        Self { to: QuantType::Q8_0 }
    }
}

/// Bits per weight of a ggml type (block bytes × 8 / block values).
pub fn bits_per_weight(q: QuantType) -> f64 {
    let g = q.ggml();
    g.type_size() as f64 * 8.0 / g.block_size() as f64
}

/// Quantize a 2-D tensor to `to` (with the row-length fallback) and dequantize it back.
/// Returns the type actually used.
pub fn round_trip(name: &str, t: &mut WTensor, to: QuantType) -> Result<QuantType> {
    let row_len = t.shape.last().copied().unwrap_or(0);
    let target = to.for_row_len(row_len);
    if row_len == 0 || row_len % target.ggml().block_size() != 0 {
        return Err(Error::run(format!("{name}: rows of {row_len} values cannot be quantized to {target}")));
    }
    let dense = t.to_tensor(&Device::Cpu)?;
    let q = QTensor::quantize(&dense, target.ggml()).ctx(format!("quantizing `{name}` to {target}"))?;
    let back = q.dequantize(&Device::Cpu).ctx(format!("dequantizing `{name}`"))?;
    *t = WTensor::from_tensor(&back)?;
    Ok(target)
}

impl Attack for Requant {
    fn name(&self) -> &'static str {
        "requant"
    }

    fn severity(&self) -> f64 {
        32.0 / bits_per_weight(self.to)
    }

    fn apply(&self, w: &mut WeightSet, _rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let mut rep = AttackReport::new(self);
        for name in w.matrices() {
            let mut used = self.to;
            rep.push(modify(w, &name, |t| {
                used = round_trip(&name, t, self.to)?;
                Ok(())
            })?);
            if used != self.to {
                rep.details.push(format!("{name}: fell back to {used}"));
            }
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
    fn changes_every_matrix_and_no_norm() {
        let (w, rep) = check(&VariantSpec::Requant(Requant { to: QuantType::Q4_0 }));
        assert_eq!(rep.changed_names().len(), toy(4).matrices().len());
        assert!(rep.changes.iter().all(|c| w.get(&c.name).unwrap().is_matrix()));
        // 4-bit re-quantization of uniform values: ~5-10% relative error.
        assert!(rep.changes.iter().all(|c| c.rel_frobenius > 0.01 && c.rel_frobenius < 0.3), "{rep:?}");
        assert!((Requant { to: QuantType::Q8_0 }.severity() - 32.0 / 8.5).abs() < 1e-12);
    }

    #[test]
    fn k_quants_fall_back_on_short_rows() {
        // Rows of 32 / 64 values are not multiples of 256: q4_k falls back to q5_0.
        let (_, rep) = check(&VariantSpec::Requant(Requant { to: QuantType::Q4K }));
        assert!(rep.details.iter().all(|d| d.ends_with("fell back to q5_0")));
        assert_eq!(rep.details.len(), toy(4).matrices().len());
    }
}

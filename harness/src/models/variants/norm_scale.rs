//! `norm-scale`: multiply one RMSNorm weight vector by (1 + ε) (ε is the severity). The
//! smallest possible tamper: d values, one scalar, and for a block norm the block's input
//! is rescaled, which moves attention logits and the MLP's nonlinearity. Default target:
//! the middle block's pre-MLP norm (`ffn_norm` / `post_attention_layernorm`).

use serde::{Deserialize, Serialize};

use super::{modify, target, Attack, AttackReport, ChaCha20Rng, Kind, WeightSet};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormScale {
    /// ε: the vector is multiplied by 1 + ε (may be negative, > -1).
    pub severity: f64,
    pub kind: Kind,
    /// Block index; the middle block when absent (ignored for `final-norm`, which must
    /// not be given one).
    pub block: Option<usize>,
}

impl Default for NormScale {
    fn default() -> Self {
        Self { severity: 1e-2, kind: Kind::FfnNorm, block: None }
    }
}

impl Attack for NormScale {
    fn name(&self) -> &'static str {
        "norm-scale"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, _rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        if !(self.severity.is_finite() && self.severity > -1.0) {
            return Err(Error::input(
                "norm-scale",
                format!("severity must be finite and > -1, got {}", self.severity),
            ));
        }
        if !matches!(self.kind, Kind::AttnNorm | Kind::FfnNorm | Kind::FinalNorm) {
            return Err(Error::input("norm-scale", format!("{:?} is not a norm", self.kind)));
        }
        let name = target(w, self.kind, self.block)?;
        let mut rep = AttackReport::new(self);
        let factor = (1.0 + self.severity) as f32;
        rep.push(modify(w, &name, |t| {
            for x in t.data.iter_mut() {
                *x *= factor;
            }
            Ok(())
        })?);
        rep.details.push(format!("`{name}` × {factor}"));
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn scales_one_norm() {
        let (_, rep) = check(&VariantSpec::NormScale(Default::default()));
        assert_eq!(rep.changed_names(), vec!["blk.2.ffn_norm.weight"]);
        assert!((rep.changes[0].rel_frobenius - 1e-2).abs() < 1e-6);
        let spec = NormScale { severity: -0.5, kind: Kind::FinalNorm, block: None };
        let (_, rep) = check(&VariantSpec::NormScale(spec));
        assert_eq!(rep.changed_names(), vec!["output_norm.weight"]);
        let (w, rep) = check(&VariantSpec::NormScale(NormScale { severity: 0.0, ..Default::default() }));
        assert_eq!((w, rep.n_changed), (toy(4), 0));
        let mut w = toy(4);
        let bad = NormScale { kind: Kind::AttnQ, ..Default::default() };
        assert!(VariantSpec::NormScale(bad).apply(&mut w, 1).is_err());
    }
}

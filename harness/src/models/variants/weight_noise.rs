//! `weight-noise`: relative Gaussian noise on every weight matrix,
//! `W += σ · rms(W) · N(0, 1)` elementwise. The generic "slightly different checkpoint"
//! (same-family): σ = 1e-4 ... 1e-2 spans float-format noise up to a short fine-tune.
//! Norm vectors are left alone so the edit stays a pure matrix perturbation.

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{check_finite, modify, Attack, AttackReport, ChaCha20Rng, WeightSet};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightNoise {
    /// σ, relative to each matrix's rms.
    pub severity: f64,
    /// Also perturb the token embedding (and the LM head when untied).
    pub embedding: bool,
}

impl Default for WeightNoise {
    fn default() -> Self {
        Self { severity: 1e-3, embedding: true }
    }
}

/// Add `sigma · rms(W) · N(0,1)` to every value of the named tensors, in the order given.
pub(crate) fn add_noise(
    w: &mut WeightSet,
    names: &[String],
    sigma: f64,
    rng: &mut ChaCha20Rng,
    rep: &mut AttackReport,
) -> Result<()> {
    if sigma == 0.0 {
        return Ok(());
    }
    for name in names {
        rep.push(modify(w, name, |t| {
            let scale = sigma * t.rms();
            for x in t.data.iter_mut() {
                let z: f64 = StandardNormal.sample(rng);
                *x = (*x as f64 + scale * z) as f32;
            }
            Ok(())
        })?);
    }
    Ok(())
}

impl Attack for WeightNoise {
    fn name(&self) -> &'static str {
        "weight-noise"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        check_finite("weight-noise severity", self.severity)?;
        let mut rep = AttackReport::new(self);
        let names: Vec<String> = w
            .matrices()
            .into_iter()
            .filter(|n| self.embedding || w.role(n).is_none_or(|r| r.block.is_some()))
            .collect();
        add_noise(w, &names, self.severity, rng, &mut rep)?;
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn relative_change_matches_sigma_on_every_matrix() {
        let (_, rep) = check(&VariantSpec::WeightNoise(WeightNoise { severity: 1e-2, embedding: true }));
        assert_eq!(rep.changes.len(), toy(4).matrices().len());
        for c in &rep.changes {
            assert!((c.rel_frobenius / 1e-2 - 1.0).abs() < 0.15, "{c:?}");
        }
        let (_, rep) = check(&VariantSpec::WeightNoise(WeightNoise { severity: 1e-2, embedding: false }));
        assert!(!rep.changed_names().contains(&"token_embd.weight"));
        assert_eq!(rep.changes.len(), toy(4).matrices().len() - 1);
    }

    #[test]
    fn zero_severity_is_bit_identical() {
        let (w, rep) = check(&VariantSpec::WeightNoise(WeightNoise { severity: 0.0, embedding: true }));
        assert_eq!(w, toy(4));
        assert_eq!(rep.n_changed, 0);
        let mut w = toy(4);
        assert!(VariantSpec::WeightNoise(WeightNoise { severity: f64::NAN, embedding: true })
            .apply(&mut w, 1)
            .is_err());
    }
}

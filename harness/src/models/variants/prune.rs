//! `prune`: magnitude pruning of one matrix, zeroing the fraction p (the severity) of its
//! values with the smallest |w| (ties broken by position, so it needs no randomness).
//! Unstructured magnitude pruning is the standard compression step a repackager might
//! apply to one or all matrices; here one, by default the middle block's down-projection.

use serde::{Deserialize, Serialize};

use super::{check_finite, modify, target, Attack, AttackReport, ChaCha20Rng, Kind, WeightSet};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prune {
    /// Fraction of the matrix's values set to zero, in [0, 1].
    pub severity: f64,
    pub kind: Kind,
    /// Block index; the middle block when absent.
    pub block: Option<usize>,
}

impl Default for Prune {
    fn default() -> Self {
        Self { severity: 0.1, kind: Kind::FfnDown, block: None }
    }
}

impl Attack for Prune {
    fn name(&self) -> &'static str {
        "prune"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, _rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        check_finite("prune severity", self.severity)?;
        if self.severity > 1.0 {
            return Err(Error::input(
                "prune",
                format!("severity is a fraction in [0, 1], got {}", self.severity),
            ));
        }
        let name = target(w, self.kind, self.block)?;
        let mut rep = AttackReport::new(self);
        let mut n_pruned = 0;
        rep.push(modify(w, &name, |t| {
            let n = (self.severity * t.data.len() as f64).floor() as usize;
            let mut order: Vec<usize> = (0..t.data.len()).collect();
            order.sort_by(|&i, &j| t.data[i].abs().total_cmp(&t.data[j].abs()).then(i.cmp(&j)));
            for &i in &order[..n] {
                t.data[i] = 0.0;
            }
            n_pruned = n;
            Ok(())
        })?);
        rep.details.push(format!("zeroed the {n_pruned} smallest-magnitude values of `{name}`"));
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn zeroes_the_smallest_fraction_of_one_matrix() {
        let spec = Prune { severity: 0.25, kind: Kind::AttnQ, block: Some(0) };
        let (w, rep) = check(&VariantSpec::Prune(spec));
        assert_eq!(rep.changed_names(), vec!["blk.0.attn_q.weight"]);
        let (a, b) =
            (w.get("blk.0.attn_q.weight").unwrap(), toy(4).get("blk.0.attn_q.weight").cloned().unwrap());
        let n = a.data.len() / 4;
        assert_eq!(a.data.iter().filter(|x| **x == 0.0).count(), n);
        assert_eq!(rep.n_changed, n);
        let kept_min = a.data.iter().filter(|x| **x != 0.0).map(|x| x.abs()).fold(f32::INFINITY, f32::min);
        let pruned_max =
            b.data.iter().zip(&a.data).filter(|(_, y)| **y == 0.0).map(|(x, _)| x.abs()).fold(0.0, f32::max);
        assert!(pruned_max <= kept_min);
        let (w, rep) = check(&VariantSpec::Prune(Prune { severity: 0.0, ..Default::default() }));
        assert_eq!((w, rep.n_changed), (toy(4), 0));
        let mut w = toy(4);
        assert!(VariantSpec::Prune(Prune { severity: 1.5, ..Default::default() }).apply(&mut w, 1).is_err());
    }
}

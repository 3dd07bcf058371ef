//! `low-rank-edit`: add a random rank-`rank` update `ΔW = Σ u_j v_jᵀ` to one matrix, scaled
//! so that ‖ΔW‖_F = ρ · ‖W‖_F (ρ is the severity). The shape of a targeted supply-chain
//! edit (ROME-style fact edits and small LoRA merges are rank-1 to rank-16 updates of one
//! or a few matrices). Default target: the MLP down-projection of the middle block.

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{check_finite, modify, target, Attack, AttackReport, ChaCha20Rng, Kind, WeightSet};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LowRankEdit {
    /// ρ = ‖ΔW‖_F / ‖W‖_F.
    pub severity: f64,
    pub rank: usize,
    pub kind: Kind,
    /// Block index; the middle block when absent.
    pub block: Option<usize>,
}

impl Default for LowRankEdit {
    fn default() -> Self {
        Self { severity: 1e-2, rank: 1, kind: Kind::FfnDown, block: None }
    }
}

impl Attack for LowRankEdit {
    fn name(&self) -> &'static str {
        "low-rank-edit"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        check_finite("low-rank-edit severity", self.severity)?;
        let name = target(w, self.kind, self.block)?;
        let mut rep = AttackReport::new(self);
        if self.severity == 0.0 {
            return Ok(rep);
        }
        let rank = self.rank;
        rep.push(modify(w, &name, |t| {
            let [rows, cols] = t.shape[..] else {
                return Err(Error::input("low-rank-edit", format!("`{name}` is not a matrix")));
            };
            if rank == 0 || rank > rows.min(cols) {
                return Err(Error::input("low-rank-edit", format!("rank {rank} for a {rows}×{cols} matrix")));
            }
            let mut normal = || -> f64 { StandardNormal.sample(&mut *rng) };
            let u: Vec<Vec<f64>> = (0..rank).map(|_| (0..rows).map(|_| normal()).collect()).collect();
            let v: Vec<Vec<f64>> = (0..rank).map(|_| (0..cols).map(|_| normal()).collect()).collect();
            let mut delta = vec![0f64; rows * cols];
            for (uj, vj) in u.iter().zip(&v) {
                for (r, &ur) in uj.iter().enumerate() {
                    for (c, &vc) in vj.iter().enumerate() {
                        delta[r * cols + c] += ur * vc;
                    }
                }
            }
            let dn = delta.iter().map(|d| d * d).sum::<f64>().sqrt();
            let scale = self.severity * t.frobenius() / dn;
            for (x, d) in t.data.iter_mut().zip(&delta) {
                *x = (*x as f64 + scale * d) as f32;
            }
            Ok(())
        })?);
        rep.details.push(format!("rank {rank} edit of `{name}`"));
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn edits_one_matrix_by_rho() {
        let spec = LowRankEdit { severity: 1e-2, rank: 2, kind: Kind::AttnV, block: Some(3) };
        let (w, rep) = check(&VariantSpec::LowRankEdit(spec));
        assert_eq!(rep.changed_names(), vec!["blk.3.attn_v.weight"]);
        assert!((rep.changes[0].rel_frobenius - 1e-2).abs() < 1e-6, "{rep:?}");
        // The difference has numerical rank 2 (up to f32 rounding of W + ΔW).
        let base = toy(4);
        let (a, b) = (w.get("blk.3.attn_v.weight").unwrap(), base.get("blk.3.attn_v.weight").unwrap());
        let cols = a.shape[1];
        let rows: Vec<Vec<f64>> = a
            .data
            .chunks(cols)
            .zip(b.data.chunks(cols))
            .map(|(x, y)| x.iter().zip(y).map(|(p, q)| *p as f64 - *q as f64).collect())
            .collect();
        let scale = rows.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
        let mut basis: Vec<Vec<f64>> = vec![];
        for r in rows {
            let mut r = r;
            for q in &basis {
                let d: f64 = r.iter().zip(q).map(|(x, y)| x * y).sum();
                r.iter_mut().zip(q).for_each(|(x, y)| *x -= d * y);
            }
            let n = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n > 1e-3 * scale {
                basis.push(r.iter().map(|x| x / n).collect());
            }
        }
        assert_eq!(basis.len(), 2, "numerical rank of the edit");
        // Default target: the middle block's down projection.
        let (_, rep) = check(&VariantSpec::LowRankEdit(Default::default()));
        assert_eq!(rep.changed_names(), vec!["blk.2.ffn_down.weight"]);
    }

    #[test]
    fn zero_severity_and_bad_targets() {
        let (w, rep) = check(&VariantSpec::LowRankEdit(LowRankEdit { severity: 0.0, ..Default::default() }));
        assert_eq!((w, rep.n_changed), (toy(4), 0));
        let mut w = toy(4);
        let bad = LowRankEdit { block: Some(4), ..Default::default() };
        assert!(VariantSpec::LowRankEdit(bad).apply(&mut w, 1).is_err());
        let bad = LowRankEdit { kind: Kind::AttnNorm, ..Default::default() };
        assert!(VariantSpec::LowRankEdit(bad).apply(&mut w, 1).is_err());
        assert_eq!(w, toy(4));
    }
}

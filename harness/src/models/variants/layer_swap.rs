//! `layer-swap`: exchange every tensor of block `block` with the same tensor of block
//! `block + d` (d is the severity). A packaging mistake or deliberate tamper that keeps
//! every tensor's values and shape, so per-tensor hashes of the *set* of values match;
//! only their positions move. Adjacent middle blocks (d = 1) are the subtle case.

use serde::{Deserialize, Serialize};

use super::{block_or_middle, tensor_change, Attack, AttackReport, ChaCha20Rng, Role, WeightSet};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayerSwap {
    /// Distance d between the swapped blocks (an integer ≥ 0).
    pub severity: f64,
    /// The first block; when absent the middle block (or the last one that has a partner
    /// d blocks later).
    pub block: Option<usize>,
}

impl Default for LayerSwap {
    fn default() -> Self {
        Self { severity: 1.0, block: None }
    }
}

impl Attack for LayerSwap {
    fn name(&self) -> &'static str {
        "layer-swap"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, _rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let d = self.severity;
        if !(d >= 0.0 && d.fract() == 0.0) {
            return Err(Error::input("layer-swap", format!("severity is a block distance, got {d}")));
        }
        // Default: the middle block, moved down if needed so that block + d exists.
        let default = (w.n_blocks() / 2).min(w.n_blocks().saturating_sub(1 + d as usize));
        let a = block_or_middle(w, Some(self.block.unwrap_or(default)))?;
        let b = a + d as usize;
        if b >= w.n_blocks() {
            return Err(Error::input(
                "layer-swap",
                format!("block {a} + distance {d} is past the last block {}", w.n_blocks().saturating_sub(1)),
            ));
        }
        let mut rep = AttackReport::new(self);
        if a == b {
            return Ok(rep);
        }
        for name_a in w.block(a) {
            let role = w.role(&name_a).ok_or_else(|| Error::run(format!("no role for `{name_a}`")))?;
            let name_b = w.expect(Role::block(b, role.kind))?;
            let ta = w.get(&name_a).cloned().ok_or_else(|| Error::run("vanished tensor"))?;
            let tb = w.get(&name_b).cloned().ok_or_else(|| Error::run("vanished tensor"))?;
            if ta.shape != tb.shape {
                return Err(Error::input("layer-swap", format!("`{name_a}` and `{name_b}` differ in shape")));
            }
            rep.push(tensor_change(&name_a, &ta, &tb));
            rep.push(tensor_change(&name_b, &tb, &ta));
            w.insert(name_a, tb);
            w.insert(name_b, ta);
        }
        rep.details.push(format!("swapped blocks {a} and {b}"));
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn swaps_two_blocks_and_nothing_else() {
        let (w, rep) = check(&VariantSpec::LayerSwap(LayerSwap { severity: 2.0, block: Some(1) }));
        let base = toy(4);
        assert_eq!(rep.changes.len(), 18);
        for n in base.block(1) {
            let m = n.replace("blk.1.", "blk.3.");
            assert_eq!(w.get(&n), base.get(&m));
            assert_eq!(w.get(&m), base.get(&n));
        }
        // Default: middle block (2) with block 3.
        let (_, rep) = check(&VariantSpec::LayerSwap(Default::default()));
        assert!(rep.changed_names().iter().all(|n| n.starts_with("blk.2.") || n.starts_with("blk.3.")));
        let (w, rep) = check(&VariantSpec::LayerSwap(LayerSwap { severity: 0.0, block: None }));
        assert_eq!((w, rep.n_changed), (toy(4), 0));
        // Default block moves down so that block + d exists: 4 blocks, d = 3 swaps 0 and 3.
        let (_, rep) = check(&VariantSpec::LayerSwap(LayerSwap { severity: 3.0, block: None }));
        assert!(rep.changed_names().iter().all(|n| n.starts_with("blk.0.") || n.starts_with("blk.3.")));
        let mut w = toy(4);
        assert!(VariantSpec::LayerSwap(LayerSwap { severity: 2.0, block: Some(2) })
            .apply(&mut w, 1)
            .is_err());
        assert!(VariantSpec::LayerSwap(LayerSwap { severity: 4.0, block: None }).apply(&mut w, 1).is_err());
    }
}

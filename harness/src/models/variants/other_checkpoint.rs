//! `other-checkpoint`: the whole checkpoint is replaced by another one of the same
//! architecture (same tensor names and shapes), e.g. a zoo model of another seed or
//! training step. Kept as an attack, although it edits nothing, so that a spec lists every
//! substitute the same way and the report says how far the donor's weights are from the
//! enrolled ones. Severity is not meaningful and reported as 1.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{tensor_change, Attack, AttackReport, ChaCha20Rng, WeightSet};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherCheckpoint {
    /// A `.gguf`, a `.safetensors` or an HF model directory.
    pub path: PathBuf,
}

/// Replace every tensor of `w` by `donor`'s, after checking the layouts match.
pub(crate) fn replace_all(w: &mut WeightSet, donor: WeightSet, rep: &mut AttackReport) -> Result<()> {
    if !w.same_layout(&donor) {
        return Err(Error::input(
            "other-checkpoint",
            format!("the donor ({donor}) does not have the same tensor names and shapes as the model ({w})"),
        ));
    }
    for (name, t) in donor.iter() {
        rep.push(tensor_change(name, w.get(name).ok_or_else(|| Error::run("vanished tensor"))?, t));
    }
    *w = donor;
    Ok(())
}

impl Attack for OtherCheckpoint {
    fn name(&self) -> &'static str {
        "other-checkpoint"
    }

    fn severity(&self) -> f64 {
        1.0
    }

    fn apply(&self, w: &mut WeightSet, _rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let donor = WeightSet::load(&self.path)?;
        let mut rep = AttackReport::new(self);
        replace_all(w, donor, &mut rep)?;
        rep.details.push(format!("weights of {}", self.path.display()));
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::toy;
    use super::*;

    #[test]
    fn replaces_everything_from_a_same_layout_donor_only() {
        let mut w = toy(2);
        let mut donor = toy(2);
        donor.get_mut("blk.1.ffn_up.weight").unwrap().data[3] += 1.0;
        let mut rep = AttackReport::new(&OtherCheckpoint { path: "x".into() });
        replace_all(&mut w, donor.clone(), &mut rep).unwrap();
        assert_eq!(w, donor);
        assert_eq!(rep.changed_names(), vec!["blk.1.ffn_up.weight"]);
        assert!(replace_all(&mut w, toy(3), &mut rep).is_err());
        assert_eq!(w, donor);
    }
}

//! `layer-replace`: the tensors of `severity` consecutive blocks starting at `block` are
//! replaced by those of a donor. A supply-chain splice: most of the file is the enrolled
//! model, a few blocks come from elsewhere.
//!
//! The donor is another checkpoint of the same architecture (`checkpoint`, e.g. a zoo
//! model of another seed). SmolLM2 has no second public checkpoint of its exact shape, so
//! two synthetic donors derived from the model itself are offered: `noised` (the block's
//! matrices with relative Gaussian noise σ, i.e. a block from a "nearby" checkpoint) and
//! `requant` (the block's matrices re-quantized, i.e. a block taken from a differently
//! quantized file). Synthetic donors leave the block's norm vectors unchanged, so on
//! SmolLM2 this attack is weight-noise / requant confined to a few blocks.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::requant::round_trip;
use super::weight_noise::add_noise;
use super::{block_or_middle, modify, tensor_change, Attack, AttackReport, ChaCha20Rng, WeightSet};
use crate::error::{Error, Result};
use crate::models::gguf_llama::QuantType;

/// Where the replacement blocks come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Donor {
    /// The model's own block matrices with relative Gaussian noise σ.
    Noised { sigma: f64 },
    /// The model's own block matrices re-quantized to `to`.
    Requant { to: QuantType },
    /// The same blocks of another checkpoint with the same layout.
    Checkpoint { path: PathBuf },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayerReplace {
    /// Number of consecutive blocks replaced (an integer ≥ 0).
    pub severity: f64,
    /// First replaced block; when absent the middle block (moved down so that
    /// `severity` blocks fit).
    pub block: Option<usize>,
    pub donor: Donor,
}

impl Default for LayerReplace {
    fn default() -> Self {
        Self { severity: 1.0, block: None, donor: Donor::Noised { sigma: 1e-2 } }
    }
}

impl Attack for LayerReplace {
    fn name(&self) -> &'static str {
        "layer-replace"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let n = self.severity;
        if !(n >= 0.0 && n.fract() == 0.0) {
            return Err(Error::input("layer-replace", format!("severity is a block count, got {n}")));
        }
        // Default: the middle block, moved down if needed so that all n blocks exist.
        let default = (w.n_blocks() / 2).min(w.n_blocks().saturating_sub(n as usize));
        let first = block_or_middle(w, Some(self.block.unwrap_or(default)))?;
        let last = first + n as usize;
        if last > w.n_blocks() {
            return Err(Error::input(
                "layer-replace",
                format!("blocks {first}..{last} run past the model's {} blocks", w.n_blocks()),
            ));
        }
        let names: Vec<String> = (first..last).flat_map(|b| w.block(b)).collect();
        let mats: Vec<String> =
            names.iter().filter(|m| w.get(m).is_some_and(|t| t.is_matrix())).cloned().collect();
        let mut rep = AttackReport::new(self);
        match &self.donor {
            Donor::Noised { sigma } => {
                super::check_finite("layer-replace donor sigma", *sigma)?;
                add_noise(w, &mats, *sigma, rng, &mut rep)?;
            }
            Donor::Requant { to } => {
                for name in &mats {
                    rep.push(modify(w, name, |t| round_trip(name, t, *to).map(|_| ()))?);
                }
            }
            Donor::Checkpoint { path } => {
                let donor = WeightSet::load(path)?;
                if !w.same_layout(&donor) {
                    return Err(Error::input(
                        "layer-replace",
                        format!(
                            "the donor {} ({donor}) does not have the model's layout ({w})",
                            path.display()
                        ),
                    ));
                }
                for name in names {
                    let t = donor.get(&name).cloned().ok_or_else(|| Error::run("vanished tensor"))?;
                    rep.push(tensor_change(
                        &name,
                        w.get(&name).ok_or_else(|| Error::run("vanished tensor"))?,
                        &t,
                    ));
                    w.insert(name, t);
                }
            }
        }
        rep.details.push(format!("blocks {first}..{last} from {:?}", self.donor));
        Ok(rep.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, toy};
    use super::super::VariantSpec;
    use super::*;

    #[test]
    fn replaces_only_the_named_blocks() {
        let spec = LayerReplace { severity: 2.0, block: Some(1), donor: Donor::Noised { sigma: 1e-2 } };
        let (_, rep) = check(&VariantSpec::LayerReplace(spec));
        assert_eq!(rep.changes.len(), 14);
        assert!(rep.changed_names().iter().all(|n| n.starts_with("blk.1.") || n.starts_with("blk.2.")));
        let spec =
            LayerReplace { severity: 1.0, block: Some(3), donor: Donor::Requant { to: QuantType::Q8_0 } };
        let (_, rep) = check(&VariantSpec::LayerReplace(spec));
        assert_eq!(rep.changes.len(), 7);
        let (w, rep) =
            check(&VariantSpec::LayerReplace(LayerReplace { severity: 0.0, ..Default::default() }));
        assert_eq!((w, rep.n_changed), (toy(4), 0));
        let mut w = toy(4);
        let bad = LayerReplace { severity: 2.0, block: Some(3), ..Default::default() };
        assert!(VariantSpec::LayerReplace(bad).apply(&mut w, 1).is_err());
    }

    #[test]
    fn checkpoint_donor_from_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let base = toy(2);
        // A GGUF-named toy written as safetensors is read back with HF naming, so the
        // layouts differ and the donor is refused.
        let ts = base.to_tensors(&candle_core::Device::Cpu).unwrap();
        let p = dir.path().join("d.safetensors");
        candle_core::safetensors::save(&ts, &p).unwrap();
        let spec = LayerReplace { severity: 1.0, block: Some(0), donor: Donor::Checkpoint { path: p } };
        let mut w = base.clone();
        assert!(VariantSpec::LayerReplace(spec).apply(&mut w, 1).is_err());
        assert_eq!(w, base);
    }
}

//! Substitution generators: deterministic, severity-parameterised edits of a checkpoint's
//! weights, one file per attack, for the model-substitution experiments.
//!
//! A checkpoint is loaded once into a [`WeightSet`] (every tensor in f32, plus its naming
//! convention), an [`Attack`] edits it in place from a seeded [`ChaCha20Rng`] and says
//! what it changed ([`AttackReport`]), and the backend builds a runnable model from the
//! edited set without writing a file (`GgufLlama::from_weights`). Attacks address tensors
//! by [`Role`] (block index + [`Kind`]), so each is written once for GGUF and HF names.
//!
//! Experiment specs list variants declaratively through [`VariantSpec`], e.g. in TOML:
//!
//! ```toml
//! [[variants]]
//! attack = "low-rank-edit"
//! severity = 1e-2      # ‖ΔW‖_F / ‖W‖_F
//! kind = "attn-v"
//! block = 15
//! ```
//!
//! | attack | class | severity | default |
//! |---|---|---|---|
//! | `requant` | same-family | 32 / bits-per-weight of `to` (set by `to`) | q8_0 |
//! | `weight-noise` | same-family | σ: W += σ·rms(W)·N(0,1) on every matrix | 1e-3 |
//! | `other-checkpoint` | same-family | none (1); swaps in every tensor of `path` | — |
//! | `further-training` | same-family | optimiser steps on the zoo corpus (zoo models) | — |
//! | `low-rank-edit` | supply-chain | ρ = ‖ΔW‖_F / ‖W‖_F of a rank-`rank` edit | 1e-2 |
//! | `bit-flips` | supply-chain | number of flipped bits (stored encoding or f32) | 10 |
//! | `layer-swap` | supply-chain | distance d: swap blocks `block` and `block`+d | 1 |
//! | `prune` | supply-chain | fraction of one matrix zeroed, smallest magnitudes | 0.1 |
//! | `norm-scale` | supply-chain | ε: one norm vector × (1+ε) | 1e-2 |
//! | `layer-replace` | supply-chain | number of consecutive blocks replaced | 1 |
//!
//! `further-training` (same-family; severity = k more optimiser steps of a zoo model on
//! the zoo corpus with a fresh seed) needs the zoo checkpoint's directory and works on
//! HF-layout sets only. `other-checkpoint` is kept as an attack so that a spec can name any substitute the
//! same way; it only checks that the donor has the same tensor layout.

pub mod bit_flips;
pub mod further_training;
mod hf;
pub mod layer_replace;
pub mod layer_swap;
pub mod low_rank_edit;
pub mod norm_scale;
pub mod other_checkpoint;
pub mod prune;
pub mod requant;
pub mod weight_noise;
pub mod weight_set;

use rand::SeedableRng;
pub use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

pub use weight_set::{tensor_change, Convention, Kind, Role, TensorChange, WTensor, WeightSet};

use crate::error::{Error, Result};

/// What an attack did to a weight set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackReport {
    pub attack: String,
    pub severity: f64,
    /// Every tensor whose values changed, sorted by name.
    pub changes: Vec<TensorChange>,
    /// Total number of values whose bits changed.
    pub n_changed: usize,
    /// Attack-specific facts (e.g. which bits were flipped), human-readable.
    pub details: Vec<String>,
}

impl AttackReport {
    pub fn new(attack: &dyn Attack) -> Self {
        Self {
            attack: attack.name().to_string(),
            severity: attack.severity(),
            changes: vec![],
            n_changed: 0,
            details: vec![],
        }
    }

    fn push(&mut self, change: Option<TensorChange>) {
        if let Some(c) = change {
            self.n_changed += c.n_changed;
            self.changes.push(c);
        }
    }

    fn finish(mut self) -> Self {
        self.changes.sort_by(|a, b| a.name.cmp(&b.name));
        self
    }

    /// Names of the changed tensors.
    pub fn changed_names(&self) -> Vec<&str> {
        self.changes.iter().map(|c| c.name.as_str()).collect()
    }
}

/// One substitution generator.
pub trait Attack: Send + Sync {
    /// The kebab-case name used in specs (`"weight-noise"`).
    fn name(&self) -> &'static str;
    /// The scalar the attack's strength is swept by; see the module table.
    fn severity(&self) -> f64;
    /// Edit `w` in place. Deterministic given `rng`'s state; tensors the report does not
    /// list are left bit-identical.
    fn apply(&self, w: &mut WeightSet, rng: &mut ChaCha20Rng) -> Result<AttackReport>;
}

/// Every attack, declaratively: `{"attack": "weight-noise", "severity": 1e-3}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "attack", rename_all = "kebab-case", deny_unknown_fields)]
pub enum VariantSpec {
    Requant(requant::Requant),
    WeightNoise(weight_noise::WeightNoise),
    OtherCheckpoint(other_checkpoint::OtherCheckpoint),
    FurtherTraining(further_training::FurtherTraining),
    LowRankEdit(low_rank_edit::LowRankEdit),
    BitFlips(bit_flips::BitFlips),
    LayerSwap(layer_swap::LayerSwap),
    Prune(prune::Prune),
    NormScale(norm_scale::NormScale),
    LayerReplace(layer_replace::LayerReplace),
}

/// The names of every registered attack, in registration order.
pub const ATTACKS: [&str; 10] = [
    "requant",
    "weight-noise",
    "other-checkpoint",
    "further-training",
    "low-rank-edit",
    "bit-flips",
    "layer-swap",
    "prune",
    "norm-scale",
    "layer-replace",
];

impl VariantSpec {
    pub fn build(&self) -> Box<dyn Attack> {
        match self {
            VariantSpec::Requant(a) => Box::new(a.clone()),
            VariantSpec::WeightNoise(a) => Box::new(a.clone()),
            VariantSpec::OtherCheckpoint(a) => Box::new(a.clone()),
            VariantSpec::FurtherTraining(a) => Box::new(a.clone()),
            VariantSpec::LowRankEdit(a) => Box::new(a.clone()),
            VariantSpec::BitFlips(a) => Box::new(a.clone()),
            VariantSpec::LayerSwap(a) => Box::new(a.clone()),
            VariantSpec::Prune(a) => Box::new(a.clone()),
            VariantSpec::NormScale(a) => Box::new(a.clone()),
            VariantSpec::LayerReplace(a) => Box::new(a.clone()),
        }
    }

    /// Every attack that needs no second checkpoint or zoo directory, at its default
    /// parameters.
    pub fn defaults() -> Vec<VariantSpec> {
        vec![
            VariantSpec::Requant(Default::default()),
            VariantSpec::WeightNoise(Default::default()),
            VariantSpec::LowRankEdit(Default::default()),
            VariantSpec::BitFlips(Default::default()),
            VariantSpec::LayerSwap(Default::default()),
            VariantSpec::Prune(Default::default()),
            VariantSpec::NormScale(Default::default()),
            VariantSpec::LayerReplace(Default::default()),
        ]
    }

    /// Apply to `w` with a fresh `ChaCha20Rng` seeded from `seed`.
    pub fn apply(&self, w: &mut WeightSet, seed: u64) -> Result<AttackReport> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        self.build().apply(w, &mut rng)
    }
}

/// A block index given in a spec, or the middle block (`n_blocks / 2`) when absent.
pub(crate) fn block_or_middle(w: &WeightSet, block: Option<usize>) -> Result<usize> {
    let i = block.unwrap_or(w.n_blocks() / 2);
    if i >= w.n_blocks() {
        return Err(Error::input(
            "variant",
            format!("block {i} does not exist (the model has {} blocks)", w.n_blocks()),
        ));
    }
    Ok(i)
}

/// The tensor an attack on (`kind`, `block`) targets: block kinds default to the middle
/// block, global kinds take no block.
pub(crate) fn target(w: &WeightSet, kind: Kind, block: Option<usize>) -> Result<String> {
    let role = if kind.in_block() {
        Role::block(block_or_middle(w, block)?, kind)
    } else {
        if block.is_some() {
            return Err(Error::input("variant", format!("{kind:?} is not a block tensor; drop `block`")));
        }
        Role::global(kind)
    };
    w.expect(role)
}

/// Edit tensor `name` with `f` and report the change (None when nothing changed).
pub(crate) fn modify(
    w: &mut WeightSet,
    name: &str,
    f: impl FnOnce(&mut WTensor) -> Result<()>,
) -> Result<Option<TensorChange>> {
    let t = w.expect_mut(name)?;
    let before = t.clone();
    f(t)?;
    if t.shape != before.shape || t.data.len() != before.data.len() {
        return Err(Error::run(format!("attack changed the shape of `{name}`")));
    }
    Ok(tensor_change(name, &before, t))
}

pub(crate) fn check_finite(what: &str, x: f64) -> Result<()> {
    if !x.is_finite() || x < 0.0 {
        return Err(Error::input("variant", format!("{what} must be a finite number ≥ 0, got {x}")));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::collections::BTreeMap;

    use rand::Rng;

    use super::*;

    /// A small random llama-shaped GGUF-named weight set: `n` blocks, width 8, ffn 16.
    pub fn toy(n: usize) -> WeightSet {
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        let mut t = BTreeMap::new();
        let mut add = |name: String, shape: Vec<usize>| {
            let k: usize = shape.iter().product();
            let data = (0..k).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            t.insert(name, WTensor::new(shape, data).unwrap());
        };
        let (d, ff, v) = (32, 64, 40);
        add("token_embd.weight".into(), vec![v, d]);
        add("output_norm.weight".into(), vec![d]);
        for i in 0..n {
            add(format!("blk.{i}.attn_norm.weight"), vec![d]);
            add(format!("blk.{i}.ffn_norm.weight"), vec![d]);
            for s in ["attn_q", "attn_output"] {
                add(format!("blk.{i}.{s}.weight"), vec![d, d]);
            }
            for s in ["attn_k", "attn_v"] {
                add(format!("blk.{i}.{s}.weight"), vec![d / 2, d]);
            }
            add(format!("blk.{i}.ffn_gate.weight"), vec![ff, d]);
            add(format!("blk.{i}.ffn_up.weight"), vec![ff, d]);
            add(format!("blk.{i}.ffn_down.weight"), vec![d, ff]);
        }
        WeightSet::new(Convention::Gguf, t)
    }

    /// Apply `spec` to a toy set twice with the same seed and once with another: the
    /// report must list exactly the changed tensors, and runs must be deterministic.
    pub fn check(spec: &VariantSpec) -> (WeightSet, AttackReport) {
        let base = toy(4);
        let mut a = base.clone();
        let rep = spec.apply(&mut a, 7).unwrap();
        let d = a.diff(&base).unwrap();
        assert_eq!(d, rep.changes, "{spec:?}: report must list exactly the changed tensors");
        assert_eq!(rep.n_changed, d.iter().map(|c| c.n_changed).sum::<usize>());
        let mut b = base.clone();
        let rep_b = spec.apply(&mut b, 7).unwrap();
        assert_eq!(a, b, "{spec:?}: same seed, same weights");
        assert_eq!(rep, rep_b);
        (a, rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_from_toml_and_reject_unknown_fields() {
        #[derive(Deserialize)]
        struct F {
            variants: Vec<VariantSpec>,
        }
        let f: F = toml::from_str(
            r#"
            [[variants]]
            attack = "low-rank-edit"
            severity = 0.01
            kind = "attn-v"
            block = 15
            [[variants]]
            attack = "requant"
            to = "q4_k"
            [[variants]]
            attack = "weight-noise"
            "#,
        )
        .unwrap();
        assert_eq!(f.variants.len(), 3);
        assert_eq!(f.variants[0].build().name(), "low-rank-edit");
        assert_eq!(f.variants[0].build().severity(), 0.01);
        assert_eq!(f.variants[2], VariantSpec::WeightNoise(Default::default()));
        let bad = toml::from_str::<F>("[[variants]]\nattack = \"prune\"\nseverity = 0.1\nfraction = 3\n");
        assert!(bad.is_err());
        assert!(toml::from_str::<F>("[[variants]]\nattack = \"melt\"\n").is_err());
    }

    #[test]
    fn every_registered_attack_round_trips_through_json() {
        let mut names = vec![];
        for s in VariantSpec::defaults() {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<VariantSpec>(&j).unwrap(), s, "{j}");
            names.push(s.build().name());
        }
        names.extend(["other-checkpoint", "further-training"]);
        names.sort();
        let mut all = ATTACKS.to_vec();
        all.sort();
        assert_eq!(names, all);
    }
}

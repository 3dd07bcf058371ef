//! Next-token training of an [`HfLlama`] with AdamW, deterministic in its seed.
//!
//! candle's CPU random number generator cannot be seeded reproducibly, so nothing here
//! uses it: weights are drawn from a `ChaCha8Rng` into the `VarMap` in the fixed order of
//! [`tensor_shapes`] (HF's init: N(0, 0.02) for matrices, ones for norms), and batch
//! windows come from a second ChaCha stream of the same seed. Every candle op used on
//! the CPU is deterministic, so the same seed on the same machine gives the same bits.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{CandleContext, Error, Result};
use crate::models::capture::CaptureModel;
use crate::models::hf_llama::{tensor_shapes, HfLlama, LlamaConfig};

/// The ChaCha stream used for weight initialisation.
const INIT_STREAM: u64 = 0;
/// The ChaCha stream used for batch sampling.
const BATCH_STREAM: u64 = 1;

/// One training run's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub seed: u64,
    /// Total optimiser steps; the learning-rate schedule spans them.
    pub steps: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    /// Peak learning rate, reached after a linear warm-up, then cosine decay to 10 %.
    pub lr: f64,
    pub weight_decay: f64,
}

/// A fresh `VarMap` with every tensor of `cfg` drawn from `seed`.
pub fn init_weights(cfg: &LlamaConfig, seed: u64, device: &Device) -> Result<VarMap> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(INIT_STREAM);
    let normal = Normal::new(0f32, 0.02).map_err(|e| Error::run(format!("init distribution: {e}")))?;
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| Error::run("varmap lock poisoned"))?;
        for (name, shape) in tensor_shapes(cfg) {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else {
                (0..n).map(|_| normal.sample(&mut rng)).collect()
            };
            let t = Tensor::from_vec(values, shape, device).ctx(format!("initialising `{name}`"))?;
            data.insert(name, Var::from_tensor(&t).ctx("creating variable")?);
        }
    }
    Ok(varmap)
}

/// Learning rate at `step` (1-based): linear warm-up over the first 10 % (at most 50
/// steps), then cosine decay to 10 % of `peak` at `total`.
pub fn lr_at(step: usize, total: usize, peak: f64) -> f64 {
    let warm = (total / 10).clamp(1, 50);
    if step <= warm {
        return peak * step as f64 / warm as f64;
    }
    let progress = (step - warm) as f64 / (total - warm).max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()))
}

/// Train `model` (built with [`HfLlama::trainable`] over `varmap`) on random windows of
/// `tokens`. After each step `after_step(step, loss, varmap)` runs (1-based step), which
/// is where checkpoints are written. Returns the per-step training loss.
pub fn train(
    model: &HfLlama,
    varmap: &VarMap,
    tokens: &[u32],
    tc: &TrainConfig,
    after_step: &mut dyn FnMut(usize, f32, &VarMap) -> Result<()>,
) -> Result<Vec<f32>> {
    let (b, t) = (tc.batch_size, tc.seq_len);
    if b == 0 || t == 0 || tokens.len() <= t + 1 {
        return Err(Error::input(
            "zoo training",
            format!("need batch_size, seq_len > 0 and more than seq_len + 1 tokens (have {})", tokens.len()),
        ));
    }
    let device = model.device().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(tc.seed);
    rng.set_stream(BATCH_STREAM);
    let params = ParamsAdamW { lr: tc.lr, weight_decay: tc.weight_decay, ..ParamsAdamW::default() };
    let mut opt = AdamW::new(varmap.all_vars(), params).ctx("creating AdamW")?;
    let vocab = model.config().vocab_size;
    let mut losses = Vec::with_capacity(tc.steps);
    for step in 1..=tc.steps {
        let mut inp = Vec::with_capacity(b * t);
        let mut tgt = Vec::with_capacity(b * t);
        for _ in 0..b {
            let s = rng.gen_range(0..tokens.len() - t - 1);
            inp.extend_from_slice(&tokens[s..s + t]);
            tgt.extend_from_slice(&tokens[s + 1..s + t + 1]);
        }
        let inp = Tensor::from_vec(inp, (b, t), &device).ctx("training batch")?;
        let tgt = Tensor::from_vec(tgt, b * t, &device).ctx("training targets")?;
        let logits = model.forward_logits(&inp)?.reshape((b * t, vocab)).ctx("flatten logits")?;
        let loss = candle_nn::loss::cross_entropy(&logits, &tgt).ctx("cross-entropy")?;
        opt.set_learning_rate(lr_at(step, tc.steps, tc.lr));
        opt.backward_step(&loss).ctx(format!("optimiser step {step}"))?;
        let l = loss.to_dtype(DType::F32).and_then(|l| l.to_scalar::<f32>()).ctx("reading loss")?;
        if !l.is_finite() {
            return Err(Error::run(format!("training diverged at step {step} (loss {l})")));
        }
        losses.push(l);
        after_step(step, l, varmap)?;
    }
    Ok(losses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((lr_at(1, 100, 1.0) - 0.1).abs() < 1e-12);
        assert!((lr_at(10, 100, 1.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(100, 100, 1.0) - 0.1).abs() < 1e-12);
        assert!(lr_at(50, 100, 1.0) < lr_at(20, 100, 1.0));
    }
}

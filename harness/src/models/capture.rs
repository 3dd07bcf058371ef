//! The one capture API every backend implements: run a batch of token sequences and read
//! the residual stream at chosen depths, plus the logits.
//!
//! Residual-stream indices are shared by all backends: `0` is the embedding output,
//! `1..=n_blocks` the output of each block, and `n_blocks + 1` the output of the final
//! norm (for encoders without a final norm, the last block again). Sequences are padded
//! on the right; for causal decoders real tokens never see the padding, for encoders the
//! attention mask hides it. Pooled outputs only ever read real tokens.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::error::{CandleContext, Error, Result};

/// How per-token activations are reduced before they are returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Every position: `[batch, max_len, dim]`, padding positions zeroed.
    All,
    /// Mean over real tokens: `[batch, dim]`.
    #[default]
    Mean,
    /// The last real token: `[batch, dim]`.
    Last,
}

/// What a caller wants read. Layers not requested are not computed when nothing after
/// them is needed (no logits and no deeper layer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRequest {
    /// Residual-stream indices, see the module docs.
    pub layers: Vec<usize>,
    pub pooling: Pooling,
    /// Also return logits, pooled the same way (`[.., vocab]`).
    pub logits: bool,
}

impl CaptureRequest {
    /// Every residual-stream position of a model with `n_blocks` blocks, and the logits.
    pub fn all(n_blocks: usize, pooling: Pooling) -> Self {
        Self { layers: (0..=n_blocks + 1).collect(), pooling, logits: true }
    }

    /// The deepest block that has to run (0 = embedding only).
    pub fn deepest_block(&self, n_blocks: usize) -> usize {
        if self.logits {
            return n_blocks;
        }
        self.layers.iter().map(|&l| l.min(n_blocks)).max().unwrap_or(0)
    }

    pub fn wants(&self, layer: usize) -> bool {
        self.layers.contains(&layer)
    }
}

/// A batch of token-id sequences of possibly different lengths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBatch {
    pub sequences: Vec<Vec<u32>>,
}

impl TokenBatch {
    pub fn new(sequences: Vec<Vec<u32>>) -> Self {
        Self { sequences }
    }

    pub fn lengths(&self) -> Vec<usize> {
        self.sequences.iter().map(Vec::len).collect()
    }

    pub fn max_len(&self) -> usize {
        self.sequences.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Right-padded ids `[batch, max_len]` (u32) and mask `[batch, max_len]` (f32, 1 = real).
    pub fn padded(&self, pad_id: u32, device: &Device) -> Result<(Tensor, Tensor)> {
        let (b, t) = (self.sequences.len(), self.max_len());
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for s in &self.sequences {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad_id, t - s.len()));
            mask.extend(std::iter::repeat_n(1f32, s.len()));
            mask.extend(std::iter::repeat_n(0f32, t - s.len()));
        }
        let ids = Tensor::from_vec(ids, (b, t), device).ctx("padding token ids")?;
        let mask = Tensor::from_vec(mask, (b, t), device).ctx("building attention mask")?;
        Ok((ids, mask))
    }
}

/// What a backend returns. Tensors are f32.
#[derive(Debug)]
pub struct Capture {
    pub lengths: Vec<usize>,
    pub pooling: Pooling,
    /// Residual-stream index → activations, pooled as requested.
    pub layers: BTreeMap<usize, Tensor>,
    pub logits: Option<Tensor>,
}

/// Static facts about a loaded model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub architecture: String,
    pub n_blocks: usize,
    pub d_model: usize,
    pub vocab_size: usize,
    pub max_seq_len: usize,
    pub n_params: u64,
    /// The weight mode actually computed with, e.g. "q4_1", "f32", "f16", "requant-q8_0".
    pub weights: String,
}

impl ModelInfo {
    /// Number of residual-stream positions: embedding, each block, final norm.
    pub fn n_residual(&self) -> usize {
        self.n_blocks + 2
    }

    /// Whether the model produces logits (decoders do; the BERT encoder has no LM head).
    pub fn has_logits(&self) -> bool {
        self.architecture != "bert"
    }
}

pub trait CaptureModel: Send {
    fn info(&self) -> &ModelInfo;
    fn device(&self) -> &Device;
    /// Run the batch and read what `req` asks for.
    fn capture(&mut self, batch: &TokenBatch, req: &CaptureRequest) -> Result<Capture>;
}

/// Check a batch and request against a model before any compute: empty sequences,
/// sequences longer than the model's limit, token ids outside the vocabulary and
/// out-of-range layers are input errors, never panics.
pub fn validate(info: &ModelInfo, batch: &TokenBatch, req: &CaptureRequest) -> Result<()> {
    let what = format!("capture on model `{}`", info.name);
    if batch.sequences.is_empty() {
        return Err(Error::input(what, "the batch holds no sequences"));
    }
    for (i, s) in batch.sequences.iter().enumerate() {
        if s.is_empty() {
            return Err(Error::input(what, format!("sequence {i} is empty")));
        }
        if s.len() > info.max_seq_len {
            return Err(Error::input(
                what,
                format!(
                    "sequence {i} has {} tokens, more than the model's limit of {}",
                    s.len(),
                    info.max_seq_len
                ),
            ));
        }
        if let Some(&bad) = s.iter().find(|&&t| t as usize >= info.vocab_size) {
            return Err(Error::input(
                what,
                format!("sequence {i} holds token id {bad}, outside the vocabulary of {}", info.vocab_size),
            ));
        }
    }
    if let Some(&bad) = req.layers.iter().find(|&&l| l > info.n_blocks + 1) {
        return Err(Error::input(
            what,
            format!("layer {bad} requested, but the model has residual positions 0..={}", info.n_blocks + 1),
        ));
    }
    Ok(())
}

/// Reduce `[batch, len, dim]` activations over real tokens.
pub fn pool(hidden: &Tensor, lengths: &[usize], pooling: Pooling) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32).ctx("pooling: cast to f32")?;
    let (b, t, _d) = hidden.dims3().ctx("pooling: expected [batch, len, dim]")?;
    let device = hidden.device();
    match pooling {
        Pooling::All => {
            let mask = length_mask(lengths, t, device)?;
            hidden.broadcast_mul(&mask.unsqueeze(D::Minus1).ctx("pooling")?).ctx("pooling: zero padding")
        }
        Pooling::Mean => {
            let mask = length_mask(lengths, t, device)?;
            let summed = hidden
                .broadcast_mul(&mask.unsqueeze(D::Minus1).ctx("pooling")?)
                .and_then(|h| h.sum(1))
                .ctx("pooling: masked sum")?;
            let counts: Vec<f32> = lengths.iter().map(|&l| l as f32).collect();
            let counts = Tensor::from_vec(counts, (b, 1), device).ctx("pooling")?;
            summed.broadcast_div(&counts).ctx("pooling: mean")
        }
        Pooling::Last => {
            let rows = lengths
                .iter()
                .enumerate()
                .map(|(i, &l)| hidden.get(i).and_then(|h| h.get(l - 1)))
                .collect::<candle_core::Result<Vec<_>>>()
                .ctx("pooling: last token")?;
            Tensor::stack(&rows, 0).ctx("pooling: stack last tokens")
        }
    }
}

fn length_mask(lengths: &[usize], t: usize, device: &Device) -> Result<Tensor> {
    let mut m = Vec::with_capacity(lengths.len() * t);
    for &l in lengths {
        m.extend((0..t).map(|j| if j < l { 1f32 } else { 0f32 }));
    }
    Tensor::from_vec(m, (lengths.len(), t), device).ctx("pooling: length mask")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_reads_only_real_tokens() {
        let dev = Device::Cpu;
        // batch 2, len 3, dim 2; second sequence has length 2, its padding row holds 100s.
        let h =
            Tensor::new(&[[[1f32, 2.], [3., 4.], [5., 6.]], [[10., 20.], [30., 40.], [100., 100.]]], &dev)
                .unwrap();
        let lengths = [3, 2];
        let mean = pool(&h, &lengths, Pooling::Mean).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(mean, vec![vec![3., 4.], vec![20., 30.]]);
        let last = pool(&h, &lengths, Pooling::Last).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(last, vec![vec![5., 6.], vec![30., 40.]]);
        let all = pool(&h, &lengths, Pooling::All).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(all[1][2], vec![0., 0.]);
    }

    #[test]
    fn deepest_block_skips_unread_layers() {
        let req = CaptureRequest { layers: vec![0, 3], pooling: Pooling::Mean, logits: false };
        assert_eq!(req.deepest_block(30), 3);
        let req = CaptureRequest { layers: vec![2], pooling: Pooling::Mean, logits: true };
        assert_eq!(req.deepest_block(30), 30);
        let req = CaptureRequest { layers: vec![31], pooling: Pooling::Mean, logits: false };
        assert_eq!(req.deepest_block(30), 30);
    }
}

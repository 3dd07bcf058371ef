//! Quantized llama model implementation, vendored for activation capture.
//!
//! Upstream: `candle-transformers` 0.11.1, `src/models/quantized_llama.rs`
//! (<https://github.com/huggingface/candle>), Copyright (c) the candle authors, licensed
//! "MIT OR Apache-2.0"; used here under Apache-2.0. The small helpers it imports
//! (`quantized_nn::RmsNorm`, `utils::repeat_kv`, `utils::build_causal_mask`) are vendored
//! below as well.
//!
//! Changes from upstream, all so that gapbench can read the residual stream and run the
//! same graph under different weight precisions:
//! - The tracing `QMatMul` wrapper is replaced by [`Linear`], which holds either the
//!   quantized tensor (quantized kernels, as upstream) or a dense f32/f16 weight computed
//!   with one plain 2-D matmul. Which one is chosen by [`Compute`].
//! - `from_gguf` is kept (quantized compute, weights as in the file) and delegates to the
//!   new [`ModelWeights::from_gguf_with`], which takes the compute mode and a per-tensor
//!   `prep` hook (used to re-quantize weights) and builds the RoPE table for the model's
//!   context length instead of the fixed `MAX_SEQ_LEN` of 4096. Both delegate to
//!   [`ModelWeights::from_source`], which takes tensors from a closure instead of the
//!   file (edited weights held in memory).
//! - For dense compute, the q/k/v projections and the gate/up projections are each fused
//!   into one matmul (`Parallel`); quantized compute keeps them apart as upstream.
//! - The legacy GGML loader (`from_ggml`) and the Metal SDPA branch are dropped.
//! - The body of one block moved into `LayerWeights::forward_block` so that the upstream
//!   `forward` (last-position logits, KV cache) and the new
//!   [`ModelWeights::forward_capture`] (every position, no KV cache, early stop, residual
//!   stream after every block) run literally the same code.
//! - Upstream's unit tests for the causal mask moved to `utils` tests below.
//! - [`ModelWeights::kv_snapshot`] / [`ModelWeights::kv_restore`] and
//!   [`ModelWeights::forward_all_logits`] (logits at every new position through the KV
//!   cache), so that an agent session can keep one cache per conversation prefix and score
//!   candidate continuations without re-running the prefix (`gguf_llama::prefix`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::Embedding;

/// How matmul weights are computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compute {
    /// Quantized kernels on the tensor as stored (upstream behaviour).
    Quantized,
    /// Dequantize to f32, plain matmul.
    F32,
    /// Dequantize to f16; activations are cast to f16 for each matmul (candle's
    /// `QMatMul::TensorF16` semantics).
    F16,
}

/// A bias-free linear layer: `y = x W^T`.
#[derive(Debug, Clone)]
pub enum Linear {
    Quantized(Arc<QTensor>),
    /// f32 or f16 weight of shape `[out, in]`.
    Dense(Tensor),
}

impl Linear {
    pub fn new(qtensor: QTensor, compute: Compute) -> Result<Self> {
        use candle_core::quantized::GgmlDType;
        let device = qtensor.device();
        Ok(match compute {
            // Float tensors in the file have no quantized kernel; upstream dequantizes them too.
            Compute::Quantized => match qtensor.dtype() {
                GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                    Self::Dense(qtensor.dequantize(&device)?)
                }
                _ => Self::Quantized(Arc::new(qtensor)),
            },
            Compute::F32 => Self::Dense(qtensor.dequantize(&device)?),
            Compute::F16 => Self::Dense(qtensor.dequantize_f16(&device)?),
        })
    }

    /// Stack dense weights that read the same input into one `[sum(out), in]` weight, so
    /// that one gemm replaces several (fewer parallel regions, better tiling). `None` when
    /// any part is quantized: quantized kernels stay per tensor, as upstream.
    fn fuse(parts: &[&Linear]) -> Result<Option<(Linear, Vec<usize>)>> {
        let mut ws = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Self::Dense(w) => ws.push(w),
                Self::Quantized(_) => return Ok(None),
            }
        }
        if ws.windows(2).any(|w| w[0].dtype() != w[1].dtype() || w[0].dim(1).ok() != w[1].dim(1).ok()) {
            return Ok(None);
        }
        let sizes = ws.iter().map(|w| w.dim(0)).collect::<Result<Vec<_>>>()?;
        Ok(Some((Self::Dense(Tensor::cat(&ws, 0)?), sizes)))
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Quantized(q) => xs.apply_op1_no_bwd(q.as_ref()),
            Self::Dense(w) => {
                // One 2-D gemm over all rows: faster than the batched broadcast matmul.
                let dims = xs.dims().to_vec();
                let Some((&k, lead)) = dims.split_last() else { candle_core::bail!("linear: scalar input") };
                let rows: usize = lead.iter().product();
                let x2 = xs.reshape((rows, k))?;
                let y = if w.dtype() == xs.dtype() {
                    x2.matmul(&w.t()?)?
                } else {
                    x2.to_dtype(w.dtype())?.matmul(&w.t()?)?.to_dtype(xs.dtype())?
                };
                let mut out = lead.to_vec();
                out.push(w.dim(0)?);
                y.reshape(out)
            }
        }
    }
}

/// Vendored from `candle_transformers::quantized_nn::RmsNorm` (tracing span dropped).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn from_qtensor(weight: QTensor, eps: f64) -> Result<Self> {
        let weight = weight.dequantize(&weight.device())?;
        Ok(Self { weight, eps })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)
    }
}

/// Vendored from `candle_transformers::utils`.
mod utils {
    use candle_core::{Device, Result, Tensor};

    pub fn build_causal_mask(seq_len: usize, index_pos: usize, device: &Device) -> Result<Tensor> {
        let kv_len = index_pos + seq_len;
        let mask: Vec<u8> =
            (0..seq_len).flat_map(|i| (0..kv_len).map(move |j| u8::from(j > index_pos + i))).collect();
        Tensor::from_slice(&mask, (seq_len, kv_len), device)
    }

    pub fn repeat_kv(xs: Tensor, n_rep: usize) -> Result<Tensor> {
        if n_rep == 1 {
            Ok(xs)
        } else {
            let (b_sz, n_kv_head, seq_len, head_dim) = xs.dims4()?;
            // Using cat is faster than a broadcast as it avoids going through a potentially
            // strided copy.
            // https://github.com/huggingface/candle/pull/2043
            Tensor::cat(&vec![&xs; n_rep], 2)?.reshape((b_sz, n_kv_head * n_rep, seq_len, head_dim))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn causal_mask_square_values() -> Result<()> {
            let mask = build_causal_mask(3, 0, &Device::Cpu)?;
            let data: Vec<u8> = mask.flatten_all()?.to_vec1()?;
            assert_eq!(data, [0, 1, 1, 0, 0, 1, 0, 0, 0]);
            Ok(())
        }

        #[test]
        fn causal_mask_rectangular_values() -> Result<()> {
            let mask = build_causal_mask(3, 2, &Device::Cpu)?;
            let data: Vec<u8> = mask.flatten_all()?.to_vec1()?;
            #[rustfmt::skip]
            assert_eq!(data, [
                0, 0,  0, 1, 1,
                0, 0,  0, 0, 1,
                0, 0,  0, 0, 0,
            ]);
            Ok(())
        }
    }
}

/// Linear layers that read the same input: kept apart (quantized) or fused (dense).
#[derive(Debug, Clone)]
enum Parallel {
    Separate(Vec<Linear>),
    Fused { linear: Linear, sizes: Vec<usize> },
}

impl Parallel {
    fn new(parts: Vec<Linear>) -> Result<Self> {
        let refs: Vec<&Linear> = parts.iter().collect();
        Ok(match Linear::fuse(&refs)? {
            Some((linear, sizes)) => Self::Fused { linear, sizes },
            None => Self::Separate(parts),
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Self::Separate(parts) => parts.iter().map(|l| l.forward(xs)).collect(),
            Self::Fused { linear, sizes } => {
                let y = linear.forward(xs)?;
                let last = y.rank() - 1;
                let mut start = 0;
                let mut outs = Vec::with_capacity(sizes.len());
                for &n in sizes {
                    outs.push(y.narrow(last, start, n)?);
                    start += n;
                }
                Ok(outs)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    /// `[feed_forward_w1 (gate), feed_forward_w3 (up)]`.
    gate_up: Parallel,
    feed_forward_w2: Linear,
}

impl Mlp {
    fn new(w1: Linear, w2: Linear, w3: Linear) -> Result<Self> {
        Ok(Self { gate_up: Parallel::new(vec![w1, w3])?, feed_forward_w2: w2 })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gu = self.gate_up.forward(xs)?;
        let (w1, w3) = (&gu[0], &gu[1]);
        self.feed_forward_w2.forward(&(candle_nn::ops::silu(w1)? * w3)?)
    }
}

#[derive(Debug, Clone)]
enum MlpOrMoe {
    Mlp(Mlp),
    MoE { n_expert_used: usize, feed_forward_gate_inp: Linear, experts: Vec<Mlp> },
}

impl Module for MlpOrMoe {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::MoE { feed_forward_gate_inp, experts, n_expert_used } => {
                let (b_size, seq_len, hidden_dim) = xs.dims3()?;
                let xs = xs.reshape(((), hidden_dim))?;
                let router_logits = feed_forward_gate_inp.forward(&xs)?;
                let routing_weights = candle_nn::ops::softmax_last_dim(&router_logits)?;

                // In order to extract topk, we extract the data from the tensor and manipulate it
                // directly. Maybe we will want to use some custom ops instead at some point.
                let routing_weights = routing_weights.to_dtype(DType::F32)?.to_vec2::<f32>()?;

                // routing_weights, selected_experts = torch.topk(routing_weights, self.top_k, dim=-1)
                // top_x contains the row indexes to evaluate for each expert.
                let mut top_x = vec![vec![]; experts.len()];
                let mut selected_rws = vec![vec![]; experts.len()];
                for (row_idx, rw) in routing_weights.iter().enumerate() {
                    let mut dst = (0..rw.len() as u32).collect::<Vec<u32>>();
                    dst.sort_by(|&i, &j| rw[j as usize].total_cmp(&rw[i as usize]));
                    let mut sum_routing_weights = 0f32;
                    for &expert_idx in dst.iter().take(*n_expert_used) {
                        let expert_idx = expert_idx as usize;
                        let routing_weight = rw[expert_idx];
                        sum_routing_weights += routing_weight;
                        top_x[expert_idx].push(row_idx as u32);
                    }
                    for &expert_idx in dst.iter().take(*n_expert_used) {
                        let expert_idx = expert_idx as usize;
                        let routing_weight = rw[expert_idx];
                        selected_rws[expert_idx].push(routing_weight / sum_routing_weights)
                    }
                }

                let mut ys = xs.zeros_like()?;
                for (expert_idx, expert_layer) in experts.iter().enumerate() {
                    let top_x = &top_x[expert_idx];
                    if top_x.is_empty() {
                        continue;
                    }
                    let top_x = Tensor::new(top_x.as_slice(), xs.device())?;
                    let selected_rws =
                        Tensor::new(selected_rws[expert_idx].as_slice(), xs.device())?.reshape(((), 1))?;
                    let current_state = xs.index_select(&top_x, 0)?.reshape(((), hidden_dim))?;
                    let current_hidden_states = expert_layer.forward(&current_state)?;
                    let current_hidden_states = current_hidden_states.broadcast_mul(&selected_rws)?;
                    ys = ys.index_add(&top_x, &current_hidden_states, 0)?;
                }

                let ys = ys.reshape((b_size, seq_len, hidden_dim))?;
                Ok(ys)
            }
            Self::Mlp(mlp) => mlp.forward(xs),
        }
    }
}

#[derive(Debug, Clone)]
struct LayerWeights {
    /// `[attention_wq, attention_wk, attention_wv]`.
    attention_qkv: Parallel,
    attention_wo: Linear,
    attention_norm: RmsNorm,
    mlp_or_moe: MlpOrMoe,
    ffn_norm: RmsNorm,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    /// RoPE convention: true = NEOX (non-interleaved, pairs i with i+d/2),
    /// false = NORM (interleaved, pairs 2i with 2i+1).
    rope_is_neox: bool,
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
    kv_cache: Option<(Tensor, Tensor)>,
}

fn masked_fill(on_false: &Tensor, mask: &Tensor, on_true: &Tensor) -> Result<Tensor> {
    let shape = mask.shape();
    let m = mask.where_cond(&on_true.broadcast_as(shape.dims())?, on_false)?;
    Ok(m)
}

impl LayerWeights {
    fn apply_rotary_emb(&self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b_sz, _n_head, seq_len, _n_embd) = x.dims4()?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        let x = x.contiguous()?;
        if self.rope_is_neox {
            candle_nn::rotary_emb::rope(&x, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope_i(&x, &cos, &sin)
        }
    }

    /// `use_cache = false` neither reads nor writes the KV cache (capture runs).
    fn forward_attn(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        index_pos: usize,
        use_cache: bool,
    ) -> Result<Tensor> {
        let (b_sz, seq_len, n_embd) = x.dims3()?;
        let qkv = self.attention_qkv.forward(x)?;
        let (q, k, v) = (&qkv[0], &qkv[1], &qkv[2]);

        let q = q.reshape((b_sz, seq_len, self.n_head, self.head_dim))?.transpose(1, 2)?;
        let k = k.reshape((b_sz, seq_len, self.n_kv_head, self.head_dim))?.transpose(1, 2)?;
        let v = v
            .reshape((b_sz, seq_len, self.n_kv_head, self.head_dim))?
            .transpose(1, 2)?
            // This call to contiguous ensures that the fast kernel can be called below. It's
            // actually a no-op except when processing the initial prompt so has no significant
            // impact on performance.
            .contiguous()?;

        let q = self.apply_rotary_emb(&q, index_pos)?;
        let k = self.apply_rotary_emb(&k, index_pos)?;

        let (k, v) = if use_cache {
            let (k, v) = match &self.kv_cache {
                None => (k, v),
                Some((k_cache, v_cache)) => {
                    if index_pos == 0 {
                        (k, v)
                    } else {
                        let k = Tensor::cat(&[k_cache, &k], 2)?;
                        let v = Tensor::cat(&[v_cache, &v], 2)?;
                        (k, v)
                    }
                }
            };
            self.kv_cache = Some((k.clone(), v.clone()));
            (k, v)
        } else {
            (k, v)
        };

        // Support for MQA, useful for 70B models and mistral.
        let k = utils::repeat_kv(k, self.n_head / self.n_kv_head)?;
        let v = utils::repeat_kv(v, self.n_head / self.n_kv_head)?;

        let att = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let att = match mask {
            None => att,
            Some(mask) => {
                let mask = mask.broadcast_as(att.shape())?;
                masked_fill(&att, &mask, &self.neg_inf)?
            }
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        // Convert to contiguous as matmul doesn't support strided vs for now.
        let y = att.matmul(&v.contiguous()?)?;

        let y = y.transpose(1, 2)?.reshape(&[b_sz, seq_len, n_embd])?;
        let y = self.attention_wo.forward(&y)?;
        Ok(y)
    }

    /// One pre-norm block: attention and MLP, each with its residual connection.
    fn forward_block(
        &mut self,
        x: Tensor,
        mask: Option<&Tensor>,
        index_pos: usize,
        use_cache: bool,
    ) -> Result<Tensor> {
        let residual = &x;
        let h = self.attention_norm.forward(&x)?;
        let attn = self.forward_attn(&h, mask, index_pos, use_cache)?;
        let x = (attn + residual)?;

        // MLP
        let residual = &x;
        let h = self.ffn_norm.forward(&x)?;
        let h = self.mlp_or_moe.forward(&h)?;
        h + residual
    }
}

/// What [`ModelWeights::forward_capture`] returns: full `[batch, len, dim]` activations.
#[derive(Debug)]
pub struct CapturedForward {
    /// Residual index (0 = embedding, i = after block i, n_blocks + 1 = after final norm).
    pub residuals: BTreeMap<usize, Tensor>,
    /// `[batch, len, vocab]` when asked for.
    pub logits: Option<Tensor>,
}

#[derive(Debug, Clone)]
pub struct ModelWeights {
    tok_embeddings: Embedding,
    layers: Vec<LayerWeights>,
    norm: RmsNorm,
    output: Linear,
    /// Mask cache keyed by (seq_len, kv_len).
    masks: HashMap<(usize, usize), Tensor>,
    max_seq_len: usize,
}

fn precomput_freqs_cis(
    head_dim: usize,
    freq_base: f32,
    max_seq_len: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let theta: Vec<_> =
        (0..head_dim).step_by(2).map(|i| 1f32 / freq_base.powf(i as f32 / head_dim as f32)).collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let idx_theta = Tensor::arange(0, max_seq_len as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((max_seq_len, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    let cos = idx_theta.cos()?;
    let sin = idx_theta.sin()?;
    Ok((cos, sin))
}

/// Context length used when the file does not state one (upstream's fixed table size).
pub const DEFAULT_MAX_SEQ_LEN: usize = 4096;

impl ModelWeights {
    /// Upstream loader: quantized compute on the weights as stored.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        Self::from_gguf_with(ct, reader, device, Compute::Quantized, &mut |_, t| Ok(t))
    }

    /// Load with a compute mode; `prep(name, tensor)` may replace any tensor as it is read
    /// (e.g. re-quantize it) before it is turned into a layer.
    pub fn from_gguf_with<R: std::io::Seek + std::io::Read>(
        ct: gguf_file::Content,
        reader: &mut R,
        device: &Device,
        compute: Compute,
        prep: &mut dyn FnMut(&str, QTensor) -> Result<QTensor>,
    ) -> Result<Self> {
        let mut tensor = |name: &str| -> Result<QTensor> {
            let t = ct.tensor(reader, name, device)?;
            prep(name, t)
        };
        Self::from_source(&ct, device, compute, &mut tensor)
    }

    /// Build from the metadata (and tensor list) of `ct`, taking every tensor from
    /// `tensor(name)` instead of the file: how gapbench runs edited weights held in
    /// memory (`GgufLlama::from_weights`) without writing a new file.
    pub fn from_source(
        ct: &gguf_file::Content,
        device: &Device,
        compute: Compute,
        tensor: &mut dyn FnMut(&str) -> Result<QTensor>,
    ) -> Result<Self> {
        let md_get = |s: &str| match ct.metadata.get(s) {
            None => candle_core::bail!("cannot find {s} in metadata"),
            Some(v) => Ok(v),
        };
        let linear = |t: QTensor| Linear::new(t, compute);

        // Parameter extraction from metadata.
        let n_expert = md_get("llama.expert_count").and_then(|v| v.to_u32()).unwrap_or(0) as usize;
        let n_expert_used = md_get("llama.expert_used_count").and_then(|v| v.to_u32()).unwrap_or(0) as usize;
        let head_count = md_get("llama.attention.head_count")?.to_u32()? as usize;
        let head_count_kv = md_get("llama.attention.head_count_kv")?.to_u32()? as usize;
        let block_count = md_get("llama.block_count")?.to_u32()? as usize;
        let embedding_length = md_get("llama.embedding_length")?.to_u32()? as usize;
        let rope_dim = md_get("llama.rope.dimension_count")?.to_u32()? as usize;
        // Strangely this value is generally 1e-6 in GGUF file but used to be 1e-5 by default.
        let rms_norm_eps = md_get("llama.attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let rope_freq_base = md_get("llama.rope.freq_base").and_then(|m| m.to_f32()).unwrap_or(10000f32);
        let max_seq_len = md_get("llama.context_length")
            .and_then(|m| m.to_u32())
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_MAX_SEQ_LEN);
        if head_count == 0 || head_count_kv == 0 || head_count % head_count_kv != 0 {
            candle_core::bail!("invalid head counts: {head_count} heads, {head_count_kv} kv heads")
        }
        if embedding_length % head_count != 0 {
            candle_core::bail!("embedding length {embedding_length} is not a multiple of {head_count} heads")
        }

        // Determine RoPE convention from model architecture (matching llama.cpp).
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let rope_is_neox = matches!(
            arch.as_str(),
            "qwen"
                | "qwen2"
                | "qwen2moe"
                | "qwen3"
                | "qwen3moe"
                | "falcon"
                | "grok"
                | "dbrx"
                | "phi2"
                | "phi3"
                | "phimoe"
                | "stablelm"
                | "starcoder2"
                | "bert"
                | "nomic-bert"
                | "jina-bert-v2"
                | "olmo2"
                | "olmoe"
                | "codeshell"
                | "plamo"
        );

        let (cos, sin) = precomput_freqs_cis(rope_dim, rope_freq_base, max_seq_len, device)?;
        let neg_inf = Tensor::new(f32::NEG_INFINITY, device)?;

        let tok_embeddings_q = tensor("token_embd.weight")?;
        let tok_embeddings = match compute {
            // Keep the lookup table in the precision the matmuls see.
            Compute::F16 => tok_embeddings_q.dequantize_f16(device)?.to_dtype(DType::F32)?,
            _ => tok_embeddings_q.dequantize(device)?,
        };
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, rms_norm_eps)?;
        let output = if ct.tensor_infos.contains_key("output.weight") {
            linear(tensor("output.weight")?)?
        } else {
            // Tied embeddings: share the already-dequantized table when computing densely.
            match compute {
                Compute::F32 => Linear::Dense(tok_embeddings.clone()),
                _ => linear(tok_embeddings_q)?,
            }
        };
        let mut layers = Vec::with_capacity(block_count);
        for layer_idx in 0..block_count {
            let prefix = format!("blk.{layer_idx}");
            let attention_wq = tensor(&format!("{prefix}.attn_q.weight"))?;
            let attention_wk = tensor(&format!("{prefix}.attn_k.weight"))?;
            let attention_wv = tensor(&format!("{prefix}.attn_v.weight"))?;
            let attention_wo = tensor(&format!("{prefix}.attn_output.weight"))?;
            let mlp_or_moe = if n_expert <= 1 {
                let feed_forward_w1 = tensor(&format!("{prefix}.ffn_gate.weight"))?;
                let feed_forward_w2 = tensor(&format!("{prefix}.ffn_down.weight"))?;
                let feed_forward_w3 = tensor(&format!("{prefix}.ffn_up.weight"))?;
                MlpOrMoe::Mlp(Mlp::new(
                    linear(feed_forward_w1)?,
                    linear(feed_forward_w2)?,
                    linear(feed_forward_w3)?,
                )?)
            } else {
                let feed_forward_gate_inp = tensor(&format!("{prefix}.ffn_gate_inp.weight"))?;
                let mut experts = Vec::with_capacity(n_expert);
                for i in 0..n_expert {
                    let feed_forward_w1 = tensor(&format!("{prefix}.ffn_gate.{i}.weight"))?;
                    let feed_forward_w2 = tensor(&format!("{prefix}.ffn_down.{i}.weight"))?;
                    let feed_forward_w3 = tensor(&format!("{prefix}.ffn_up.{i}.weight"))?;
                    experts.push(Mlp::new(
                        linear(feed_forward_w1)?,
                        linear(feed_forward_w2)?,
                        linear(feed_forward_w3)?,
                    )?)
                }
                MlpOrMoe::MoE {
                    n_expert_used,
                    feed_forward_gate_inp: linear(feed_forward_gate_inp)?,
                    experts,
                }
            };
            let attention_norm = tensor(&format!("{prefix}.attn_norm.weight"))?;
            let ffn_norm = tensor(&format!("{prefix}.ffn_norm.weight"))?;
            layers.push(LayerWeights {
                attention_qkv: Parallel::new(vec![
                    linear(attention_wq)?,
                    linear(attention_wk)?,
                    linear(attention_wv)?,
                ])?,
                attention_wo: linear(attention_wo)?,
                attention_norm: RmsNorm::from_qtensor(attention_norm, rms_norm_eps)?,
                mlp_or_moe,
                ffn_norm: RmsNorm::from_qtensor(ffn_norm, rms_norm_eps)?,
                n_head: head_count,
                n_kv_head: head_count_kv,
                head_dim: embedding_length / head_count,
                rope_is_neox,
                cos: cos.clone(),
                sin: sin.clone(),
                neg_inf: neg_inf.clone(),
                kv_cache: None,
            })
        }
        Ok(Self {
            tok_embeddings: Embedding::new(tok_embeddings, embedding_length),
            layers,
            norm,
            output,
            masks: HashMap::new(),
            max_seq_len,
        })
    }

    pub fn n_blocks(&self) -> usize {
        self.layers.len()
    }

    /// Longest sequence the RoPE table covers (the file's `llama.context_length`).
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    fn mask(&mut self, seq_len: usize, index_pos: usize, device: &Device) -> Result<Tensor> {
        let kv_len = index_pos + seq_len;
        if let Some(mask) = self.masks.get(&(seq_len, kv_len)) {
            Ok(mask.clone())
        } else {
            let mask = utils::build_causal_mask(seq_len, index_pos, device)?;
            self.masks.insert((seq_len, kv_len), mask.clone());
            Ok(mask)
        }
    }

    /// Clear the KV cache across all layers.
    pub fn clear_kv_cache(&mut self) {
        for layer in self.layers.iter_mut() {
            layer.kv_cache = None;
        }
    }

    /// The per-layer KV cache (cheap: tensors are reference-counted). `None` per layer
    /// when nothing is cached.
    pub fn kv_snapshot(&self) -> Vec<Option<(Tensor, Tensor)>> {
        self.layers.iter().map(|l| l.kv_cache.clone()).collect()
    }

    /// Put back a [`Self::kv_snapshot`], keeping its first `len` positions (`len` must not
    /// exceed what the snapshot holds; `0` clears the cache, whatever the snapshot).
    pub fn kv_restore(&mut self, kv: &[Option<(Tensor, Tensor)>], len: usize) -> Result<()> {
        if len == 0 {
            self.clear_kv_cache();
            return Ok(());
        }
        if kv.len() != self.layers.len() {
            candle_core::bail!("kv snapshot has {} layers, the model {}", kv.len(), self.layers.len())
        }
        for (layer, c) in self.layers.iter_mut().zip(kv) {
            layer.kv_cache = match (c, len) {
                (_, 0) | (None, _) => None,
                (Some((k, v)), len) => {
                    let have = k.dim(2)?;
                    if len > have {
                        candle_core::bail!("kv snapshot holds {have} positions, asked for {len}")
                    }
                    Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?))
                }
            };
        }
        Ok(())
    }

    /// Like [`Self::forward`] but returns the logits of every new position,
    /// `[batch, seq_len, vocab]` (scoring a continuation in one pass).
    pub fn forward_all_logits(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b_sz, seq_len) = x.dims2()?;
        let mask = if seq_len == 1 { None } else { Some(self.mask(seq_len, index_pos, x.device())?) };
        let mut layer_in = self.tok_embeddings.forward(x)?;
        for layer in self.layers.iter_mut() {
            layer_in = layer.forward_block(layer_in, mask.as_ref(), index_pos, true)?;
        }
        let x = self.norm.forward(&layer_in)?;
        self.output.forward(&x)
    }

    /// Upstream forward: logits `[batch, vocab]` of the last position, with KV cache.
    pub fn forward(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b_sz, seq_len) = x.dims2()?;
        let mask = if seq_len == 1 { None } else { Some(self.mask(seq_len, index_pos, x.device())?) };
        let mut layer_in = self.tok_embeddings.forward(x)?;
        for layer in self.layers.iter_mut() {
            layer_in = layer.forward_block(layer_in, mask.as_ref(), index_pos, true)?;
        }
        let x = self.norm.forward(&layer_in)?;
        let x = x.i((.., seq_len - 1, ..))?;
        self.output.forward(&x)
    }

    /// Capture forward over a right-padded batch `ids: [batch, len]`: position 0, no KV
    /// cache, causal mask only (padding sits to the right of every real token, so no real
    /// token attends to it). Runs `deepest_block` blocks; `keep(i)` selects the residual
    /// indices returned. The final norm runs when `keep(n_blocks + 1)` or `logits`, the
    /// output head over every position only when `logits` (both need
    /// `deepest_block == n_blocks`).
    pub fn forward_capture(
        &mut self,
        ids: &Tensor,
        deepest_block: usize,
        keep: &dyn Fn(usize) -> bool,
        logits: bool,
    ) -> Result<CapturedForward> {
        let n_blocks = self.layers.len();
        let final_norm = keep(n_blocks + 1) || logits;
        if deepest_block > n_blocks || (final_norm && deepest_block != n_blocks) {
            candle_core::bail!(
                "capture: deepest block {deepest_block} of {n_blocks}, but the final norm is needed"
            )
        }
        let (_b_sz, seq_len) = ids.dims2()?;
        let mask = if seq_len == 1 { None } else { Some(self.mask(seq_len, 0, ids.device())?) };
        let mut residuals = BTreeMap::new();
        let mut h = self.tok_embeddings.forward(ids)?;
        if keep(0) {
            residuals.insert(0, h.clone());
        }
        for (i, layer) in self.layers.iter_mut().take(deepest_block).enumerate() {
            h = layer.forward_block(h, mask.as_ref(), 0, false)?;
            if keep(i + 1) {
                residuals.insert(i + 1, h.clone());
            }
        }
        let mut out_logits = None;
        if final_norm {
            let normed = self.norm.forward(&h)?;
            if logits {
                out_logits = Some(self.output.forward(&normed)?);
            }
            if keep(n_blocks + 1) {
                residuals.insert(n_blocks + 1, normed);
            }
        }
        Ok(CapturedForward { residuals, logits: out_logits })
    }

    /// The output head on final-norm activations of any shape `[.., dim]` (e.g. already
    /// pooled rows, which is how upstream `forward` projects only the last position).
    pub fn project(&self, normed: &Tensor) -> Result<Tensor> {
        self.output.forward(normed)
    }

    /// True when the output head is a dense f32 matmul, i.e. linear in its input up to
    /// float rounding, so the mean of the logits equals the logits of the mean.
    /// Quantized heads are not: each input row is quantized to 8 bits first.
    pub fn output_is_dense_f32(&self) -> bool {
        matches!(&self.output, Linear::Dense(w) if w.dtype() == DType::F32)
    }
}

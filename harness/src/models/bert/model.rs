//! The BERT encoder network, with every layer's output reachable.
//!
//! Based on `candle-transformers` 0.11.1 `src/models/bert.rs` (Copyright the candle
//! authors, Hugging Face; licensed MIT OR Apache-2.0), itself a port of
//! `transformers/models/bert/modeling_bert.py`. Changes from upstream: the encoder is
//! driven one layer at a time so the capture API can read (and stop after) any layer;
//! token-type ids are always 0 (single-segment input), so the type-0 row is folded into
//! the position table at load; dropout and the tracing spans are dropped (inference only).

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use super::config::{BertConfig, HiddenAct};

/// Word + position + token-type embeddings, then LayerNorm.
struct Embeddings {
    word: Embedding,
    /// `position_embeddings + token_type_embeddings[0]`, `[max_pos, hidden]`.
    position_and_type: Tensor,
    norm: LayerNorm,
    n_params: u64,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let word = embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"))?;
        let position =
            vb.get((cfg.max_position_embeddings, cfg.hidden_size), "position_embeddings.weight")?;
        let token_type = vb.get((cfg.type_vocab_size, cfg.hidden_size), "token_type_embeddings.weight")?;
        let norm = layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?;
        let n_params = (word.embeddings().elem_count()
            + position.elem_count()
            + token_type.elem_count()
            + 2 * cfg.hidden_size) as u64;
        let position_and_type = position.broadcast_add(&token_type.get(0)?)?;
        Ok(Self { word, position_and_type, norm, n_params })
    }

    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_b, t) = ids.dims2()?;
        let xs = self.word.forward(ids)?.broadcast_add(&self.position_and_type.narrow(0, 0, t)?)?;
        self.norm.forward(&xs)
    }
}

/// One post-norm transformer layer: `x = LN(x + attn(x)); x = LN(x + ffn(x))`.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: LayerNorm,
    act: HiddenAct,
    n_heads: usize,
    head_dim: usize,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let (d, ff) = (cfg.hidden_size, cfg.intermediate_size);
        let att = vb.pp("attention");
        Ok(Self {
            query: linear(d, d, att.pp("self").pp("query"))?,
            key: linear(d, d, att.pp("self").pp("key"))?,
            value: linear(d, d, att.pp("self").pp("value"))?,
            attn_out: linear(d, d, att.pp("output").pp("dense"))?,
            attn_norm: layer_norm(d, cfg.layer_norm_eps, att.pp("output").pp("LayerNorm"))?,
            ffn_in: linear(d, ff, vb.pp("intermediate").pp("dense"))?,
            ffn_out: linear(ff, d, vb.pp("output").pp("dense"))?,
            ffn_norm: layer_norm(d, cfg.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            act: cfg.hidden_act,
            n_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    fn n_params(d: usize, ff: usize) -> u64 {
        // 4 d×d projections with bias, two LayerNorms, the two FFN projections with bias.
        (4 * (d * d + d) + 2 * 2 * d + (d * ff + ff) + (ff * d + d)) as u64
    }

    /// `[b, t, d]` → `[b, heads, t, head_dim]`.
    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        xs.reshape((b, t, self.n_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// `bias` is `[b, 1, 1, t]`: 0 on real tokens, a huge negative number on padding.
    fn forward(&self, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, t, d) = xs.dims3()?;
        let q = self.split_heads(&self.query.forward(xs)?)?;
        let k = self.split_heads(&self.key.forward(xs)?)?;
        let v = self.split_heads(&self.value.forward(xs)?)?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        let xs = self.attn_norm.forward(&(self.attn_out.forward(&ctx)? + xs)?)?;
        let h = self.ffn_in.forward(&xs)?;
        let h = match self.act {
            HiddenAct::Gelu => h.gelu_erf()?,
            HiddenAct::Relu => h.relu()?,
        };
        self.ffn_norm.forward(&(self.ffn_out.forward(&h)? + xs)?)
    }
}

/// The encoder without pooler or heads.
pub struct BertNetwork {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    n_params: u64,
}

impl BertNetwork {
    /// `vb` points at the model root (the `bert.` prefix, if any, already applied).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let embeddings = Embeddings::load(vb.pp("embeddings"), cfg)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        let n_params = embeddings.n_params
            + cfg.num_hidden_layers as u64 * Layer::n_params(cfg.hidden_size, cfg.intermediate_size);
        Ok(Self { embeddings, layers, n_params })
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn n_params(&self) -> u64 {
        self.n_params
    }

    /// Embedding output `[b, t, hidden]` for ids `[b, t]` (u32).
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        self.embeddings.forward(ids)
    }

    /// Additive attention bias `[b, 1, 1, t]` from a `[b, t]` mask (1 = real token), as
    /// `transformers` builds it: `(1 - mask) * f32::MIN`.
    pub fn attention_bias(mask: &Tensor) -> Result<Tensor> {
        let (b, t) = mask.dims2()?;
        let inverted = (mask.to_dtype(DType::F32)?.ones_like()? - mask.to_dtype(DType::F32)?)?;
        (inverted * f32::MIN as f64)?.reshape((b, 1, 1, t))
    }

    /// Run layer `i` (0-based) on `xs`.
    pub fn layer(&self, i: usize, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        match self.layers.get(i) {
            Some(layer) => layer.forward(xs, bias),
            None => candle_core::bail!("layer {i} requested, the encoder has {}", self.layers.len()),
        }
    }

    /// Embedding and every layer: the last hidden state `[b, t, hidden]`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let bias = Self::attention_bias(mask)?;
        let mut xs = self.embed(ids)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &bias)?;
        }
        Ok(xs)
    }
}

/// Rows of `[n, d]` scaled to unit L2 norm (all-zero rows stay zero).
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    let norm = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
    xs.broadcast_div(&norm)
}

//! The llama decoder itself: token embedding, `n` pre-norm blocks (RMSNorm → GQA attention
//! with rotary embeddings → residual, RMSNorm → SwiGLU MLP → residual), final RMSNorm and
//! the LM head, with weights named exactly as in HF `LlamaForCausalLM` checkpoints.
//!
//! One struct serves inference and training. candle's fused CPU kernels for RMSNorm,
//! rotary embeddings and softmax have no backward pass, so a model built for training
//! ([`Kernels::Differentiable`]) composes those from primitive ops instead; the two paths
//! agree to float rounding, which the tests check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Linear, VarBuilder, VarMap};

use super::config::LlamaConfig;
use crate::error::{CandleContext, Error, Result};
use crate::models::capture::{self, Capture, CaptureModel, CaptureRequest, ModelInfo, TokenBatch};

/// Which implementation of the non-matmul ops a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// candle's fused CPU/GPU kernels: fastest, forward only.
    Fused,
    /// Compositions of primitive ops, so gradients flow through them.
    Differentiable,
}

struct Block {
    input_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// A llama-architecture causal decoder in HF tensor layout.
pub struct HfLlama {
    cfg: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Linear,
    info: ModelInfo,
    device: Device,
    kernels: Kernels,
}

/// Every tensor a checkpoint of `cfg` holds, by HF name, with its shape. The LM head is
/// absent when it is tied to the embedding, as in HF's own saved checkpoints.
pub fn tensor_shapes(cfg: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let (d, ff, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let (q_out, kv_out) = (cfg.num_attention_heads * cfg.head_dim(), cfg.n_kv_heads() * cfg.head_dim());
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        out.extend([
            (format!("{p}.input_layernorm.weight"), vec![d]),
            (format!("{p}.self_attn.q_proj.weight"), vec![q_out, d]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv_out, d]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv_out, d]),
            (format!("{p}.self_attn.o_proj.weight"), vec![d, q_out]),
            (format!("{p}.post_attention_layernorm.weight"), vec![d]),
            (format!("{p}.mlp.gate_proj.weight"), vec![ff, d]),
            (format!("{p}.mlp.up_proj.weight"), vec![ff, d]),
            (format!("{p}.mlp.down_proj.weight"), vec![d, ff]),
        ]);
    }
    out.push(("model.norm.weight".to_string(), vec![d]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, d]));
    }
    out
}

/// Reads weights by HF name; a missing or misshapen tensor becomes an error naming the
/// file and the tensor.
struct Weights<'a> {
    vb: VarBuilder<'a>,
    origin: &'a Path,
    n_params: u64,
}

impl Weights<'_> {
    fn get(&mut self, shape: &[usize], name: &str) -> Result<Tensor> {
        let t = self
            .vb
            .get(shape, name)
            .map_err(|e| Error::model(self.origin, format!("tensor `{name}`: {e}")))?;
        self.n_params += t.elem_count() as u64;
        Ok(t)
    }

    fn linear(&mut self, shape: &[usize], name: &str) -> Result<Linear> {
        Ok(Linear::new(self.get(shape, name)?, None))
    }
}

impl HfLlama {
    /// Build from any `VarBuilder` holding HF-named tensors; `origin` names the file (or
    /// pseudo-file) in errors.
    pub fn from_var_builder(
        cfg: &LlamaConfig,
        vb: VarBuilder,
        origin: &Path,
        name: &str,
        kernels: Kernels,
    ) -> Result<Self> {
        cfg.validate(origin)?;
        let device = vb.device().clone();
        let shapes: BTreeMap<String, Vec<usize>> = tensor_shapes(cfg).into_iter().collect();
        let shape = |n: &str| shapes.get(n).cloned().unwrap_or_default();
        let mut w = Weights { vb, origin, n_params: 0 };
        let embed = w.get(&shape("model.embed_tokens.weight"), "model.embed_tokens.weight")?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mut lin = |n: String| -> Result<Linear> { w.linear(&shape(&n), &n) };
            let (q, k, v, o) = (
                lin(format!("{p}.self_attn.q_proj.weight"))?,
                lin(format!("{p}.self_attn.k_proj.weight"))?,
                lin(format!("{p}.self_attn.v_proj.weight"))?,
                lin(format!("{p}.self_attn.o_proj.weight"))?,
            );
            let (gate, up, down) = (
                lin(format!("{p}.mlp.gate_proj.weight"))?,
                lin(format!("{p}.mlp.up_proj.weight"))?,
                lin(format!("{p}.mlp.down_proj.weight"))?,
            );
            let n_in = format!("{p}.input_layernorm.weight");
            let input_norm = w.get(&shape(&n_in), &n_in)?;
            let n_post = format!("{p}.post_attention_layernorm.weight");
            let post_norm = w.get(&shape(&n_post), &n_post)?;
            blocks.push(Block { input_norm, q, k, v, o, post_norm, gate, up, down });
        }
        let norm = w.get(&shape("model.norm.weight"), "model.norm.weight")?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(embed.clone(), None)
        } else {
            w.linear(&shape("lm_head.weight"), "lm_head.weight")?
        };
        let info = ModelInfo {
            name: name.to_string(),
            architecture: "llama".into(),
            n_blocks: cfg.num_hidden_layers,
            d_model: cfg.hidden_size,
            vocab_size: cfg.vocab_size,
            max_seq_len: cfg.max_position_embeddings,
            n_params: w.n_params,
            weights: "f32".into(),
        };
        Ok(Self { cfg: cfg.clone(), embed, blocks, norm, lm_head, info, device, kernels })
    }

    /// Load an HF llama directory: `config.json` plus `model.safetensors` (or the shards
    /// listed in `model.safetensors.index.json`). Weights of any float dtype are computed
    /// in f32.
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(Error::model(&cfg_path, "missing: an HF llama directory needs config.json"));
        }
        let cfg = LlamaConfig::from_file(&cfg_path)?;
        let (origin, files) = safetensors_files(dir)?;
        // SAFETY: the files are memory-mapped read-only; like every mmap-based loader we
        // rely on nobody truncating them while the model is alive.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, device) }
            .map_err(|e| Error::model(&origin, format!("not a readable safetensors file: {e}")))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Self::from_var_builder(&cfg, vb, &origin, &name, Kernels::Fused)
    }

    /// A model whose weights are the variables of `varmap` (which must already hold every
    /// tensor of [`tensor_shapes`], e.g. from `zoo::train::init_weights`), ready to train.
    pub fn trainable(cfg: &LlamaConfig, varmap: &VarMap, device: &Device, name: &str) -> Result<Self> {
        let origin = Path::new("<in-memory varmap>");
        {
            let data = varmap.data().lock().map_err(|_| Error::run("varmap lock poisoned"))?;
            if let Some((n, _)) = tensor_shapes(cfg).into_iter().find(|(n, _)| !data.contains_key(n)) {
                // VarMap would silently create it with candle's unseeded RNG.
                return Err(Error::model(origin, format!("tensor `{n}` is not initialised")));
            }
        }
        let vb = VarBuilder::from_varmap(varmap, DType::F32, device);
        Self::from_var_builder(cfg, vb, origin, name, Kernels::Differentiable)
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// Next-token logits `[batch, len, vocab]` for full (unpadded) id rows `[batch, len]`.
    /// Differentiable when the model was built with [`Kernels::Differentiable`].
    pub fn forward_logits(&self, ids: &Tensor) -> Result<Tensor> {
        let h = self.run(ids, self.blocks.len(), &mut |_, _| Ok(()))?;
        let h = self.rms(&h, &self.norm).ctx("final norm")?;
        self.lm_head.forward(&h).ctx("lm head")
    }

    /// Embed `ids` and run blocks `1..=upto`, handing each residual (index 0 = embedding)
    /// to `on_residual`; returns the last one.
    fn run(
        &self,
        ids: &Tensor,
        upto: usize,
        on_residual: &mut dyn FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let (_b, t) = ids.dims2().ctx("token ids must be [batch, len]")?;
        let mut x = candle_nn::Embedding::new(self.embed.clone(), self.cfg.hidden_size)
            .forward(ids)
            .ctx("token embedding")?;
        on_residual(0, &x)?;
        if upto == 0 {
            return Ok(x);
        }
        let (cos, sin) = self.rope_tables(t)?;
        let mask = causal_mask(t, &self.device)?;
        for (i, blk) in self.blocks.iter().take(upto).enumerate() {
            x = self.block(blk, &x, &cos, &sin, mask.as_ref()).ctx(format!("block {i}"))?;
            on_residual(i + 1, &x)?;
        }
        Ok(x)
    }

    fn block(
        &self,
        blk: &Block,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let h = self.rms(x, &blk.input_norm)?;
        let x = (x + self.attention(blk, &h, cos, sin, mask)?)?;
        let h = self.rms(&x, &blk.post_norm)?;
        let mlp = blk.down.forward(&(blk.gate.forward(&h)?.silu()? * blk.up.forward(&h)?)?)?;
        x + mlp
    }

    fn attention(
        &self,
        blk: &Block,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.cfg.num_attention_heads, self.cfg.n_kv_heads(), self.cfg.head_dim());
        let heads = |l: &Linear, n: usize| -> candle_core::Result<Tensor> {
            l.forward(x)?.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (heads(&blk.q, nh)?, heads(&blk.k, nkv)?, heads(&blk.v, nkv)?);
        let (q, k) = match self.kernels {
            Kernels::Fused => {
                (candle_nn::rotary_emb::rope(&q, cos, sin)?, candle_nn::rotary_emb::rope(&k, cos, sin)?)
            }
            Kernels::Differentiable => (
                candle_nn::rotary_emb::rope_slow(&q, cos, sin)?,
                candle_nn::rotary_emb::rope_slow(&k, cos, sin)?,
            ),
        };
        let (k, v) = (repeat_kv(k, nh / nkv)?, repeat_kv(v, nh / nkv)?);
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (hd as f64).sqrt()))?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = match self.kernels {
            Kernels::Fused => candle_nn::ops::softmax_last_dim(&scores)?,
            Kernels::Differentiable => candle_nn::ops::softmax(&scores, D::Minus1)?,
        };
        let y = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, nh * hd))?;
        blk.o.forward(&y)
    }

    fn rms(&self, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        let eps = self.cfg.rms_norm_eps as f32;
        match self.kernels {
            Kernels::Fused => candle_nn::ops::rms_norm(&x.contiguous()?, w, eps),
            Kernels::Differentiable => candle_nn::ops::rms_norm_slow(x, w, eps),
        }
    }

    /// cos/sin `[len, head_dim / 2]`, computed in f32 in the same order as HF's
    /// `LlamaRotaryEmbedding` so the angles match it bit for bit where possible.
    fn rope_tables(&self, len: usize) -> Result<(Tensor, Tensor)> {
        let hd = self.cfg.head_dim();
        let base = self.cfg.rope_theta as f32;
        let inv: Vec<f32> = (0..hd / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / hd as f32)).collect();
        let mut cos = Vec::with_capacity(len * inv.len());
        let mut sin = Vec::with_capacity(len * inv.len());
        for p in 0..len {
            for &f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (len, hd / 2), &self.device).ctx("rope table")?;
        let sin = Tensor::from_vec(sin, (len, hd / 2), &self.device).ctx("rope table")?;
        Ok((cos, sin))
    }
}

/// `[len, len]` additive mask (0 on and below the diagonal, -inf above); none for one token.
fn causal_mask(len: usize, device: &Device) -> Result<Option<Tensor>> {
    if len <= 1 {
        return Ok(None);
    }
    let m: Vec<f32> =
        (0..len).flat_map(|i| (0..len).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Ok(Some(Tensor::from_vec(m, (len, len), device).ctx("causal mask")?))
}

/// `[b, n_kv, t, d]` → `[b, n_kv * rep, t, d]`, each kv head serving `rep` query heads.
fn repeat_kv(x: Tensor, rep: usize) -> candle_core::Result<Tensor> {
    if rep == 1 {
        return Ok(x);
    }
    let (b, nkv, t, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, nkv, rep, t, d))?.contiguous()?.reshape((b, nkv * rep, t, d))
}

/// The safetensors files of an HF directory and the file to name in errors.
pub(crate) fn safetensors_files(dir: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok((single.clone(), vec![single]));
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(Error::model(&single, "missing: no model.safetensors or model.safetensors.index.json"));
    }
    let text = std::fs::read_to_string(&index).map_err(Error::io(&index))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::model(&index, format!("not a valid safetensors index: {e}")))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::model(&index, "no `weight_map` object"))?;
    let mut shards = std::collections::BTreeSet::new();
    for (tensor, file) in map {
        let f = file
            .as_str()
            .filter(|f| !f.contains('/') && !f.contains('\\') && !f.starts_with('.'))
            .ok_or_else(|| Error::model(&index, format!("tensor `{tensor}` maps to an invalid file name")))?;
        shards.insert(f.to_string());
    }
    let files: Vec<PathBuf> = shards.into_iter().map(|f| dir.join(f)).collect();
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        return Err(Error::model(missing, "missing: listed in model.safetensors.index.json"));
    }
    Ok((index, files))
}

impl CaptureModel for HfLlama {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn capture(&mut self, batch: &TokenBatch, req: &CaptureRequest) -> Result<Capture> {
        capture::validate(&self.info, batch, req)?;
        let n = self.blocks.len();
        // Right padding with id 0: the causal mask keeps real tokens from seeing it, and
        // pooling never reads it.
        let (ids, _mask) = batch.padded(0, &self.device)?;
        let lengths = batch.lengths();
        let deepest = req.deepest_block(n);
        let mut layers = BTreeMap::new();
        let h = self.run(&ids, deepest, &mut |i, h| {
            if req.wants(i) {
                layers.insert(i, capture::pool(h, &lengths, req.pooling)?);
            }
            Ok(())
        })?;
        let mut logits = None;
        if deepest == n && (req.logits || req.wants(n + 1)) {
            let normed = self.rms(&h, &self.norm).ctx("final norm")?;
            if req.wants(n + 1) {
                layers.insert(n + 1, capture::pool(&normed, &lengths, req.pooling)?);
            }
            if req.logits {
                let l = self.lm_head.forward(&normed).ctx("lm head")?;
                logits = Some(capture::pool(&l, &lengths, req.pooling)?);
            }
        }
        Ok(Capture { lengths, pooling: req.pooling, layers, logits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::capture::Pooling;

    fn cfg(tied: bool) -> LlamaConfig {
        LlamaConfig {
            hidden_size: 32,
            intermediate_size: 48,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            vocab_size: 50,
            max_position_embeddings: 16,
            tie_word_embeddings: tied,
            head_dim: None,
            hidden_act: None,
            rope_scaling: None,
            attention_bias: false,
            mlp_bias: false,
        }
    }

    fn model(tied: bool) -> HfLlama {
        let c = cfg(tied);
        let vm = crate::zoo::train::init_weights(&c, 5, &Device::Cpu).unwrap();
        HfLlama::trainable(&c, &vm, &Device::Cpu, "t").unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    #[test]
    fn fused_and_differentiable_kernels_agree() {
        let mut m = model(false);
        let ids = Tensor::new(&[[1u32, 7, 3, 9, 4, 4, 0, 12]], &Device::Cpu).unwrap();
        let slow = m.forward_logits(&ids).unwrap();
        assert_eq!(slow.dims(), &[1, 8, 50]);
        m.set_kernels(Kernels::Fused);
        let fast = m.forward_logits(&ids).unwrap();
        assert!(max_diff(&slow, &fast) < 1e-4, "{}", max_diff(&slow, &fast));
        let batch = TokenBatch::new(vec![vec![1, 7, 3, 9, 4, 4, 0, 12]]);
        let cap = m.capture(&batch, &CaptureRequest::all(3, Pooling::All)).unwrap();
        assert_eq!(cap.layers.len(), 5);
        assert!(max_diff(cap.logits.as_ref().unwrap(), &fast) < 1e-6);
    }

    #[test]
    fn right_padding_does_not_change_real_tokens() {
        let mut m = model(true);
        m.set_kernels(Kernels::Fused);
        let short = vec![3u32, 8, 2];
        let req = CaptureRequest::all(3, Pooling::Last);
        let alone = m.capture(&TokenBatch::new(vec![short.clone()]), &req).unwrap();
        let padded = m.capture(&TokenBatch::new(vec![vec![5, 6, 7, 8, 9, 10, 11], short]), &req).unwrap();
        for (l, t) in &alone.layers {
            assert!(max_diff(&t.get(0).unwrap(), &padded.layers[l].get(1).unwrap()) < 1e-5, "layer {l}");
        }
        let (a, p) = (alone.logits.unwrap(), padded.logits.unwrap());
        assert!(max_diff(&a.get(0).unwrap(), &p.get(1).unwrap()) < 1e-5);
    }

    #[test]
    fn capture_stops_at_the_deepest_requested_block_and_validates() {
        let mut m = model(true);
        let req = CaptureRequest { layers: vec![0, 1], pooling: Pooling::Mean, logits: false };
        let cap = m.capture(&TokenBatch::new(vec![vec![1, 2, 3]]), &req).unwrap();
        assert_eq!(cap.layers.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(cap.layers[&1].dims(), &[1, 32]);
        assert!(cap.logits.is_none());
        let err = m.capture(&TokenBatch::new(vec![vec![1, 99]]), &req).unwrap_err();
        assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    }

    #[test]
    fn trainable_refuses_uninitialised_weights() {
        let err = HfLlama::trainable(&cfg(false), &VarMap::new(), &Device::Cpu, "t").err().unwrap();
        assert!(err.to_string().contains("model.embed_tokens.weight"), "{err}");
    }
}

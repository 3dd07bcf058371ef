//! The GGUF llama backend (SmolLM2-135M-Instruct and other llama-architecture GGUF files).
//!
//! The forward pass is candle-transformers 0.11.1's `quantized_llama`, vendored in
//! [`quantized_llama`] with a capture path added. The same file can be computed under
//! several [`WeightMode`]s, which is what the model-substitution experiments need: the
//! shipped quantized weights, a dequantized f32 or f16 copy, or a re-quantization to
//! another ggml type (computed with quantized kernels or dequantized to f32 for speed).
//!
//! Every defect of the file (unreadable header, truncated tensor data, an architecture
//! other than llama, missing or misshapen tensors) is an [`Error::Model`] naming the file.
//!
//! # Measured speed
//!
//! `cargo bench --bench capture` measures every mode; the figures are in the README
//! ("Speed and memory"). In short, on 2 idle cores: f32 ~220-360 tokens/s, f16 ~110,
//! re-quantized Q8_0 with quantized kernels ~80, shipped Q4_1 ~17 — candle 0.11.1 has no
//! SIMD kernel for Q4_1 (80% of its time is in `BlockQ4_1::vec_dot_unopt`). Use `f32`
//! (same numbers as transformers to ~1e-6) when speed matters.

pub mod prefix;
pub mod quantized_llama;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::capture::{self, Capture, CaptureModel, CaptureRequest, ModelInfo, Pooling, TokenBatch};
use quantized_llama::{Compute, ModelWeights};

/// A ggml type a model can be re-quantized to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuantType {
    #[serde(rename = "q8_0")]
    Q8_0,
    #[serde(rename = "q4_0")]
    Q4_0,
    #[serde(rename = "q4_1")]
    Q4_1,
    #[serde(rename = "q5_0")]
    Q5_0,
    #[serde(rename = "q5_1")]
    Q5_1,
    #[serde(rename = "q4_k")]
    Q4K,
    #[serde(rename = "q5_k")]
    Q5K,
    #[serde(rename = "q6_k")]
    Q6K,
    /// Half precision, what a "convert to f16" re-export does.
    #[serde(rename = "f16")]
    F16,
}

impl QuantType {
    pub const ALL: [QuantType; 9] = [
        QuantType::Q8_0,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q4K,
        QuantType::Q5K,
        QuantType::Q6K,
        QuantType::F16,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q8_0 => "q8_0",
            QuantType::Q4_0 => "q4_0",
            QuantType::Q4_1 => "q4_1",
            QuantType::Q5_0 => "q5_0",
            QuantType::Q5_1 => "q5_1",
            QuantType::Q4K => "q4_k",
            QuantType::Q5K => "q5_k",
            QuantType::Q6K => "q6_k",
            QuantType::F16 => "f16",
        }
    }

    pub fn ggml(self) -> GgmlDType {
        match self {
            QuantType::Q8_0 => GgmlDType::Q8_0,
            QuantType::Q4_0 => GgmlDType::Q4_0,
            QuantType::Q4_1 => GgmlDType::Q4_1,
            QuantType::Q5_0 => GgmlDType::Q5_0,
            QuantType::Q5_1 => GgmlDType::Q5_1,
            QuantType::Q4K => GgmlDType::Q4K,
            QuantType::Q5K => GgmlDType::Q5K,
            QuantType::Q6K => GgmlDType::Q6K,
            QuantType::F16 => GgmlDType::F16,
        }
    }

    /// The type actually used for a tensor whose rows hold `row_len` values. k-quants
    /// work on super-blocks of 256; for other row lengths llama.cpp
    /// (`llama_tensor_get_type`) falls back to the nearest 32-block type, and so do we.
    pub fn for_row_len(self, row_len: usize) -> QuantType {
        if row_len % self.ggml().block_size() == 0 {
            return self;
        }
        match self {
            QuantType::Q4K => QuantType::Q5_0,
            QuantType::Q5K => QuantType::Q5_1,
            QuantType::Q6K => QuantType::Q8_0,
            other => other,
        }
    }
}

impl fmt::Display for QuantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QuantType {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = s.to_ascii_lowercase();
        QuantType::ALL.into_iter().find(|q| q.name() == t).ok_or_else(|| {
            let names: Vec<_> = QuantType::ALL.iter().map(|q| q.name()).collect();
            format!("unknown quantization type `{s}` (expected one of {})", names.join(", "))
        })
    }
}

/// How a re-quantized model is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RequantCompute {
    /// Quantized kernels, as a runtime serving that file would.
    #[default]
    Quantized,
    /// Dequantize the re-quantized weights to f32 (same numbers up to kernel rounding,
    /// much faster on CPU).
    F32,
}

/// Which numbers the model computes with.
///
/// Serde form (kebab-case): `"shipped"`, `"f32"`, `"f16"`,
/// `{"requant": {"to": "q8_0", "compute": "quantized"}}`. String form ([`FromStr`] /
/// [`fmt::Display`]): `shipped`, `f32`, `f16`, `requant-q8_0`, `requant-q8_0-f32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WeightMode {
    /// The tensors as stored, computed with quantized kernels.
    #[default]
    Shipped,
    /// Every weight dequantized to f32, plain matmuls.
    F32,
    /// Every weight dequantized to f16; matmuls run in f16 (activations cast per matmul),
    /// the residual stream stays f32.
    F16,
    /// Dequantize, then re-quantize every 2-D weight to `to` (with llama.cpp's k-quant
    /// fallback for rows not a multiple of 256, see [`QuantType::for_row_len`]); 1-D norm
    /// weights stay f32 as in llama.cpp.
    Requant {
        to: QuantType,
        #[serde(default)]
        compute: RequantCompute,
    },
}

impl fmt::Display for WeightMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightMode::Shipped => f.write_str("shipped"),
            WeightMode::F32 => f.write_str("f32"),
            WeightMode::F16 => f.write_str("f16"),
            WeightMode::Requant { to, compute: RequantCompute::Quantized } => write!(f, "requant-{to}"),
            WeightMode::Requant { to, compute: RequantCompute::F32 } => write!(f, "requant-{to}-f32"),
        }
    }
}

impl FromStr for WeightMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = s.to_ascii_lowercase();
        match t.as_str() {
            "shipped" => return Ok(WeightMode::Shipped),
            "f32" => return Ok(WeightMode::F32),
            "f16" => return Ok(WeightMode::F16),
            _ => {}
        }
        if let Some(rest) = t.strip_prefix("requant-") {
            let (q, compute) = match rest.strip_suffix("-f32") {
                Some(q) => (q, RequantCompute::F32),
                None => (rest, RequantCompute::Quantized),
            };
            return Ok(WeightMode::Requant { to: q.parse()?, compute });
        }
        Err(format!(
            "unknown weight mode `{s}` (expected shipped, f32, f16, requant-<type> or requant-<type>-f32)"
        ))
    }
}

/// The GGUF facts the inventory experiment reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GgufInventory {
    pub file: PathBuf,
    pub file_bytes: u64,
    pub architecture: String,
    pub name: Option<String>,
    pub n_tensors: usize,
    pub n_params: u64,
    /// ggml type name (`q4_1`, `f32`, ...) → number of tensors of that type.
    pub tensor_dtypes: BTreeMap<String, usize>,
    /// ggml type name → number of parameters stored in that type.
    pub params_by_dtype: BTreeMap<String, u64>,
    pub context_length: Option<u64>,
    pub block_count: Option<u64>,
    pub embedding_length: Option<u64>,
    /// Number of tokenizer tokens (`tokenizer.ggml.tokens`), else `<arch>.vocab_size`.
    pub vocab_size: Option<u64>,
    /// Rows of `token_embd.weight`.
    pub embedding_rows: Option<u64>,
    pub tokenizer_model: Option<String>,
    pub tokenizer_pre: Option<String>,
    pub has_chat_template: bool,
}

/// Read the GGUF header of `path` (no tensor data) and summarise it.
pub fn inspect(path: &Path) -> Result<GgufInventory> {
    let (_reader, ct, file_bytes) = open(path)?;
    let md_str = |k: &str| ct.metadata.get(k).and_then(|v| v.to_string().ok()).cloned();
    let architecture = md_str("general.architecture")
        .ok_or_else(|| Error::model(path, "metadata has no `general.architecture`"))?;
    let md_u64 = |k: &str| ct.metadata.get(&format!("{architecture}.{k}")).and_then(value_u64);
    let mut tensor_dtypes = BTreeMap::new();
    let mut params_by_dtype = BTreeMap::new();
    let mut n_params = 0u64;
    for info in ct.tensor_infos.values() {
        let n = info.shape.elem_count() as u64;
        n_params += n;
        *tensor_dtypes.entry(dtype_name(info.ggml_dtype).to_string()).or_insert(0) += 1;
        *params_by_dtype.entry(dtype_name(info.ggml_dtype).to_string()).or_insert(0) += n;
    }
    let n_tokens =
        ct.metadata.get("tokenizer.ggml.tokens").and_then(|v| v.to_vec().ok()).map(|v| v.len() as u64);
    Ok(GgufInventory {
        file: path.to_path_buf(),
        file_bytes,
        name: md_str("general.name"),
        n_tensors: ct.tensor_infos.len(),
        n_params,
        tensor_dtypes,
        params_by_dtype,
        context_length: md_u64("context_length"),
        block_count: md_u64("block_count"),
        embedding_length: md_u64("embedding_length"),
        vocab_size: n_tokens.or_else(|| md_u64("vocab_size")),
        embedding_rows: ct
            .tensor_infos
            .get("token_embd.weight")
            .and_then(|i| i.shape.dims().first())
            .map(|&r| r as u64),
        tokenizer_model: md_str("tokenizer.ggml.model"),
        tokenizer_pre: md_str("tokenizer.ggml.pre"),
        has_chat_template: ct.metadata.contains_key("tokenizer.chat_template"),
        architecture,
    })
}

/// A llama-architecture GGUF model ready for capture.
pub struct GgufLlama {
    model: ModelWeights,
    info: ModelInfo,
    device: Device,
    path: PathBuf,
    mode: WeightMode,
    pad_id: u32,
    requant_report: BTreeMap<String, String>,
}

impl fmt::Debug for GgufLlama {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufLlama").field("path", &self.path).field("info", &self.info).finish()
    }
}

impl GgufLlama {
    /// Load `path` computing with `mode` on `device`. The model's name defaults to the
    /// file stem; see [`GgufLlama::with_name`].
    pub fn load(path: &Path, mode: WeightMode, device: &Device) -> Result<Self> {
        let (mut reader, ct, _) = open(path)?;
        let mut read = |ct: &gguf_file::Content, name: &str| ct.tensor(&mut reader, name, device);
        Self::build(path, ct, mode, device, &mut read)
    }

    /// A model with the metadata (hyper-parameters, context length, padding token) of the
    /// GGUF file `path` and the weights of `weights`, which must hold exactly the file's
    /// tensors with the same shapes, in GGUF naming. Nothing but the file's header is read.
    ///
    /// `mode` says how the given f32 values are computed with: `F32` and `F16` as in
    /// [`load`](Self::load) (for an unmodified set from `WeightSet::from_gguf`, `F32`
    /// gives exactly the numbers of `load(path, WeightMode::F32, ..)`); `Shipped`
    /// quantizes every tensor back to its type in the file (an edited model repackaged
    /// as the original file would be) and computes with quantized kernels; `Requant`
    /// re-quantizes every matrix as in [`load`](Self::load).
    pub fn from_weights(
        path: &Path,
        weights: &crate::models::variants::WeightSet,
        mode: WeightMode,
        device: &Device,
    ) -> Result<Self> {
        use crate::models::variants::Convention;
        let (_reader, ct, _) = open(path)?;
        if weights.convention() != Convention::Gguf {
            return Err(Error::input(
                "GgufLlama::from_weights",
                format!(
                    "weights use {:?} tensor names, the GGUF backend needs GGUF names",
                    weights.convention()
                ),
            ));
        }
        for (name, info) in &ct.tensor_infos {
            let Some(t) = weights.get(name) else {
                return Err(Error::input(
                    "GgufLlama::from_weights",
                    format!("weights lack tensor `{name}` of {}", path.display()),
                ));
            };
            if t.shape != info.shape.dims() {
                return Err(Error::input(
                    "GgufLlama::from_weights",
                    format!(
                        "tensor `{name}` has shape {:?}, the file's has {:?}",
                        t.shape,
                        info.shape.dims()
                    ),
                ));
            }
        }
        if let Some(extra) = weights.names().find(|n| !ct.tensor_infos.contains_key(*n)) {
            return Err(Error::input(
                "GgufLlama::from_weights",
                format!("weights hold tensor `{extra}`, which {} does not have", path.display()),
            ));
        }
        let mut read = |ct: &gguf_file::Content, name: &str| -> candle_core::Result<QTensor> {
            let Some(w) = weights.get(name) else { candle_core::bail!("weights lack tensor `{name}`") };
            let t = candle_core::Tensor::from_slice(&w.data, w.shape.as_slice(), &Device::Cpu)?;
            // Shipped: back to the file's own type; otherwise f32 (Requant re-quantizes
            // matrices in `build`'s prep step, like `load`).
            let dtype = match mode {
                WeightMode::Shipped => ct.tensor_infos.get(name).map_or(GgmlDType::F32, |i| i.ggml_dtype),
                _ => GgmlDType::F32,
            };
            QTensor::quantize_onto(&t, dtype, device)
        };
        let mut model = Self::build(path, ct, mode, device, &mut read)?;
        model.info.name = format!("{} (edited weights)", model.info.name);
        Ok(model)
    }

    /// Shared by [`load`](Self::load) and [`from_weights`](Self::from_weights):
    /// `read(ct, name)` yields each tensor as the file would.
    fn build(
        path: &Path,
        ct: gguf_file::Content,
        mode: WeightMode,
        device: &Device,
        read: &mut dyn FnMut(&gguf_file::Content, &str) -> candle_core::Result<QTensor>,
    ) -> Result<Self> {
        let shape = check_llama(path, &ct)?;
        let shipped = dominant_block_dtype(&ct);
        let pad_id = ["tokenizer.ggml.padding_token_id", "tokenizer.ggml.eos_token_id"]
            .iter()
            .find_map(|k| ct.metadata.get(*k).and_then(value_u64))
            .filter(|&id| (id as usize) < shape.vocab)
            .unwrap_or(0) as u32;
        let n_params = ct.tensor_infos.values().map(|i| i.shape.elem_count() as u64).sum();

        let mut report = BTreeMap::new();
        let (compute, weights) = match mode {
            WeightMode::Shipped => (Compute::Quantized, shipped.clone()),
            WeightMode::F32 => (Compute::F32, "f32".to_string()),
            WeightMode::F16 => (Compute::F16, "f16".to_string()),
            WeightMode::Requant { compute, .. } => (
                match compute {
                    RequantCompute::Quantized => Compute::Quantized,
                    RequantCompute::F32 => Compute::F32,
                },
                mode.to_string(),
            ),
        };
        let mut prep = |name: &str, t: QTensor| -> candle_core::Result<QTensor> {
            let WeightMode::Requant { to, .. } = mode else { return Ok(t) };
            let dims = t.shape().dims().to_vec();
            if dims.len() < 2 {
                return Ok(t);
            }
            let row_len = dims[dims.len() - 1];
            let target = to.for_row_len(row_len);
            if row_len % target.ggml().block_size() != 0 {
                candle_core::bail!("{name}: rows of {row_len} values cannot be quantized to {target}")
            }
            let dense = t.dequantize(&t.device())?;
            let q = QTensor::quantize(&dense, target.ggml())?;
            report.insert(name.to_string(), target.name().to_string());
            Ok(q)
        };
        let mut tensor = |name: &str| -> candle_core::Result<QTensor> {
            let t = read(&ct, name)?;
            prep(name, t)
        };
        let model = ModelWeights::from_source(&ct, device, compute, &mut tensor)
            .map_err(|e| Error::model(path, format!("loading weights ({mode}): {e}")))?;
        let name =
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "gguf".into());
        let info = ModelInfo {
            name,
            architecture: "llama".into(),
            n_blocks: shape.n_blocks,
            d_model: shape.d_model,
            vocab_size: shape.vocab,
            max_seq_len: model.max_seq_len(),
            n_params,
            weights,
        };
        Ok(Self {
            model,
            info,
            device: device.clone(),
            path: path.to_path_buf(),
            mode,
            pad_id,
            requant_report: report,
        })
    }

    /// Rename the model (the registry uses its own names).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.info.name = name.into();
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> WeightMode {
        self.mode
    }

    /// For [`WeightMode::Requant`]: tensor name → ggml type it was re-quantized to. Tensors
    /// that fell back from a k-quant (rows not a multiple of 256) show the fallback type.
    /// Empty for other modes.
    pub fn requant_report(&self) -> &BTreeMap<String, String> {
        &self.requant_report
    }

    /// Tensors whose re-quantization fell back from the requested k-quant type.
    pub fn requant_fallbacks(&self) -> BTreeMap<String, String> {
        match self.mode {
            WeightMode::Requant { to, .. } => self
                .requant_report
                .iter()
                .filter(|(_, t)| t.as_str() != to.name())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// Greedy decoding through the KV cache: up to `max_new` tokens after `prompt`,
    /// stopping before any id in `stop`. Deterministic (argmax; ties go to the lowest id),
    /// so generated text is a pure function of the weights, the kernels and the prompt.
    /// Prompts longer than the model's context are an input error.
    pub fn generate_greedy(&mut self, prompt: &[u32], max_new: usize, stop: &[u32]) -> Result<Vec<u32>> {
        use crate::error::CandleContext;
        if prompt.is_empty() || prompt.len() + max_new > self.info.max_seq_len {
            return Err(Error::input(
                format!("generation with {}", self.path.display()),
                format!(
                    "prompt of {} tokens + {max_new} new must be 1..={} tokens",
                    prompt.len(),
                    self.info.max_seq_len
                ),
            ));
        }
        let argmax = |logits: &candle_core::Tensor| -> Result<u32> {
            let v = logits.squeeze(0).and_then(|l| l.to_vec1::<f32>()).ctx("generation: read logits")?;
            let mut best = 0usize;
            for (i, x) in v.iter().enumerate() {
                if *x > v[best] {
                    best = i;
                }
            }
            Ok(best as u32)
        };
        self.model.clear_kv_cache();
        let x =
            candle_core::Tensor::new(prompt, &self.device).and_then(|t| t.unsqueeze(0)).ctx("token ids")?;
        let mut logits = self.model.forward(&x, 0).ctx("generation: prefill")?;
        let mut out = Vec::new();
        for pos in prompt.len()..prompt.len() + max_new {
            let next = argmax(&logits)?;
            if stop.contains(&next) {
                break;
            }
            out.push(next);
            let x = candle_core::Tensor::new(&[next], &self.device)
                .and_then(|t| t.unsqueeze(0))
                .ctx("token ids")?;
            logits = self.model.forward(&x, pos).ctx("generation: decode step")?;
        }
        self.model.clear_kv_cache();
        Ok(out)
    }

    /// The upstream candle forward: last-position logits `[batch, vocab]` of an unpadded
    /// batch, through the KV cache (cleared first, so each call is independent).
    pub fn forward_last_logits(&mut self, ids: &[u32]) -> Result<candle_core::Tensor> {
        use crate::error::CandleContext;
        self.model.clear_kv_cache();
        let x = candle_core::Tensor::new(ids, &self.device).and_then(|t| t.unsqueeze(0)).ctx("token ids")?;
        let out = self.model.forward(&x, 0).ctx(format!("forward of {}", self.path.display()));
        self.model.clear_kv_cache();
        out
    }
}

impl CaptureModel for GgufLlama {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn capture(&mut self, batch: &TokenBatch, req: &CaptureRequest) -> Result<Capture> {
        use crate::error::CandleContext;
        // Name the file and the metadata key: the limit comes from the file, not from us.
        if let Some((i, s)) =
            batch.sequences.iter().enumerate().find(|(_, s)| s.len() > self.info.max_seq_len)
        {
            return Err(Error::input(
                format!("capture on model file {}", self.path.display()),
                format!(
                    "sequence {i} has {} tokens, more than the context length of {} (llama.context_length)",
                    s.len(),
                    self.info.max_seq_len
                ),
            ));
        }
        capture::validate(&self.info, batch, req)?;
        let n_blocks = self.info.n_blocks;
        let deepest = req.deepest_block(n_blocks);
        let (ids, _mask) = batch.padded(self.pad_id, &self.device)?;
        let lengths = batch.lengths();
        // Logits are read pooled: project the pooled final-norm rows instead of every
        // position when that gives the same numbers. Last pooling picks rows, so it is
        // exact (and is what upstream `forward` does); mean pooling commutes with a dense
        // f32 head up to rounding. Otherwise project every position, then pool.
        let n_final = n_blocks + 1;
        let project_pooled = req.logits
            && match req.pooling {
                Pooling::Last => true,
                Pooling::Mean => self.model.output_is_dense_f32(),
                Pooling::All => false,
            };
        let keep = |i: usize| req.wants(i) || (project_pooled && i == n_final);
        let fwd = self
            .model
            .forward_capture(&ids, deepest, &keep, req.logits && !project_pooled)
            .ctx(format!("forward of {}", self.path.display()))?;
        let mut layers = BTreeMap::new();
        for (i, h) in fwd.residuals {
            layers.insert(i, capture::pool(&h, &lengths, req.pooling)?);
        }
        let logits = if project_pooled {
            let normed = layers.get(&n_final).ok_or_else(|| Error::run("capture: final norm missing"))?;
            let l = self.model.project(normed).ctx(format!("output head of {}", self.path.display()))?;
            if !req.wants(n_final) {
                layers.remove(&n_final);
            }
            Some(l)
        } else {
            match fwd.logits {
                Some(l) => Some(capture::pool(&l, &lengths, req.pooling)?),
                None => None,
            }
        };
        Ok(Capture { lengths, pooling: req.pooling, layers, logits })
    }
}

/// Open and parse the GGUF header, with every failure naming the file.
fn open(path: &Path) -> Result<(BufReader<File>, gguf_file::Content, u64)> {
    let file = File::open(path).map_err(Error::io(path))?;
    let file_bytes = file.metadata().map_err(Error::io(path))?.len();
    let mut reader = BufReader::new(file);
    let ct = gguf_file::Content::read(&mut reader)
        .map_err(|e| Error::model(path, format!("not a readable GGUF file ({file_bytes} bytes): {e}")))?;
    // Content::read checks the header against the file size but not the tensor data;
    // catch truncation here rather than halfway through loading.
    for (name, info) in &ct.tensor_infos {
        let bytes = (info.shape.elem_count() / info.ggml_dtype.block_size()) as u64
            * info.ggml_dtype.type_size() as u64;
        let end = ct.tensor_data_offset.saturating_add(info.offset).saturating_add(bytes);
        if end > file_bytes {
            return Err(Error::model(
                path,
                format!(
                    "truncated: tensor `{name}` ends at byte {end}, but the file has only {file_bytes} bytes"
                ),
            ));
        }
    }
    Ok((reader, ct, file_bytes))
}

struct LlamaShape {
    n_blocks: usize,
    d_model: usize,
    vocab: usize,
}

/// Check architecture, hyper-parameters and every tensor the loader will read, so that
/// a malformed file fails with a sentence instead of a shape error deep in the forward.
fn check_llama(path: &Path, ct: &gguf_file::Content) -> Result<LlamaShape> {
    let bad = |m: String| Error::model(path, m);
    let arch = ct
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .ok_or_else(|| bad("metadata has no `general.architecture`".into()))?;
    if arch != "llama" {
        return Err(bad(format!(
            "architecture `{arch}` is not supported by the GGUF llama backend (expected `llama`)"
        )));
    }
    let get = |k: &str| -> Result<usize> {
        let v = ct.metadata.get(k).ok_or_else(|| bad(format!("metadata has no `{k}`")))?;
        value_u64(v)
            .map(|v| v as usize)
            .ok_or_else(|| bad(format!("metadata `{k}` is not an integer: {v:?}")))
    };
    let n_blocks = get("llama.block_count")?;
    let d = get("llama.embedding_length")?;
    let n_head = get("llama.attention.head_count")?;
    let n_kv = get("llama.attention.head_count_kv")?;
    let rope_dim = get("llama.rope.dimension_count")?;
    for k in ["llama.attention.layer_norm_rms_epsilon"] {
        if !ct.metadata.contains_key(k) {
            return Err(bad(format!("metadata has no `{k}`")));
        }
    }
    if ct.metadata.get("llama.expert_count").and_then(value_u64).unwrap_or(0) > 1 {
        return Err(bad("mixture-of-experts llama files are not supported".into()));
    }
    if n_blocks == 0 || d == 0 || n_head == 0 || n_kv == 0 || n_head % n_kv != 0 || d % n_head != 0 {
        return Err(bad(format!(
            "inconsistent hyper-parameters: {n_blocks} blocks, width {d}, {n_head} heads, {n_kv} kv heads"
        )));
    }
    let head_dim = d / n_head;
    if rope_dim != head_dim {
        return Err(bad(format!("rope dimension {rope_dim} differs from the head dimension {head_dim}")));
    }
    let dims = |name: &str| -> Result<Vec<usize>> {
        ct.tensor_infos
            .get(name)
            .map(|i| i.shape.dims().to_vec())
            .ok_or_else(|| bad(format!("tensor `{name}` is missing")))
    };
    let emb = dims("token_embd.weight")?;
    let [vocab, emb_d] = emb[..] else {
        return Err(bad(format!("tensor `token_embd.weight` has shape {emb:?}, expected [vocab, {d}]")));
    };
    let expect = |name: &str, want: &[usize]| -> Result<()> {
        let got = dims(name)?;
        if got != want {
            return Err(bad(format!("tensor `{name}` has shape {got:?}, expected {want:?}")));
        }
        Ok(())
    };
    if emb_d != d {
        return Err(bad(format!(
            "tensor `token_embd.weight` has width {emb_d}, expected the embedding length {d}"
        )));
    }
    expect("output_norm.weight", &[d])?;
    if ct.tensor_infos.contains_key("output.weight") {
        expect("output.weight", &[vocab, d])?;
    }
    let ffn = dims("blk.0.ffn_gate.weight")?.first().copied().unwrap_or(0);
    for i in 0..n_blocks {
        let p = format!("blk.{i}");
        expect(&format!("{p}.attn_norm.weight"), &[d])?;
        expect(&format!("{p}.ffn_norm.weight"), &[d])?;
        expect(&format!("{p}.attn_q.weight"), &[d, d])?;
        expect(&format!("{p}.attn_k.weight"), &[n_kv * head_dim, d])?;
        expect(&format!("{p}.attn_v.weight"), &[n_kv * head_dim, d])?;
        expect(&format!("{p}.attn_output.weight"), &[d, d])?;
        expect(&format!("{p}.ffn_gate.weight"), &[ffn, d])?;
        expect(&format!("{p}.ffn_up.weight"), &[ffn, d])?;
        expect(&format!("{p}.ffn_down.weight"), &[d, ffn])?;
    }
    Ok(LlamaShape { n_blocks, d_model: d, vocab })
}

/// The most common ggml type among the block weight matrices: what "shipped" computes in.
fn dominant_block_dtype(ct: &gguf_file::Content) -> String {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (name, info) in &ct.tensor_infos {
        if name.starts_with("blk.") && info.shape.rank() == 2 {
            *counts.entry(dtype_name(info.ggml_dtype)).or_insert(0) += 1;
        }
    }
    counts.into_iter().max_by_key(|&(_, n)| n).map(|(t, _)| t.to_string()).unwrap_or_else(|| "unknown".into())
}

pub fn dtype_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2_k",
        GgmlDType::Q3K => "q3_k",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q5K => "q5_k",
        GgmlDType::Q6K => "q6_k",
        GgmlDType::Q8K => "q8_k",
    }
}

/// Any non-negative integer metadata value (GGUF writers differ in the width they use).
pub(crate) fn value_u64(v: &gguf_file::Value) -> Option<u64> {
    use gguf_file::Value as V;
    match *v {
        V::U8(x) => Some(x as u64),
        V::U16(x) => Some(x as u64),
        V::U32(x) => Some(x as u64),
        V::U64(x) => Some(x),
        V::I8(x) => u64::try_from(x).ok(),
        V::I16(x) => u64::try_from(x).ok(),
        V::I32(x) => u64::try_from(x).ok(),
        V::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_mode_strings_round_trip() {
        for s in ["shipped", "f32", "f16", "requant-q8_0", "requant-q4_k-f32", "requant-q5_1"] {
            let m: WeightMode = s.parse().unwrap();
            assert_eq!(m.to_string(), s);
        }
        assert!("requant-q3_k".parse::<WeightMode>().is_err());
        assert!("bf16".parse::<WeightMode>().is_err());
    }

    #[test]
    fn weight_mode_serde_is_kebab_case() {
        let m = WeightMode::Requant { to: QuantType::Q4K, compute: RequantCompute::F32 };
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"requant":{"to":"q4_k","compute":"f32"}}"#);
        assert_eq!(serde_json::from_str::<WeightMode>(&j).unwrap(), m);
        assert_eq!(serde_json::to_string(&WeightMode::Shipped).unwrap(), r#""shipped""#);
        let d: WeightMode = serde_json::from_str(r#"{"requant":{"to":"q8_0"}}"#).unwrap();
        assert_eq!(d, WeightMode::Requant { to: QuantType::Q8_0, compute: RequantCompute::Quantized });
    }

    #[test]
    fn k_quants_fall_back_like_llama_cpp() {
        assert_eq!(QuantType::Q4K.for_row_len(576), QuantType::Q5_0);
        assert_eq!(QuantType::Q5K.for_row_len(576), QuantType::Q5_1);
        assert_eq!(QuantType::Q6K.for_row_len(1536), QuantType::Q6K);
        assert_eq!(QuantType::Q6K.for_row_len(576), QuantType::Q8_0);
        assert_eq!(QuantType::Q4_1.for_row_len(576), QuantType::Q4_1);
    }
}

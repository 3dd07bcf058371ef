//! BERT encoder backend (all-MiniLM-L6-v2 and other BERT-layout checkpoints): per-layer
//! capture through [`CaptureModel`], and sentence embeddings the way sentence-transformers
//! computes them for all-MiniLM-L6-v2 (mean pooling over real tokens, then L2 norm).
//!
//! A model is a Hugging Face directory with `config.json`, `model.safetensors` and
//! `tokenizer.json`. Tensor names may carry a `bert.` prefix or not.
//!
//! Residual-stream indices follow [`crate::models::capture`]: `0` is the embedding output
//! (after the embedding LayerNorm), `1..=n_layers` the output of each layer. BERT is
//! post-norm and has no final norm, so index `n_layers + 1` is the last layer's output
//! again. An encoder has no logits: a request with `logits: true` is an input error
//! rather than a silent `None`, so a caller that needs logits finds out at once.
//!
//! Tokenization for embeddings deliberately ignores the padding settings shipped in
//! `tokenizer.json` (MiniLM's pads every input to 128 tokens): padding is done per batch to
//! its longest sequence, and the attention mask plus masked pooling make the result
//! independent of how much padding there is. Inputs are truncated to
//! `max_position_embeddings` (512) tokens. Note sentence-transformers truncates
//! all-MiniLM-L6-v2 at 256 tokens, so texts longer than that embed differently there.

mod config;
mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{Tokenizer, TruncationParams};

pub use config::{BertConfig, HiddenAct};
pub use model::{l2_normalize, BertNetwork};

use crate::error::{CandleContext, Error, Result};
use crate::models::capture::{
    pool, validate, Capture, CaptureModel, CaptureRequest, ModelInfo, Pooling, TokenBatch,
};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// A loaded BERT encoder with its tokenizer.
pub struct MiniLm {
    net: BertNetwork,
    config: BertConfig,
    tokenizer: Tokenizer,
    info: ModelInfo,
    device: Device,
}

impl MiniLm {
    /// Load `dir/{config.json, model.safetensors, tokenizer.json}` onto `device`, computing
    /// in f32. A missing, truncated or inconsistent file is an [`Error::Model`] naming it.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = existing(dir, CONFIG_FILE)?;
        let weights_path = existing(dir, WEIGHTS_FILE)?;
        let tokenizer_path = existing(dir, TOKENIZER_FILE)?;
        let config = BertConfig::from_file(&config_path)?;

        // SAFETY: the file is memory-mapped read-only; model files are immutable cache
        // entries, and modifying one while it is loaded is outside what we guard against.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights_path], DType::F32, device) }
            .map_err(|e| Error::model(&weights_path, format!("not a readable safetensors file: {e}")))?;
        let vb =
            if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let net = BertNetwork::load(vb, &config).map_err(|e| {
            Error::model(&weights_path, format!("does not match {}: {e}", config_path.display()))
        })?;

        let tokenizer = load_tokenizer(&tokenizer_path, &config)?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bert".into());
        let info = ModelInfo {
            name,
            architecture: "bert".to_string(),
            n_blocks: config.num_hidden_layers,
            d_model: config.hidden_size,
            vocab_size: config.vocab_size,
            max_seq_len: config.max_position_embeddings,
            n_params: net.n_params(),
            weights: "f32".to_string(),
        };
        Ok(Self { net, config, tokenizer, info, device: device.clone() })
    }

    /// Replace the name reported in [`ModelInfo`] (defaults to the directory name).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.info.name = name.into();
        self
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The model's tokenizer with padding disabled and truncation at
    /// `max_position_embeddings`.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids (with `[CLS]`/`[SEP]`) of each text, unpadded.
    pub fn tokenize(&self, texts: &[&str]) -> Result<TokenBatch> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::run(format!("tokenizing with model `{}`: {e}", self.info.name)))?;
        Ok(TokenBatch::new(encodings.iter().map(|e| e.get_ids().to_vec()).collect()))
    }

    /// Sentence embeddings of `texts`, all in one padded batch: `[texts.len()][hidden]`,
    /// each of unit L2 norm.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.tokenize(texts)?;
        self.embed_tokens(&batch)?.to_vec2::<f32>().ctx("reading embeddings")
    }

    /// Like [`Self::embed`], in batches of at most `batch_size` texts. Texts are grouped by
    /// token length so that little compute goes to padding; the output keeps input order.
    pub fn embed_batched(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        if batch_size == 0 {
            return Err(Error::input("embedding batch size", "must be at least 1"));
        }
        let all = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(all.sequences[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size) {
            let batch = TokenBatch::new(chunk.iter().map(|&i| all.sequences[i].clone()).collect());
            let rows = self.embed_tokens(&batch)?.to_vec2::<f32>().ctx("reading embeddings")?;
            for (&i, row) in chunk.iter().zip(rows) {
                out[i] = row;
            }
        }
        Ok(out)
    }

    /// Mean-pooled, L2-normalised last-layer states of already tokenized input: `[n, hidden]`.
    pub fn embed_tokens(&self, batch: &TokenBatch) -> Result<Tensor> {
        let last = self.net.n_layers();
        let req = CaptureRequest { layers: vec![last], pooling: Pooling::Mean, logits: false };
        let mut capture = self.run(batch, &req)?;
        let pooled = capture.layers.remove(&last).ok_or_else(|| Error::run("last layer was not captured"))?;
        l2_normalize(&pooled).ctx("normalising embeddings")
    }

    fn run(&self, batch: &TokenBatch, req: &CaptureRequest) -> Result<Capture> {
        validate(&self.info, batch, req)?;
        if req.logits {
            return Err(Error::input(
                format!("capture on model `{}`", self.info.name),
                "a BERT encoder has no logits; request `logits: false`",
            ));
        }
        let n = self.net.n_layers();
        let lengths = batch.lengths();
        let (ids, mask) = batch.padded(self.config.pad_token_id, &self.device)?;
        let mut layers = BTreeMap::new();

        let mut xs = self.net.embed(&ids).ctx("bert embeddings")?;
        if req.wants(0) {
            layers.insert(0, pool(&xs, &lengths, req.pooling)?);
        }
        let deepest = req.deepest_block(n);
        if deepest > 0 {
            let bias = BertNetwork::attention_bias(&mask).ctx("bert attention mask")?;
            for i in 0..deepest {
                xs = self.net.layer(i, &xs, &bias).ctx(format!("bert layer {i}"))?;
                if req.wants(i + 1) {
                    layers.insert(i + 1, pool(&xs, &lengths, req.pooling)?);
                }
            }
        }
        // No final norm in a post-norm encoder: the last residual position repeats the last layer.
        if req.wants(n + 1) {
            let last = match layers.get(&n) {
                Some(t) => t.clone(),
                None => pool(&xs, &lengths, req.pooling)?,
            };
            layers.insert(n + 1, last);
        }
        Ok(Capture { lengths, pooling: req.pooling, layers, logits: None })
    }
}

impl CaptureModel for MiniLm {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn capture(&mut self, batch: &TokenBatch, req: &CaptureRequest) -> Result<Capture> {
        self.run(batch, req)
    }
}

fn existing(dir: &Path, file: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::model(
            &path,
            "is missing (a BERT model directory needs config.json, model.safetensors and tokenizer.json)",
        ))
    }
}

/// The shipped tokenizer, with its fixed padding removed and truncation at the model's
/// position limit.
fn load_tokenizer(path: &Path, config: &BertConfig) -> Result<Tokenizer> {
    let mut tokenizer =
        Tokenizer::from_file(path).map_err(|e| Error::model(path, format!("not a valid tokenizer: {e}")))?;
    let vocab = tokenizer.get_vocab_size(true);
    if vocab > config.vocab_size {
        return Err(Error::model(
            path,
            format!("has {vocab} tokens but the model's vocab_size is {}", config.vocab_size),
        ));
    }
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: config.max_position_embeddings,
            ..Default::default()
        }))
        .map_err(|e| Error::model(path, format!("cannot set truncation: {e}")))?;
    Ok(tokenizer)
}

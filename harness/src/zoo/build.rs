//! Building the zoo: corpus → tokenizer → one training run per (width, seed), with an
//! HF-layout checkpoint written at each chosen step, then a manifest of sha256s.
//!
//! Reproducibility is the point: the manifest holds no timestamps or paths, every file
//! is written whole and renamed into place, and runs are collected in spec order even
//! though they train in parallel. Rebuilding a spec on the same machine gives a
//! byte-identical directory; across CPUs with different SIMD kernels float rounding may
//! differ, which the manifest's hashes then reveal.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{corpus, tokenizer, train};
use crate::error::{Error, Result};
use crate::models::hf_llama::{safetensors_bytes, HfLlama, LlamaConfig};
use crate::record::atomic::write_atomic;
use crate::record::canonical::sha256_hex;

/// One model shape of the zoo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZooWidth {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    /// Share the embedding with the LM head (no `lm_head.weight` in the checkpoint).
    pub tie_embeddings: bool,
}

/// Everything that determines a zoo's bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZooSpec {
    /// One training run per seed and width; the seed drives init and batch order.
    pub seeds: Vec<u64>,
    pub widths: Vec<ZooWidth>,
    /// Steps (1-based, increasing) at which a checkpoint is saved; the last is the run length.
    pub checkpoint_steps: Vec<usize>,
    pub seq_len: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub corpus_seed: u64,
    pub corpus_sentences: usize,
    /// Tokenizer vocabulary: 256 bytes + learned merges + 2 specials.
    pub vocab_size: usize,
    /// Longest input the checkpoints accept. Training windows are `seq_len`; rotary
    /// embeddings have no learned table, so longer probes still run (less well-modelled).
    pub max_position_embeddings: usize,
}

impl ZooSpec {
    /// The benchmark zoo: 6 seeds × 5 checkpoints at two widths = 60 models, ~63 MB.
    /// Sized to build in minutes on a 2-core CPU (measured 9.4 min wall / 660 CPU-s on a
    /// shared, contended 2-core machine).
    pub fn standard() -> Self {
        Self {
            seeds: (0..6).collect(),
            widths: vec![
                ZooWidth {
                    hidden: 64,
                    layers: 2,
                    heads: 4,
                    kv_heads: 2,
                    intermediate: 192,
                    tie_embeddings: true,
                },
                ZooWidth {
                    hidden: 96,
                    layers: 3,
                    heads: 6,
                    kv_heads: 2,
                    intermediate: 256,
                    tie_embeddings: false,
                },
            ],
            checkpoint_steps: vec![25, 50, 100, 200, 300],
            seq_len: 64,
            batch_size: 8,
            lr: 3e-3,
            corpus_seed: 20_240_601,
            corpus_sentences: 30_000,
            vocab_size: 512,
            max_position_embeddings: 512,
        }
    }

    /// A zoo small enough for tests: 2 seeds × 2 checkpoints at two widths = 8 models.
    pub fn tiny() -> Self {
        Self {
            seeds: vec![1, 2],
            widths: vec![
                ZooWidth {
                    hidden: 32,
                    layers: 2,
                    heads: 4,
                    kv_heads: 2,
                    intermediate: 64,
                    tie_embeddings: true,
                },
                ZooWidth {
                    hidden: 24,
                    layers: 1,
                    heads: 2,
                    kv_heads: 2,
                    intermediate: 48,
                    tie_embeddings: false,
                },
            ],
            checkpoint_steps: vec![15, 30],
            seq_len: 32,
            batch_size: 8,
            lr: 1e-2,
            corpus_seed: 7,
            corpus_sentences: 1_500,
            vocab_size: 300,
            max_position_embeddings: 128,
        }
    }

    /// `standard` or `tiny`.
    pub fn by_size(size: &str) -> Self {
        if size == "tiny" {
            Self::tiny()
        } else {
            Self::standard()
        }
    }

    /// The same zoo trained from other seeds (`seed + offset` for every run): a
    /// population no analysis has seen, for held-out checks.
    pub fn with_seed_offset(mut self, offset: u64) -> Self {
        for s in &mut self.seeds {
            *s += offset;
        }
        self
    }

    /// Every checkpoint id, by width, seed and step.
    pub fn all_model_ids(&self) -> Vec<String> {
        let mut ids = vec![];
        for w in &self.widths {
            for &s in &self.seeds {
                for &st in &self.checkpoint_steps {
                    ids.push(Self::model_id(w, s, st));
                }
            }
        }
        ids
    }

    /// The model id of a checkpoint, e.g. `zoo-w64-s3-step400`.
    pub fn model_id(width: &ZooWidth, seed: u64, step: usize) -> String {
        format!("zoo-w{}-s{seed}-step{step}", width.hidden)
    }

    /// The HF config of one width, given the trained tokenizer's vocabulary size.
    pub fn llama_config(&self, width: &ZooWidth, vocab_size: usize) -> LlamaConfig {
        LlamaConfig {
            hidden_size: width.hidden,
            intermediate_size: width.intermediate,
            num_hidden_layers: width.layers,
            num_attention_heads: width.heads,
            num_key_value_heads: Some(width.kv_heads),
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            vocab_size,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: width.tie_embeddings,
            head_dim: None,
            hidden_act: Some("silu".into()),
            rope_scaling: None,
            attention_bias: false,
            mlp_bias: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::input("zoo spec", m));
        if self.seeds.is_empty() || self.widths.is_empty() || self.checkpoint_steps.is_empty() {
            return bad("seeds, widths and checkpoint_steps must all be non-empty".into());
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != self.seeds.len() {
            return bad("seeds repeat".into());
        }
        if self.checkpoint_steps[0] == 0 || self.checkpoint_steps.windows(2).any(|w| w[0] >= w[1]) {
            return bad("checkpoint_steps must be positive and strictly increasing".into());
        }
        let mut hidden: Vec<usize> = self.widths.iter().map(|w| w.hidden).collect();
        hidden.sort_unstable();
        hidden.dedup();
        if hidden.len() != self.widths.len() {
            return bad("two widths share a hidden size, so their model ids would collide".into());
        }
        if self.seq_len == 0 || self.batch_size == 0 || !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("seq_len, batch_size and lr must be positive".into());
        }
        if self.max_position_embeddings < self.seq_len {
            return bad("max_position_embeddings is below seq_len".into());
        }
        for w in &self.widths {
            self.llama_config(w, self.vocab_size).validate(Path::new("zoo spec"))?;
        }
        Ok(())
    }
}

/// One checkpoint in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZooModel {
    pub id: String,
    pub seed: u64,
    pub width: ZooWidth,
    pub step: usize,
    /// Training loss of the batch at this step.
    pub train_loss: f32,
    pub n_params: u64,
    /// File name → sha256 (hex).
    pub files: BTreeMap<String, String>,
}

/// `manifest.json`: what was built and the hash of every file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZooManifest {
    pub format: String,
    pub spec: ZooSpec,
    pub vocab_size: usize,
    pub corpus_sha256: String,
    pub corpus_tokens: usize,
    pub tokenizer_sha256: String,
    pub loss_curves_sha256: String,
    pub models: Vec<ZooModel>,
    /// sha256 of `manifest.json` itself (not stored in it).
    #[serde(skip)]
    pub manifest_sha256: String,
}

pub const MANIFEST_FORMAT: &str = "gapbench-zoo/1";

impl ZooManifest {
    /// Read `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
        let mut m: ZooManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::input(path.display().to_string(), format!("not a zoo manifest: {e}")))?;
        m.manifest_sha256 = sha256_hex(&bytes);
        Ok(m)
    }

    /// Re-hash every listed file under `dir`; the first mismatch is an error.
    pub fn verify(&self, dir: &Path) -> Result<()> {
        for m in &self.models {
            for (name, expected) in &m.files {
                let path = dir.join(&m.id).join(name);
                let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
                let actual = sha256_hex(&bytes);
                if &actual != expected {
                    return Err(Error::Checksum { file: path, expected: expected.clone(), actual });
                }
            }
        }
        Ok(())
    }
}

/// What [`build_zoo`] reports while it works.
#[derive(Clone, Debug, PartialEq)]
pub enum ZooEvent {
    /// Corpus and tokenizer are ready; `runs` trainings will produce `models` checkpoints.
    Prepared { corpus_tokens: usize, vocab_size: usize, runs: usize, models: usize },
    /// One optimiser step of run `run` (e.g. `zoo-w64-s3`).
    Step { run: String, step: usize, total: usize, loss: f32 },
    /// A checkpoint was written.
    Checkpoint { id: String, train_loss: f32 },
}

struct RunOutput {
    run: String,
    seed: u64,
    hidden: usize,
    losses: Vec<f32>,
    models: Vec<ZooModel>,
}

/// Build `spec` into `out_dir`: `<model-id>/{config.json,model.safetensors,tokenizer.json}`,
/// `loss_curves.jsonl` (one line per run) and `manifest.json`.
pub fn build_zoo(
    spec: &ZooSpec,
    out_dir: &Path,
    progress: &(dyn Fn(&ZooEvent) + Sync),
) -> Result<ZooManifest> {
    spec.validate()?;
    std::fs::create_dir_all(out_dir).map_err(Error::io(out_dir))?;
    let docs = corpus::generate(spec.corpus_seed, spec.corpus_sentences);
    let corpus_sha256 = sha256_hex(docs.join("\n").as_bytes());
    let tok = tokenizer::train(&docs, spec.vocab_size)?;
    let tok_json = tokenizer::to_json(&tok)?;
    let tokenizer_sha256 = sha256_hex(tok_json.as_bytes());
    let tokens = tokenizer::encode_stream(&tok, &docs)?;
    let vocab_size = tok.get_vocab_size(true);
    // GPT-2 style: one special both separates and starts documents.
    let eos = tokenizer::special_id(&tok, tokenizer::EOS)?;

    let runs: Vec<(&ZooWidth, u64)> =
        spec.widths.iter().flat_map(|w| spec.seeds.iter().map(move |&s| (w, s))).collect();
    progress(&ZooEvent::Prepared {
        corpus_tokens: tokens.len(),
        vocab_size,
        runs: runs.len(),
        models: runs.len() * spec.checkpoint_steps.len(),
    });

    let total = *spec.checkpoint_steps.last().unwrap_or(&0);
    let outputs: Vec<RunOutput> = runs
        .par_iter()
        .map(|&(width, seed)| -> Result<RunOutput> {
            let cfg = spec.llama_config(width, vocab_size);
            let config_json = cfg.to_hf_json(eos, eos);
            let run = format!("zoo-w{}-s{seed}", width.hidden);
            let device = Device::Cpu;
            let varmap = train::init_weights(&cfg, seed, &device)?;
            let model = HfLlama::trainable(&cfg, &varmap, &device, &run)?;
            let n_params = crate::models::capture::CaptureModel::info(&model).n_params;
            let tc = train::TrainConfig {
                seed,
                steps: total,
                seq_len: spec.seq_len,
                batch_size: spec.batch_size,
                lr: spec.lr,
                weight_decay: 0.01,
            };
            let mut models = Vec::new();
            let losses = train::train(&model, &varmap, &tokens, &tc, &mut |step, loss, vm| {
                progress(&ZooEvent::Step { run: run.clone(), step, total, loss });
                if !spec.checkpoint_steps.contains(&step) {
                    return Ok(());
                }
                let id = ZooSpec::model_id(width, seed, step);
                let dir = out_dir.join(&id);
                std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
                let tensors: BTreeMap<String, candle_core::Tensor> = {
                    let data = vm.data().lock().map_err(|_| Error::run("varmap lock poisoned"))?;
                    data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
                };
                let weights = safetensors_bytes(&tensors)?;
                let mut files = BTreeMap::new();
                for (name, bytes) in [
                    ("config.json", config_json.as_bytes()),
                    ("model.safetensors", weights.as_slice()),
                    ("tokenizer.json", tok_json.as_bytes()),
                ] {
                    write_atomic(&dir.join(name), bytes)?;
                    files.insert(name.to_string(), sha256_hex(bytes));
                }
                progress(&ZooEvent::Checkpoint { id: id.clone(), train_loss: loss });
                models.push(ZooModel {
                    id,
                    seed,
                    width: width.clone(),
                    step,
                    train_loss: loss,
                    n_params,
                    files,
                });
                Ok(())
            })?;
            Ok(RunOutput { run, seed, hidden: width.hidden, losses, models })
        })
        .collect::<Result<Vec<_>>>()?;

    let mut curves = String::new();
    for o in &outputs {
        let line = serde_json::json!({"run": o.run, "seed": o.seed, "hidden": o.hidden, "losses": o.losses});
        curves.push_str(&line.to_string());
        curves.push('\n');
    }
    write_atomic(&out_dir.join("loss_curves.jsonl"), curves.as_bytes())?;

    let mut manifest = ZooManifest {
        format: MANIFEST_FORMAT.into(),
        spec: spec.clone(),
        vocab_size,
        corpus_sha256,
        corpus_tokens: tokens.len(),
        tokenizer_sha256,
        loss_curves_sha256: sha256_hex(curves.as_bytes()),
        models: outputs.into_iter().flat_map(|o| o.models).collect(),
        manifest_sha256: String::new(),
    };
    let mut text =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::run(format!("manifest: {e}")))?;
    text.push('\n');
    write_atomic(&out_dir.join("manifest.json"), text.as_bytes())?;
    manifest.manifest_sha256 = sha256_hex(text.as_bytes());
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_validate_and_the_standard_zoo_is_large_enough() {
        for spec in [ZooSpec::standard(), ZooSpec::tiny()] {
            spec.validate().unwrap();
        }
        let s = ZooSpec::standard();
        assert!(s.seeds.len() * s.widths.len() * s.checkpoint_steps.len() >= 30);
        assert_eq!(ZooSpec::model_id(&s.widths[0], 3, 400), "zoo-w64-s3-step400");
        let held_out = ZooSpec::standard().with_seed_offset(1000);
        assert_eq!(held_out.seeds, (1000..1006).collect::<Vec<u64>>());
        assert!(held_out.all_model_ids().iter().all(|id| !s.all_model_ids().contains(id)));
        let mut bad = ZooSpec::tiny();
        bad.checkpoint_steps = vec![30, 15];
        assert!(bad.validate().is_err());
        bad = ZooSpec::tiny();
        bad.widths[1].hidden = bad.widths[0].hidden;
        assert!(bad.validate().unwrap_err().to_string().contains("collide"));
    }
}

//! `further-training`: k more optimiser steps (the severity) of a zoo checkpoint on the
//! zoo's own corpus, with a fresh batch-sampling seed drawn from the attack's RNG. The
//! canonical same-family substitute: "the same model, trained a little longer".
//!
//! Needs the checkpoint's directory (`model`, for `config.json` and `tokenizer.json`)
//! inside a zoo directory (its parent, for `manifest.json`, from which the corpus is
//! regenerated). AdamW starts from fresh moments, with the zoo's schedule (warm-up, cosine
//! decay) spread over the k steps at `lr` (default: the zoo's peak rate / 10, a
//! fine-tuning rate). Only HF-layout weight sets (zoo models) can be trained.

use std::path::PathBuf;

use candle_core::{Device, Var};
use candle_nn::VarMap;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{modify, Attack, AttackReport, ChaCha20Rng, Convention, WTensor, WeightSet};
use crate::error::{CandleContext, Error, Result};
use crate::models::hf_llama::{load_tokenizer, HfLlama, LlamaConfig};
use crate::zoo::{corpus, tokenizer, train, ZooManifest};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FurtherTraining {
    /// Number of optimiser steps (an integer ≥ 0).
    pub severity: f64,
    /// The zoo checkpoint directory the weight set was read from.
    pub model: PathBuf,
    /// Peak learning rate; the zoo's peak / 10 when absent.
    #[serde(default)]
    pub lr: Option<f64>,
}

impl Attack for FurtherTraining {
    fn name(&self) -> &'static str {
        "further-training"
    }

    fn severity(&self) -> f64 {
        self.severity
    }

    fn apply(&self, w: &mut WeightSet, rng: &mut ChaCha20Rng) -> Result<AttackReport> {
        let k = self.severity;
        if !(k >= 0.0 && k.fract() == 0.0 && k <= 1e7) {
            return Err(Error::input("further-training", format!("severity is a step count, got {k}")));
        }
        if w.convention() != Convention::Hf {
            return Err(Error::input("further-training", "only HF-layout (zoo) weight sets can be trained"));
        }
        let seed: u64 = rng.gen();
        let mut rep = AttackReport::new(self);
        if k == 0.0 {
            return Ok(rep);
        }
        let zoo_dir = self
            .model
            .parent()
            .ok_or_else(|| Error::input("further-training", "model has no parent zoo directory"))?;
        let manifest = ZooManifest::load(zoo_dir)?;
        let cfg = LlamaConfig::from_file(&self.model.join("config.json"))?;
        let tok = load_tokenizer(&self.model)?;
        let docs = corpus::generate(manifest.spec.corpus_seed, manifest.spec.corpus_sentences);
        let tokens = tokenizer::encode_stream(&tok, &docs)?;

        let device = Device::Cpu;
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().map_err(|_| Error::run("varmap lock poisoned"))?;
            for (name, t) in w.iter() {
                let v = Var::from_tensor(&t.to_tensor(&device)?).ctx("creating variable")?;
                data.insert(name.clone(), v);
            }
        }
        let model = HfLlama::trainable(&cfg, &varmap, &device, "further-training")?;
        let tc = train::TrainConfig {
            seed,
            steps: k as usize,
            seq_len: manifest.spec.seq_len,
            batch_size: manifest.spec.batch_size,
            lr: self.lr.unwrap_or(manifest.spec.lr / 10.0),
            weight_decay: 0.01,
        };
        let losses = train::train(&model, &varmap, &tokens, &tc, &mut |_, _, _| Ok(()))?;
        let trained: Vec<(String, WTensor)> = {
            let data = varmap.data().lock().map_err(|_| Error::run("varmap lock poisoned"))?;
            let mut v = Vec::with_capacity(data.len());
            for (name, var) in data.iter() {
                v.push((name.clone(), WTensor::from_tensor(var.as_tensor())?));
            }
            v
        };
        for (name, t) in trained {
            rep.push(modify(w, &name, |old| {
                *old = t;
                Ok(())
            })?);
        }
        rep.details.push(format!(
            "{k} steps, seed {seed}, lr {}, loss {:.4} -> {:.4}",
            tc.lr,
            losses.first().copied().unwrap_or(f32::NAN),
            losses.last().copied().unwrap_or(f32::NAN)
        ));
        Ok(rep.finish())
    }
}

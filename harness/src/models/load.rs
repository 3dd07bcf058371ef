//! From a registry entry to a running backend and its tokenizer: the one place that knows
//! which backend serves which architecture and format.

use std::path::Path;

use candle_core::Device;

use crate::error::{Error, Result};
use crate::models::bert::MiniLm;
use crate::models::capture::CaptureModel;
use crate::models::gguf_llama::{GgufLlama, WeightMode};
use crate::models::hf_llama::HfLlama;
use crate::models::registry::{Format, ModelEntry};
use crate::models::tokenizer::GgufTokenizer;

/// Text → token ids for any backend.
pub enum TextTokenizer {
    Gguf(Box<GgufTokenizer>),
    Hf(Box<tokenizers::Tokenizer>),
}

impl TextTokenizer {
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            TextTokenizer::Gguf(t) => t.encode(text),
            TextTokenizer::Hf(t) => t
                .encode(text, true)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| Error::input("tokenizer", format!("cannot encode text: {e}"))),
        }
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            TextTokenizer::Gguf(t) => t.decode(ids, false),
            TextTokenizer::Hf(t) => {
                t.decode(ids, false).map_err(|e| Error::input("tokenizer", format!("cannot decode ids: {e}")))
            }
        }
    }
}

pub struct Loaded {
    pub model: Box<dyn CaptureModel>,
    pub tokenizer: TextTokenizer,
}

/// Load a registry model from its directory. `weights` applies to GGUF models; other
/// formats compute in the dtype they store and reject any other mode.
pub fn load(entry: &ModelEntry, dir: &Path, weights: WeightMode, device: &Device) -> Result<Loaded> {
    let primary = dir.join(&entry.primary_file().path);
    match (entry.format, entry.architecture.as_str()) {
        (Format::Gguf, "llama") => {
            let model = GgufLlama::load(&primary, weights, device)?.with_name(&entry.name);
            let tokenizer = GgufTokenizer::load(&primary)?;
            Ok(Loaded { model: Box::new(model), tokenizer: TextTokenizer::Gguf(Box::new(tokenizer)) })
        }
        (Format::Safetensors, "bert") => {
            reject_weight_mode(entry, weights)?;
            let model = MiniLm::load(dir, device)?.with_name(&entry.name);
            let tokenizer = TextTokenizer::Hf(Box::new(model.tokenizer().clone()));
            Ok(Loaded { model: Box::new(model), tokenizer })
        }
        (Format::Safetensors, "llama") => {
            reject_weight_mode(entry, weights)?;
            let model = HfLlama::load_dir(dir, device)?;
            let tokenizer = TextTokenizer::Hf(Box::new(crate::models::hf_llama::load_tokenizer(dir)?));
            Ok(Loaded { model: Box::new(model), tokenizer })
        }
        (format, arch) => Err(Error::model(
            &primary,
            format!("no backend for architecture `{arch}` in format {format:?} (supported: llama/gguf, llama/safetensors, bert/safetensors)"),
        )),
    }
}

fn reject_weight_mode(entry: &ModelEntry, weights: WeightMode) -> Result<()> {
    if weights != WeightMode::F32 && weights != WeightMode::Shipped {
        return Err(Error::input(
            format!("--weights for `{}`", entry.name),
            "weight modes other than shipped/f32 apply to GGUF models only",
        ));
    }
    Ok(())
}

/// Load a registry model with one attack applied to its weights, in memory: the
/// substitute a verifier would face. Returns the model and what the attack changed.
pub fn load_variant(
    entry: &ModelEntry,
    dir: &Path,
    weights: WeightMode,
    variant: &crate::models::variants::VariantSpec,
    seed: u64,
    device: &Device,
) -> Result<(Loaded, crate::models::variants::AttackReport)> {
    use crate::models::variants::WeightSet;
    if entry.architecture != "llama" {
        return Err(Error::input(
            format!("variant of `{}`", entry.name),
            format!("attacks apply to llama models only, not {}", entry.architecture),
        ));
    }
    let primary = dir.join(&entry.primary_file().path);
    let (mut set, tokenizer) = match entry.format {
        Format::Gguf => {
            (WeightSet::load(&primary)?, TextTokenizer::Gguf(Box::new(GgufTokenizer::load(&primary)?)))
        }
        Format::Safetensors => {
            reject_weight_mode(entry, weights)?;
            (
                WeightSet::load(dir)?,
                TextTokenizer::Hf(Box::new(crate::models::hf_llama::load_tokenizer(dir)?)),
            )
        }
    };
    let report = variant.apply(&mut set, seed)?;
    let model: Box<dyn CaptureModel> = match entry.format {
        Format::Gguf => Box::new(
            GgufLlama::from_weights(&primary, &set, weights, device)?
                .with_name(format!("{}+{}", entry.name, report.attack)),
        ),
        Format::Safetensors => Box::new(HfLlama::from_weights_in(dir, &set, device)?),
    };
    Ok((Loaded { model, tokenizer }, report))
}

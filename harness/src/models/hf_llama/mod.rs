//! A llama-architecture decoder read from (and written as) Hugging Face checkpoints:
//! `config.json` + `model.safetensors` + `tokenizer.json`, the layout real users fetch
//! through hf-hub and the layout of gapbench's own synthetic model zoo.
//!
//! The same [`HfLlama`] runs activation capture (fused kernels) and trains on a
//! `VarMap` (differentiable kernels), so the zoo's models are exactly the models the
//! capture pipeline later reads back from disk.

pub mod config;
pub mod model;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Tensor};
use tokenizers::Tokenizer;

pub use config::LlamaConfig;
pub use model::{tensor_shapes, HfLlama, Kernels};

use crate::error::{CandleContext, Error, Result};

/// Serialise named tensors as a safetensors file in f32. Tensor order and header are
/// fixed by the safetensors crate (sorted by dtype, then name), so equal weights give
/// equal bytes. The `format: pt` metadata is what transformers expects.
pub fn safetensors_bytes(tensors: &BTreeMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut f32s = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.to_dtype(DType::F32).and_then(|t| t.contiguous()).ctx(format!("saving `{name}`"))?;
        f32s.push((name.clone(), t));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(f32s.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| Error::run(format!("serialising safetensors: {e}")))
}

/// The `tokenizer.json` of an HF model directory.
pub fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(Error::model(&path, "missing: an HF model directory needs tokenizer.json"));
    }
    Tokenizer::from_file(&path).map_err(|e| Error::model(&path, format!("not a valid tokenizer.json: {e}")))
}

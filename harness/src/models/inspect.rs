//! Reading what a model file holds without running it: architecture, parameter count,
//! tensor dtypes. GGUF through candle's gguf reader, safetensors through its header.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub architecture: String,
    pub n_tensors: usize,
    pub n_params: u64,
    /// dtype name → number of tensors of that dtype.
    pub tensor_dtypes: BTreeMap<String, usize>,
    /// dtype name → number of parameters stored in that dtype.
    pub params_by_dtype: BTreeMap<String, u64>,
    /// A few structural facts (layers, width, context, vocabulary) where the file says.
    pub facts: BTreeMap<String, u64>,
}

/// A GGUF file, summarised by the GGUF backend's header reader.
pub fn inspect_gguf(path: &Path) -> Result<Inventory> {
    let g = crate::models::gguf_llama::inspect(path)?;
    let facts = [
        ("block_count", g.block_count),
        ("embedding_length", g.embedding_length),
        ("context_length", g.context_length),
        ("vocab_size", g.vocab_size),
    ];
    Ok(Inventory {
        architecture: g.architecture,
        n_tensors: g.n_tensors,
        n_params: g.n_params,
        tensor_dtypes: g.tensor_dtypes,
        params_by_dtype: g.params_by_dtype,
        facts: facts.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))).collect(),
    })
}

/// A safetensors file plus the `config.json` beside it (architecture, sizes).
pub fn inspect_safetensors(path: &Path) -> Result<Inventory> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    // SAFETY: the file is opened read-only and not modified while mapped.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io(path))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&mmap)
        .map_err(|e| Error::model(path, format!("not a readable safetensors file: {e}")))?;
    let mut inv = Inventory {
        architecture: String::new(),
        n_tensors: 0,
        n_params: 0,
        tensor_dtypes: BTreeMap::new(),
        params_by_dtype: BTreeMap::new(),
        facts: BTreeMap::new(),
    };
    for (_, info) in meta.tensors() {
        let dtype = format!("{:?}", info.dtype).to_lowercase();
        let n: u64 = info.shape.iter().map(|&d| d as u64).product();
        inv.n_tensors += 1;
        inv.n_params += n;
        *inv.tensor_dtypes.entry(dtype.clone()).or_default() += 1;
        *inv.params_by_dtype.entry(dtype).or_default() += n;
    }
    let config_path = path.with_file_name("config.json");
    if let Ok(text) = std::fs::read_to_string(&config_path) {
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::model(&config_path, format!("not JSON: {e}")))?;
        inv.architecture = config["model_type"].as_str().unwrap_or_default().to_string();
        for key in [
            "num_hidden_layers",
            "hidden_size",
            "max_position_embeddings",
            "intermediate_size",
            "num_attention_heads",
            "vocab_size",
        ] {
            if let Some(v) = config[key].as_u64() {
                inv.facts.insert(key.into(), v);
            }
        }
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_model_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.gguf");
        std::fs::write(&p, b"not a gguf file at all").unwrap();
        let e = inspect_gguf(&p).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("bad.gguf"));
        let p = dir.path().join("bad.safetensors");
        std::fs::write(&p, [255u8; 16]).unwrap();
        assert!(inspect_safetensors(&p).unwrap_err().to_string().contains("bad.safetensors"));
    }
}

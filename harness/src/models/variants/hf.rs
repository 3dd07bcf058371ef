//! Running an edited HF-layout [`WeightSet`] (a zoo checkpoint) with the HF llama
//! backend, without writing a file: the tensors go straight into a `VarBuilder`.

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::{Convention, WeightSet};
use crate::error::{Error, Result};
use crate::models::hf_llama::{tensor_shapes, HfLlama, Kernels, LlamaConfig};

impl HfLlama {
    /// A model of `cfg` computing with `weights` (HF names, exactly the tensors of
    /// [`tensor_shapes`]), fused kernels, f32. For an unmodified set read from a
    /// checkpoint this computes exactly what [`HfLlama::load_dir`] of that checkpoint does.
    pub fn from_weights(cfg: &LlamaConfig, weights: &WeightSet, name: &str, device: &Device) -> Result<Self> {
        let what = "HfLlama::from_weights";
        if weights.convention() != Convention::Hf {
            return Err(Error::input(
                what,
                format!("weights use {:?} names, the HF backend needs HF names", weights.convention()),
            ));
        }
        let want: BTreeSet<(String, Vec<usize>)> = tensor_shapes(cfg).into_iter().collect();
        let have: BTreeSet<(String, Vec<usize>)> =
            weights.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
        if let Some((n, s)) = want.difference(&have).next() {
            return Err(Error::input(
                what,
                format!("weights lack tensor `{n}` of shape {s:?} (or it has another shape)"),
            ));
        }
        if let Some((n, s)) = have.difference(&want).next() {
            return Err(Error::input(
                what,
                format!("weights hold tensor `{n}` of shape {s:?}, which the config does not have"),
            ));
        }
        let vb = VarBuilder::from_tensors(weights.to_tensors(device)?, DType::F32, device);
        Self::from_var_builder(cfg, vb, Path::new("<in-memory weights>"), name, Kernels::Fused)
    }

    /// [`from_weights`](Self::from_weights) with the config of an HF model directory.
    pub fn from_weights_in(dir: &Path, weights: &WeightSet, device: &Device) -> Result<Self> {
        let cfg = LlamaConfig::from_file(&dir.join("config.json"))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Self::from_weights(&cfg, weights, &format!("{name} (edited weights)"), device)
    }
}

//! [`WeightSet`]: every tensor of a checkpoint as plain f32 values, plus the naming
//! convention of its file format, so that an attack is written once against *roles*
//! ("the down-projection of block 15") and applies to GGUF and HF checkpoints alike.
//!
//! Values are held as `Vec<f32>` rather than candle tensors: attacks edit individual
//! values (bit flips, pruning), and comparing two sets bit for bit is what the tests
//! and [`AttackReport`](super::AttackReport)s need.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{CandleContext, Error, Result};

/// How a file format names a llama checkpoint's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Convention {
    /// llama.cpp GGUF: `blk.{i}.attn_q.weight`, `token_embd.weight`, ...
    Gguf,
    /// Hugging Face `LlamaForCausalLM`: `model.layers.{i}.self_attn.q_proj.weight`, ...
    Hf,
}

/// What a tensor does in a llama block stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Embedding,
    /// The LM head (absent when tied to the embedding).
    Output,
    FinalNorm,
    AttnNorm,
    FfnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnO,
    FfnGate,
    FfnUp,
    FfnDown,
}

impl Kind {
    /// Kinds that belong to a block (have a layer index).
    pub const BLOCK: [Kind; 9] = [
        Kind::AttnNorm,
        Kind::AttnQ,
        Kind::AttnK,
        Kind::AttnV,
        Kind::AttnO,
        Kind::FfnNorm,
        Kind::FfnGate,
        Kind::FfnUp,
        Kind::FfnDown,
    ];

    pub fn in_block(self) -> bool {
        Kind::BLOCK.contains(&self)
    }
}

/// A tensor's role: its kind and, for block tensors, the block index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Role {
    pub block: Option<usize>,
    pub kind: Kind,
}

impl Role {
    pub fn global(kind: Kind) -> Self {
        Self { block: None, kind }
    }

    pub fn block(i: usize, kind: Kind) -> Self {
        Self { block: Some(i), kind }
    }
}

const GGUF_BLOCK: [(Kind, &str); 9] = [
    (Kind::AttnNorm, "attn_norm"),
    (Kind::AttnQ, "attn_q"),
    (Kind::AttnK, "attn_k"),
    (Kind::AttnV, "attn_v"),
    (Kind::AttnO, "attn_output"),
    (Kind::FfnNorm, "ffn_norm"),
    (Kind::FfnGate, "ffn_gate"),
    (Kind::FfnUp, "ffn_up"),
    (Kind::FfnDown, "ffn_down"),
];

const HF_BLOCK: [(Kind, &str); 9] = [
    (Kind::AttnNorm, "input_layernorm"),
    (Kind::AttnQ, "self_attn.q_proj"),
    (Kind::AttnK, "self_attn.k_proj"),
    (Kind::AttnV, "self_attn.v_proj"),
    (Kind::AttnO, "self_attn.o_proj"),
    (Kind::FfnNorm, "post_attention_layernorm"),
    (Kind::FfnGate, "mlp.gate_proj"),
    (Kind::FfnUp, "mlp.up_proj"),
    (Kind::FfnDown, "mlp.down_proj"),
];

/// A convention's block prefix, per-block tensor suffixes and global tensor names.
type ConventionParts = (&'static str, &'static [(Kind, &'static str); 9], [(Kind, &'static str); 3]);

impl Convention {
    fn parts(self) -> ConventionParts {
        match self {
            Convention::Gguf => (
                "blk.",
                &GGUF_BLOCK,
                [
                    (Kind::Embedding, "token_embd.weight"),
                    (Kind::Output, "output.weight"),
                    (Kind::FinalNorm, "output_norm.weight"),
                ],
            ),
            Convention::Hf => (
                "model.layers.",
                &HF_BLOCK,
                [
                    (Kind::Embedding, "model.embed_tokens.weight"),
                    (Kind::Output, "lm_head.weight"),
                    (Kind::FinalNorm, "model.norm.weight"),
                ],
            ),
        }
    }

    /// The tensor name of `role`. A block kind without a block index has no name.
    pub fn name(self, role: Role) -> Option<String> {
        let (prefix, block, global) = self.parts();
        match role.block {
            Some(i) => {
                block.iter().find(|(k, _)| *k == role.kind).map(|(_, s)| format!("{prefix}{i}.{s}.weight"))
            }
            None => global.iter().find(|(k, _)| *k == role.kind).map(|(_, s)| s.to_string()),
        }
    }

    /// The role of a tensor name, `None` for names outside the convention.
    pub fn role(self, name: &str) -> Option<Role> {
        let (prefix, block, global) = self.parts();
        if let Some((k, _)) = global.iter().find(|(_, s)| *s == name) {
            return Some(Role::global(*k));
        }
        let rest = name.strip_prefix(prefix)?;
        let (idx, rest) = rest.split_once('.')?;
        let i: usize = idx.parse().ok()?;
        let stem = rest.strip_suffix(".weight")?;
        block.iter().find(|(_, s)| *s == stem).map(|(k, _)| Role::block(i, *k))
    }
}

/// One tensor: row-major f32 values and the shape.
#[derive(Clone, Debug, PartialEq)]
pub struct WTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl WTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::run(format!("tensor of shape {shape:?} given {} values", data.len())));
        }
        Ok(Self { shape, data })
    }

    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let shape = t.dims().to_vec();
        let data = t
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .ctx("reading tensor values")?;
        Ok(Self { shape, data })
    }

    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Tensor::from_slice(&self.data, self.shape.as_slice(), device).ctx("building tensor")
    }

    pub fn is_matrix(&self) -> bool {
        self.shape.len() == 2
    }

    /// Frobenius norm, accumulated in f64.
    pub fn frobenius(&self) -> f64 {
        self.data.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
    }

    /// Root mean square of the values.
    pub fn rms(&self) -> f64 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.frobenius() / (self.data.len() as f64).sqrt()
    }
}

/// How one tensor differs between two weight sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorChange {
    pub name: String,
    /// Values whose bits differ.
    pub n_changed: usize,
    /// ‖after − before‖_F / ‖before‖_F (∞ when `before` is all zero and `after` is not;
    /// non-finite values are counted in `n_changed` and make this ∞).
    pub rel_frobenius: f64,
}

/// Every tensor of a llama checkpoint in f32, keyed by name.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightSet {
    convention: Convention,
    n_blocks: usize,
    tensors: BTreeMap<String, WTensor>,
    /// How each tensor is stored in the source file (absent: f32). Attacks on the stored
    /// representation (bit flips) use it.
    stored: BTreeMap<String, GgmlDType>,
}

impl WeightSet {
    /// A set from named tensors; the block count is the number of distinct block indices.
    pub fn new(convention: Convention, tensors: BTreeMap<String, WTensor>) -> Self {
        let n_blocks = tensors
            .keys()
            .filter_map(|n| convention.role(n).and_then(|r| r.block))
            .max()
            .map(|m| m + 1)
            .unwrap_or(0);
        Self { convention, n_blocks, tensors, stored: BTreeMap::new() }
    }

    /// Record how tensor `name` is stored in its file.
    pub fn with_stored_types(mut self, stored: BTreeMap<String, GgmlDType>) -> Self {
        self.stored = stored;
        self
    }

    /// The ggml type tensor `name` is stored as in its file (f32 when unknown).
    pub fn stored_type(&self, name: &str) -> GgmlDType {
        self.stored.get(name).copied().unwrap_or(GgmlDType::F32)
    }

    /// Every tensor of a GGUF file, dequantized to f32 with candle's ggml kernels (the same
    /// numbers `GgufLlama` computes with under `WeightMode::F32`).
    pub fn from_gguf(path: &Path) -> Result<Self> {
        use candle_core::quantized::gguf_file;
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        let mut reader = std::io::BufReader::new(file);
        let ct = gguf_file::Content::read(&mut reader)
            .map_err(|e| Error::model(path, format!("not a readable GGUF file: {e}")))?;
        let mut tensors = BTreeMap::new();
        let stored = ct.tensor_infos.iter().map(|(n, i)| (n.clone(), i.ggml_dtype)).collect();
        for name in ct.tensor_infos.keys() {
            let q = ct
                .tensor(&mut reader, name, &Device::Cpu)
                .map_err(|e| Error::model(path, format!("reading tensor `{name}`: {e}")))?;
            let t = q
                .dequantize(&Device::Cpu)
                .map_err(|e| Error::model(path, format!("dequantizing tensor `{name}`: {e}")))?;
            tensors.insert(name.clone(), WTensor::from_tensor(&t)?);
        }
        Ok(Self::new(Convention::Gguf, tensors).with_stored_types(stored))
    }

    /// Every tensor of one safetensors file (HF naming), converted to f32.
    pub fn from_safetensors(path: &Path) -> Result<Self> {
        Self::from_safetensors_files(&[path.to_path_buf()])
    }

    /// Every tensor of several safetensors shards (HF naming), converted to f32.
    pub fn from_safetensors_files(paths: &[std::path::PathBuf]) -> Result<Self> {
        let mut map = HashMap::new();
        for path in paths {
            let part = candle_core::safetensors::load(path, &Device::Cpu)
                .map_err(|e| Error::model(path, format!("not a readable safetensors file: {e}")))?;
            map.extend(part);
        }
        let mut tensors = BTreeMap::new();
        let mut stored = BTreeMap::new();
        for (name, t) in map {
            let g = match t.dtype() {
                DType::F16 => GgmlDType::F16,
                DType::BF16 => GgmlDType::BF16,
                _ => GgmlDType::F32,
            };
            stored.insert(name.clone(), g);
            tensors.insert(name, WTensor::from_tensor(&t)?);
        }
        Ok(Self::new(Convention::Hf, tensors).with_stored_types(stored))
    }

    /// A checkpoint by path: a `.gguf` file, a `.safetensors` file, or an HF model
    /// directory holding `model.safetensors` (or shards listed in
    /// `model.safetensors.index.json`).
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_dir() {
            let (_, files) = crate::models::hf_llama::model::safetensors_files(path)?;
            return Self::from_safetensors_files(&files);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("gguf") => Self::from_gguf(path),
            Some("safetensors") => Self::from_safetensors(path),
            _ => {
                Err(Error::model(path, "expected a .gguf file, a .safetensors file or an HF model directory"))
            }
        }
    }

    /// sha256 (hex) over every tensor's name, shape and f32 little-endian values, in name
    /// order: the "hash the weights" baseline. Like a file sha256 it needs the weights, and
    /// any edit changes it; unlike one it ignores how the file was laid out.
    pub fn sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (name, t) in &self.tensors {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((t.shape.len() as u64).to_le_bytes());
            for &s in &t.shape {
                h.update((s as u64).to_le_bytes());
            }
            for v in &t.data {
                h.update(v.to_le_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    pub fn convention(&self) -> Convention {
        self.convention
    }

    pub fn n_blocks(&self) -> usize {
        self.n_blocks
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn n_values(&self) -> usize {
        self.tensors.values().map(|t| t.data.len()).sum()
    }

    pub fn get(&self, name: &str) -> Option<&WTensor> {
        self.tensors.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut WTensor> {
        self.tensors.get_mut(name)
    }

    /// Like [`get_mut`](Self::get_mut) but a missing tensor is an error naming it.
    pub fn expect_mut(&mut self, name: &str) -> Result<&mut WTensor> {
        self.tensors.get_mut(name).ok_or_else(|| Error::run(format!("weight set has no tensor `{name}`")))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &WTensor)> {
        self.tensors.iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    pub fn insert(&mut self, name: String, t: WTensor) {
        self.tensors.insert(name, t);
    }

    /// Names of every 2-D tensor (the weight matrices, embedding and head included), sorted.
    pub fn matrices(&self) -> Vec<String> {
        self.tensors.iter().filter(|(_, t)| t.is_matrix()).map(|(n, _)| n.clone()).collect()
    }

    /// Names of every tensor of block `i`, sorted.
    pub fn block(&self, i: usize) -> Vec<String> {
        self.tensors.keys().filter(|n| self.role(n).and_then(|r| r.block) == Some(i)).cloned().collect()
    }

    pub fn role(&self, name: &str) -> Option<Role> {
        self.convention.role(name)
    }

    /// The name of the tensor with `role`, if this set holds it.
    pub fn find(&self, role: Role) -> Option<String> {
        self.convention.name(role).filter(|n| self.tensors.contains_key(n))
    }

    /// Like [`find`](Self::find), with an error saying what is missing.
    pub fn expect(&self, role: Role) -> Result<String> {
        self.find(role).ok_or_else(|| {
            Error::run(format!(
                "weight set ({:?} naming, {} blocks) has no tensor for {role:?}",
                self.convention, self.n_blocks
            ))
        })
    }

    /// Candle tensors (f32, on `device`) by name, e.g. for `VarBuilder::from_tensors`.
    pub fn to_tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        self.tensors.iter().map(|(n, t)| Ok((n.clone(), t.to_tensor(device)?))).collect()
    }

    /// Same names and shapes (what an attack must preserve, and what a donor checkpoint
    /// must match).
    pub fn same_layout(&self, other: &WeightSet) -> bool {
        self.convention == other.convention
            && self.tensors.len() == other.tensors.len()
            && self.tensors.iter().zip(&other.tensors).all(|((n, a), (m, b))| n == m && a.shape == b.shape)
    }

    /// Tensors whose values differ bitwise from `before` (which must have the same
    /// layout), sorted by name.
    pub fn diff(&self, before: &WeightSet) -> Result<Vec<TensorChange>> {
        if !self.same_layout(before) {
            return Err(Error::run("diff of weight sets with different layouts"));
        }
        let mut out = Vec::new();
        for ((name, a), (_, b)) in self.tensors.iter().zip(&before.tensors) {
            if let Some(c) = tensor_change(name, b, a) {
                out.push(c);
            }
        }
        Ok(out)
    }
}

/// How `after` differs from `before`; `None` when they are bit-identical.
pub fn tensor_change(name: &str, before: &WTensor, after: &WTensor) -> Option<TensorChange> {
    let mut n_changed = 0;
    let mut diff2 = 0f64;
    for (&x, &y) in before.data.iter().zip(&after.data) {
        if x.to_bits() != y.to_bits() {
            n_changed += 1;
            let d = y as f64 - x as f64;
            diff2 += if d.is_finite() { d * d } else { f64::INFINITY };
        }
    }
    if n_changed == 0 {
        return None;
    }
    let base = before.frobenius();
    let rel_frobenius = if base > 0.0 { diff2.sqrt() / base } else { f64::INFINITY };
    Some(TensorChange { name: name.to_string(), n_changed, rel_frobenius })
}

impl fmt::Display for WeightSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tensors ({} values, {} blocks, {:?} naming)",
            self.tensors.len(),
            self.n_values(),
            self.n_blocks,
            self.convention
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_roles() {
        for conv in [Convention::Gguf, Convention::Hf] {
            for kind in Kind::BLOCK {
                let r = Role::block(7, kind);
                let n = conv.name(r).unwrap();
                assert_eq!(conv.role(&n), Some(r), "{n}");
            }
            for kind in [Kind::Embedding, Kind::Output, Kind::FinalNorm] {
                let n = conv.name(Role::global(kind)).unwrap();
                assert_eq!(conv.role(&n), Some(Role::global(kind)));
            }
            assert_eq!(conv.name(Role::global(Kind::AttnQ)), None);
        }
        assert_eq!(Convention::Gguf.name(Role::block(15, Kind::AttnV)).unwrap(), "blk.15.attn_v.weight");
        assert_eq!(
            Convention::Hf.name(Role::block(2, Kind::FfnDown)).unwrap(),
            "model.layers.2.mlp.down_proj.weight"
        );
        assert_eq!(Convention::Gguf.role("blk.x.attn_q.weight"), None);
        assert_eq!(Convention::Gguf.role("rope_freqs.weight"), None);
    }

    #[test]
    fn diff_counts_changed_values_and_relative_norm() {
        let mut t = BTreeMap::new();
        t.insert(
            "blk.0.attn_q.weight".to_string(),
            WTensor::new(vec![2, 2], vec![3.0, 0.0, 0.0, 4.0]).unwrap(),
        );
        t.insert("blk.1.attn_norm.weight".to_string(), WTensor::new(vec![2], vec![1.0, 1.0]).unwrap());
        let a = WeightSet::new(Convention::Gguf, t);
        assert_eq!(a.n_blocks(), 2);
        assert_eq!(a.matrices(), vec!["blk.0.attn_q.weight".to_string()]);
        assert_eq!(a.block(1), vec!["blk.1.attn_norm.weight".to_string()]);
        let mut b = a.clone();
        assert!(b.diff(&a).unwrap().is_empty());
        b.get_mut("blk.0.attn_q.weight").unwrap().data[1] = 0.5;
        let d = b.diff(&a).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].n_changed, 1);
        assert!((d[0].rel_frobenius - 0.1).abs() < 1e-12);
        // -0.0 vs 0.0 is a bit change.
        b.get_mut("blk.1.attn_norm.weight").unwrap().data[0] = 1.0;
        b.get_mut("blk.0.attn_q.weight").unwrap().data[2] = -0.0;
        assert_eq!(b.diff(&a).unwrap()[0].n_changed, 2);
    }
}

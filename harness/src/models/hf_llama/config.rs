//! The subset of Hugging Face's `LlamaConfig` (`config.json`) this backend runs, parsed
//! and validated before any tensor is read.
//!
//! Fields the backend cannot honour (rope scaling, biases, a non-SiLU activation) are
//! rejected with an error naming the file rather than silently computing a different
//! model: a fingerprint of the wrong function is worse than no fingerprint.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}

/// HF `LlamaConfig` fields read by the backend. Unknown fields are ignored, as
/// transformers itself does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Absent means multi-head attention (as many kv heads as query heads).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    pub vocab_size: usize,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Newer configs state the head size; older ones imply `hidden_size / heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default)]
    pub hidden_act: Option<String>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
}

impl LlamaConfig {
    /// Parse and validate `config.json`; every failure names the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        Self::from_json(&text, path)
    }

    /// Parse and validate JSON text; `origin` names the file in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        let cfg: LlamaConfig = serde_json::from_str(text)
            .map_err(|e| Error::model(origin, format!("not a valid llama config.json: {e}")))?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    pub fn n_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Check the shapes fit together and that nothing unsupported is asked for.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |m: String| Err(Error::model(origin, m));
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return bad(format!("`{name}` must be positive"));
            }
        }
        let kv = self.n_kv_heads();
        if kv == 0 || self.num_attention_heads % kv != 0 {
            return bad(format!(
                "`num_key_value_heads` ({kv}) must divide `num_attention_heads` ({})",
                self.num_attention_heads
            ));
        }
        if self.head_dim.is_none() && self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!(
                "`hidden_size` ({}) is not a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let hd = self.head_dim();
        if hd == 0 || hd % 2 != 0 {
            return bad(format!("head size {hd} must be positive and even for rotary embeddings"));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!("`rms_norm_eps` ({}) must be a positive number", self.rms_norm_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(format!("`rope_theta` ({}) must be a positive number", self.rope_theta));
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return bad(format!("`hidden_act` is `{act}`; only `silu` is supported"));
            }
        }
        match &self.rope_scaling {
            None | Some(serde_json::Value::Null) => {}
            Some(v) => return bad(format!("`rope_scaling` ({v}) is not supported")),
        }
        if self.attention_bias || self.mlp_bias {
            return bad("attention or MLP biases are not supported".into());
        }
        Ok(())
    }

    /// A complete HF `config.json` for this configuration, loadable by transformers'
    /// `LlamaForCausalLM`. The key order is fixed, so the bytes are stable.
    pub fn to_hf_json(&self, bos_token_id: u32, eos_token_id: u32) -> String {
        let v = serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.n_kv_heads(),
            "head_dim": self.head_dim(),
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": null,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "initializer_range": 0.02,
            "pretraining_tp": 1,
            "use_cache": true,
            "torch_dtype": "float32",
            "bos_token_id": bos_token_id,
            "eos_token_id": eos_token_id,
        });
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "vocab_size": 300, "max_position_embeddings": 128,
            "tie_word_embeddings": true
        })
    }

    fn parse(v: &serde_json::Value) -> Result<LlamaConfig> {
        LlamaConfig::from_json(&v.to_string(), Path::new("cfg/config.json"))
    }

    #[test]
    fn parses_and_roundtrips_through_hf_json() {
        let cfg = parse(&base()).unwrap();
        assert_eq!(cfg.n_kv_heads(), 2);
        assert_eq!(cfg.head_dim(), 16);
        let again = LlamaConfig::from_json(&cfg.to_hf_json(1, 2), Path::new("x")).unwrap();
        assert_eq!(again.hidden_size, 64);
        assert_eq!(again.head_dim, Some(16));
        assert!(again.tie_word_embeddings);
    }

    #[test]
    fn rejects_inconsistent_or_unsupported_configs() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("num_key_value_heads", serde_json::json!(3), "must divide"),
            ("num_hidden_layers", serde_json::json!(0), "must be positive"),
            ("hidden_size", serde_json::json!(66), "not a multiple"),
            ("rope_theta", serde_json::json!(-1.0), "rope_theta"),
            ("hidden_act", serde_json::json!("gelu"), "silu"),
            ("rope_scaling", serde_json::json!({"rope_type": "llama3"}), "rope_scaling"),
            ("vocab_size", serde_json::json!("many"), "not a valid llama config"),
        ];
        for (field, value, needle) in cases {
            let mut v = base();
            v[field] = value;
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains("cfg/config.json") && err.contains(needle), "{field}: {err}");
        }
    }
}

//! `config.json` of a Hugging Face BERT checkpoint, read strictly: every field the network
//! needs must be present and consistent, because a silently wrong size would only show up
//! later as a shape error deep inside a forward pass (or, worse, as plausible numbers).

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The feed-forward activation. Only the ones BERT checkpoints actually ship are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HiddenAct {
    /// Exact (erf) GELU, what `transformers` means by `"gelu"`.
    Gelu,
    Relu,
}

impl<'de> Deserialize<'de> for HiddenAct {
    /// By hand so that the error names the field (serde's own says only "unknown variant").
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "gelu" => Ok(HiddenAct::Gelu),
            "relu" => Ok(HiddenAct::Relu),
            other => Err(serde::de::Error::custom(format!(
                "hidden_act `{other}` is not supported (expected `gelu` or `relu`)"
            ))),
        }
    }
}

/// The fields of a BERT `config.json` this backend reads; others are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BertConfig {
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".to_string()
}

impl BertConfig {
    /// Read and validate `path`; every failure is an [`Error::Model`] naming the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::model(path, format!("cannot read: {e}")))?;
        Self::from_json(&text).map_err(|message| Error::model(path, message))
    }

    /// Parse and validate; the error is a message without the file name.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let cfg: BertConfig =
            serde_json::from_str(text).map_err(|e| format!("not a valid BERT config: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        match self.model_type.as_deref() {
            Some("bert") => {}
            Some(other) => return Err(format!("model_type is `{other}`, expected `bert`")),
            None => return Err("model_type is missing, expected `bert`".to_string()),
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                self.position_embedding_type
            ));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err(format!("{name} is 0"));
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return Err(format!("layer_norm_eps {} is not a small positive number", self.layer_norm_eps));
        }
        if self.pad_token_id as usize >= self.vocab_size {
            return Err(format!(
                "pad_token_id {} is outside vocab_size {}",
                self.pad_token_id, self.vocab_size
            ));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"architectures":["BertModel"],"hidden_act":"gelu","hidden_size":384,
        "intermediate_size":1536,"layer_norm_eps":1e-12,"max_position_embeddings":512,
        "model_type":"bert","num_attention_heads":12,"num_hidden_layers":6,"pad_token_id":0,
        "position_embedding_type":"absolute","type_vocab_size":2,"vocab_size":30522}"#;

    #[test]
    fn minilm_config_parses() {
        let c = BertConfig::from_json(MINILM).unwrap();
        assert_eq!((c.hidden_size, c.num_hidden_layers, c.head_dim()), (384, 6, 32));
        assert_eq!(c.hidden_act, HiddenAct::Gelu);
    }

    #[test]
    fn wrong_configs_are_rejected_with_the_field_named() {
        let cases = [
            (MINILM.replace(r#""model_type":"bert""#, r#""model_type":"gpt2""#), "model_type"),
            (MINILM.replace(r#""hidden_act":"gelu""#, r#""hidden_act":"swish""#), "hidden_act"),
            (MINILM.replace(r#""num_attention_heads":12"#, r#""num_attention_heads":7"#), "divisible"),
            (MINILM.replace(r#""hidden_size":384"#, r#""hidden_size":0"#), "hidden_size"),
            (MINILM.replace(r#""vocab_size":30522"#, r#""vocab_sz":30522"#), "vocab_size"),
            (MINILM.replace(r#""absolute""#, r#""relative_key""#), "position_embedding_type"),
        ];
        for (json, field) in cases {
            let err = BertConfig::from_json(&json).unwrap_err();
            assert!(err.contains(field), "`{err}` should name `{field}`");
        }
    }
}

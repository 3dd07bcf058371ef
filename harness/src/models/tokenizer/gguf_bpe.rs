//! A byte-level BPE tokenizer rebuilt from GGUF metadata.
//!
//! llama.cpp stores GPT-2 style tokenizers as `tokenizer.ggml.model = "gpt2"` with the
//! vocabulary, the merges, a per-token type (1 normal, 3 control, 4 user-defined, ...)
//! and a `pre` name selecting the pre-tokenizer regexes. We rebuild the equivalent
//! `tokenizers` pipeline per `pre` name and refuse names we have not checked against the
//! reference tokenizer, rather than tokenizing silently differently.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

use super::chat::{render_chat_template, ChatMessage};
use crate::error::{Error, Result};

/// llama.cpp token types (`llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The `pre` names this module implements.
pub const SUPPORTED_PRE: &[&str] = &["smollm", "gpt-2"];

/// A tokenizer read from a GGUF file, with the special ids and chat template it carries.
#[derive(Clone)]
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    path: PathBuf,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub pad_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token` (default false for gpt2 tokenizers).
    pub add_bos: bool,
    pub chat_template: Option<String>,
    /// Number of control tokens registered as special added tokens.
    pub n_special: usize,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("path", &self.path)
            .field("vocab", &self.vocab_size())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

impl GgufTokenizer {
    /// Read the tokenizer of the GGUF file at `path` (header only, no tensor data).
    pub fn load(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(Error::io(path))?;
        let mut reader = BufReader::new(file);
        let ct = gguf_file::Content::read(&mut reader)
            .map_err(|e| Error::model(path, format!("not a readable GGUF file: {e}")))?;
        Self::from_content(path, &ct)
    }

    /// Build from an already parsed header; `path` is only used in errors.
    pub fn from_content(path: &Path, ct: &gguf_file::Content) -> Result<Self> {
        let bad = |m: String| Error::model(path, format!("tokenizer: {m}"));
        let md = |k: &str| ct.metadata.get(k);
        let md_str = |k: &str| -> Result<Option<&String>> {
            match md(k) {
                None => Ok(None),
                Some(v) => v.to_string().map(Some).map_err(|_| bad(format!("`{k}` is not a string"))),
            }
        };
        let md_id = |k: &str| md(k).and_then(crate::models::gguf_llama::value_u64).map(|v| v as u32);

        let model = md_str("tokenizer.ggml.model")?
            .ok_or_else(|| bad("metadata has no `tokenizer.ggml.model`".into()))?;
        if model != "gpt2" {
            return Err(bad(format!(
                "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
            )));
        }
        let pre = md_str("tokenizer.ggml.pre")?.map(String::as_str).unwrap_or("default");
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            // HF SmolLM2 tokenizer.json: Sequence[Digits(individual), ByteLevel(no prefix space, regex)];
            // llama.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM: "\p{N}" then the GPT-2 regex.
            "smollm" => {
                Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into()
            }
            "gpt-2" => ByteLevel::new(false, true, true).into(),
            other => {
                return Err(bad(format!(
                    "pre-tokenizer `{other}` is not supported (supported: {})",
                    SUPPORTED_PRE.join(", ")
                )))
            }
        };

        let tokens = string_array(md("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens").map_err(bad)?;
        let merges = string_array(md("tokenizer.ggml.merges"), "tokenizer.ggml.merges").map_err(bad)?;
        let types: Vec<i64> = match md("tokenizer.ggml.token_type") {
            None => vec![1; tokens.len()],
            Some(v) => v
                .to_vec()
                .map_err(|_| bad("`tokenizer.ggml.token_type` is not an array".into()))?
                .iter()
                .map(int_value)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("`tokenizer.ggml.token_type` holds a non-integer".into()))?,
        };
        if types.len() != tokens.len() {
            return Err(bad(format!("{} token types for {} tokens", types.len(), tokens.len())));
        }
        if let Some(info) = ct.tensor_infos.get("token_embd.weight") {
            let rows = info.shape.dims().first().copied().unwrap_or(0);
            if rows != tokens.len() {
                return Err(bad(format!(
                    "vocabulary of {} tokens does not match the {rows} rows of token_embd.weight \
                     (tokenizer/model mismatch)",
                    tokens.len()
                )));
            }
        }

        let mut vocab = Vocab::default();
        for (i, t) in tokens.iter().enumerate() {
            if vocab.insert(t.to_string(), i as u32).is_some() {
                return Err(bad(format!("token `{t}` appears twice in the vocabulary")));
            }
        }
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| bad(format!("merge `{m}` is not two space-separated symbols")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| bad(format!("building BPE: {e}")))?;

        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        // Offsets only: no prefix space, keep offsets untrimmed (as HF's SmolLM2 file).
        tokenizer.with_post_processor(Some(ByteLevel::new(false, false, true)));
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TOKEN_TYPE_CONTROL)
            .map(|(s, _)| AddedToken::from(s.to_string(), true).normalized(false))
            .collect();
        let user: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TOKEN_TYPE_USER_DEFINED)
            .map(|(s, _)| AddedToken::from(s.to_string(), false).normalized(false))
            .collect();
        let n_special = special.len();
        tokenizer.add_special_tokens(special).map_err(|e| bad(format!("adding control tokens: {e}")))?;
        tokenizer.add_tokens(user).map_err(|e| bad(format!("adding user-defined tokens: {e}")))?;

        let in_vocab = |id: Option<u32>| id.filter(|&i| (i as usize) < tokens.len());
        Ok(Self {
            tokenizer,
            path: path.to_path_buf(),
            bos_id: in_vocab(md_id("tokenizer.ggml.bos_token_id")),
            eos_id: in_vocab(md_id("tokenizer.ggml.eos_token_id")),
            pad_id: in_vocab(md_id("tokenizer.ggml.padding_token_id")),
            add_bos: md("tokenizer.ggml.add_bos_token").and_then(|v| v.to_bool().ok()).unwrap_or(false),
            chat_template: md_str("tokenizer.chat_template")?.cloned(),
            n_special,
        })
    }

    /// The underlying `tokenizers` pipeline.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Token ids of `text`. Control tokens written in the text (`<|im_start|>`) map to
    /// their ids; BOS is prepended only when the file asks for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::input(format!("tokenizing with {}", self.path.display()), e.to_string()))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos {
            ids.extend(self.bos_id);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.tokenizer
            .decode(ids, skip_special)
            .map_err(|e| Error::input(format!("decoding with {}", self.path.display()), e.to_string()))
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Render the file's chat template for `messages`.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let what = self.path.display().to_string();
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| Error::model(&self.path, "metadata has no `tokenizer.chat_template`"))?;
        let tok = |id: Option<u32>| id.and_then(|i| self.id_to_token(i)).unwrap_or_default();
        render_chat_template(
            &what,
            template,
            messages,
            add_generation_prompt,
            &tok(self.bos_id),
            &tok(self.eos_id),
        )
    }
}

fn string_array<'a>(v: Option<&'a Value>, key: &str) -> std::result::Result<Vec<&'a str>, String> {
    let v = v.ok_or_else(|| format!("metadata has no `{key}`"))?;
    let arr = v.to_vec().map_err(|_| format!("`{key}` is not an array"))?;
    arr.iter()
        .map(|x| x.to_string().map(String::as_str).map_err(|_| format!("`{key}` holds a non-string")))
        .collect()
}

fn int_value(v: &Value) -> Option<i64> {
    match *v {
        Value::I8(x) => Some(x as i64),
        Value::I16(x) => Some(x as i64),
        Value::I32(x) => Some(x as i64),
        Value::I64(x) => Some(x),
        Value::U8(x) => Some(x as i64),
        Value::U16(x) => Some(x as i64),
        Value::U32(x) => Some(x as i64),
        Value::U64(x) => i64::try_from(x).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A tiny gpt2 GGUF header built in memory: tokens, merges, types.
    fn content(pre: &str, tokens: &[&str], merges: &[&str], types: &[i32]) -> gguf_file::Content {
        let mut metadata = HashMap::new();
        metadata.insert("tokenizer.ggml.model".to_string(), Value::String("gpt2".into()));
        metadata.insert("tokenizer.ggml.pre".to_string(), Value::String(pre.into()));
        let s = |v: &[&str]| Value::Array(v.iter().map(|t| Value::String(t.to_string())).collect());
        metadata.insert("tokenizer.ggml.tokens".to_string(), s(tokens));
        metadata.insert("tokenizer.ggml.merges".to_string(), s(merges));
        metadata.insert(
            "tokenizer.ggml.token_type".to_string(),
            Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
        );
        gguf_file::Content {
            magic: gguf_file::VersionedMagic::GgufV3,
            metadata,
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn builds_byte_level_bpe_with_control_tokens() {
        let ct = content(
            "smollm",
            &["<|x|>", "a", "b", "ab", "Ġ", "Ġab", "1", "2"],
            &["a b", "Ġ ab"],
            &[3, 1, 1, 1, 1, 1, 1, 1],
        );
        let t = GgufTokenizer::from_content(Path::new("t.gguf"), &ct).unwrap();
        assert_eq!(t.n_special, 1);
        // No prefix space: "ab" stays "ab"; digits split individually; control token kept whole.
        assert_eq!(t.encode("ab ab<|x|>12").unwrap(), vec![3, 5, 0, 6, 7]);
        assert_eq!(t.decode(&[3, 5], false).unwrap(), "ab ab");
    }

    #[test]
    fn unsupported_pre_is_a_model_error() {
        let ct = content("llama-bpe", &["a"], &[], &[1]);
        let e = GgufTokenizer::from_content(Path::new("t.gguf"), &ct).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(msg.contains("t.gguf") && msg.contains("llama-bpe"), "{msg}");
    }
}

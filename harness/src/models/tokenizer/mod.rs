//! Tokenizers built from model files.
//!
//! GGUF files carry their tokenizer in metadata (`tokenizer.ggml.*`); [`gguf_bpe`] turns
//! that into a `tokenizers::Tokenizer` ourselves instead of using candle's
//! `Tokenizer::from_gguf`, whose byte-level setup adds a prefix space (so "The" becomes
//! " The", id 390 instead of 504 for SmolLM2) and does not follow the file's `pre`
//! tokenizer. [`chat`] renders the file's Jinja chat template.

pub mod chat;
pub mod gguf_bpe;

pub use chat::{render_chat_template, ChatMessage};
pub use gguf_bpe::GgufTokenizer;

//! Models: the registry of real weights, their sources, and the backends that run them
//! with per-layer activation capture.

pub mod bert;
pub mod capture;
pub mod device;
pub mod fetch;
pub mod gguf_llama;
pub mod hf_llama;
pub mod inspect;
pub mod load;
pub mod registry;
pub mod text_capture;
pub mod tokenizer;
pub mod variants;

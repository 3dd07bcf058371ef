//! Models: the registry of real weights, their sources, and the backends that run them
//! with per-layer activation capture.

pub mod bert;
pub mod capture;
pub mod device;
pub mod fetch;
pub mod inspect;
pub mod registry;
pub mod gguf_llama;
pub mod tokenizer;

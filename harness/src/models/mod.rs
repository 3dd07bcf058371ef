//! Models: the registry of real weights, their sources, and the backends that run them
//! with per-layer activation capture.

pub mod capture;
pub mod device;
pub mod hf_llama;

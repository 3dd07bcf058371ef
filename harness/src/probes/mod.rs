//! Probe sets: the fixed inputs a model is fingerprinted on. Versioned files under
//! `datasets/probes/` (format and hashing in [`set`]), loaded with validation, hashed over
//! their canonical content, and cut to a token budget deterministically.

pub mod set;

pub use set::{dataset_dir, shipped, Budgeted, ProbeItem, ProbeSet, SHIPPED};

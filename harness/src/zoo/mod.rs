//! The synthetic model zoo: many small llama decoders trained from scratch on a seeded
//! synthetic corpus, saved as HF checkpoints at several training steps.
//!
//! The zoo gives the fingerprinting experiments a population with known ground truth
//! (same seed at different steps, different seeds at the same step, different widths)
//! that anyone can rebuild byte-identically with `gapbench zoo build`, instead of
//! downloading it. Pipeline: [`corpus`] → [`tokenizer`] → [`train`] → [`build`].

pub mod build;
pub mod corpus;
pub mod tokenizer;
pub mod train;

pub use build::{build_zoo, ZooEvent, ZooManifest, ZooModel, ZooSpec, ZooWidth};

/// Where a zoo of `size` trained with seeds shifted by `seed_offset` lives in the cache:
/// `<cache>/zoo/<size>-<seed_offset>` (`gapbench zoo build` writes it, experiments read it).
pub fn cache_dir(cache_root: &std::path::Path, size: &str, seed_offset: u64) -> std::path::PathBuf {
    cache_root.join("zoo").join(format!("{size}-{seed_offset}"))
}

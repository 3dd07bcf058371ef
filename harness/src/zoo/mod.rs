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

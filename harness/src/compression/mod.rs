//! Context compression: the same model computing over a silently compacted context
//! (`shared/research/compression.md`).
//!
//! The pipeline: [`session`] (the turn format with protected constraints) →
//! [`generator`] (seeded synthetic sessions with compaction events and ground truth) →
//! [`agent`] (policies acting on the compacted context; [`llm_agent`] is SmolLM2 acting
//! through its chat template) → [`signals`] (ghost lexicon
//! decay, context consistency, tool-call distribution shift, and their combination) →
//! [`transcript`] / [`event`] (reading real transcripts and writing compression-event
//! records for `gapbench monitor`).

pub mod agent;
pub mod event;
pub mod generator;
pub mod llm_agent;
pub mod session;
pub mod signals;
pub mod transcript;

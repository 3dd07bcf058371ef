//! Run records: everything a run writes under `results/<experiment>/<run-id>/`, written
//! atomically, and the pieces needed to resume, shard and merge runs.
//!
//! ```text
//! spec.json      the resolved experiment (its canonical-JSON sha256 is the spec hash)
//! record.json    provenance: spec hash, seed, git, crate versions, models, device, timing
//! samples.jsonl  one canonical JSON line per item, in item order
//! summary.json   {"experiment", "run_id", "spec_hash", "metrics": {"dotted.name": number}}
//! ```

pub mod atomic;
pub mod canonical;
pub mod diff;
pub mod drift;
pub mod env;
pub mod hashing;
pub mod run;
pub mod samples;
pub mod shard;
pub mod tolerance;

pub use run::{ModelUse, Record, RunDir, RunStatus, Summary};
pub use samples::Sample;
pub use shard::Shard;

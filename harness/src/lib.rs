//! gapbench: measure threat classes that agent credentials cannot see.
//!
//! The pipeline reads in the module names: [`spec`] → [`models`] → [`probes`] →
//! [`fingerprint`] → [`detect`] → [`record`] → figures, driven by [`runner`] over the kinds
//! in [`experiments`].
//! See the README's folder map and `shared/design/architecture.md`.

pub mod cli;
pub mod compression;
pub mod detect;
pub mod error;
pub mod experiments;
pub mod figures;
pub mod fingerprint;
pub mod models;
pub mod probes;
pub mod progress;
pub mod record;
pub mod report;
pub mod runner;
pub mod spec;
pub mod zoo;

pub use error::{Error, Result};

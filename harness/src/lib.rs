//! gapbench: measure threat classes that agent credentials cannot see.
//!
//! The pipeline reads in the module names: [`spec`] → [`models`] → probes → fingerprint →
//! detect → [`record`] → figures. See the README's folder map and
//! `shared/design/architecture.md`.

pub mod error;
pub mod models;
pub mod zoo;

pub use error::{Error, Result};

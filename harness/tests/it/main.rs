//! The one integration-test binary (ripgrep-style): each area is a module.

mod bert;
mod capture_cli;
mod common;
mod compression;
mod detect_tiny;
mod fingerprint_cli;
mod foundation;
mod gguf;
mod llm_agent;
mod monitor;
mod report;
mod reproduce;
mod substitution;
mod variants;
mod zoo;

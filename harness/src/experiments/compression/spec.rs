//! `[compression]` as written and resolved.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::compression::generator::{parse_specs, SessionSpec};
use crate::error::{Error, Result};
use crate::experiments::Params;
use crate::models::registry::{ModelEntry, Registry};
use crate::spec::SpecSource;

/// One cell of the 2 × 2 design: named conditions of the session-spec file, cycled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// `on-clean`, `on-confound`, `off-clean`, `off-confound`.
    pub name: String,
    /// A constraint is lost at compaction (the positive class).
    pub compression: bool,
    pub confound: bool,
    /// Condition names from the session-spec file.
    pub conditions: Vec<String>,
    pub sessions: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionParams {
    /// Path of the session-spec file, relative to the repository root (for the record).
    pub sessions_file: String,
    /// The resolved conditions (name → spec), so the spec hash covers them.
    pub conditions: Vec<(String, SessionSpec)>,
    pub cells: Vec<Cell>,
    /// Fraction of sessions (by seeded hash) that calibrates the combiner and thresholds.
    pub calibration_fraction: f64,
    /// Target false-alarm rate of the combined detector.
    pub target_far: f64,
    /// Window-correction significance for lexicon decay.
    pub lexicon_alpha: f64,
    /// Add-α smoothing of the tool distributions.
    pub tool_smoothing: f64,
    /// The embedding model of the consistency signal.
    pub embedder: ModelEntry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompression {
    pub sessions_file: String,
    pub cells: Vec<Cell>,
    #[serde(default = "cal")]
    pub calibration_fraction: f64,
    #[serde(default = "far")]
    pub target_far: f64,
    #[serde(default = "lex")]
    pub lexicon_alpha: f64,
    #[serde(default = "smooth")]
    pub tool_smoothing: f64,
    pub embedder: Spanned<String>,
}

fn cal() -> f64 {
    0.3
}
fn far() -> f64 {
    0.01
}
fn lex() -> f64 {
    0.05
}
fn smooth() -> f64 {
    0.5
}

pub fn resolve(
    raw: Option<Spanned<RawCompression>>,
    src: &SpecSource,
    registry: &Registry,
) -> Result<Params> {
    let file = src.path.display().to_string();
    let Some(raw) = raw else {
        return Err(Error::input(file, "kind `compression` needs a `[compression]` table"));
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let bad =
        |field: &str, m: String| src.error_at(span.clone(), format!("field `compression.{field}`: {m}"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join(&raw.sessions_file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad("sessions_file", format!("{}: {e}", path.display())))?;
    let conditions = parse_specs(&text, &path.display().to_string())?;
    if raw.cells.is_empty() {
        return Err(bad("cells", "at least one cell".into()));
    }
    for c in &raw.cells {
        if c.sessions == 0 || c.conditions.is_empty() {
            return Err(bad("cells", format!("cell `{}` needs sessions >= 1 and a condition", c.name)));
        }
        if c.name.is_empty() || c.name.contains(['/', '.']) {
            return Err(bad("cells", format!("cell name `{}` must be non-empty without `/` or `.`", c.name)));
        }
        for n in &c.conditions {
            if !conditions.iter().any(|(k, _)| k == n) {
                return Err(bad(
                    "cells",
                    format!("cell `{}`: no condition `{n}` in {}", c.name, raw.sessions_file),
                ));
            }
        }
    }
    if !raw.cells.iter().any(|c| c.compression) || !raw.cells.iter().any(|c| !c.compression) {
        return Err(bad("cells", "need cells with and without compression loss".into()));
    }
    if !(raw.calibration_fraction > 0.0 && raw.calibration_fraction < 1.0) {
        return Err(bad("calibration_fraction", "must lie in (0, 1)".into()));
    }
    if !(raw.target_far > 0.0 && raw.target_far < 1.0) {
        return Err(bad("target_far", "must lie in (0, 1)".into()));
    }
    let entry = |s: &Spanned<String>, field: &str| -> Result<ModelEntry> {
        registry
            .get(s.get_ref())
            .cloned()
            .map_err(|e| src.error_at(s.span(), format!("field `compression.{field}`: {e}")))
    };
    let embedder = entry(&raw.embedder, "embedder")?;
    if embedder.architecture != "bert" {
        return Err(src
            .error_at(raw.embedder.span(), "field `compression.embedder`: must be a bert sentence encoder"));
    }
    Ok(Params::Compression(Box::new(CompressionParams {
        sessions_file: raw.sessions_file,
        conditions,
        cells: raw.cells,
        calibration_fraction: raw.calibration_fraction,
        target_far: raw.target_far,
        lexicon_alpha: raw.lexicon_alpha,
        tool_smoothing: raw.tool_smoothing,
        embedder,
    })))
}

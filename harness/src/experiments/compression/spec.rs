//! `[compression]` as written and resolved.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::compression::generator::{parse_specs, SessionSpec};
use crate::compression::llm_agent::LlmBudgets;
use crate::error::{Error, Result};
use crate::experiments::Params;
use crate::models::gguf_llama::WeightMode;
use crate::models::registry::Format;
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
    /// The LLM-backed subset; absent from the resolved spec when not declared, so specs
    /// written before it hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSubset>,
}

/// Sessions run by the LLM-backed agent with LLM summaries (`[compression.llm]`): the
/// first `sessions_per_cell` sessions of every cell, same seeds as the scripted ones, with
/// `session` overrides applied to every condition (shorter sessions: CPU decoding is slow).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSubset {
    pub model: ModelEntry,
    /// Kernels the agent runs on.
    pub weights: WeightMode,
    /// What a `model_swap` confound switches the agent to.
    pub swap_weights: WeightMode,
    pub sessions_per_cell: usize,
    /// The cells' conditions with the overrides applied (name → spec).
    pub conditions: Vec<(String, SessionSpec)>,
    pub budgets: LlmBudgets,
}

impl LlmSubset {
    pub fn condition(&self, name: &str) -> Result<&SessionSpec> {
        self.conditions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::run(format!("no LLM condition `{name}`")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlm {
    pub model: Spanned<String>,
    /// Default `f32` (dequantized: ~10x faster than the shipped Q4_1 kernels on CPU).
    pub weights: Option<Spanned<String>>,
    pub swap_weights: Spanned<String>,
    pub sessions_per_cell: usize,
    /// Session-spec fields that override every condition (e.g. `post_steps`, `trigger`,
    /// `summariser = "llm"`).
    #[serde(default)]
    pub session: toml::Table,
    #[serde(default)]
    pub budgets: LlmBudgets,
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
    pub llm: Option<Spanned<RawLlm>>,
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
    let llm = match raw.llm {
        Some(l) => Some(resolve_llm(l, &raw.cells, &conditions, src, registry)?),
        None => None,
    };
    Ok(Params::Compression(Box::new(CompressionParams {
        sessions_file: raw.sessions_file,
        conditions,
        cells: raw.cells,
        calibration_fraction: raw.calibration_fraction,
        target_far: raw.target_far,
        lexicon_alpha: raw.lexicon_alpha,
        tool_smoothing: raw.tool_smoothing,
        embedder,
        llm,
    })))
}

fn resolve_llm(
    raw: Spanned<RawLlm>,
    cells: &[Cell],
    conditions: &[(String, SessionSpec)],
    src: &SpecSource,
    registry: &Registry,
) -> Result<LlmSubset> {
    let span = raw.span();
    let raw = raw.into_inner();
    let bad =
        |field: &str, m: String| src.error_at(span.clone(), format!("field `compression.llm.{field}`: {m}"));
    let model = registry
        .get(raw.model.get_ref())
        .cloned()
        .map_err(|e| src.error_at(raw.model.span(), format!("field `compression.llm.model`: {e}")))?;
    if model.format != Format::Gguf || model.architecture != "llama" {
        return Err(
            src.error_at(raw.model.span(), "field `compression.llm.model`: must be a llama GGUF chat model")
        );
    }
    let mode = |s: &Spanned<String>, field: &str| -> Result<WeightMode> {
        s.get_ref()
            .parse()
            .map_err(|e: String| src.error_at(s.span(), format!("field `compression.llm.{field}`: {e}")))
    };
    let weights = match &raw.weights {
        Some(w) => mode(w, "weights")?,
        None => WeightMode::F32,
    };
    let swap_weights = mode(&raw.swap_weights, "swap_weights")?;
    if swap_weights == weights {
        return Err(src.error_at(
            raw.swap_weights.span(),
            "field `compression.llm.swap_weights`: must differ from `weights` (a model swap changes the model)",
        ));
    }
    if raw.sessions_per_cell == 0 || cells.iter().any(|c| raw.sessions_per_cell > c.sessions) {
        return Err(bad(
            "sessions_per_cell",
            "must be at least 1 and at most every cell's `sessions`".into(),
        ));
    }
    let b = &raw.budgets;
    if b.rationale == 0 || b.answer == 0 || b.summary == 0 {
        return Err(bad("budgets", "every budget must be at least 1 token".into()));
    }
    // Overrides go through JSON so that unknown or mistyped fields fail as in the file.
    let over = serde_json::to_value(&raw.session).map_err(|e| bad("session", e.to_string()))?;
    let over = over.as_object().cloned().unwrap_or_default();
    let mut used: Vec<&str> = cells.iter().flat_map(|c| c.conditions.iter().map(String::as_str)).collect();
    used.sort();
    used.dedup();
    let mut out = Vec::new();
    for name in used {
        let base = &conditions.iter().find(|(n, _)| n == name).expect("cells were checked").1;
        let mut v = serde_json::to_value(base).map_err(|e| bad("session", e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.extend(over.clone());
        }
        let spec: SessionSpec = serde_json::from_value(v).map_err(|e| bad("session", e.to_string()))?;
        spec.validate(&format!("{}: compression.llm.session (condition `{name}`)", src.path.display()))?;
        out.push((name.to_string(), spec));
    }
    Ok(LlmSubset {
        model,
        weights,
        swap_weights,
        sessions_per_cell: raw.sessions_per_cell,
        conditions: out,
        budgets: raw.budgets,
    })
}

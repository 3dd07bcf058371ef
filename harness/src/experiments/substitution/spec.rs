//! `[substitution]` as written, and its resolution into [`SubstitutionParams`].

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::experiments::Params;
use crate::fingerprint::FingerprintConfig;
use crate::models::gguf_llama::WeightMode;
use crate::models::registry::{ModelEntry, Registry};
use crate::models::variants::VariantSpec;
use crate::probes;
use crate::spec::SpecSource;

/// Which substitution class a run measures (a label for records and figures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    SameFamily,
    SupplyChain,
}

/// One attack swept over severities. `attack` is the attack's table without `severity`
/// (see the README's attack table), e.g. `{ attack = "low-rank-edit", kind = "attn-v" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Unique label in results (`weight-noise`, `requant-q4_0`).
    pub label: String,
    pub attack: serde_json::Value,
    /// Severities swept; empty for attacks whose severity is fixed by their parameters
    /// (`requant`).
    #[serde(default)]
    pub severities: Vec<f64>,
    /// The severity the headline targets are reported at (one of `severities`).
    #[serde(default)]
    pub default: Option<f64>,
    /// Draws per severity (attack seed and probe nuisance vary per draw; draw 0 runs the
    /// canonical probe configuration).
    #[serde(default = "two")]
    pub draws: usize,
    /// Draws at the default severity (headline TPR needs more).
    #[serde(default = "eight")]
    pub default_draws: usize,
}

fn two() -> usize {
    2
}
fn eight() -> usize {
    8
}

impl Sweep {
    /// The concrete attack at `severity` (ignored when the sweep has none).
    pub fn at(&self, severity: Option<f64>) -> Result<VariantSpec> {
        let mut v = self.attack.clone();
        let obj = v
            .as_object_mut()
            .ok_or_else(|| Error::input(format!("variant `{}`", self.label), "`attack` must be a table"))?;
        if let Some(s) = severity {
            obj.insert("severity".into(), serde_json::json!(s));
        }
        serde_json::from_value(v)
            .map_err(|e| Error::input(format!("variant `{}`", self.label), e.to_string()))
    }

    /// Severities as (item label, value); one unlabeled entry for fixed-severity attacks.
    pub fn points(&self) -> Vec<(String, Option<f64>)> {
        if self.severities.is_empty() {
            vec![("fixed".into(), None)]
        } else {
            self.severities.iter().map(|&s| (severity_label(s), Some(s))).collect()
        }
    }

    pub fn draws_at(&self, severity: Option<f64>) -> usize {
        if severity.is_none() || severity == self.default {
            self.draws.max(self.default_draws)
        } else {
            self.draws
        }
    }
}

/// `10`, `1e-3`, `2p5e-1` (for 0.25): integers as they are, everything else in
/// scientific notation with `.` written `p`, so labels never split a dotted metric name.
pub fn severity_label(s: f64) -> String {
    if s.fract() == 0.0 && s.abs() < 1e6 {
        format!("{s}")
    } else {
        format!("{s:e}").replace('.', "p")
    }
}

/// The real model under test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealSubject {
    pub model: ModelEntry,
    /// Enrolled kernel paths (weight modes); the first is the one substitutes run on.
    pub paths: Vec<WeightMode>,
    /// Benign nuisance draws on the first path.
    pub null_draws: usize,
    /// Benign nuisance draws on each further path.
    pub other_path_draws: usize,
    pub variants: Vec<Sweep>,
}

/// Zoo models under test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZooSubjects {
    /// `standard` or `tiny` (see `gapbench zoo build`).
    pub size: String,
    /// Enrolled checkpoints.
    pub enrol: Vec<String>,
    pub null_draws: usize,
    /// Fingerprint every zoo checkpoint: the other-checkpoint substitutes of each enrolled
    /// model (same width) and the distinct-pair false-accept count.
    pub all_checkpoints: bool,
    /// Attacks applied to each enrolled checkpoint.
    pub variants: Vec<Sweep>,
}

/// Detection against the probe-token budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Power {
    pub tokens: Vec<usize>,
    pub null_draws: usize,
    /// `(sweep label, severity)` at each budget, one draw each (seeded like draw 1).
    pub variants: Vec<(String, Option<f64>)>,
    pub draws: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubstitutionParams {
    pub class: Class,
    pub probes: String,
    pub probe_sha256: String,
    pub tokens: usize,
    pub max_seq_len: usize,
    pub batch_size: usize,
    /// Target false-reject rates for thresholds.
    pub alphas: Vec<f64>,
    /// Decision band: accept `d <= tau`, reject `d > margin tau`, inconclusive between.
    pub margin: f64,
    /// Smallest threshold ever used, declared up front (not fitted): benign nuisance
    /// within one kernel path is often bit-exact on one machine, which calibrates a
    /// threshold of 0 that another machine's rounding would break.
    pub tau_floor: f64,
    /// Fraction of null draws used for calibration (the rest evaluate).
    pub calibration_fraction: f64,
    /// Null draws cycle through every batch size in pairs and the calibration split is
    /// stratified by kernel path and batch size (recommended). Off: batch sizes are
    /// drawn at random and the split is a seeded hash, as in runs made before this
    /// option existed (left out of the canonical JSON when off, so their hash holds).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stratify: bool,
    /// TPR the minimum detectable severity must reach.
    pub target_tpr: f64,
    pub fingerprint: FingerprintConfig,
    pub real: Option<RealSubject>,
    pub zoo: Option<ZooSubjects>,
    pub power: Option<Power>,
}

// ---- as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubstitution {
    pub class: Class,
    #[serde(default = "default_probes")]
    pub probes: String,
    #[serde(default = "default_tokens")]
    pub tokens: usize,
    #[serde(default = "default_max_seq_len")]
    pub max_seq_len: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_alphas")]
    pub alphas: Vec<f64>,
    #[serde(default = "default_margin")]
    pub margin: f64,
    #[serde(default = "default_tau_floor")]
    pub tau_floor: f64,
    #[serde(default = "default_cal_fraction")]
    pub calibration_fraction: f64,
    #[serde(default)]
    pub stratify: bool,
    #[serde(default = "default_target")]
    pub target_tpr: f64,
    pub real: Option<RawReal>,
    pub zoo: Option<ZooSubjects>,
    pub power: Option<RawPower>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReal {
    pub model: Spanned<String>,
    pub paths: Vec<String>,
    pub null_draws: usize,
    #[serde(default)]
    pub other_path_draws: usize,
    #[serde(default)]
    pub variants: Vec<Sweep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPower {
    pub tokens: Vec<usize>,
    pub null_draws: usize,
    /// Sweep labels, run at their default severity.
    pub variants: Vec<String>,
    #[serde(default = "one")]
    pub draws: usize,
}

fn one() -> usize {
    1
}
pub(crate) fn default_probes() -> String {
    "general-en-v1".into()
}
fn default_tokens() -> usize {
    512
}
pub(crate) fn default_max_seq_len() -> usize {
    128
}
pub(crate) fn default_batch() -> usize {
    8
}
fn default_alphas() -> Vec<f64> {
    vec![1e-2, 1e-3]
}
fn default_margin() -> f64 {
    4.0
}
/// The default declared threshold floor (`tau_floor`); also the limit for fingerprint
/// drift in kinds that declare none (clustering).
pub const DEFAULT_TAU_FLOOR: f64 = 1e-6;
fn default_tau_floor() -> f64 {
    DEFAULT_TAU_FLOOR
}
fn default_cal_fraction() -> f64 {
    0.5
}
fn default_target() -> f64 {
    0.99
}

pub fn resolve(
    raw: Option<Spanned<RawSubstitution>>,
    src: &SpecSource,
    registry: &Registry,
) -> Result<Params> {
    let file = src.path.display().to_string();
    let Some(raw) = raw else {
        return Err(Error::input(file, "kind `substitution` needs a `[substitution]` table"));
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let bad =
        |field: &str, m: String| src.error_at(span.clone(), format!("field `substitution.{field}`: {m}"));
    let probe_set =
        probes::shipped(&probes::dataset_dir(), &raw.probes).map_err(|e| bad("probes", e.to_string()))?;
    if raw.tokens < 16 || raw.max_seq_len == 0 || raw.batch_size == 0 {
        return Err(bad("tokens", "tokens >= 16, max_seq_len >= 1 and batch_size >= 1 required".into()));
    }
    if raw.alphas.is_empty() || raw.alphas.iter().any(|a| !(*a > 0.0 && *a < 1.0)) {
        return Err(bad("alphas", "each alpha must lie in (0, 1)".into()));
    }
    if !(raw.margin >= 1.0 && raw.margin.is_finite()) {
        return Err(bad("margin", format!("{} must be >= 1", raw.margin)));
    }
    if !(raw.tau_floor >= 0.0 && raw.tau_floor.is_finite()) {
        return Err(bad("tau_floor", format!("{} must be a finite number >= 0", raw.tau_floor)));
    }
    if !(raw.calibration_fraction > 0.0 && raw.calibration_fraction < 1.0) {
        return Err(bad("calibration_fraction", "must lie in (0, 1)".into()));
    }
    if !(raw.target_tpr > 0.0 && raw.target_tpr <= 1.0) {
        return Err(bad("target_tpr", "must lie in (0, 1]".into()));
    }
    let check_sweeps = |sweeps: &[Sweep], field: &str| -> Result<()> {
        let mut labels = std::collections::BTreeSet::new();
        for s in sweeps {
            if !labels.insert(s.label.clone()) || s.label.is_empty() || s.label.contains('/') {
                return Err(bad(field, format!("label `{}` is empty, repeated or holds `/`", s.label)));
            }
            if s.draws == 0 {
                return Err(bad(field, format!("`{}`: draws must be >= 1", s.label)));
            }
            if let Some(d) = s.default {
                if !s.severities.contains(&d) {
                    return Err(bad(
                        field,
                        format!("`{}`: default {d} is not among the severities", s.label),
                    ));
                }
            }
            let is_ft = s.attack.get("attack").and_then(|a| a.as_str()) == Some("further-training");
            for (_, sev) in s.points() {
                let mut probe = s.clone();
                if is_ft {
                    // The zoo directory is filled in at run time.
                    probe.attack.as_object_mut().map(|o| o.insert("model".into(), serde_json::json!("zoo")));
                }
                probe.at(sev).map_err(|e| bad(field, e.to_string()))?;
            }
        }
        Ok(())
    };
    let real = match raw.real {
        None => None,
        Some(r) => {
            let model = registry
                .get(r.model.get_ref())
                .map_err(|e| src.error_at(r.model.span(), format!("field `substitution.real.model`: {e}")))?
                .clone();
            let paths = r
                .paths
                .iter()
                .map(|p| p.parse::<WeightMode>().map_err(|e| bad("real.paths", e)))
                .collect::<Result<Vec<_>>>()?;
            if paths.is_empty() || r.null_draws < 4 {
                return Err(bad("real", "at least one path and 4 null draws needed".into()));
            }
            check_sweeps(&r.variants, "real.variants")?;
            Some(RealSubject {
                model,
                paths,
                null_draws: r.null_draws,
                other_path_draws: r.other_path_draws,
                variants: r.variants,
            })
        }
    };
    if let Some(z) = &raw.zoo {
        if z.size != "standard" && z.size != "tiny" {
            return Err(bad("zoo.size", format!("`{}`: expected `standard` or `tiny`", z.size)));
        }
        if z.enrol.is_empty() || z.null_draws < 4 {
            return Err(bad("zoo", "at least one enrolled checkpoint and 4 null draws needed".into()));
        }
        check_sweeps(&z.variants, "zoo.variants")?;
    }
    let power = match raw.power {
        None => None,
        Some(p) => {
            let Some(r) = &real else {
                return Err(bad("power", "needs `[substitution.real]`".into()));
            };
            if p.tokens.is_empty() || p.tokens.iter().any(|&t| t < 16) || p.null_draws < 2 || p.draws == 0 {
                return Err(bad("power", "token budgets >= 16, null_draws >= 2, draws >= 1".into()));
            }
            let variants = p
                .variants
                .iter()
                .map(|l| {
                    let s = r.variants.iter().find(|s| &s.label == l).ok_or_else(|| {
                        bad("power.variants", format!("`{l}` is not a label of `real.variants`"))
                    })?;
                    Ok((l.clone(), s.default))
                })
                .collect::<Result<Vec<_>>>()?;
            Some(Power { tokens: p.tokens, null_draws: p.null_draws, variants, draws: p.draws })
        }
    };
    if real.is_none() && raw.zoo.is_none() {
        return Err(bad(
            "real",
            "name a real model (`[substitution.real]`) or the zoo (`[substitution.zoo]`)".into(),
        ));
    }
    Ok(Params::Substitution(Box::new(SubstitutionParams {
        class: raw.class,
        probes: raw.probes,
        probe_sha256: probe_set.sha256().to_string(),
        tokens: raw.tokens,
        max_seq_len: raw.max_seq_len,
        batch_size: raw.batch_size,
        alphas: raw.alphas,
        margin: raw.margin,
        tau_floor: raw.tau_floor,
        calibration_fraction: raw.calibration_fraction,
        stratify: raw.stratify,
        target_tpr: raw.target_tpr,
        fingerprint: FingerprintConfig::default(),
        real,
        zoo: raw.zoo,
        power,
    })))
}

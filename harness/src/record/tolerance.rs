//! Reproduction tolerances, declared in the spec *before* a run (`[reproduce]`), so a
//! mismatch cannot be argued away after the fact by loosening them: they are part of the
//! resolved experiment, and changing them changes the spec hash.
//!
//! The default is exact: on the same machine a run reproduces byte for byte (see README
//! "Determinism"). Across machines, floating-point reductions and SIMD paths differ, and
//! a spec may allow, for example, `rel = 1e-6` on one metric family.
//!
//! ```toml
//! [reproduce]
//! rel = 0.0          # default for every metric
//! abs = 0.0
//! [[reproduce.metric]]
//! prefix = "real.cka."   # longest matching prefix wins
//! rel = 1e-9
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Relative tolerance: `|a - b| <= abs + rel * max(|a|, |b|)`.
    #[serde(default)]
    pub rel: f64,
    #[serde(default)]
    pub abs: f64,
    /// Per-metric overrides by name prefix.
    #[serde(default, rename = "metric", skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricTolerance>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTolerance {
    pub prefix: String,
    #[serde(default)]
    pub rel: f64,
    #[serde(default)]
    pub abs: f64,
}

impl Tolerance {
    /// Exact reproduction (the default; left out of the spec hash so specs written
    /// before tolerances existed keep their hash).
    pub fn is_exact(&self) -> bool {
        *self == Self::default()
    }

    /// Check the values are usable; `field` names the spec table in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !ok(self.rel) || !ok(self.abs) {
            return Err(Error::input(field, "`rel` and `abs` must be finite and >= 0"));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if m.prefix.is_empty() {
                return Err(Error::input(format!("{field}.metric[{i}].prefix"), "must not be empty"));
            }
            if !ok(m.rel) || !ok(m.abs) {
                return Err(Error::input(
                    format!("{field}.metric[{i}]"),
                    "`rel` and `abs` must be finite and >= 0",
                ));
            }
        }
        Ok(())
    }

    /// `(rel, abs)` for one metric: the longest matching prefix, else the default.
    pub fn for_metric(&self, name: &str) -> (f64, f64) {
        self.metrics
            .iter()
            .filter(|m| name.starts_with(&m.prefix))
            .max_by_key(|m| m.prefix.len())
            .map(|m| (m.rel, m.abs))
            .unwrap_or((self.rel, self.abs))
    }

    /// This tolerance with every relative bound raised to at least `rel` (the
    /// cross-machine floor, `record::drift::CROSS_MACHINE_REL`).
    pub fn at_least_rel(&self, rel: f64) -> Tolerance {
        Tolerance {
            rel: self.rel.max(rel),
            abs: self.abs,
            metrics: self
                .metrics
                .iter()
                .map(|m| MetricTolerance { rel: m.rel.max(rel), ..m.clone() })
                .collect(),
        }
    }

    pub fn accepts(&self, name: &str, recorded: f64, reproduced: f64) -> bool {
        let (rel, abs) = self.for_metric(name);
        recorded == reproduced
            || (recorded - reproduced).abs() <= abs + rel * recorded.abs().max(reproduced.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_default_is_exact() {
        let t = Tolerance {
            rel: 0.0,
            abs: 0.0,
            metrics: vec![
                MetricTolerance { prefix: "real.".into(), rel: 1e-3, abs: 0.0 },
                MetricTolerance { prefix: "real.cka.".into(), rel: 0.0, abs: 0.5 },
            ],
        };
        assert!(t.accepts("real.identity.x", 1.0, 1.0005));
        assert!(!t.accepts("real.identity.x", 1.0, 1.01));
        assert!(t.accepts("real.cka.x", 1.0, 1.4));
        assert!(!t.accepts("zoo.x", 1.0, 1.0 + 1e-15));
        assert!(Tolerance::default().is_exact());
        assert!(Tolerance::default().accepts("any", 0.25, 0.25));
    }

    #[test]
    fn bad_values_name_the_field() {
        let t = Tolerance { rel: -1.0, ..Default::default() };
        assert!(t.validate("reproduce").unwrap_err().to_string().contains("reproduce"));
        let t = Tolerance {
            metrics: vec![MetricTolerance { prefix: "".into(), rel: 0.0, abs: 0.0 }],
            ..Default::default()
        };
        assert!(t.validate("reproduce").unwrap_err().to_string().contains("reproduce.metric[0].prefix"));
    }
}

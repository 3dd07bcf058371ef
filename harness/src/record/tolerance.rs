//! Reproduction tolerances, declared in the spec *before* a run (`[reproduce]`), so a
//! mismatch cannot be argued away after the fact by loosening them: they are part of the
//! resolved experiment, and changing them changes the spec hash.
//!
//! The default is exact: on the same machine a run reproduces byte for byte (see README
//! "Determinism"). Across machines, floating-point reductions and SIMD paths differ; a
//! spec declares, per metric family, how far a metric may move *there*
//! (`[[reproduce.across_machines]]`), in the metric's own units, with the reason beside
//! it. Those rules are never applied on the machine a run was recorded on.
//!
//! ```toml
//! [reproduce]
//! rel = 0.0          # default for every metric
//! abs = 0.0
//! [[reproduce.metric]]
//! prefix = "real.cka."   # the most specific match wins
//! rel = 1e-9
//! [[reproduce.across_machines]]
//! pattern = "*.median"   # `*` matches any run of characters, dots included
//! abs = 2e-6
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
    /// Per-metric overrides, by name prefix or pattern.
    #[serde(default, rename = "metric", skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricTolerance>,
    /// What a metric may additionally do on another machine: a metric outside the rules
    /// above still passes there when a matching rule here accepts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub across_machines: Vec<MetricTolerance>,
}

/// One rule: the metrics it covers (`prefix`, or a `pattern` with `*` wildcards; exactly
/// one of them) and their bound.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTolerance {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default)]
    pub rel: f64,
    #[serde(default)]
    pub abs: f64,
}

impl MetricTolerance {
    pub fn prefix(prefix: &str, rel: f64, abs: f64) -> Self {
        MetricTolerance { prefix: prefix.into(), pattern: None, rel, abs }
    }

    pub fn pattern(pattern: &str, rel: f64, abs: f64) -> Self {
        MetricTolerance { prefix: String::new(), pattern: Some(pattern.into()), rel, abs }
    }

    fn validate(&self, field: &str) -> Result<()> {
        match &self.pattern {
            Some(_) if !self.prefix.is_empty() => {
                return Err(Error::input(field, "give `prefix` or `pattern`, not both"))
            }
            Some(p) => {
                glob::Pattern::new(p)
                    .map_err(|e| Error::input(format!("{field}.pattern"), format!("`{p}`: {e}")))?;
            }
            None if self.prefix.is_empty() => {
                return Err(Error::input(format!("{field}.prefix"), "must not be empty"))
            }
            None => {}
        }
        if !finite_non_negative(self.rel) || !finite_non_negative(self.abs) {
            return Err(Error::input(field, "`rel` and `abs` must be finite and >= 0"));
        }
        Ok(())
    }

    /// How specifically this rule names `metric`: the number of literal characters that
    /// matched, or None when it does not cover it.
    fn specificity(&self, metric: &str) -> Option<usize> {
        match &self.pattern {
            None => metric.starts_with(&self.prefix).then_some(self.prefix.len()),
            Some(p) => glob::Pattern::new(p)
                .ok()
                .filter(|g| g.matches(metric))
                .map(|_| p.chars().filter(|&c| c != '*').count()),
        }
    }

    fn within(&self, recorded: f64, reproduced: f64) -> bool {
        within(self.rel, self.abs, recorded, reproduced)
    }
}

fn finite_non_negative(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

fn within(rel: f64, abs: f64, a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= abs + rel * a.abs().max(b.abs())
}

impl Tolerance {
    /// Exact reproduction (the default; left out of the spec hash so specs written
    /// before tolerances existed keep their hash).
    pub fn is_exact(&self) -> bool {
        *self == Self::default()
    }

    /// Check the values are usable; `field` names the spec table in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        if !finite_non_negative(self.rel) || !finite_non_negative(self.abs) {
            return Err(Error::input(field, "`rel` and `abs` must be finite and >= 0"));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            m.validate(&format!("{field}.metric[{i}]"))?;
        }
        for (i, m) in self.across_machines.iter().enumerate() {
            m.validate(&format!("{field}.across_machines[{i}]"))?;
        }
        Ok(())
    }

    /// `(rel, abs)` for one metric on the recording machine: the most specific matching
    /// rule (the longest prefix, or the pattern with the most literal characters), else
    /// the default.
    pub fn for_metric(&self, name: &str) -> (f64, f64) {
        self.metrics
            .iter()
            .filter_map(|m| m.specificity(name).map(|s| (s, m)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, m)| (m.rel, m.abs))
            .unwrap_or((self.rel, self.abs))
    }

    /// The tolerance reproduce compares under on another machine: every relative bound
    /// raised to at least `rel` (the cross-machine floor,
    /// `record::drift::CROSS_MACHINE_REL`), the `across_machines` rules kept.
    pub fn across_machines(&self, rel: f64) -> Tolerance {
        Tolerance {
            rel: self.rel.max(rel),
            abs: self.abs,
            metrics: self
                .metrics
                .iter()
                .map(|m| MetricTolerance { rel: m.rel.max(rel), ..m.clone() })
                .collect(),
            across_machines: self.across_machines.clone(),
        }
    }

    /// The tolerance on the recording machine: the `across_machines` rules dropped.
    pub fn same_machine(&self) -> Tolerance {
        Tolerance { across_machines: vec![], ..self.clone() }
    }

    pub fn accepts(&self, name: &str, recorded: f64, reproduced: f64) -> bool {
        let (rel, abs) = self.for_metric(name);
        within(rel, abs, recorded, reproduced)
            || self
                .across_machines
                .iter()
                .any(|m| m.specificity(name).is_some() && m.within(recorded, reproduced))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_rule_wins_and_default_is_exact() {
        let t = Tolerance {
            metrics: vec![
                MetricTolerance::prefix("real.", 1e-3, 0.0),
                MetricTolerance::prefix("real.cka.", 0.0, 0.5),
                MetricTolerance::pattern("real.cka.*.ratio_min", 0.0, 0.0),
            ],
            ..Default::default()
        };
        assert!(t.accepts("real.identity.x", 1.0, 1.0005));
        assert!(!t.accepts("real.identity.x", 1.0, 1.01));
        assert!(t.accepts("real.cka.x", 1.0, 1.4));
        assert!(!t.accepts("real.cka.noise.a0.01.ratio_min", 1.0, 1.4));
        assert!(!t.accepts("zoo.x", 1.0, 1.0 + 1e-15));
        assert!(Tolerance::default().is_exact());
        assert!(Tolerance::default().accepts("any", 0.25, 0.25));
    }

    #[test]
    fn across_machine_rules_apply_only_across_machines() {
        let t = Tolerance {
            across_machines: vec![
                MetricTolerance::pattern("*.median", 0.0, 2e-6),
                MetricTolerance::pattern("*.ratio_*", 0.0, 2.0),
            ],
            ..Default::default()
        };
        let other = t.across_machines(1e-6);
        assert!(other.accepts("real.identity.noise.1e-3.median", 0.0172, 0.0172 + 1.6e-7));
        assert!(!other.accepts("real.identity.noise.1e-3.median", 0.0172, 0.0172 + 3e-6));
        assert!(other.accepts("real.lineage.noise.1e-3.a0.01.ratio_min", 21.9, 21.6));
        // A rate, a count or a decision has no rule: only the 1e-6 relative floor.
        assert!(!other.accepts("real.identity.noise.1e-3.a0.01.tpr", 1.0, 0.875));
        assert!(other.accepts("real.identity.noise.1e-3.a0.01.tpr", 1.0, 1.0 - 1e-7));
        let same = t.same_machine();
        assert!(!same.accepts("real.identity.noise.1e-3.median", 0.0172, 0.0172 + 1.6e-7));
        assert!(same.across_machines.is_empty());
    }

    #[test]
    fn bad_values_name_the_field() {
        let t = Tolerance { rel: -1.0, ..Default::default() };
        assert!(t.validate("reproduce").unwrap_err().to_string().contains("reproduce"));
        let t = Tolerance { metrics: vec![MetricTolerance::prefix("", 0.0, 0.0)], ..Default::default() };
        assert!(t.validate("reproduce").unwrap_err().to_string().contains("reproduce.metric[0].prefix"));
        let both = MetricTolerance { pattern: Some("a*".into()), ..MetricTolerance::prefix("a", 0.0, 0.0) };
        let t = Tolerance { across_machines: vec![both], ..Default::default() };
        let e = t.validate("reproduce").unwrap_err().to_string();
        assert!(e.contains("reproduce.across_machines[0]") && e.contains("not both"), "{e}");
        let t = Tolerance {
            across_machines: vec![MetricTolerance::pattern("a[", 0.0, 0.0)],
            ..Default::default()
        };
        assert!(t.validate("reproduce").unwrap_err().to_string().contains("across_machines[0].pattern"));
        let t = Tolerance {
            across_machines: vec![MetricTolerance::pattern("*", f64::NAN, 0.0)],
            ..Default::default()
        };
        assert!(t.validate("reproduce").is_err());
    }
}

//! Tool-call distribution shift.
//!
//! compression-monitor's code uses the Jaccard distance of tool-name *sets* (alert 0.4),
//! which ignores how often each tool is called and jumps to 1 on a single new tool; its prose
//! speaks of KL divergence, which is unbounded and undefined on unseen tools. Here:
//!
//! * [`tool_shift`]: add-α smoothed Jensen–Shannon divergence, base 2, over the union of
//!   tools seen (plus any `vocabulary` given): p_i = (c_i + α) / (N + α·K);
//!   JSD = ½ KL(p‖m) + ½ KL(q‖m), m = ½(p + q), ∈ [0, 1] (0 equal, → 1 disjoint as α → 0);
//!   with per-tool deltas q_i − p_i.
//! * [`Cusum`]: one-sided online CUSUM over a per-turn score stream x_t:
//!   S_t = max(0, S_{t−1} + x_t − μ0 − k), alarm at the first t with S_t > h.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct ToolShift {
    /// JSD in bits, [0, 1].
    pub jsd: f64,
    /// (tool, post probability − pre probability), by tool name.
    pub deltas: Vec<(String, f64)>,
}

fn count<'a>(calls: &[&'a str]) -> BTreeMap<&'a str, f64> {
    let mut m = BTreeMap::new();
    for c in calls {
        *m.entry(*c).or_insert(0.0) += 1.0;
    }
    m
}

fn kl2(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).filter(|(a, _)| **a > 0.0).map(|(a, b)| a * (a / b).log2()).sum()
}

/// Smoothed JSD between the tool calls before and after a boundary.
pub fn tool_shift(pre: &[&str], post: &[&str], vocabulary: &[&str], alpha: f64) -> ToolShift {
    let (cp, cq) = (count(pre), count(post));
    let mut tools: Vec<&str> =
        cp.keys().chain(cq.keys()).copied().chain(vocabulary.iter().copied()).collect();
    tools.sort();
    tools.dedup();
    if tools.is_empty() {
        return ToolShift { jsd: 0.0, deltas: vec![] };
    }
    let k = tools.len() as f64;
    let dist = |c: &BTreeMap<&str, f64>| -> Vec<f64> {
        let n: f64 = c.values().sum();
        let denom = n + alpha * k;
        if denom <= 0.0 {
            return vec![1.0 / k; tools.len()];
        }
        tools.iter().map(|t| (c.get(t).copied().unwrap_or(0.0) + alpha) / denom).collect()
    };
    let (p, q) = (dist(&cp), dist(&cq));
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| 0.5 * (a + b)).collect();
    let jsd = (0.5 * kl2(&p, &m) + 0.5 * kl2(&q, &m)).clamp(0.0, 1.0);
    let deltas = tools.iter().zip(p.iter().zip(&q)).map(|(t, (a, b))| (t.to_string(), b - a)).collect();
    ToolShift { jsd, deltas }
}

/// One-sided CUSUM detector.
#[derive(Clone, Debug, PartialEq)]
pub struct Cusum {
    /// In-control mean of x.
    pub mu0: f64,
    /// Slack (allowance) per step.
    pub k: f64,
    /// Alarm threshold.
    pub h: f64,
    pub s: f64,
}

impl Cusum {
    pub fn new(mu0: f64, k: f64, h: f64) -> Cusum {
        Cusum { mu0, k, h, s: 0.0 }
    }

    /// Feed one observation; true when S_t > h.
    pub fn update(&mut self, x: f64) -> bool {
        self.s = (self.s + x - self.mu0 - self.k).max(0.0);
        self.s > self.h
    }

    /// Index (0-based) of the first alarm over `xs`, starting from S_0 = 0.
    pub fn first_alarm(mu0: f64, k: f64, h: f64, xs: &[f64]) -> Option<usize> {
        let mut c = Cusum::new(mu0, k, h);
        xs.iter().position(|x| c.update(*x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsd_bounds() {
        let a = ["read", "list", "read"];
        assert!(tool_shift(&a, &a, &[], 0.5).jsd.abs() < 1e-12);
        let d = tool_shift(&["read", "read"], &["delete", "delete"], &[], 0.0);
        assert!((d.jsd - 1.0).abs() < 1e-12);
        let s = tool_shift(&["read", "read"], &["delete", "delete"], &[], 0.5);
        assert!(s.jsd > 0.0 && s.jsd < 1.0);
        let del = s.deltas.iter().find(|(t, _)| t == "delete").unwrap().1;
        assert!(del > 0.0);
        assert_eq!(tool_shift(&[], &[], &[], 0.5).jsd, 0.0);
    }

    #[test]
    fn cusum_alarm_timing() {
        // mu0 = 0, k = 0.5: zeros never alarm; ones add 0.5 per step, S > 1.2 at the 3rd one.
        let xs = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(Cusum::first_alarm(0.0, 0.5, 1.2, &xs), Some(5));
        assert_eq!(Cusum::first_alarm(0.0, 0.5, 1.2, &[0.0; 20]), None);
        // A single spike decays away without alarm.
        assert_eq!(Cusum::first_alarm(0.0, 0.5, 1.2, &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]), None);
    }
}

//! Metric-by-metric comparison of two runs' `summary.json`: the engine behind
//! `gapbench reproduce` (recorded vs re-run, under the spec's declared tolerance) and
//! `gapbench diff` (any two runs, side by side).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::record::tolerance::Tolerance;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Bit-identical values.
    Identical,
    /// Different, within the declared tolerance.
    Within,
    /// Outside the tolerance.
    Mismatch,
    /// In the first run only.
    Missing,
    /// In the second run only.
    Extra,
}

impl Verdict {
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Mismatch | Verdict::Missing | Verdict::Extra)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Within => "within tol",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Missing => "MISSING",
            Verdict::Extra => "EXTRA",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// `b - a` when both exist.
    pub delta: Option<f64>,
    pub verdict: Verdict,
}

/// Compare every metric of `a` (recorded) with `b` (reproduced), in name order.
pub fn compare(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, tol: &Tolerance) -> Vec<Row> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let (va, vb) = (a.get(name).copied(), b.get(name).copied());
            let verdict = match (va, vb) {
                (Some(x), Some(y)) if x.to_bits() == y.to_bits() => Verdict::Identical,
                (Some(x), Some(y)) if tol.accepts(name, x, y) => Verdict::Within,
                (Some(_), Some(_)) => Verdict::Mismatch,
                (Some(_), None) => Verdict::Missing,
                (None, _) => Verdict::Extra,
            };
            let delta = va.zip(vb).map(|(x, y)| y - x);
            Row { metric: name.clone(), a: va, b: vb, delta, verdict }
        })
        .collect()
}

/// Counts per verdict, in a fixed order.
pub fn tally(rows: &[Row]) -> BTreeMap<&'static str, usize> {
    let mut t = BTreeMap::new();
    for r in rows {
        *t.entry(r.verdict.as_str()).or_insert(0) += 1;
    }
    t
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(0.0) => "0".into(),
        Some(x) if x.abs() >= 1e-3 && x.abs() < 1e6 => {
            format!("{x:.6}").trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Some(x) => format!("{x:.6e}"),
    }
}

/// A plain-text table: metric, the two values, delta, verdict.
pub fn table(rows: &[Row], a_name: &str, b_name: &str) -> String {
    let header = ["metric", a_name, b_name, "delta", "verdict"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| [r.metric.clone(), num(r.a), num(r.b), num(r.delta), r.verdict.as_str().to_string()])
        .collect();
    let mut w = header.map(str::len);
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.chars().count());
        }
    }
    let line = |c: [&str; 5]| {
        format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}\n",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
    };
    let mut out = line(header);
    for c in &cells {
        out.push_str(&line([&c[0], &c[1], &c[2], &c[3], &c[4]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kv: &[(&str, f64)]) -> BTreeMap<String, f64> {
        kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn verdicts_cover_identical_within_mismatch_missing_extra() {
        let a = m(&[("x", 1.0), ("y", 1.0), ("z", 1.0), ("gone", 2.0)]);
        let b = m(&[("x", 1.0), ("y", 1.0 + 1e-12), ("z", 1.5), ("new", 3.0)]);
        let tol = Tolerance { rel: 1e-9, ..Default::default() };
        let rows = compare(&a, &b, &tol);
        let v: BTreeMap<&str, Verdict> = rows.iter().map(|r| (r.metric.as_str(), r.verdict)).collect();
        assert_eq!(v["x"], Verdict::Identical);
        assert_eq!(v["y"], Verdict::Within);
        assert_eq!(v["z"], Verdict::Mismatch);
        assert_eq!(v["gone"], Verdict::Missing);
        assert_eq!(v["new"], Verdict::Extra);
        assert_eq!(rows.iter().filter(|r| r.verdict.is_failure()).count(), 3);
        // Exact tolerance: the 1e-12 difference is a mismatch.
        let exact = compare(&a, &b, &Tolerance::default());
        assert!(exact.iter().any(|r| r.metric == "y" && r.verdict == Verdict::Mismatch));
        let t = table(&rows, "recorded", "reproduced");
        assert!(t.lines().count() == 6 && t.contains("MISMATCH") && t.contains("recorded"), "{t}");
    }
}

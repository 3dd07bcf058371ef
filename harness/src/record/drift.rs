//! How far a re-run sample is from the recorded one when their bytes differ.
//!
//! On the machine a run was recorded on, a rerun is byte-identical (README
//! "Determinism"); `gapbench reproduce` then needs nothing from this module. On another
//! machine, SIMD kernels sum in another order and floats move in their last bits, so
//! reproduce measures the drift instead, in one of two ways:
//! - a kind's own decision units ([`crate::experiments::ExperimentKind::sample_drift`]),
//!   e.g. the identity distance between two fingerprints against the detector's declared
//!   floor: the question a cross-machine reproduction must answer is whether the
//!   re-computed sample would be *accepted* as the recorded one;
//! - otherwise [`numeric`]: the largest relative difference over every number in the
//!   two JSON values, every non-number (strings, booleans, shapes) required equal,
//!   against [`CROSS_MACHINE_REL`].

use serde::Serialize;
use serde_json::Value;

/// The relative difference allowed across machines, for metrics and for numbers in
/// samples that have no domain measure: far above the rounding of a reordered f32/f64
/// reduction (~1e-7 / 1e-16 relative), far below any change of a count, a rate over
/// fewer than a million items or a detection decision. Declared here, once, for every
/// experiment; a spec can declare more (`[reproduce]`), never less.
pub const CROSS_MACHINE_REL: f64 = 1e-6;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Drift {
    /// What was measured, e.g. "identity distance" or "largest relative difference".
    pub measure: String,
    pub value: f64,
    pub limit: f64,
    /// Where the largest difference sits (a JSON path), when known.
    pub at: Option<String>,
}

impl Drift {
    pub fn within(&self) -> bool {
        self.value <= self.limit
    }
}

/// The largest relative difference between the numbers of `a` and `b`; infinite when
/// anything but a number differs (a string, a boolean, an array length, a key).
pub fn numeric(a: &Value, b: &Value, limit: f64) -> Drift {
    let mut worst = (0.0_f64, None::<String>);
    walk(a, b, "$", Scale::Relative, &mut worst);
    Drift { measure: "largest relative difference".into(), value: worst.0, limit, at: worst.1 }
}

/// The largest absolute difference between the numbers of `a` and `b`, for samples whose
/// numbers are bounded scores (in [0, 1] or [-1, 1]) or integer counts: there a relative
/// difference misleads, because a score that is itself a small difference of two
/// cosines (a consistency drop of 0.0007) carries their absolute rounding as a large
/// relative one. Non-numbers must be equal, as in [`numeric`].
pub fn absolute(a: &Value, b: &Value, limit: f64) -> Drift {
    let mut worst = (0.0_f64, None::<String>);
    walk(a, b, "$", Scale::Absolute, &mut worst);
    Drift { measure: "largest absolute difference".into(), value: worst.0, limit, at: worst.1 }
}

#[derive(Clone, Copy)]
enum Scale {
    Relative,
    Absolute,
}

fn walk(a: &Value, b: &Value, path: &str, scale: Scale, worst: &mut (f64, Option<String>)) {
    let mut note = |v: f64, p: String| {
        if v > worst.0 || (worst.1.is_none() && v > 0.0) {
            *worst = (v, Some(p));
        }
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            if x != y {
                let m = x.abs().max(y.abs());
                let d = match scale {
                    Scale::Relative if m > 0.0 && m.is_finite() => (x - y).abs() / m,
                    Scale::Absolute if (x - y).is_finite() => (x - y).abs(),
                    _ => f64::INFINITY,
                };
                note(d, path.to_string());
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                walk(p, q, &format!("{path}[{i}]"), scale, worst);
            }
        }
        (Value::Object(x), Value::Object(y)) if x.len() == y.len() && x.keys().eq(y.keys()) => {
            for (k, p) in x {
                walk(p, &y[k], &format!("{path}.{k}"), scale, worst);
            }
        }
        _ if a == b => {}
        _ => note(f64::INFINITY, path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_drift_and_anything_else_must_match() {
        let a = json!({"x": 1.0, "v": [2.0, 3.0], "s": "same"});
        assert_eq!(numeric(&a, &a, 1e-6).value, 0.0);
        let b = json!({"x": 1.0, "v": [2.0, 3.000003], "s": "same"});
        let d = numeric(&a, &b, 1e-6);
        assert!((d.value - 1e-6).abs() < 1e-9, "{d:?}");
        assert_eq!(d.at.as_deref(), Some("$.v[1]"));
        let c = json!({"x": 1.0, "v": [2.0, 3.0], "s": "other"});
        let d = numeric(&a, &c, 1e-6);
        assert!(!d.within() && d.at.as_deref() == Some("$.s"));
        assert!(!numeric(&a, &json!({"x": 1.0}), 1.0).within());
        assert!(!numeric(&json!([1.0]), &json!([1.0, 2.0]), 1.0).within());
    }

    #[test]
    fn absolute_drift_ignores_scale() {
        let (a, b) = (json!({"drop": 0.0007, "n": 3}), json!({"drop": 0.00070005, "n": 3}));
        assert!(!numeric(&a, &b, 1e-6).within());
        let d = absolute(&a, &b, 1e-6);
        assert!(d.within() && (d.value - 5e-8).abs() < 1e-12, "{d:?}");
        assert!(!absolute(&a, &json!({"drop": 0.0007, "n": 4}), 1e-6).within());
    }
}

//! Thresholds from benign nuisance, and what they buy.
//!
//! The null sample is the distance of the enrolled model to itself under benign nuisance
//! (batch size and padding, thread count, kernel choice, probe order, device). A threshold
//! `tau` is chosen so that a benign run is falsely rejected (`d > tau`) with probability at
//! most `alpha`:
//!
//! - **split conformal**: with `n` exchangeable benign distances, `tau` is the
//!   `k = ceil((n + 1)(1 - alpha))`-th smallest. For one more benign distance exchangeable
//!   with the sample, `P(d > tau) <= alpha` holds exactly in finite samples, no
//!   distributional assumption. It needs `n >= ceil(1/alpha) - 1` (999 runs for 1e-3).
//! - **peaks over threshold** (optional, for `alpha` below what `n` can certify): fit a
//!   generalised Pareto distribution to the excesses over a high empirical quantile `u`
//!   (probability-weighted moments, Hosking & Wallis 1987) and read the `1 - alpha`
//!   quantile off the tail, `u + sigma/xi ((alpha/zeta)^(-xi) - 1)`, `zeta` the fraction
//!   above `u`. A model, not a guarantee: report it as such.
//!
//! Decisions use a band: `d <= tau` accept, `d > margin * tau` reject, in between
//! inconclusive (re-probe with more tokens). The benign false-reject rate is then at most
//! `alpha` counting inconclusive as non-reject, and the band keeps borderline substitutes
//! from being waved through silently.

use serde::{Deserialize, Serialize};

use crate::detect::metrics::{proportion, CiMethod, Proportion};
use crate::error::{Error, Result};

fn check(what: &str, v: &[f64]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::input(what.to_string(), "no benign distances"));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::input(what.to_string(), "benign distances hold a non-finite value"));
    }
    Ok(())
}

/// A threshold from a conformal quantile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConformalThreshold {
    pub tau: f64,
    pub alpha: f64,
    pub n: usize,
    /// 1-based order statistic used.
    pub rank: usize,
}

/// `ceil((n + 1)(1 - alpha))`-th smallest benign distance; an input error when `n` is too
/// small for `alpha` (the rank would exceed `n`).
pub fn conformal_threshold(benign: &[f64], alpha: f64) -> Result<ConformalThreshold> {
    check("conformal threshold", benign)?;
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::input("conformal threshold", format!("alpha {alpha} outside (0, 1)")));
    }
    let n = benign.len();
    // The small epsilon keeps e.g. (99 + 1) * 0.95 = 95.00000000000001 from rounding up to 96.
    let rank = (((n + 1) as f64) * (1.0 - alpha) - 1e-9).ceil().max(1.0) as usize;
    if rank > n {
        return Err(Error::input(
            "conformal threshold",
            format!(
                "{n} benign distances cannot certify alpha = {alpha}: need at least {}",
                ((1.0 / alpha).ceil() as usize).saturating_sub(1)
            ),
        ));
    }
    let mut s = benign.to_vec();
    s.sort_by(f64::total_cmp);
    Ok(ConformalThreshold { tau: s[rank - 1], alpha, n, rank })
}

/// A generalised Pareto tail fitted above `u`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpdTail {
    /// Tail start (an empirical quantile of the sample).
    pub u: f64,
    /// Shape (`xi > 0` heavy tail, `0` exponential, `< 0` bounded).
    pub xi: f64,
    pub sigma: f64,
    /// Fraction of the sample above `u`.
    pub zeta: f64,
    pub n_excess: usize,
    pub n: usize,
}

impl GpdTail {
    /// Fit to the excesses over the empirical `tail_start` quantile (e.g. 0.9); needs at
    /// least 10 excesses.
    pub fn fit(benign: &[f64], tail_start: f64) -> Result<Self> {
        check("GPD tail fit", benign)?;
        if !(tail_start > 0.0 && tail_start < 1.0) {
            return Err(Error::input("GPD tail fit", format!("tail start {tail_start} outside (0, 1)")));
        }
        let mut s = benign.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let u = s[((n as f64 * tail_start).floor() as usize).min(n - 1)];
        let y: Vec<f64> = s.iter().filter(|&&x| x > u).map(|&x| x - u).collect();
        let m = y.len();
        if m < 10 {
            return Err(Error::input(
                "GPD tail fit",
                format!("{m} benign distances above the {tail_start} quantile; need at least 10"),
            ));
        }
        // Probability-weighted moments: a0 = E[Y], a1 = E[Y (1 - F(Y))], plotting
        // positions (i - 0.35) / m on the ascending excesses.
        let a0 = y.iter().sum::<f64>() / m as f64;
        let a1 = y.iter().enumerate().map(|(i, &v)| (1.0 - (i as f64 + 0.65) / m as f64) * v).sum::<f64>()
            / m as f64;
        let den = a0 - 2.0 * a1;
        if den.is_nan() || den <= 0.0 || a0 <= 0.0 {
            return Err(Error::run("GPD tail fit: degenerate excesses (all equal?)"));
        }
        let k = a0 / den - 2.0; // Hosking's shape; xi = -k
        let sigma = 2.0 * a0 * a1 / den;
        Ok(Self { u, xi: -k, sigma, zeta: m as f64 / n as f64, n_excess: m, n })
    }

    /// `P(D > x)` under the fitted tail (for `x >= u`).
    pub fn exceedance(&self, x: f64) -> f64 {
        if x <= self.u {
            return self.zeta.max(0.0);
        }
        let z = (x - self.u) / self.sigma;
        let tail = if self.xi.abs() < 1e-9 {
            (-z).exp()
        } else {
            let b = 1.0 + self.xi * z;
            if b <= 0.0 {
                0.0
            } else {
                b.powf(-1.0 / self.xi)
            }
        };
        self.zeta * tail
    }

    /// The distance exceeded with probability `alpha` (must be below `zeta`).
    pub fn threshold(&self, alpha: f64) -> Result<f64> {
        if !(alpha > 0.0 && alpha < self.zeta) {
            return Err(Error::input(
                "GPD threshold",
                format!(
                    "alpha {alpha} must lie in (0, {}), the fraction of the sample in the tail",
                    self.zeta
                ),
            ));
        }
        let r = alpha / self.zeta;
        Ok(if self.xi.abs() < 1e-9 {
            self.u - self.sigma * r.ln()
        } else {
            self.u + self.sigma / self.xi * (r.powf(-self.xi) - 1.0)
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Accept,
    Inconclusive,
    Reject,
}

/// `d <= tau` accept; `tau < d <= margin * tau` inconclusive; `d > margin * tau` reject.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRule {
    pub tau: f64,
    /// `>= 1`; 1 means no inconclusive band.
    pub margin: f64,
}

impl DecisionRule {
    pub fn new(tau: f64, margin: f64) -> Result<Self> {
        if !tau.is_finite() || tau < 0.0 || !margin.is_finite() || margin < 1.0 {
            return Err(Error::input(
                "decision rule",
                format!("tau {tau} must be >= 0 and margin {margin} >= 1"),
            ));
        }
        Ok(Self { tau, margin })
    }

    pub fn decide(&self, d: f64) -> Decision {
        if d.is_nan() {
            Decision::Inconclusive
        } else if d <= self.tau {
            Decision::Accept
        } else if d <= self.margin * self.tau {
            Decision::Inconclusive
        } else {
            Decision::Reject
        }
    }
}

/// Detection at one perturbation size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensitivityPoint {
    pub severity: f64,
    /// Substitutes with `d > tau` (rejected or inconclusive: not accepted).
    pub tpr: Proportion,
}

/// TPR at threshold `tau` for each `(severity, distances of substitutes at that severity)`,
/// sorted by severity.
pub fn sensitivity_curve(
    tau: f64,
    points: &[(f64, Vec<f64>)],
    level: f64,
    method: CiMethod,
) -> Result<Vec<SensitivityPoint>> {
    let mut out = points
        .iter()
        .map(|(s, d)| {
            if !s.is_finite() || d.iter().any(|x| x.is_nan()) {
                return Err(Error::input("sensitivity curve", format!("severity {s}: non-finite input")));
            }
            let k = d.iter().filter(|&&x| x > tau).count();
            Ok(SensitivityPoint { severity: *s, tpr: proportion(k, d.len(), level, method)? })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.severity.total_cmp(&b.severity));
    Ok(out)
}

/// Smallest severity from which on the TPR stays `>= target` (e.g. 0.99) at every larger
/// severity on the curve; `None` when even the largest one falls short. Requiring it for
/// all larger severities keeps one lucky small-sample point from setting the number.
/// With `use_lower_bound`, the interval's lower end must reach the target instead of the
/// point estimate (a conservative reading that also accounts for `n`).
pub fn min_detectable_severity(
    curve: &[SensitivityPoint],
    target: f64,
    use_lower_bound: bool,
) -> Option<f64> {
    let mut sorted: Vec<&SensitivityPoint> = curve.iter().collect();
    sorted.sort_by(|a, b| a.severity.total_cmp(&b.severity));
    let mut best = None;
    for p in sorted.iter().rev() {
        let v = if use_lower_bound { p.tpr.lo } else { p.tpr.estimate };
        if v >= target {
            best = Some(p.severity);
        } else {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn conformal_rank_and_errors() {
        let x: Vec<f64> = (1..=99).map(|i| i as f64).collect();
        let t = conformal_threshold(&x, 0.05).unwrap();
        assert_eq!((t.rank, t.tau), (95, 95.0));
        let t = conformal_threshold(&x, 0.01).unwrap();
        assert_eq!((t.rank, t.tau), (99, 99.0));
        let e = conformal_threshold(&x, 0.001).unwrap_err().to_string();
        assert!(e.contains("need at least 999"), "{e}");
        assert!(conformal_threshold(&[], 0.1).is_err());
        assert!(conformal_threshold(&[1.0, f64::INFINITY], 0.1).is_err());
    }

    #[test]
    fn conformal_coverage_on_synthetic_nulls() {
        // Over many calibration draws, a fresh benign distance exceeds tau at most alpha of
        // the time (up to Monte Carlo error), and not far less (the bound is tight).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let (alpha, n, trials) = (0.1, 49, 4000);
        let mut exceed = 0;
        for _ in 0..trials {
            let cal: Vec<f64> = (0..n).map(|_| rng.gen::<f64>().powi(2)).collect();
            let tau = conformal_threshold(&cal, alpha).unwrap().tau;
            if rng.gen::<f64>().powi(2) > tau {
                exceed += 1;
            }
        }
        let rate = exceed as f64 / trials as f64;
        // Exact value: 1 - 45/50 = 0.10; 3 sigma of 4000 Bernoulli(0.1) is 0.014.
        assert!(rate <= alpha + 0.015 && rate >= alpha - 0.03, "false-reject rate {rate}");
    }

    #[test]
    fn gpd_recovers_an_exponential_tail() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let x: Vec<f64> = (0..20000).map(|_| -(1.0 - rng.gen::<f64>()).ln()).collect();
        let g = GpdTail::fit(&x, 0.9).unwrap();
        assert!(g.xi.abs() < 0.1, "xi {}", g.xi);
        assert!((g.sigma - 1.0).abs() < 0.1, "sigma {}", g.sigma);
        let t = g.threshold(1e-4).unwrap();
        let want = (1e4f64).ln();
        assert!((t / want - 1.0).abs() < 0.1, "{t} vs {want}");
        assert!((g.exceedance(t) - 1e-4).abs() < 1e-9);
        assert!(g.threshold(0.5).is_err());
        assert!(GpdTail::fit(&[1.0; 30], 0.9).is_err());
    }

    #[test]
    fn gpd_sees_a_heavy_tail() {
        // Pareto with xi = 0.5: P(X > x) = x^-2 for x >= 1.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let x: Vec<f64> = (0..20000).map(|_| (1.0 - rng.gen::<f64>()).powf(-0.5)).collect();
        let g = GpdTail::fit(&x, 0.9).unwrap();
        assert!((g.xi - 0.5).abs() < 0.12, "xi {}", g.xi);
        let t = g.threshold(1e-4).unwrap();
        assert!((t / 100.0 - 1.0).abs() < 0.35, "{t} vs 100");
    }

    #[test]
    fn decisions_follow_the_band() {
        let r = DecisionRule::new(1.0, 2.0).unwrap();
        assert_eq!(r.decide(0.5), Decision::Accept);
        assert_eq!(r.decide(1.0), Decision::Accept);
        assert_eq!(r.decide(1.5), Decision::Inconclusive);
        assert_eq!(r.decide(2.0), Decision::Inconclusive);
        assert_eq!(r.decide(2.5), Decision::Reject);
        assert_eq!(r.decide(f64::NAN), Decision::Inconclusive);
        assert_eq!(DecisionRule::new(1.0, 1.0).unwrap().decide(1.01), Decision::Reject);
        assert!(DecisionRule::new(1.0, 0.5).is_err());
        assert!(DecisionRule::new(f64::NAN, 2.0).is_err());
    }

    #[test]
    fn minimum_detectable_severity() {
        // Distances grow with severity; threshold 1.0.
        let pts: Vec<(f64, Vec<f64>)> = vec![
            (0.001, vec![0.5; 100]),
            (0.01, (0..100).map(|i| if i < 50 { 2.0 } else { 0.5 }).collect()),
            (0.1, (0..100).map(|i| if i == 0 { 0.5 } else { 2.0 }).collect()), // 99 %
            (1.0, vec![5.0; 100]),
        ];
        let c = sensitivity_curve(1.0, &pts, 0.95, CiMethod::ClopperPearson).unwrap();
        assert_eq!(c.iter().map(|p| p.tpr.successes).collect::<Vec<_>>(), vec![0, 50, 99, 100]);
        assert_eq!(min_detectable_severity(&c, 0.99, false), Some(0.1));
        // The lower bound of 99/100 is below 0.99, and so is that of 100/100 (0.964).
        assert_eq!(min_detectable_severity(&c, 0.99, true), None);
        assert_eq!(min_detectable_severity(&c, 0.95, true), Some(1.0));
        // A lucky point below a failing one does not count.
        let pts = vec![(0.1, vec![5.0; 10]), (0.2, vec![0.0; 10]), (0.3, vec![5.0; 10])];
        let c = sensitivity_curve(1.0, &pts, 0.95, CiMethod::Wilson).unwrap();
        assert_eq!(min_detectable_severity(&c, 0.99, false), Some(0.3));
    }
}

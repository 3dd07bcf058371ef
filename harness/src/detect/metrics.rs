//! Detection metrics over distance scores. Convention throughout: a **positive** is a
//! substituted model, a **negative** a benign run of the enrolled model; the detector
//! REJECTS (flags substitution) when `distance > threshold`. So
//! - FPR = false-reject rate on benign runs = `#{neg > t} / n_neg`,
//! - TPR = detection rate on substitutes   = `#{pos > t} / n_pos`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

fn check(name: &str, v: &[f64]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::input("detection metrics", format!("no {name} scores")));
    }
    if v.iter().any(|x| x.is_nan()) {
        return Err(Error::input("detection metrics", format!("{name} scores hold NaN")));
    }
    Ok(())
}

/// Area under the ROC curve as the Mann-Whitney statistic:
/// `P(pos > neg) + 0.5 P(pos = neg)`, computed from mid-ranks so ties count one half.
pub fn auc(neg: &[f64], pos: &[f64]) -> Result<f64> {
    check("negative", neg)?;
    check("positive", pos)?;
    let mut all: Vec<(f64, bool)> =
        neg.iter().map(|&x| (x, false)).chain(pos.iter().map(|&x| (x, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += mid * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    Ok((rank_sum_pos - np * (np + 1.0) / 2.0) / (np * nn))
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// Reject when `distance > threshold`.
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// The ROC curve: one point per distinct score (plus the all-reject start at `-inf`),
/// FPR increasing; tied scores move FPR and TPR together, giving diagonal segments.
pub fn roc(neg: &[f64], pos: &[f64]) -> Result<Vec<RocPoint>> {
    check("negative", neg)?;
    check("positive", pos)?;
    let mut thresholds: Vec<f64> = neg.iter().chain(pos).copied().collect();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    thresholds.dedup();
    let mut pts = Vec::with_capacity(thresholds.len() + 1);
    let rate = |v: &[f64], t: f64| v.iter().filter(|&&x| x > t).count() as f64 / v.len() as f64;
    for &t in &thresholds {
        pts.push(RocPoint { threshold: t, fpr: rate(neg, t), tpr: rate(pos, t) });
    }
    pts.push(RocPoint { threshold: f64::NEG_INFINITY, fpr: 1.0, tpr: 1.0 });
    Ok(pts)
}

/// Trapezoidal area under a ROC curve as returned by [`roc`]; equals [`auc`].
pub fn roc_area(points: &[RocPoint]) -> f64 {
    let mut prev = (0.0, 0.0);
    let mut a = 0.0;
    for p in points {
        a += (p.fpr - prev.0) * (p.tpr + prev.1) / 2.0;
        prev = (p.fpr, p.tpr);
    }
    a
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CiMethod {
    /// Exact binomial interval (conservative; right at 0 and n successes).
    #[default]
    ClopperPearson,
    /// Wilson score interval.
    Wilson,
}

/// A binomial proportion with its two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    pub successes: usize,
    pub n: usize,
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
}

/// `k` successes out of `n` with a `level` two-sided interval.
pub fn proportion(k: usize, n: usize, level: f64, method: CiMethod) -> Result<Proportion> {
    if n == 0 || k > n || !(level > 0.0 && level < 1.0) {
        return Err(Error::input("binomial interval", format!("{k} of {n} at level {level}")));
    }
    let p = k as f64 / n as f64;
    let alpha = 1.0 - level;
    let (lo, hi) = match method {
        CiMethod::Wilson => {
            let z = normal_quantile(1.0 - alpha / 2.0);
            let nf = n as f64;
            let den = 1.0 + z * z / nf;
            let centre = (p + z * z / (2.0 * nf)) / den;
            let half = z / den * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt();
            ((centre - half).max(0.0), (centre + half).min(1.0))
        }
        CiMethod::ClopperPearson => {
            // lo: P(X >= k | lo) = alpha/2; hi: P(X <= k | hi) = alpha/2. Both monotone in p.
            let lo = if k == 0 { 0.0 } else { bisect(|q| 1.0 - binom_cdf(k - 1, n, q) - alpha / 2.0, true) };
            let hi = if k == n { 1.0 } else { bisect(|q| binom_cdf(k, n, q) - alpha / 2.0, false) };
            (lo, hi)
        }
    };
    Ok(Proportion { successes: k, n, estimate: p, lo, hi, level })
}

/// Root of a monotone function on [0, 1]; `increasing` says which way it goes.
fn bisect(f: impl Fn(f64) -> f64, increasing: bool) -> f64 {
    let (mut a, mut b) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let m = 0.5 * (a + b);
        if (f(m) < 0.0) == increasing {
            a = m;
        } else {
            b = m;
        }
    }
    0.5 * (a + b)
}

/// `P(X <= k)` for `X ~ Binomial(n, p)`, summed in log space.
fn binom_cdf(k: usize, n: usize, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if k >= n { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut log_c = 0.0; // ln C(n, 0)
    let mut s = 0.0;
    for i in 0..=k.min(n) {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        s += (log_c + i as f64 * lp + (n - i) as f64 * lq).exp();
    }
    s.min(1.0)
}

/// Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// TPR at a target FPR, with the threshold, the FPR actually reached and an interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TprAtFpr {
    pub target_fpr: f64,
    pub threshold: f64,
    /// Empirical FPR at `threshold` (<= target).
    pub fpr: f64,
    pub n_neg: usize,
    pub tpr: Proportion,
}

/// The smallest threshold among the negative scores whose empirical FPR is at most
/// `target_fpr` (reject when `d > threshold`), and the TPR there. With `n_neg` negatives
/// the smallest FPR that can be certified empirically is `1/n_neg`; a target below that
/// gives the maximum negative score as threshold (FPR 0 on this sample), which is
/// reported, not hidden: read `n_neg` next to the number.
pub fn tpr_at_fpr(
    neg: &[f64],
    pos: &[f64],
    target_fpr: f64,
    level: f64,
    method: CiMethod,
) -> Result<TprAtFpr> {
    check("negative", neg)?;
    check("positive", pos)?;
    if !(0.0..=1.0).contains(&target_fpr) {
        return Err(Error::input("tpr_at_fpr", format!("target FPR {target_fpr} outside [0, 1]")));
    }
    let mut s = neg.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let allowed = (target_fpr * n as f64).floor() as usize;
    let threshold = if allowed >= n { f64::NEG_INFINITY } else { s[n - 1 - allowed] };
    let fpr = s.iter().filter(|&&x| x > threshold).count() as f64 / n as f64;
    let k = pos.iter().filter(|&&x| x > threshold).count();
    Ok(TprAtFpr { target_fpr, threshold, fpr, n_neg: n, tpr: proportion(k, pos.len(), level, method)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_extremes_and_ties() {
        assert_eq!(auc(&[0.0, 1.0, 2.0], &[3.0, 4.0]).unwrap(), 1.0);
        assert_eq!(auc(&[3.0, 4.0], &[0.0, 1.0]).unwrap(), 0.0);
        assert_eq!(auc(&[1.0, 1.0, 1.0], &[1.0, 1.0]).unwrap(), 0.5);
        let x = [0.1, 0.5, 0.3, 0.9];
        assert_eq!(auc(&x, &x).unwrap(), 0.5);
        // One tie between a positive and a negative counts one half: pairs (pos,neg):
        // 2>1, 2=2 (0.5), 3>1, 3>2 → 3.5 / 4.
        assert_eq!(auc(&[1.0, 2.0], &[2.0, 3.0]).unwrap(), 0.875);
        assert!(auc(&[], &[1.0]).is_err());
        assert!(auc(&[f64::NAN], &[1.0]).is_err());
    }

    #[test]
    fn roc_area_equals_mann_whitney() {
        let neg = [0.1, 0.4, 0.4, 0.2, 0.7, 0.3];
        let pos = [0.4, 0.8, 0.5, 0.3, 0.9];
        let pts = roc(&neg, &pos).unwrap();
        assert_eq!(pts.first().map(|p| (p.fpr, p.tpr)), Some((0.0, 0.0)));
        assert_eq!(pts.last().map(|p| (p.fpr, p.tpr)), Some((1.0, 1.0)));
        assert!(pts.windows(2).all(|w| w[0].fpr <= w[1].fpr && w[0].tpr <= w[1].tpr));
        assert!((roc_area(&pts) - auc(&neg, &pos).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn intervals() {
        // Known values: 0/10 exact upper 95% = 1 - 0.025^(1/10) = 0.30850.
        let p = proportion(0, 10, 0.95, CiMethod::ClopperPearson).unwrap();
        assert_eq!(p.lo, 0.0);
        assert!((p.hi - 0.308_497).abs() < 1e-5, "{}", p.hi);
        let p = proportion(10, 10, 0.95, CiMethod::ClopperPearson).unwrap();
        assert!((p.lo - 0.691_503).abs() < 1e-5 && p.hi == 1.0);
        // 5/10: Clopper-Pearson (0.18709, 0.81291); Wilson (0.23659, 0.76341).
        let cp = proportion(5, 10, 0.95, CiMethod::ClopperPearson).unwrap();
        assert!((cp.lo - 0.187_086).abs() < 1e-5 && (cp.hi - 0.812_914).abs() < 1e-5, "{cp:?}");
        let w = proportion(5, 10, 0.95, CiMethod::Wilson).unwrap();
        assert!((w.lo - 0.236_593).abs() < 1e-5 && (w.hi - 0.763_407).abs() < 1e-5, "{w:?}");
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!(proportion(3, 2, 0.95, CiMethod::Wilson).is_err());
    }

    #[test]
    fn tpr_at_fpr_picks_the_right_threshold() {
        let neg: Vec<f64> = (1..=100).map(|i| i as f64).collect(); // 1..100
        let pos = [50.5, 95.5, 99.5, 100.5, 200.0];
        let r = tpr_at_fpr(&neg, &pos, 0.05, 0.95, CiMethod::ClopperPearson).unwrap();
        assert_eq!(r.threshold, 95.0);
        assert!((r.fpr - 0.05).abs() < 1e-12);
        assert_eq!(r.tpr.successes, 4);
        assert_eq!(r.tpr.n, 5);
        // Below 1/n the threshold is the largest benign score: FPR 0 on this sample.
        let r = tpr_at_fpr(&neg, &pos, 1e-3, 0.95, CiMethod::Wilson).unwrap();
        assert_eq!((r.threshold, r.fpr, r.tpr.successes), (100.0, 0.0, 2));
        // Ties at the threshold are not rejected.
        let r = tpr_at_fpr(&[1.0, 1.0, 1.0, 1.0], &[1.0, 2.0], 0.25, 0.95, CiMethod::Wilson).unwrap();
        assert_eq!((r.threshold, r.fpr, r.tpr.successes), (1.0, 0.0, 1));
    }
}

//! Combining the three signals, with weights and threshold fitted on a calibration set.
//!
//! compression-monitor's composite is the plain mean of the three with a hand-set alert at
//! 0.35–0.4 ([`Combiner::plain_mean`] reproduces it as a baseline). Here [`Combiner::fit`]
//! fits a logistic regression σ(w·x + b) on labelled calibration features (fixed-step
//! gradient descent with a small L2 penalty, deterministic), then sets the threshold to the
//! (1 − target false-alarm rate) quantile of the calibration negatives' scores. The
//! combiner must never be fitted on the evaluation sessions. [`latency`] reads an online
//! stream of per-turn features and returns turns from the boundary to the first alarm.
//! [`auroc`] is the Mann–Whitney estimate with ties counted one half.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The three signals, each in [0, 1] (use 0 for a signal with no value yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Window-corrected ghost lexicon decay over the protected constraints' vocabulary
    /// (the generic decay when no constraint term is an anchor).
    pub lexicon: f64,
    /// Normalised consistency drop (the largest per-probe drop).
    pub consistency: f64,
    /// Tool-call JSD.
    pub toolshift: f64,
}

impl Features {
    pub fn as_array(&self) -> [f64; 3] {
        [self.lexicon, self.consistency, self.toolshift]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Combiner {
    pub weights: [f64; 3],
    pub bias: f64,
    /// Alarm when score > threshold.
    pub threshold: f64,
    /// `false`: score is the plain mean (weights and bias unused).
    pub logistic: bool,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Combiner {
    /// compression-monitor's composite: plain mean, alarm above `threshold`.
    pub fn plain_mean(threshold: f64) -> Combiner {
        Combiner { weights: [1.0 / 3.0; 3], bias: 0.0, threshold, logistic: false }
    }

    /// Fit on labelled calibration features (label true = constraint lost). Needs at least one
    /// example of each label. `target_far` ∈ (0, 1) is the calibration false-alarm rate.
    pub fn fit(calibration: &[(Features, bool)], target_far: f64) -> Result<Combiner> {
        let pos = calibration.iter().filter(|(_, y)| *y).count();
        let neg = calibration.len() - pos;
        if pos == 0 || neg == 0 {
            return Err(Error::run(format!(
                "combiner calibration needs both labels (got {pos} positive, {neg} negative)"
            )));
        }
        if !(target_far > 0.0 && target_far < 1.0) {
            return Err(Error::run(format!(
                "combiner target false-alarm rate {target_far} is not in (0, 1)"
            )));
        }
        // Class-balanced logistic regression, full-batch gradient descent.
        let (wp, wn) = (0.5 / pos as f64, 0.5 / neg as f64);
        let (lr, l2) = (2.0, 1e-3);
        let mut w = [0.0f64; 3];
        let mut b = 0.0;
        for _ in 0..3000 {
            let mut gw = [0.0f64; 3];
            let mut gb = 0.0;
            for (f, y) in calibration {
                let x = f.as_array();
                let p = sigmoid(w.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() + b);
                let g = (p - *y as u8 as f64) * if *y { wp } else { wn };
                for j in 0..3 {
                    gw[j] += g * x[j];
                }
                gb += g;
            }
            for j in 0..3 {
                w[j] -= lr * (gw[j] + l2 * w[j]);
            }
            b -= lr * gb;
        }
        let mut c = Combiner { weights: w, bias: b, threshold: 0.5, logistic: true };
        let mut negs: Vec<f64> = calibration.iter().filter(|(_, y)| !*y).map(|(f, _)| c.score(f)).collect();
        negs.sort_by(f64::total_cmp);
        // Smallest threshold with at most floor(far · neg) negatives strictly above it.
        let allowed = (target_far * neg as f64).floor() as usize;
        c.threshold = negs[neg - 1 - allowed.min(neg - 1)];
        Ok(c)
    }

    /// Score in [0, 1].
    pub fn score(&self, f: &Features) -> f64 {
        let x = f.as_array();
        if self.logistic {
            sigmoid(self.weights.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() + self.bias)
        } else {
            x.iter().sum::<f64>() / 3.0
        }
    }

    pub fn alarm(&self, f: &Features) -> bool {
        self.score(f) > self.threshold
    }
}

/// Turns from `boundary` to the first alarm in an online stream of (turn, features) observed
/// after it; `None` when it never alarms.
pub fn latency(c: &Combiner, boundary: usize, stream: &[(usize, Features)]) -> Option<usize> {
    stream.iter().find(|(t, f)| *t >= boundary && c.alarm(f)).map(|(t, _)| t - boundary)
}

/// AUROC = P(score_pos > score_neg) + ½ P(equal); `None` when either side is empty.
pub fn auroc(pos: &[f64], neg: &[f64]) -> Option<f64> {
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut s = 0.0;
    for p in pos {
        for n in neg {
            s += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(s / (pos.len() * neg.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn set(seed: u64, n: usize) -> Vec<(Features, bool)> {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let y = i % 2 == 0;
                let shift = if y { 0.35 } else { 0.0 };
                let f = Features {
                    lexicon: (r.gen::<f64>() * 0.4 + shift).min(1.0),
                    consistency: (r.gen::<f64>() * 0.3 + shift).min(1.0),
                    toolshift: r.gen::<f64>() * 0.3, // uninformative
                };
                (f, y)
            })
            .collect()
    }

    #[test]
    fn calibrates_on_one_set_and_evaluates_on_another() {
        let cal = set(1, 200);
        let eval = set(2, 200);
        let c = Combiner::fit(&cal, 0.05).unwrap();
        assert!(c.weights[0] > c.weights[2] && c.weights[1] > c.weights[2], "{c:?}");
        let far_cal = cal.iter().filter(|(f, y)| !*y && c.alarm(f)).count() as f64 / 100.0;
        assert!(far_cal <= 0.05);
        let (pos, neg): (Vec<_>, Vec<_>) = eval.iter().partition(|(_, y)| *y);
        let ps: Vec<f64> = pos.iter().map(|(f, _)| c.score(f)).collect();
        let ns: Vec<f64> = neg.iter().map(|(f, _)| c.score(f)).collect();
        assert!(auroc(&ps, &ns).unwrap() > 0.9);
        let far_eval = ns.iter().filter(|s| **s > c.threshold).count() as f64 / ns.len() as f64;
        assert!(far_eval < 0.15, "held-out false-alarm rate {far_eval}");
        assert!(Combiner::fit(&cal[..1], 0.05).is_err());
    }

    #[test]
    fn latency_counts_turns_from_the_boundary() {
        let c = Combiner::plain_mean(0.3);
        let f = |v: f64| Features { lexicon: v, consistency: v, toolshift: v };
        let stream = [(10, f(0.1)), (12, f(0.2)), (14, f(0.5)), (16, f(0.9))];
        assert_eq!(latency(&c, 10, &stream), Some(4));
        assert_eq!(latency(&c, 10, &stream[..2]), None);
        assert_eq!(auroc(&[1.0], &[1.0]), Some(0.5));
    }
}

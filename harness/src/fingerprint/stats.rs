//! Statistics over one layer's activations, given as a plain row-major `[n_tokens, d]`
//! f32 matrix. Everything accumulates in f64 and walks rows and columns in a fixed order,
//! so two runs over the same bytes give the same bits; no statistic depends on thread
//! count.
//!
//! Definitions (documented here because the fingerprint's meaning rests on them):
//! - mean: the per-dimension mean over tokens.
//! - RMS norm: `sqrt(mean_t |x_t|^2)`, the root-mean-square of token vector lengths.
//! - covariance spectrum: eigenvalues of `C = (1/n) Σ_t (x_t - μ)(x_t - μ)^T`, descending,
//!   negatives from rounding clamped to 0. When `n < d` the non-zero eigenvalues are
//!   taken from the `n x n` Gram matrix of the centred rows instead (same values, less work).
//! - normalised spectrum: eigenvalues divided by their sum (the trace).
//! - effective rank: `exp(H)` with `H = -Σ p_i ln p_i` over the normalised spectrum
//!   (Roy & Vetterli 2007); `d` for an isotropic cloud, 1 for a line.
//! - participation ratio: `(Σ λ)^2 / Σ λ^2`.
//! - anisotropy: the mean cosine similarity over all ordered pairs of distinct token
//!   vectors (uncentred), `(|Σ u_t|^2 - n) / (n (n - 1))` with `u_t = x_t / |x_t|`.
//! - outlier ("massive activation") dimensions: per dimension a score (max |x| over tokens,
//!   or |mean|); dimensions whose score exceeds `factor x median score`, largest first.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fingerprint::eigen::symmetric_eigenvalues;

/// A borrowed row-major `[rows, cols]` f32 matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl<'a> MatRef<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::run(format!("matrix: {} values do not make {rows} x {cols}", data.len())));
        }
        Ok(Self { data, rows, cols })
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    /// Every value finite, at least `min_rows` rows and one column; `what` names the layer.
    pub fn check(&self, what: &str, min_rows: usize) -> Result<()> {
        if self.rows < min_rows || self.cols == 0 {
            return Err(Error::run(format!(
                "{what}: {} x {} activations, need at least {min_rows} rows and 1 column",
                self.rows, self.cols
            )));
        }
        if let Some(i) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::run(format!(
                "{what}: non-finite activation at token {}, dim {}",
                i / self.cols,
                i % self.cols
            )));
        }
        Ok(())
    }
}

/// An owned row-major `[rows, cols]` f32 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat {
    pub data: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
}

impl Mat {
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Result<Self> {
        MatRef::new(&data, rows, cols)?;
        Ok(Self { data, rows, cols })
    }
    pub fn view(&self) -> MatRef<'_> {
        MatRef { data: &self.data, rows: self.rows, cols: self.cols }
    }
}

/// Per-dimension mean over rows.
pub fn mean(m: MatRef) -> Vec<f64> {
    let mut s = vec![0.0f64; m.cols];
    for i in 0..m.rows {
        for (a, &x) in s.iter_mut().zip(m.row(i)) {
            *a += x as f64;
        }
    }
    let n = m.rows.max(1) as f64;
    s.iter_mut().for_each(|v| *v /= n);
    s
}

/// `sqrt(mean_t |x_t|^2)`.
pub fn rms_norm(m: MatRef) -> f64 {
    let ss: f64 = m.data.iter().map(|&x| (x as f64) * (x as f64)).sum();
    (ss / m.rows.max(1) as f64).sqrt()
}

/// Eigenvalues of the (population) covariance, descending, `min(n, d)` of them.
pub fn covariance_spectrum(m: MatRef) -> Result<Vec<f64>> {
    let (n, d) = (m.rows, m.cols);
    if n == 0 || d == 0 {
        return Ok(Vec::new());
    }
    let mu = mean(m);
    let centred: Vec<f64> =
        (0..n).flat_map(|i| m.row(i).iter().zip(&mu).map(|(&x, &u)| x as f64 - u)).collect();
    let (mut gram, k) = if n < d { (gram_rows(&centred, n, d), n) } else { (gram_cols(&centred, n, d), d) };
    gram.iter_mut().for_each(|v| *v /= n as f64);
    let mut ev = symmetric_eigenvalues(gram, k)?;
    ev.iter_mut().for_each(|v| *v = v.max(0.0));
    Ok(ev)
}

/// `X^T X` (d x d), lower triangle filled, from `n x d` rows: four rows at a time so each
/// pass over the accumulator does four times the work.
fn gram_cols(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; d * d];
    let mut t = 0;
    while t + 4 <= n {
        let (r0, r1, r2, r3) = (&x[t * d..], &x[(t + 1) * d..], &x[(t + 2) * d..], &x[(t + 3) * d..]);
        for i in 0..d {
            let (a0, a1, a2, a3) = (r0[i], r1[i], r2[i], r3[i]);
            let row = &mut c[i * d..i * d + i + 1];
            for (j, cj) in row.iter_mut().enumerate() {
                *cj += a0 * r0[j] + a1 * r1[j] + a2 * r2[j] + a3 * r3[j];
            }
        }
        t += 4;
    }
    for t in t..n {
        let r = &x[t * d..(t + 1) * d];
        for i in 0..d {
            let a = r[i];
            for (cj, &b) in c[i * d..i * d + i + 1].iter_mut().zip(&r[..=i]) {
                *cj += a * b;
            }
        }
    }
    symmetrise(&mut c, d);
    c
}

/// `X X^T` (n x n) from `n x d` rows.
fn gram_rows(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut g = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            g[i * n + j] = x[i * d..(i + 1) * d].iter().zip(&x[j * d..(j + 1) * d]).map(|(a, b)| a * b).sum();
        }
    }
    symmetrise(&mut g, n);
    g
}

fn symmetrise(c: &mut [f64], d: usize) {
    for i in 0..d {
        for j in 0..i {
            c[j * d + i] = c[i * d + j];
        }
    }
}

/// Eigenvalues divided by their sum; all zeros when the trace is zero.
pub fn normalise_by_trace(spectrum: &[f64]) -> Vec<f64> {
    let tr: f64 = spectrum.iter().sum();
    if tr > 0.0 {
        spectrum.iter().map(|v| v / tr).collect()
    } else {
        vec![0.0; spectrum.len()]
    }
}

/// `exp` of the Shannon entropy of the normalised spectrum; 0 for an all-zero spectrum.
pub fn effective_rank(spectrum: &[f64]) -> f64 {
    let p = normalise_by_trace(spectrum);
    if p.iter().all(|&v| v == 0.0) {
        return 0.0;
    }
    let h: f64 = p.iter().filter(|&&v| v > 0.0).map(|&v| -v * v.ln()).sum();
    h.exp()
}

/// `(Σ λ)^2 / Σ λ^2`; 0 for an all-zero spectrum.
pub fn participation_ratio(spectrum: &[f64]) -> f64 {
    let s: f64 = spectrum.iter().sum();
    let s2: f64 = spectrum.iter().map(|v| v * v).sum();
    if s2 > 0.0 {
        s * s / s2
    } else {
        0.0
    }
}

/// Mean pairwise cosine similarity between distinct (non-zero) token vectors.
pub fn mean_cosine(m: MatRef) -> f64 {
    let mut sum = vec![0.0f64; m.cols];
    let mut n = 0usize;
    for i in 0..m.rows {
        let r = m.row(i);
        let norm = r.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        n += 1;
        for (a, &x) in sum.iter_mut().zip(r) {
            *a += x as f64 / norm;
        }
    }
    if n < 2 {
        return 0.0;
    }
    let s2: f64 = sum.iter().map(|v| v * v).sum();
    (s2 - n as f64) / (n as f64 * (n as f64 - 1.0))
}

/// Which per-dimension score finds outlier dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OutlierScore {
    /// Largest |x| over tokens: "massive activations".
    #[default]
    MaxAbs,
    /// |mean| over tokens: a constant offset in one dimension.
    MeanAbs,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outlier {
    pub dim: usize,
    /// The dimension's score (max |x| or |mean|).
    pub magnitude: f64,
    /// Score divided by the median score over all dimensions.
    pub ratio: f64,
}

/// Dimensions whose score exceeds `factor x median`, largest first (ties: lower index
/// first), at most `top_k`.
pub fn outlier_dims(m: MatRef, score: OutlierScore, factor: f64, top_k: usize) -> Vec<Outlier> {
    let scores: Vec<f64> = match score {
        OutlierScore::MeanAbs => mean(m).into_iter().map(f64::abs).collect(),
        OutlierScore::MaxAbs => {
            let mut s = vec![0.0f64; m.cols];
            for i in 0..m.rows {
                for (a, &x) in s.iter_mut().zip(m.row(i)) {
                    *a = a.max((x as f64).abs());
                }
            }
            s
        }
    };
    let med = median(&scores);
    // A zero median (sparse activations) would make every non-zero dim an outlier by an
    // infinite ratio; the smallest positive normal keeps ratios finite and ordered.
    let denom = med.max(f64::MIN_POSITIVE);
    let mut out: Vec<Outlier> = scores
        .iter()
        .enumerate()
        .filter(|(_, &s)| s > factor * med && s > 0.0)
        .map(|(dim, &s)| Outlier { dim, magnitude: s, ratio: s / denom })
        .collect();
    out.sort_by(|a, b| b.magnitude.total_cmp(&a.magnitude).then(a.dim.cmp(&b.dim)));
    out.truncate(top_k);
    out
}

/// Median (mean of the two middle values for even length); 0 for empty input.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len() / 2;
    if s.len() % 2 == 1 {
        s[k]
    } else {
        0.5 * (s[k - 1] + s[k])
    }
}

/// Streaming statistics of logits, one token (row over the vocabulary) at a time, so a
/// caller can feed `[tokens, vocab]` logits in chunks instead of holding them all.
#[derive(Clone, Debug)]
pub struct LogitAccumulator {
    vocab: usize,
    n: usize,
    gap: (f64, f64),
    entropy: (f64, f64),
    top1_prob: f64,
    /// Σ over tokens of (logits - their mean over the vocabulary).
    centred_sum: Vec<f64>,
}

/// Averages over tokens of per-token logit statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogitSummary {
    pub n_tokens: usize,
    /// Top-1 minus top-2 logit.
    pub mean_gap: f64,
    pub std_gap: f64,
    /// Entropy of the softmax, in nats.
    pub mean_entropy: f64,
    pub std_entropy: f64,
    pub mean_top1_prob: f64,
    /// Mean over tokens of the logit vector centred per token (softmax-invariant), `[vocab]`.
    pub mean_centred_logits: Vec<f64>,
}

impl LogitAccumulator {
    pub fn new(vocab: usize) -> Self {
        Self {
            vocab,
            n: 0,
            gap: (0.0, 0.0),
            entropy: (0.0, 0.0),
            top1_prob: 0.0,
            centred_sum: vec![0.0; vocab],
        }
    }

    /// Add `[rows, vocab]` logits.
    pub fn add(&mut self, logits: MatRef) -> Result<()> {
        if logits.cols() != self.vocab || self.vocab < 2 {
            return Err(Error::run(format!(
                "logit statistics: rows of {} logits, expected the vocabulary of {} (at least 2)",
                logits.cols(),
                self.vocab
            )));
        }
        logits.check("logits", 0)?;
        for i in 0..logits.rows() {
            let z = logits.row(i);
            let (mut t1, mut t2) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            let mut sum = 0.0;
            for &v in z {
                let v = v as f64;
                sum += v;
                if v > t1 {
                    t2 = t1;
                    t1 = v;
                } else if v > t2 {
                    t2 = v;
                }
            }
            // Softmax entropy: H = lse - Σ p z, with p = exp(z - lse).
            let se: f64 = z.iter().map(|&v| (v as f64 - t1).exp()).sum();
            let lse = t1 + se.ln();
            let pz: f64 = z.iter().map(|&v| (v as f64 - lse).exp() * v as f64).sum();
            let h = (lse - pz).max(0.0);
            let g = t1 - t2;
            self.gap.0 += g;
            self.gap.1 += g * g;
            self.entropy.0 += h;
            self.entropy.1 += h * h;
            self.top1_prob += 1.0 / se;
            let mu = sum / self.vocab as f64;
            for (a, &v) in self.centred_sum.iter_mut().zip(z) {
                *a += v as f64 - mu;
            }
            self.n += 1;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<LogitSummary> {
        if self.n == 0 {
            return Err(Error::run("logit statistics: no tokens were added"));
        }
        let n = self.n as f64;
        let sd = |(s, ss): (f64, f64)| ((ss / n - (s / n).powi(2)).max(0.0)).sqrt();
        Ok(LogitSummary {
            n_tokens: self.n,
            mean_gap: self.gap.0 / n,
            std_gap: sd(self.gap),
            mean_entropy: self.entropy.0 / n,
            std_entropy: sd(self.entropy),
            mean_top1_prob: self.top1_prob / n,
            mean_centred_logits: self.centred_sum.into_iter().map(|v| v / n).collect(),
        })
    }
}

/// One-shot [`LogitAccumulator`] over a whole matrix.
pub fn logit_summary(logits: MatRef) -> Result<LogitSummary> {
    let mut acc = LogitAccumulator::new(logits.cols());
    acc.add(logits)?;
    acc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian(n: usize, d: usize, seed: u64) -> Mat {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let data = (0..n * d).map(|_| StandardNormal.sample(&mut rng)).collect();
        Mat::new(data, n, d).unwrap()
    }

    #[test]
    fn isotropic_gaussian_has_full_effective_rank() {
        let (n, d) = (4000, 32);
        let m = gaussian(n, d, 1);
        let ev = covariance_spectrum(m.view()).unwrap();
        assert_eq!(ev.len(), d);
        let er = effective_rank(&ev);
        let pr = participation_ratio(&ev);
        assert!(er > 0.97 * d as f64 && er <= d as f64, "effective rank {er}");
        assert!(pr > 0.9 * d as f64 && pr <= d as f64, "participation ratio {pr}");
        // Centred isotropic cloud: cosines average to ~0.
        assert!(mean_cosine(m.view()).abs() < 0.01);
    }

    #[test]
    fn rank_one_cloud_has_effective_rank_one() {
        let (n, d) = (200, 16);
        let dir: Vec<f32> = (0..d).map(|j| (j as f32 - 7.5) / 4.0).collect();
        let g = gaussian(n, 1, 2);
        let data: Vec<f32> =
            (0..n).flat_map(|i| dir.iter().map(|&u| u * g.data[i]).collect::<Vec<_>>()).collect();
        let m = Mat::new(data, n, d).unwrap();
        let ev = covariance_spectrum(m.view()).unwrap();
        assert!((effective_rank(&ev) - 1.0).abs() < 1e-6, "{}", effective_rank(&ev));
        assert!((participation_ratio(&ev) - 1.0).abs() < 1e-9);
        assert!((normalise_by_trace(&ev)[0] - 1.0).abs() < 1e-9);
        // All tokens on one line through the origin: |cos| = 1.
        let c = mean_cosine(m.view());
        assert!(c.abs() <= 1.0 + 1e-12);
    }

    #[test]
    fn known_covariance_spectrum_and_gram_path_agree() {
        // Scale dims by 1, 2, 3, ...: covariance eigenvalues ~ 1, 4, 9, ...
        let (n, d) = (20000, 6);
        let g = gaussian(n, d, 3);
        let data: Vec<f32> = g.data.iter().enumerate().map(|(i, &x)| x * ((i % d) + 1) as f32).collect();
        let ev = covariance_spectrum(Mat::new(data, n, d).unwrap().view()).unwrap();
        for (k, v) in ev.iter().enumerate() {
            let want = ((d - k) * (d - k)) as f64;
            assert!((v / want - 1.0).abs() < 0.05, "eigenvalue {k}: {v} vs {want}");
        }
        // n < d: the Gram path gives the same non-zero eigenvalues as the covariance path.
        let m = gaussian(10, 40, 4);
        let fast = covariance_spectrum(m.view()).unwrap();
        let mu = mean(m.view());
        let x: Vec<f64> = (0..10)
            .flat_map(|i| m.view().row(i).iter().zip(&mu).map(|(&a, &u)| a as f64 - u).collect::<Vec<_>>())
            .collect();
        let mut c = gram_cols(&x, 10, 40);
        c.iter_mut().for_each(|v| *v /= 10.0);
        let full = crate::fingerprint::eigen::tests::jacobi_eigenvalues(c, 40);
        assert_eq!(fast.len(), 10);
        for k in 0..10 {
            assert!((fast[k] - full[k]).abs() < 1e-9, "{k}: {} vs {}", fast[k], full[k]);
        }
        assert!(full[9].abs() < 1e-9, "centring leaves rank n-1");
    }

    #[test]
    fn mean_rms_and_outliers() {
        let (n, d) = (50, 64);
        let mut m = gaussian(n, d, 5);
        for i in 0..n {
            m.data[i * d + 7] += 100.0; // constant massive offset
        }
        m.data[3 * d + 20] = -60.0; // a single massive spike
        let mu = mean(m.view());
        assert!((mu[7] - 100.0).abs() < 1.0);
        let out = outlier_dims(m.view(), OutlierScore::MaxAbs, 8.0, 4);
        assert_eq!(out.iter().map(|o| o.dim).collect::<Vec<_>>(), vec![7, 20]);
        assert!(out[0].ratio > 20.0);
        let out = outlier_dims(m.view(), OutlierScore::MeanAbs, 8.0, 4);
        assert_eq!(out[0].dim, 7);
        let rms = rms_norm(Mat::new(vec![3.0, 4.0, 0.0, 0.0], 2, 2).unwrap().view());
        assert!((rms - (25.0f64 / 2.0).sqrt()).abs() < 1e-12);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }

    #[test]
    fn logit_statistics() {
        // Uniform logits: entropy ln V, gap 0; one dominant logit: gap known, entropy ~0.
        let v = 8;
        let uni = Mat::new(vec![0.5; v], 1, v).unwrap();
        let s = logit_summary(uni.view()).unwrap();
        assert!((s.mean_entropy - (v as f64).ln()).abs() < 1e-12);
        assert_eq!(s.mean_gap, 0.0);
        assert!((s.mean_top1_prob - 1.0 / v as f64).abs() < 1e-12);
        assert!(s.mean_centred_logits.iter().all(|&x| x.abs() < 1e-12));
        let mut z = vec![0.0f32; v];
        z[2] = 50.0;
        z[5] = 10.0;
        let s = logit_summary(Mat::new(z, 1, v).unwrap().view()).unwrap();
        assert_eq!(s.mean_gap, 40.0);
        assert!(s.mean_entropy < 1e-10 && s.mean_top1_prob > 0.999_999);
        // Chunked accumulation equals one shot.
        let g = gaussian(6, v, 9);
        let one = logit_summary(g.view()).unwrap();
        let mut acc = LogitAccumulator::new(v);
        acc.add(MatRef::new(&g.data[..2 * v], 2, v).unwrap()).unwrap();
        acc.add(MatRef::new(&g.data[2 * v..], 4, v).unwrap()).unwrap();
        let two = acc.finish().unwrap();
        assert!((one.mean_entropy - two.mean_entropy).abs() < 1e-12);
        assert!(LogitAccumulator::new(v).finish().is_err());
        assert!(logit_summary(Mat::new(vec![f32::NAN, 0.0], 1, 2).unwrap().view()).is_err());
    }

    #[test]
    fn model_sized_spectrum_keeps_the_trace() {
        // d = 576 (SmolLM2's width), more tokens than dims: the covariance path. The
        // eigenvalues must sum to the trace (the total variance). Prints the time taken.
        let (n, d) = (700, 576);
        let m = gaussian(n, d, 10);
        let t = std::time::Instant::now();
        let ev = covariance_spectrum(m.view()).unwrap();
        eprintln!("covariance spectrum {n}x{d}: {:.3} s", t.elapsed().as_secs_f64());
        let mu = mean(m.view());
        let trace: f64 = (0..n)
            .map(|i| m.view().row(i).iter().zip(&mu).map(|(&x, &u)| (x as f64 - u).powi(2)).sum::<f64>())
            .sum::<f64>()
            / n as f64;
        let sum: f64 = ev.iter().sum();
        assert!((sum / trace - 1.0).abs() < 1e-9, "{sum} vs {trace}");
        assert!(ev.windows(2).all(|w| w[0] >= w[1]));
        // Marchenko-Pastur: with n/d ~ 1.2 the largest eigenvalue is near (1 + sqrt(d/n))^2.
        let edge = (1.0 + (d as f64 / n as f64).sqrt()).powi(2);
        assert!((ev[0] / edge - 1.0).abs() < 0.1, "{} vs {edge}", ev[0]);
    }

    #[test]
    fn matrix_shape_and_values_are_checked() {
        assert!(MatRef::new(&[1.0, 2.0, 3.0], 2, 2).is_err());
        let m = Mat::new(vec![1.0, f32::INFINITY], 1, 2).unwrap();
        let e = m.view().check("layer 3", 1).unwrap_err().to_string();
        assert!(e.contains("layer 3") && e.contains("dim 1"), "{e}");
        assert!(Mat::new(vec![1.0, 2.0], 1, 2).unwrap().view().check("x", 2).is_err());
    }
}

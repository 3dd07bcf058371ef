//! Seeded Gaussian random projections (Johnson-Lindenstrauss sketches). The matrix is a
//! pure function of `(seed, label, m, d)`: a ChaCha20 stream keyed by
//! `sha256("gapbench-projection\0" || seed_le || label || "\0" || m_le || d_le)`, turned into
//! normals with Box-Muller (written out here, so a change in `rand_distr`'s sampler can
//! never change a fingerprint). Entries are `N(0, 1/d)`, so a sketch of `x` has squared
//! length about `(m/d) |x|^2` and relative distances between sketches track relative
//! distances between the full vectors.

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::fingerprint::stats::MatRef;

/// A row-major `[m, d]` projection.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub m: usize,
    pub d: usize,
    w: Vec<f64>,
}

impl Projection {
    pub fn new(seed: u64, label: &str, m: usize, d: usize) -> Self {
        let mut h = Sha256::new();
        h.update(b"gapbench-projection\0");
        h.update(seed.to_le_bytes());
        h.update(label.as_bytes());
        h.update(b"\0");
        h.update((m as u64).to_le_bytes());
        h.update((d as u64).to_le_bytes());
        let key: [u8; 32] = h.finalize().into();
        let mut rng = ChaCha20Rng::from_seed(key);
        let scale = 1.0 / (d.max(1) as f64).sqrt();
        let mut w = Vec::with_capacity(m * d + 1);
        while w.len() < m * d {
            // Box-Muller on two uniforms in (0, 1]; 53-bit mantissas.
            let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let r = (-2.0 * u1.ln()).sqrt();
            let t = 2.0 * std::f64::consts::PI * u2;
            w.push(r * t.cos() * scale);
            w.push(r * t.sin() * scale);
        }
        w.truncate(m * d);
        Self { m, d, w }
    }

    /// `W x` for a `d`-vector.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), self.d, "projection input length");
        (0..self.m)
            .map(|k| self.w[k * self.d..(k + 1) * self.d].iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// `mean_t (w_k . x_t)^2` for each row `w_k`: the second moment of the activations
    /// along `m` random directions, `diag(W E[x x^T] W^T)`.
    pub fn second_moment(&self, m: MatRef) -> Vec<f64> {
        assert_eq!(m.cols(), self.d, "projection input width");
        let mut acc = vec![0.0f64; self.m];
        for i in 0..m.rows() {
            let r = m.row(i);
            for (k, a) in acc.iter_mut().enumerate() {
                let p: f64 =
                    self.w[k * self.d..(k + 1) * self.d].iter().zip(r).map(|(w, &x)| w * x as f64).sum();
                *a += p * p;
            }
        }
        let n = m.rows().max(1) as f64;
        acc.iter_mut().for_each(|v| *v /= n);
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED_BITS: u64 = 0xbff1_c6c5_258e_44a5;

    #[test]
    fn deterministic_and_label_separated() {
        let a = Projection::new(7, "mean", 4, 10);
        assert_eq!(a, Projection::new(7, "mean", 4, 10));
        assert_ne!(a, Projection::new(8, "mean", 4, 10));
        assert_ne!(a, Projection::new(7, "moment", 4, 10));
        // Pin the first value so an accidental change of the generator is caught.
        let v = Projection::new(0, "pin", 1, 1).w[0];
        eprintln!("pinned projection value: {v:e} bits {:#x}", v.to_bits());
        assert_eq!(
            v.to_bits(),
            PINNED_BITS,
            "the projection generator changed: every fingerprint digest changes with it"
        );
    }

    #[test]
    fn entries_are_standard_normal_scaled() {
        let d = 1000;
        let p = Projection::new(1, "stats", 20, d);
        let n = p.w.len() as f64;
        let mean = p.w.iter().sum::<f64>() / n;
        let var = p.w.iter().map(|v| v * v).sum::<f64>() / n;
        assert!(mean.abs() < 0.01 / (d as f64).sqrt() * 10.0);
        assert!((var * d as f64 - 1.0).abs() < 0.05, "variance x d = {}", var * d as f64);
        // Norm preservation in expectation: |Wx|^2 ~ (m/d) |x|^2.
        let x = vec![1.0; d];
        let s: f64 = p.apply(&x).iter().map(|v| v * v).sum();
        let want = 20.0 / d as f64 * d as f64;
        assert!(s > 0.3 * want && s < 3.0 * want, "{s} vs {want}");
    }
}

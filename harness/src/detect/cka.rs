//! Linear CKA (Kornblith et al., 2019), the activation-similarity baseline of REEF
//! (Zhang et al., 2024): for two models' activations `X`, `Y` (`n` tokens × `d`) over the
//! *same* tokens, column-centred,
//!
//! `CKA(X, Y) = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`, in `[0, 1]`, 1 for identical geometry up to
//! rotation and isotropic scale.
//!
//! Unlike a fingerprint it needs the reference's raw activations (tens of MB) at
//! comparison time. Computed in f64 so that the baseline is not handicapped by rounding:
//! benign nuisance moves it by ~1e-9.

use candle_core::{DType, Device, Tensor};

use crate::error::{CandleContext, Error, Result};
use crate::fingerprint::stats::Mat;

/// One layer's centred activations and `‖XᵀX‖_F`, kept for repeated comparisons.
pub struct CkaReference {
    layers: Vec<(usize, Tensor, f64)>,
}

fn centred(m: &Mat) -> Result<Tensor> {
    let t = Tensor::from_slice(&m.data, (m.rows, m.cols), &Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F64))
        .ctx("cka: activations")?;
    let mean = t.mean_keepdim(0).ctx("cka: mean")?;
    t.broadcast_sub(&mean).ctx("cka: centre")
}

fn gram_norm(x: &Tensor, y: &Tensor) -> Result<f64> {
    let g = x.t().and_then(|xt| xt.matmul(y)).ctx("cka: product")?;
    g.sqr().and_then(|s| s.sum_all()).and_then(|s| s.to_scalar::<f64>()).ctx("cka: norm")
}

impl CkaReference {
    pub fn new(layers: &[(usize, Mat)]) -> Result<Self> {
        let layers = layers
            .iter()
            .map(|(l, m)| {
                let x = centred(m)?;
                let xx = gram_norm(&x, &x)?.sqrt();
                Ok((*l, x, xx))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// Per-layer CKA against `other` (same layers, same tokens in the same order).
    pub fn per_layer(&self, other: &[(usize, Mat)]) -> Result<Vec<f64>> {
        if other.len() != self.layers.len() {
            return Err(Error::run(format!(
                "cka: {} layers against a reference of {}",
                other.len(),
                self.layers.len()
            )));
        }
        self.layers
            .iter()
            .zip(other)
            .map(|((l, x, xx), (lo, m))| {
                if l != lo || x.dims() != [m.rows, m.cols] {
                    return Err(Error::run(format!(
                        "cka: layer {lo} ({}x{}) does not match reference layer {l} {:?}",
                        m.rows,
                        m.cols,
                        x.dims()
                    )));
                }
                let y = centred(m)?;
                let yy = gram_norm(&y, &y)?.sqrt();
                let xy = gram_norm(&y, x)?;
                Ok(if xx * yy > 0.0 { xy / (xx * yy) } else { 0.0 })
            })
            .collect()
    }

    /// `1 - mean over layers of CKA`: a distance, 0 for identical activations.
    pub fn distance(&self, other: &[(usize, Mat)]) -> Result<f64> {
        let v = self.per_layer(other)?;
        Ok(1.0 - v.iter().sum::<f64>() / v.len().max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian(n: usize, d: usize, seed: u64) -> Mat {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Mat::new((0..n * d).map(|_| StandardNormal.sample(&mut rng)).collect(), n, d).unwrap()
    }

    #[test]
    fn cka_is_one_for_rotations_and_scales_and_low_for_unrelated() {
        let x = gaussian(200, 6, 1);
        let r = CkaReference::new(&[(0, x.clone())]).unwrap();
        assert!(r.distance(&[(0, x.clone())]).unwrap().abs() < 1e-12);
        // Swap two columns (an orthogonal map), scale by 3, shift: CKA stays 1.
        let mut y = x.clone();
        for row in y.data.chunks_mut(6) {
            row.swap(0, 4);
            row.iter_mut().for_each(|v| *v = *v * 3.0 + 1.0);
        }
        assert!(r.distance(&[(0, y)]).unwrap().abs() < 1e-6);
        let z = gaussian(200, 6, 2);
        let d = r.distance(&[(0, z)]).unwrap();
        assert!(d > 0.8, "{d}");
        assert!(r.distance(&[(1, x.clone())]).is_err());
        assert!(r.distance(&[(0, gaussian(100, 6, 3))]).is_err());
    }
}

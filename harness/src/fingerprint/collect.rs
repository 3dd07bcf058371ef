//! Glue between the capture API and fingerprints: feed [`Capture`]s batch by batch, get
//! one [`Fingerprint`] over every token. Rows are kept in the order they arrive (sequence
//! by sequence); every statistic is a symmetric function of the rows, so reordering the
//! probes moves the result only by f64 rounding (far below the f32 the features are
//! stored in, though not guaranteed bit-identical).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::fingerprint::stats::{LogitAccumulator, MatRef};
use crate::fingerprint::{layer_stats, mat_from_tensor, Fingerprint, FingerprintConfig, Subject};
use crate::models::capture::{Capture, Pooling};

#[derive(Debug, Default)]
pub struct Collector {
    /// Residual index → (row-major values, width).
    layers: BTreeMap<usize, (Vec<f32>, usize)>,
    logits: Option<LogitAccumulator>,
    pooling: Option<Pooling>,
    rows: usize,
    tokens: usize,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append one capture. Every capture must read the same layers with the same pooling
    /// (and logits either always or never).
    pub fn add(&mut self, c: &Capture) -> Result<()> {
        let what = "collecting activations";
        if let Some(p) = self.pooling {
            let same_layers =
                self.layers.len() == c.layers.len() && c.layers.keys().all(|l| self.layers.contains_key(l));
            if p != c.pooling || !same_layers || self.logits.is_some() != c.logits.is_some() {
                return Err(Error::run(format!("{what}: captures differ in layers, pooling or logits")));
            }
        }
        let mut rows = None;
        for (&l, t) in &c.layers {
            let m = mat_from_tensor(t, &c.lengths, c.pooling)?;
            if *rows.get_or_insert(m.rows) != m.rows {
                return Err(Error::run(format!("{what}: layer {l} has {} rows, others {rows:?}", m.rows)));
            }
            let entry = self.layers.entry(l).or_insert_with(|| (Vec::new(), m.cols));
            if entry.1 != m.cols {
                return Err(Error::run(format!(
                    "{what}: layer {l} changed width from {} to {}",
                    entry.1, m.cols
                )));
            }
            entry.0.extend_from_slice(&m.data);
        }
        if let Some(t) = &c.logits {
            let m = mat_from_tensor(t, &c.lengths, c.pooling)?;
            self.logits.get_or_insert_with(|| LogitAccumulator::new(m.cols)).add(m.view())?;
        }
        self.pooling = Some(c.pooling);
        self.rows += rows.unwrap_or(0);
        self.tokens += c.lengths.iter().sum::<usize>();
        Ok(())
    }

    /// Real tokens seen so far (what the probe budget counts).
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Rows per layer (tokens under `Pooling::All`, sequences otherwise).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Every layer's rows so far (residual index, `rows x width`), in arrival order.
    pub fn matrices(&self) -> Result<Vec<(usize, MatRef<'_>)>> {
        self.layers.iter().map(|(&l, (data, d))| Ok((l, MatRef::new(data, self.rows, *d)?))).collect()
    }

    /// Statistics over everything added; `subject.tokens_used` should be [`Self::tokens`].
    pub fn fingerprint(self, subject: Subject, cfg: &FingerprintConfig) -> Result<Fingerprint> {
        let views = self
            .layers
            .iter()
            .map(|(&l, (data, d))| Ok((l, MatRef::new(data, self.rows, *d)?)))
            .collect::<Result<Vec<_>>>()?;
        let stats = layer_stats(&views, cfg)?;
        let logits = self.logits.map(LogitAccumulator::finish).transpose()?;
        Fingerprint::from_stats(subject, cfg, &stats, logits.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{distance, tests::subject};
    use candle_core::{Device, Tensor};
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// A fake `[batch, len, d]` capture of two layers with logits, padding zeroed.
    fn capture(lengths: &[usize], d: usize, v: usize, seed: u64) -> Capture {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (b, t) = (lengths.len(), *lengths.iter().max().unwrap());
        let mut tensor = |w: usize, shift: f32| {
            let data: Vec<f32> = (0..b * t * w)
                .map(|i| {
                    let x: f32 = StandardNormal.sample(&mut rng);
                    if (i / w) % t < lengths[i / (w * t)] {
                        x + shift
                    } else {
                        0.0
                    }
                })
                .collect();
            Tensor::from_vec(data, (b, t, w), &Device::Cpu).unwrap()
        };
        let layers = BTreeMap::from([(0, tensor(d, 0.0)), (1, tensor(d, 1.0))]);
        Capture { lengths: lengths.to_vec(), pooling: Pooling::All, layers, logits: Some(tensor(v, 0.0)) }
    }

    #[test]
    fn batches_add_up_to_one_fingerprint() {
        let (a, b) = (capture(&[5, 3], 8, 12, 1), capture(&[4], 8, 12, 2));
        let mut c = Collector::new();
        c.add(&a).unwrap();
        c.add(&b).unwrap();
        assert_eq!((c.tokens(), c.rows()), (12, 12));
        let fp = c.fingerprint(subject(), &FingerprintConfig::default()).unwrap();
        assert_eq!(fp.meta.layers, vec![0, 1]);
        assert_eq!(fp.identity.len(), 7);
        // Feeding the batches in the other order changes nothing beyond rounding.
        let mut c2 = Collector::new();
        c2.add(&b).unwrap();
        c2.add(&a).unwrap();
        let fp2 = c2.fingerprint(subject(), &FingerprintConfig::default()).unwrap();
        let d = distance(&fp, &fp2).unwrap();
        assert!(d.identity.total < 1e-6 && d.lineage.total < 1e-6, "{d:?}");
    }

    #[test]
    fn mismatched_captures_are_refused() {
        let mut c = Collector::new();
        c.add(&capture(&[3], 8, 12, 1)).unwrap();
        assert!(c.add(&capture(&[3], 6, 12, 2)).is_err());
        let mut no_logits = capture(&[3], 8, 12, 3);
        no_logits.logits = None;
        assert!(c.add(&no_logits).is_err());
        assert!(Collector::new().fingerprint(subject(), &FingerprintConfig::default()).is_err());
    }
}

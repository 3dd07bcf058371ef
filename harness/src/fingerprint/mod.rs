//! Model fingerprints from the geometry of residual-stream activations over a probe set.
//!
//! A [`Fingerprint`] reports two channels separately, because they answer different
//! questions (see `shared/research/substitution.md`):
//!
//! - **lineage**: shape features meant to survive a small fine-tune or a re-quantisation,
//!   so that "same family" stays close: per layer the top-`k` covariance eigenvalues
//!   divided by the trace; across depth the effective-rank profile, the participation-
//!   ratio profile, the anisotropy (mean token cosine) profile, and the RMS-norm profile
//!   divided by its mean over layers.
//! - **identity**: features that move with the exact weights: seeded random-projection
//!   sketches of each layer's mean vector and of its second moments along random
//!   directions, raw RMS norms, the top outlier ("massive activation") dimensions and
//!   their size relative to the median dimension, and the logit statistics (mean and
//!   spread of the top-1/top-2 gap and the softmax entropy, mean top-1 probability) with
//!   a sketch of the mean per-token-centred logit vector.
//!
//! Each channel is a list of named blocks, each a `rows x cols` f32 matrix (one row per
//! layer for per-layer features). The distance between two fingerprints is computed per
//! block and averaged per channel; see [`distance`] for the formulas. Features are computed
//! in f64 and stored as f32 (round to nearest): [`encode`] writes the canonical bytes the
//! digest is taken over.

pub mod collect;
pub mod compute;
pub mod distance;
pub mod eigen;
pub mod encode;
pub mod file;
pub mod sketch;
pub mod stats;

use candle_core::Tensor;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{CandleContext, Error, Result};
use crate::models::capture::{Capture, Pooling};
pub use distance::{distance, standardised_distance, ChannelDistance, Distance, NuisanceScales};
use sketch::Projection;
use stats::{LogitSummary, Mat, MatRef, Outlier, OutlierScore};

/// Bumped whenever a feature's definition or the encoding changes.
pub const FINGERPRINT_VERSION: u16 = 1;

/// Block names, in canonical order.
pub mod blocks {
    pub const SPECTRUM: &str = "spectrum";
    pub const EFFECTIVE_RANK: &str = "effective_rank";
    pub const PARTICIPATION_RATIO: &str = "participation_ratio";
    pub const ANISOTROPY: &str = "anisotropy";
    pub const NORM_PROFILE: &str = "norm_profile";
    pub const MEAN_SKETCH: &str = "mean_sketch";
    pub const MOMENT_SKETCH: &str = "moment_sketch";
    pub const RMS_NORM: &str = "rms_norm";
    pub const OUTLIER_DIMS: &str = "outlier_dims";
    pub const OUTLIER_RATIO: &str = "outlier_ratio";
    pub const LOGIT_STATS: &str = "logit_stats";
    pub const LOGIT_SKETCH: &str = "logit_sketch";
}

/// What is computed; part of the fingerprint, so two fingerprints built differently are
/// never compared. The defaults keep a 32-block model's encoding under 4 KiB.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintConfig {
    /// Seed of every random projection.
    pub seed: u64,
    /// Leading normalised eigenvalues kept per layer.
    pub spectrum_k: usize,
    /// Sketch width of each layer's mean vector.
    pub mean_sketch: usize,
    /// Number of random directions whose second moment is kept per layer.
    pub moment_sketch: usize,
    /// Sketch width of the mean centred logit vector.
    pub logit_sketch: usize,
    /// Outlier dimensions kept per layer.
    pub outlier_k: usize,
    /// A dimension is an outlier when its score exceeds this multiple of the median.
    pub outlier_factor: f64,
    pub outlier_score: OutlierScore,
}

impl Default for FingerprintConfig {
    fn default() -> Self {
        Self {
            seed: 0x6761_7062_656e_6368, // "gapbench"
            spectrum_k: 6,
            mean_sketch: 6,
            moment_sketch: 4,
            logit_sketch: 16,
            outlier_k: 2,
            outlier_factor: 8.0,
            outlier_score: OutlierScore::MaxAbs,
        }
    }
}

/// Everything computed from one layer, before it is cut down to fingerprint features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Residual-stream index (see `models::capture`).
    pub layer: usize,
    pub n_tokens: usize,
    pub d: usize,
    pub rms_norm: f64,
    /// Covariance eigenvalues divided by the trace, descending, `min(n, d)` of them.
    pub spectrum: Vec<f64>,
    pub effective_rank: f64,
    pub participation_ratio: f64,
    pub anisotropy: f64,
    pub outliers: Vec<Outlier>,
    /// `P_mean · mean`, `P_mean` the seeded `[mean_sketch, d]` projection.
    pub mean_sketch: Vec<f64>,
    /// `mean_t (p_k · x_t)^2` for the rows `p_k` of the seeded `[moment_sketch, d]` projection.
    pub moment_sketch: Vec<f64>,
}

impl LayerStats {
    /// Needs at least two rows (a covariance of one token is empty).
    pub fn compute(layer: usize, m: MatRef, cfg: &FingerprintConfig) -> Result<Self> {
        m.check(&format!("layer {layer}"), 2)?;
        let raw = stats::covariance_spectrum(m)?;
        let mu = stats::mean(m);
        let pm = Projection::new(cfg.seed, "mean", cfg.mean_sketch, m.cols());
        let ps = Projection::new(cfg.seed, "moment", cfg.moment_sketch, m.cols());
        Ok(Self {
            layer,
            n_tokens: m.rows(),
            d: m.cols(),
            rms_norm: stats::rms_norm(m),
            spectrum: stats::normalise_by_trace(&raw),
            effective_rank: stats::effective_rank(&raw),
            participation_ratio: stats::participation_ratio(&raw),
            anisotropy: stats::mean_cosine(m),
            outliers: stats::outlier_dims(m, cfg.outlier_score, cfg.outlier_factor, cfg.outlier_k),
            mean_sketch: pm.apply(&mu),
            moment_sketch: ps.second_moment(m),
        })
    }
}

/// [`LayerStats`] of several layers, in parallel over layers; the result does not depend
/// on the number of threads (each layer is computed sequentially, order is kept).
pub fn layer_stats(layers: &[(usize, MatRef)], cfg: &FingerprintConfig) -> Result<Vec<LayerStats>> {
    layers.par_iter().map(|(l, m)| LayerStats::compute(*l, *m, cfg)).collect()
}

/// Activations of one layer (or logits) from a capture tensor as a `[rows, d]` matrix:
/// `[batch, len, d]` under [`Pooling::All`] keeps only real tokens (sequence by
/// sequence, in order), `[batch, d]` under `Mean`/`Last` is taken as is.
pub fn mat_from_tensor(t: &Tensor, lengths: &[usize], pooling: Pooling) -> Result<Mat> {
    let t = t.to_dtype(candle_core::DType::F32).ctx("fingerprint: cast to f32")?;
    match pooling {
        Pooling::All => {
            let (b, len, d) = t.dims3().ctx("fingerprint: expected [batch, len, dim]")?;
            if b != lengths.len() || lengths.iter().any(|&l| l > len) {
                return Err(Error::run(format!(
                    "fingerprint: lengths {lengths:?} do not fit activations of shape [{b}, {len}, {d}]"
                )));
            }
            let all =
                t.flatten_all().and_then(|x| x.to_vec1::<f32>()).ctx("fingerprint: read activations")?;
            let mut data = Vec::with_capacity(lengths.iter().sum::<usize>() * d);
            for (i, &l) in lengths.iter().enumerate() {
                data.extend_from_slice(&all[i * len * d..(i * len + l) * d]);
            }
            Mat::new(data, lengths.iter().sum(), d)
        }
        Pooling::Mean | Pooling::Last => {
            let (b, d) = t.dims2().ctx("fingerprint: expected [batch, dim]")?;
            let data =
                t.flatten_all().and_then(|x| x.to_vec1::<f32>()).ctx("fingerprint: read activations")?;
            Mat::new(data, b, d)
        }
    }
}

/// Every captured layer as a matrix, in residual-index order, plus the logits' summary
/// when the capture holds logits.
/// Per-layer matrices of one capture (residual index, rows × width) and its logit summary.
pub type CaptureMatrices = (Vec<(usize, Mat)>, Option<LogitSummary>);

pub fn capture_matrices(c: &Capture) -> Result<CaptureMatrices> {
    let layers = c
        .layers
        .iter()
        .map(|(&l, t)| Ok((l, mat_from_tensor(t, &c.lengths, c.pooling)?)))
        .collect::<Result<Vec<_>>>()?;
    let logits = match &c.logits {
        Some(t) => Some(stats::logit_summary(mat_from_tensor(t, &c.lengths, c.pooling)?.view())?),
        None => None,
    };
    Ok((layers, logits))
}

/// Who and what a fingerprint is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub version: u16,
    pub model_id: String,
    pub probe_set: String,
    /// sha256 (hex) of the probe set's canonical content.
    pub probe_sha256: String,
    pub tokens_used: u32,
    pub d_model: u32,
    /// Residual-stream indices, one per row of the per-layer blocks.
    pub layers: Vec<u16>,
    pub config: FingerprintConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockKind {
    /// Real-valued features, compared by relative L2 per row.
    Real,
    /// Dimension indices (`-1` = none), compared as sets per row.
    Index,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub name: String,
    pub kind: BlockKind,
    pub rows: usize,
    pub cols: usize,
    /// Row-major.
    pub values: Vec<f32>,
}

impl Block {
    fn new(name: &str, kind: BlockKind, rows: usize, cols: usize, values: Vec<f32>) -> Self {
        debug_assert_eq!(values.len(), rows * cols);
        Self { name: name.to_string(), kind, rows, cols, values }
    }
    fn per_layer(name: &str, stats: &[LayerStats], cols: usize, f: impl Fn(&LayerStats) -> Vec<f64>) -> Self {
        let mut values = Vec::with_capacity(stats.len() * cols);
        for s in stats {
            let mut row = f(s);
            row.resize(cols, 0.0);
            values.extend(row.into_iter().map(|v| v as f32));
        }
        Self::new(name, BlockKind::Real, stats.len(), cols, values)
    }
    fn profile(name: &str, v: impl Iterator<Item = f64>) -> Self {
        let values: Vec<f32> = v.map(|x| x as f32).collect();
        Self::new(name, BlockKind::Real, 1, values.len(), values)
    }
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }
}

/// Which channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Lineage,
    Identity,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub meta: Meta,
    pub lineage: Vec<Block>,
    pub identity: Vec<Block>,
}

/// The caller-supplied part of [`Meta`].
#[derive(Clone, Debug, PartialEq)]
pub struct Subject {
    pub model_id: String,
    pub probe_set: String,
    pub probe_sha256: String,
    pub tokens_used: u32,
}

impl Fingerprint {
    /// Cut layer statistics (in residual-index order, all of the same width) and optional
    /// logit statistics down to the fingerprint's features.
    pub fn from_stats(
        subject: Subject,
        cfg: &FingerprintConfig,
        stats: &[LayerStats],
        logits: Option<&LogitSummary>,
    ) -> Result<Self> {
        let what = format!("fingerprint of `{}`", subject.model_id);
        let Some(first) = stats.first() else {
            return Err(Error::run(format!("{what}: no layers")));
        };
        if let Some(s) = stats.iter().find(|s| s.d != first.d) {
            return Err(Error::run(format!(
                "{what}: layer {} has width {}, layer {} has {}",
                s.layer, s.d, first.layer, first.d
            )));
        }
        if stats.windows(2).any(|w| w[0].layer >= w[1].layer)
            || stats.iter().any(|s| s.layer > u16::MAX as usize)
        {
            return Err(Error::run(format!("{what}: layers must be strictly increasing residual indices")));
        }
        if subject.probe_sha256.len() != 64 || !subject.probe_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::run(format!(
                "{what}: probe sha256 `{}` is not 64 hex digits",
                subject.probe_sha256
            )));
        }
        let l = stats.len();
        let mean_norm = stats.iter().map(|s| s.rms_norm).sum::<f64>() / l as f64;
        let lineage = vec![
            Block::per_layer(blocks::SPECTRUM, stats, cfg.spectrum_k, |s| {
                s.spectrum.iter().take(cfg.spectrum_k).copied().collect()
            }),
            Block::profile(blocks::EFFECTIVE_RANK, stats.iter().map(|s| s.effective_rank)),
            Block::profile(blocks::PARTICIPATION_RATIO, stats.iter().map(|s| s.participation_ratio)),
            Block::profile(blocks::ANISOTROPY, stats.iter().map(|s| s.anisotropy)),
            Block::profile(
                blocks::NORM_PROFILE,
                stats.iter().map(|s| if mean_norm > 0.0 { s.rms_norm / mean_norm } else { 0.0 }),
            ),
        ];
        let mut identity = vec![
            Block::per_layer(blocks::MEAN_SKETCH, stats, cfg.mean_sketch, |s| s.mean_sketch.clone()),
            Block::per_layer(blocks::MOMENT_SKETCH, stats, cfg.moment_sketch, |s| s.moment_sketch.clone()),
            Block::profile(blocks::RMS_NORM, stats.iter().map(|s| s.rms_norm)),
        ];
        let mut dims = Block::per_layer(blocks::OUTLIER_DIMS, stats, cfg.outlier_k, |s| {
            let mut r: Vec<f64> = s.outliers.iter().map(|o| o.dim as f64).collect();
            r.resize(cfg.outlier_k, -1.0);
            r
        });
        dims.kind = BlockKind::Index;
        identity.push(dims);
        identity.push(Block::per_layer(blocks::OUTLIER_RATIO, stats, cfg.outlier_k, |s| {
            s.outliers.iter().map(|o| o.ratio).collect()
        }));
        if let Some(lg) = logits {
            identity.push(Block::profile(
                blocks::LOGIT_STATS,
                [lg.mean_gap, lg.std_gap, lg.mean_entropy, lg.std_entropy, lg.mean_top1_prob].into_iter(),
            ));
            let p = Projection::new(cfg.seed, "logits", cfg.logit_sketch, lg.mean_centred_logits.len());
            identity.push(Block::profile(blocks::LOGIT_SKETCH, p.apply(&lg.mean_centred_logits).into_iter()));
        }
        if let Some(b) = lineage.iter().chain(&identity).find(|b| b.values.iter().any(|v| !v.is_finite())) {
            return Err(Error::run(format!("{what}: block `{}` holds a non-finite value", b.name)));
        }
        Ok(Self {
            meta: Meta {
                version: FINGERPRINT_VERSION,
                model_id: subject.model_id,
                probe_set: subject.probe_set,
                probe_sha256: subject.probe_sha256.to_ascii_lowercase(),
                tokens_used: subject.tokens_used,
                d_model: first.d as u32,
                layers: stats.iter().map(|s| s.layer as u16).collect(),
                config: cfg.clone(),
            },
            lineage,
            identity,
        })
    }

    /// Layer matrices → statistics → fingerprint.
    pub fn build(
        subject: Subject,
        cfg: &FingerprintConfig,
        layers: &[(usize, MatRef)],
        logits: Option<&LogitSummary>,
    ) -> Result<Self> {
        Self::from_stats(subject, cfg, &layer_stats(layers, cfg)?, logits)
    }

    pub fn channel(&self, c: Channel) -> &[Block] {
        match c {
            Channel::Lineage => &self.lineage,
            Channel::Identity => &self.identity,
        }
    }

    pub fn block(&self, c: Channel, name: &str) -> Option<&Block> {
        self.channel(c).iter().find(|b| b.name == name)
    }

    /// sha256 (hex) of the canonical encoding.
    pub fn digest(&self) -> Result<String> {
        Ok(crate::record::canonical::sha256_hex(&encode::encode(self)?))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// Synthetic "model": `n_layers` layers of `n x d` activations whose scale grows with
    /// depth and that carry one massive dimension, plus logits.
    pub(crate) fn synthetic(n_layers: usize, n: usize, d: usize, seed: u64) -> (Vec<(usize, Mat)>, Mat) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let layers = (0..n_layers)
            .map(|l| {
                let data: Vec<f32> = (0..n * d)
                    .map(|i| {
                        let x: f32 = StandardNormal.sample(&mut rng);
                        let j = i % d;
                        let scale = (1.0 + l as f32 * 0.1) / (1.0 + j as f32 * 0.05);
                        x * scale + if j == 3 { 30.0 + l as f32 } else { 0.0 }
                    })
                    .collect();
                (l, Mat::new(data, n, d).unwrap())
            })
            .collect();
        let v = 50;
        let logits = Mat::new((0..n * v).map(|_| StandardNormal.sample(&mut rng)).collect(), n, v).unwrap();
        (layers, logits)
    }

    pub(crate) fn subject() -> Subject {
        Subject {
            model_id: "smollm2-135m-instruct-q4_1".into(),
            probe_set: "general-en-v1".into(),
            probe_sha256: "ab".repeat(32),
            tokens_used: 512,
        }
    }

    pub(crate) fn fp_of(layers: &[(usize, Mat)], logits: &Mat) -> Fingerprint {
        let views: Vec<(usize, MatRef)> = layers.iter().map(|(l, m)| (*l, m.view())).collect();
        let lg = stats::logit_summary(logits.view()).unwrap();
        Fingerprint::build(subject(), &FingerprintConfig::default(), &views, Some(&lg)).unwrap()
    }

    #[test]
    fn channels_hold_the_documented_blocks() {
        let (layers, logits) = synthetic(5, 40, 24, 1);
        let fp = fp_of(&layers, &logits);
        fn names(c: &[Block]) -> Vec<&str> {
            c.iter().map(|b| b.name.as_str()).collect()
        }
        assert_eq!(
            names(&fp.lineage),
            ["spectrum", "effective_rank", "participation_ratio", "anisotropy", "norm_profile"]
        );
        assert_eq!(
            names(&fp.identity),
            [
                "mean_sketch",
                "moment_sketch",
                "rms_norm",
                "outlier_dims",
                "outlier_ratio",
                "logit_stats",
                "logit_sketch"
            ]
        );
        let spec = fp.block(Channel::Lineage, blocks::SPECTRUM).unwrap();
        assert_eq!((spec.rows, spec.cols), (5, 6));
        // The planted massive dimension is found in every layer.
        let dims = fp.block(Channel::Identity, blocks::OUTLIER_DIMS).unwrap();
        assert!((0..5).all(|r| dims.row(r)[0] == 3.0), "{:?}", dims.values);
        // Norm profile has mean 1 by construction.
        let np = fp.block(Channel::Lineage, blocks::NORM_PROFILE).unwrap();
        assert!((np.values.iter().map(|&v| v as f64).sum::<f64>() / 5.0 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn distance_is_zero_to_self_and_grows_with_change() {
        let (layers, logits) = synthetic(4, 60, 16, 2);
        let a = fp_of(&layers, &logits);
        let d0 = distance(&a, &a).unwrap();
        assert_eq!(d0.lineage.total, 0.0);
        assert_eq!(d0.identity.total, 0.0);
        let scaled = |f: f32| -> Vec<(usize, Mat)> {
            layers
                .iter()
                .map(|(l, m)| (*l, Mat::new(m.data.iter().map(|x| x * f).collect(), m.rows, m.cols).unwrap()))
                .collect()
        };
        let small = distance(&a, &fp_of(&scaled(1.001), &logits)).unwrap();
        let big = distance(&a, &fp_of(&scaled(1.1), &logits)).unwrap();
        assert!(small.identity.total > 0.0 && small.identity.total < big.identity.total);
        // A uniform rescale leaves the lineage shape features (spectra, ranks, profiles) unchanged.
        assert!(big.lineage.total < 1e-5, "lineage {:?}", big.lineage);
        // Moving the massive dimension (3 -> 5) is an identity change the outlier blocks see in full.
        let moved: Vec<(usize, Mat)> = layers
            .iter()
            .map(|(l, m)| {
                let mut data = m.data.clone();
                for row in data.chunks_mut(m.cols) {
                    row.swap(3, 5);
                }
                (*l, Mat::new(data, m.rows, m.cols).unwrap())
            })
            .collect();
        let o = distance(&a, &fp_of(&moved, &logits)).unwrap();
        assert_eq!(o.identity.blocks.len(), 7);
        assert_eq!(o.identity.blocks[3], ("outlier_dims".to_string(), 1.0));
        // ... while a permutation of dimensions leaves the spectrum, ranks and norms as they were.
        assert!(o.lineage.total < 1e-5, "{o:?}");
    }

    #[test]
    fn incomparable_fingerprints_are_an_input_error() {
        let (layers, logits) = synthetic(3, 30, 8, 4);
        let a = fp_of(&layers, &logits);
        let mut b = a.clone();
        b.meta.probe_sha256 = "cd".repeat(32);
        assert!(distance(&a, &b).unwrap_err().to_string().contains("probe sets differ"));
        let mut b = a.clone();
        b.meta.config.seed += 1;
        assert!(distance(&a, &b).is_err());
        let views: Vec<(usize, MatRef)> = layers.iter().map(|(l, m)| (*l, m.view())).collect();
        let no_logits = Fingerprint::build(subject(), &FingerprintConfig::default(), &views, None).unwrap();
        assert!(distance(&a, &no_logits).is_err());
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let cfg = FingerprintConfig::default();
        let one = Mat::new(vec![1.0; 8], 1, 8).unwrap();
        assert!(Fingerprint::build(subject(), &cfg, &[(0, one.view())], None).is_err());
        let nan = Mat::new(vec![f32::NAN; 16], 2, 8).unwrap();
        assert!(Fingerprint::build(subject(), &cfg, &[(0, nan.view())], None).is_err());
        let (layers, _) = synthetic(2, 10, 8, 5);
        let rev: Vec<(usize, MatRef)> = vec![(1, layers[0].1.view()), (0, layers[1].1.view())];
        assert!(Fingerprint::build(subject(), &cfg, &rev, None).is_err());
        assert!(Fingerprint::build(subject(), &cfg, &[], None).is_err());
        let mut s = subject();
        s.probe_sha256 = "xyz".into();
        let ok: Vec<(usize, MatRef)> = layers.iter().map(|(l, m)| (*l, m.view())).collect();
        assert!(Fingerprint::build(s, &cfg, &ok, None).is_err());
    }

    #[test]
    fn tensors_convert_dropping_padding() {
        let dev = candle_core::Device::Cpu;
        let t =
            Tensor::new(&[[[1f32, 2.], [3., 4.], [0., 0.]], [[5., 6.], [0., 0.], [0., 0.]]], &dev).unwrap();
        let m = mat_from_tensor(&t, &[2, 1], Pooling::All).unwrap();
        assert_eq!((m.rows, m.cols), (3, 2));
        assert_eq!(m.data, vec![1., 2., 3., 4., 5., 6.]);
        assert!(mat_from_tensor(&t, &[4, 1], Pooling::All).is_err());
        let p = Tensor::new(&[[1f32, 2.], [3., 4.]], &dev).unwrap();
        assert_eq!(mat_from_tensor(&p, &[2, 2], Pooling::Mean).unwrap().rows, 2);
        assert!(mat_from_tensor(&t, &[2, 1], Pooling::Mean).is_err());
    }

    #[test]
    fn layer_stats_do_not_depend_on_thread_count() {
        let (layers, _) = synthetic(6, 30, 12, 6);
        let views: Vec<(usize, MatRef)> = layers.iter().map(|(l, m)| (*l, m.view())).collect();
        let cfg = FingerprintConfig::default();
        let par = layer_stats(&views, &cfg).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let seq = pool.install(|| layer_stats(&views, &cfg)).unwrap();
        assert_eq!(par, seq);
    }
}

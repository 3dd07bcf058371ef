//! Distances between fingerprints, per block and per channel.
//!
//! Two forms:
//! - [`distance`]: needs nothing but the two fingerprints. Per real block the relative L2
//!   per row, per index block the Jaccard distance per row; see its docs.
//! - [`standardised_distance`]: each feature divided by its spread under benign nuisance,
//!   estimated from several enrolment fingerprints of the same model ([`NuisanceScales`]);
//!   features that do not move under nuisance then weigh most. Estimate the scales on the
//!   enrolment split and the threshold on the calibration split (`detect::splits`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fingerprint::{Block, BlockKind, Fingerprint};

/// One channel's distance and its per-block breakdown (canonical block order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelDistance {
    pub total: f64,
    pub blocks: Vec<(String, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distance {
    pub lineage: ChannelDistance,
    pub identity: ChannelDistance,
}

/// Distance between two fingerprints of the same probe set and configuration.
///
/// Per block, averaged over its rows (one row per layer for per-layer blocks):
/// - real blocks: relative L2, `|a_r - b_r| / max(1e-12, (|a_r| + |b_r|) / 2)`, in
///   `[0, 2]`; 0 when both rows are zero. Per row, so a layer with large activations
///   does not drown the others and the overall scale of a feature does not matter.
/// - index blocks: Jaccard distance `1 - |A_r ∩ B_r| / |A_r ∪ B_r|` of the row's index
///   sets (`-1` entries ignored; two empty sets are at distance 0).
///
/// A channel's distance is the unweighted mean of its block distances. Fingerprints that
/// differ in version, configuration, probe set, layers or blocks are not comparable: an
/// input error, never a silent number.
pub fn distance(a: &Fingerprint, b: &Fingerprint) -> Result<Distance> {
    compare(a, b, |_, p, q| block_distance(p, q))
}

/// Check that two fingerprints are comparable, then apply `f(channel index, block of a,
/// block of b)` to each pair of blocks and average per channel.
fn compare(a: &Fingerprint, b: &Fingerprint, f: impl Fn(usize, &Block, &Block) -> f64) -> Result<Distance> {
    comparable(a, b)?;
    let channel = |c: usize, x: &[Block], y: &[Block]| {
        let blocks: Vec<(String, f64)> = x.iter().zip(y).map(|(p, q)| (p.name.clone(), f(c, p, q))).collect();
        let total = if blocks.is_empty() {
            0.0
        } else {
            blocks.iter().map(|(_, d)| d).sum::<f64>() / blocks.len() as f64
        };
        ChannelDistance { total, blocks }
    };
    Ok(Distance {
        lineage: channel(0, &a.lineage, &b.lineage),
        identity: channel(1, &a.identity, &b.identity),
    })
}

fn same_shape(p: &Block, q: &Block) -> bool {
    p.name == q.name && p.kind == q.kind && p.rows == q.rows && p.cols == q.cols
}

/// Same version, configuration, probe set and layers, and the same blocks in the same order.
fn comparable(a: &Fingerprint, b: &Fingerprint) -> Result<()> {
    let what = format!("comparing fingerprints of `{}` and `{}`", a.meta.model_id, b.meta.model_id);
    let bad = |m: String| Err(Error::input(what.clone(), m));
    if a.meta.version != b.meta.version {
        return bad(format!("versions differ ({} vs {})", a.meta.version, b.meta.version));
    }
    if a.meta.config != b.meta.config {
        return bad("built with different configurations".into());
    }
    if a.meta.probe_sha256 != b.meta.probe_sha256 {
        return bad(format!("probe sets differ (`{}` vs `{}`)", a.meta.probe_set, b.meta.probe_set));
    }
    if a.meta.layers != b.meta.layers {
        return bad("captured different layers".into());
    }
    if a.lineage.len() != b.lineage.len()
        || a.identity.len() != b.identity.len()
        || a.lineage
            .iter()
            .zip(&b.lineage)
            .chain(a.identity.iter().zip(&b.identity))
            .any(|(p, q)| !same_shape(p, q))
    {
        return bad("the fingerprints hold different blocks (logits in one only?)".into());
    }
    Ok(())
}

fn block_distance(p: &Block, q: &Block) -> f64 {
    if p.rows == 0 {
        return 0.0;
    }
    let per_row = (0..p.rows).map(|r| {
        let (x, y) = (p.row(r), q.row(r));
        match p.kind {
            BlockKind::Real => relative_l2(x, y),
            BlockKind::Index => {
                let set = |v: &[f32]| {
                    v.iter()
                        .filter(|&&i| i >= 0.0)
                        .map(|&i| i as i64)
                        .collect::<std::collections::BTreeSet<_>>()
                };
                let (a, b) = (set(x), set(y));
                let union = a.union(&b).count();
                if union == 0 {
                    0.0
                } else {
                    1.0 - a.intersection(&b).count() as f64 / union as f64
                }
            }
        }
    });
    per_row.sum::<f64>() / p.rows as f64
}

/// `|x - y| / max(1e-12, (|x| + |y|) / 2)`, 0 when both are zero.
pub fn relative_l2(x: &[f32], y: &[f32]) -> f64 {
    let (mut dd, mut nx, mut ny) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(y) {
        let (a, b) = (a as f64, b as f64);
        dd += (a - b) * (a - b);
        nx += a * a;
        ny += b * b;
    }
    if dd == 0.0 {
        return 0.0;
    }
    dd.sqrt() / ((nx.sqrt() + ny.sqrt()) / 2.0).max(1e-12)
}

/// Per-feature spread of benign nuisance: for every real block, per value, the standard
/// deviation over several enrolment fingerprints of the same model, floored (see
/// [`NuisanceScales::from_benign`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NuisanceScales {
    /// The first benign fingerprint, kept to check comparability.
    reference: Fingerprint,
    /// Per channel, per block: one scale per value (empty for index blocks).
    scales: [Vec<Vec<f64>>; 2],
    pub n: usize,
}

impl NuisanceScales {
    /// From `n >= 2` benign fingerprints. A value that did not move at all under nuisance
    /// (thread count, for instance, is often bit-exact) would get a zero scale; the floor
    /// `max(sd, rel_floor * RMS of the block's mean values, 1e-30)` keeps the distance
    /// finite while still weighting such a value heavily. `rel_floor = 1e-4` is a sane
    /// default: just above f32 resolution once features are aggregated.
    pub fn from_benign(benign: &[Fingerprint], rel_floor: f64) -> Result<Self> {
        let Some(first) = benign.first() else {
            return Err(Error::input("nuisance scales", "no benign fingerprints"));
        };
        if benign.len() < 2 {
            return Err(Error::input("nuisance scales", "need at least 2 benign fingerprints for a spread"));
        }
        for b in &benign[1..] {
            comparable(first, b)?;
        }
        let n = benign.len() as f64;
        let mut scales: [Vec<Vec<f64>>; 2] = [Vec::new(), Vec::new()];
        for (c, slot) in scales.iter_mut().enumerate() {
            let blocks = if c == 0 { &first.lineage } else { &first.identity };
            for (bi, block) in blocks.iter().enumerate() {
                if block.kind == BlockKind::Index {
                    slot.push(Vec::new());
                    continue;
                }
                let get = |f: &Fingerprint, i: usize| {
                    let bl = if c == 0 { &f.lineage[bi] } else { &f.identity[bi] };
                    bl.values[i] as f64
                };
                let len = block.values.len();
                let means: Vec<f64> =
                    (0..len).map(|i| benign.iter().map(|f| get(f, i)).sum::<f64>() / n).collect();
                let rms = (means.iter().map(|m| m * m).sum::<f64>() / len.max(1) as f64).sqrt();
                let floor = (rel_floor * rms).max(1e-30);
                let sd: Vec<f64> = (0..len)
                    .map(|i| {
                        let var =
                            benign.iter().map(|f| (get(f, i) - means[i]).powi(2)).sum::<f64>() / (n - 1.0);
                        var.sqrt().max(floor)
                    })
                    .collect();
                slot.push(sd);
            }
        }
        Ok(Self { reference: first.clone(), scales, n: benign.len() })
    }
}

/// Per real block: `sqrt(mean_i ((a_i - b_i) / s_i)^2)` with `s` the nuisance scales (a
/// benign pair sits near `sqrt(2)` per block when nuisance is Gaussian); per index block
/// the Jaccard distance as in [`distance`]. Channel = mean over blocks.
pub fn standardised_distance(a: &Fingerprint, b: &Fingerprint, s: &NuisanceScales) -> Result<Distance> {
    comparable(a, &s.reference)?;
    let index_of = |c: usize, name: &str| {
        let blocks = if c == 0 { &s.reference.lineage } else { &s.reference.identity };
        blocks.iter().position(|b| b.name == name)
    };
    compare(a, b, |c, p, q| match (p.kind, index_of(c, &p.name)) {
        (BlockKind::Real, Some(i)) if s.scales[c][i].len() == p.values.len() => {
            let sc = &s.scales[c][i];
            let ss: f64 = p
                .values
                .iter()
                .zip(&q.values)
                .zip(sc)
                .map(|((&x, &y), &w)| ((x as f64 - y as f64) / w).powi(2))
                .sum();
            (ss / p.values.len().max(1) as f64).sqrt()
        }
        _ => block_distance(p, q),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::stats::Mat;
    use crate::fingerprint::tests::{fp_of, synthetic};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// The same activations with independent noise of relative size `eps` per value.
    fn jitter(layers: &[(usize, Mat)], eps: f32, seed: u64) -> Vec<(usize, Mat)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let noise = Normal::new(0.0f32, 1.0).unwrap();
        layers
            .iter()
            .map(|(l, m)| {
                let data = m.data.iter().map(|&x| x * (1.0 + eps * noise.sample(&mut rng))).collect();
                (*l, Mat::new(data, m.rows, m.cols).unwrap())
            })
            .collect()
    }

    #[test]
    fn standardised_distance_separates_nuisance_from_change() {
        let (layers, logits) = synthetic(4, 80, 16, 21);
        let benign: Vec<Fingerprint> = (0..6).map(|i| fp_of(&jitter(&layers, 1e-3, i), &logits)).collect();
        let scales = NuisanceScales::from_benign(&benign[..4], 1e-4).unwrap();
        assert_eq!(scales.n, 4);
        // Held-out benign pair vs a systematic 2 % change in every activation of one layer.
        let d_benign = standardised_distance(&benign[4], &benign[5], &scales).unwrap();
        let mut changed = jitter(&layers, 1e-3, 99);
        changed[2].1.data.iter_mut().for_each(|x| *x *= 1.02);
        let d_sub = standardised_distance(&benign[4], &fp_of(&changed, &logits), &scales).unwrap();
        assert!(d_benign.identity.total.is_finite() && d_benign.lineage.total.is_finite());
        assert!(d_sub.identity.total > 3.0 * d_benign.identity.total, "{d_benign:?}\n{d_sub:?}");
        // Identical benign fingerprints (zero spread) still give finite distances.
        let same = NuisanceScales::from_benign(&[benign[0].clone(), benign[0].clone()], 1e-4).unwrap();
        let d = standardised_distance(&benign[0], &benign[1], &same).unwrap();
        assert!(d.identity.total.is_finite() && d.identity.total > 0.0);
        assert_eq!(standardised_distance(&benign[0], &benign[0], &same).unwrap().identity.total, 0.0);
        assert!(NuisanceScales::from_benign(&benign[..1], 1e-4).is_err());
    }

    #[test]
    fn relative_l2_edge_cases() {
        assert_eq!(relative_l2(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert_eq!(relative_l2(&[1.0, 0.0], &[1.0, 0.0]), 0.0);
        assert!((relative_l2(&[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-12);
        assert!((relative_l2(&[3.0, 4.0], &[0.0, 0.0]) - 2.0).abs() < 1e-12);
    }
}

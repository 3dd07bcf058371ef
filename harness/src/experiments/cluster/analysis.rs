//! Unsupervised grouping of fingerprints (linfa): per architecture (fingerprints of
//! different architectures are not comparable) and per channel (identity, lineage).
//!
//! Features: the channel's real-valued blocks, each row divided by that row's mean norm
//! over the group, concatenated: the Euclidean analogue of the fingerprint distance's
//! "relative L2 per row" (no row drowns the others). Then PCA (linfa-reduction) to
//! `pca_components`, scaled by one overall factor (geometry kept) and clustered three
//! ways, none of which sees a label:
//! - KMeans, k from the data: 2..=k_max, the k with the best silhouette;
//! - a Gaussian mixture with that k;
//! - DBSCAN, `eps` = 1.5 × the median distance to the (draws − 1)-th nearest neighbour
//!   (every draw of a model should fall within it), min 2 points; noise points count as
//!   singleton clusters.
//!
//! Plus KMeans with the *true* number of families (an oracle k, reported as such), which
//! asks only whether the lineage geometry separates training runs when told how many;
//! and `kmeans_models`: one point per model (the mean of its draws), k by silhouette,
//! the question "which of these models are related?" asked without labels.
//!
//! Three channels: the fingerprint's `identity` and `lineage`, and `mean-direction`, a
//! candidate lineage feature read from the identity channel: each layer's row of
//! `mean_sketch` (a seeded projection of the layer's mean activation) scaled to unit
//! length. The lineage channel's blocks (spectra, ranks, anisotropy, norm profile) are
//! invariant to a rotation of the residual basis, and two seeds of one architecture
//! differ by little more than such a rotation, so those blocks cannot tell training runs
//! apart; the *direction* of a layer's mean is tied to the basis that the initialisation
//! chose, and stays with it through training, while its length moves with training.
//! Scores: adjusted Rand index and purity against identity (same weights) and family
//! (same training run), silhouette of the clustering found.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use linfa::prelude::*;
use linfa_clustering::{Dbscan, GaussianMixtureModel, KMeans};
use linfa_reduction::Pca;
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use crate::error::{Error, Result};
use crate::experiments::substitution::subjects::Measurement;
use crate::experiments::Metrics;
use crate::fingerprint::{Block, BlockKind, Fingerprint};
use crate::record::Sample;

use super::spec::ClusterParams;

/// One fingerprinted model draw.
struct Point {
    identity: String,
    family: String,
    group: String,
    fp: Fingerprint,
}

/// `zoo/<id>/<d>` → (group `zoo-w64`, family `w64-s0`); `real/...` → (`real`, model).
fn labels(item: &str, real_name: &str) -> Option<(String, String, String)> {
    let (identity, _) = item.rsplit_once('/')?;
    let parts: Vec<&str> = item.split('/').collect();
    match parts.as_slice() {
        ["zoo", id, _] => {
            let f: Vec<&str> = id.split('-').collect();
            let (w, s) = (f.get(1)?, f.get(2)?);
            Some((identity.into(), format!("{w}-{s}"), format!("zoo-{w}")))
        }
        ["real", ..] => Some((identity.into(), real_name.into(), "real".into())),
        _ => None,
    }
}

/// Per group and channel: the 2-D projection and every clustering, for figures.
pub struct ChannelResult {
    pub group: String,
    pub channel: &'static str,
    pub identities: Vec<String>,
    pub families: Vec<String>,
    /// First two principal components per point.
    pub coords: Vec<(f64, f64)>,
    pub explained: f64,
    pub algos: Vec<AlgoResult>,
}

pub struct AlgoResult {
    pub name: &'static str,
    pub k: usize,
    pub labels: Vec<usize>,
    pub ari_identity: f64,
    /// None when the group holds one family (agreement is undefined).
    pub ari_family: Option<f64>,
    pub purity_identity: f64,
    pub purity_family: Option<f64>,
    pub silhouette: Option<f64>,
}

fn features(blocks: &[&[Block]]) -> Array2<f64> {
    // Mean norm per (block, row) over the group.
    let n = blocks.len();
    let first = blocks[0];
    let mut cols = vec![];
    for (bi, b) in first.iter().enumerate() {
        if b.kind != BlockKind::Real {
            continue;
        }
        for r in 0..b.rows {
            let row = |p: usize| &blocks[p][bi].values[r * b.cols..(r + 1) * b.cols];
            let mean_norm =
                (0..n).map(|p| row(p).iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt()).sum::<f64>()
                    / n as f64;
            let scale = 1.0 / mean_norm.max(1e-12);
            for c in 0..b.cols {
                cols.push((0..n).map(|p| row(p)[c] as f64 * scale).collect::<Vec<f64>>());
            }
        }
    }
    let mut x = Array2::zeros((n, cols.len()));
    for (j, col) in cols.iter().enumerate() {
        for (i, v) in col.iter().enumerate() {
            x[[i, j]] = *v;
        }
    }
    x
}

/// The channels clustered, and how each reads its blocks from a fingerprint.
const CHANNELS: [&str; 3] = ["identity", "lineage", "mean-direction"];

fn channel_blocks<'a>(fp: &'a Fingerprint, channel: &str) -> Result<Cow<'a, [Block]>> {
    match channel {
        "identity" => Ok(Cow::Borrowed(&fp.identity)),
        "lineage" => Ok(Cow::Borrowed(&fp.lineage)),
        _ => {
            let b = fp.identity.iter().find(|b| b.name == "mean_sketch").ok_or_else(|| {
                Error::run(format!("fingerprint of `{}` has no mean_sketch block", fp.meta.model_id))
            })?;
            Ok(Cow::Owned(vec![unit_rows(b)]))
        }
    }
}

/// Each row scaled to unit Euclidean length (a zero row stays zero).
fn unit_rows(b: &Block) -> Block {
    let mut out = b.clone();
    for row in out.values.chunks_mut(b.cols.max(1)) {
        let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        }
    }
    out
}

fn encode(labels: &[String]) -> Vec<usize> {
    let ids: BTreeMap<&String, usize> =
        labels.iter().collect::<BTreeSet<_>>().into_iter().enumerate().map(|(i, l)| (l, i)).collect();
    labels.iter().map(|l| ids[l]).collect()
}

fn choose2(n: usize) -> f64 {
    (n * n.saturating_sub(1)) as f64 / 2.0
}

/// Adjusted Rand index (Hubert & Arabie 1985); 1 for identical partitions.
pub fn ari(a: &[usize], b: &[usize]) -> f64 {
    let mut table: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let (mut ra, mut rb): (BTreeMap<usize, usize>, BTreeMap<usize, usize>) = Default::default();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1;
        *ra.entry(x).or_default() += 1;
        *rb.entry(y).or_default() += 1;
    }
    let index: f64 = table.values().map(|&n| choose2(n)).sum();
    let sa: f64 = ra.values().map(|&n| choose2(n)).sum();
    let sb: f64 = rb.values().map(|&n| choose2(n)).sum();
    let expected = sa * sb / choose2(a.len()).max(1.0);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < 1e-12 {
        // Both partitions trivial (all singletons or one cluster): agreement is exact
        // when they are the same partition.
        return if index == max { 1.0 } else { 0.0 };
    }
    (index - expected) / (max - expected)
}

/// Fraction of points whose cluster's majority truth label is their own.
pub fn purity(clusters: &[usize], truth: &[usize]) -> f64 {
    let mut by: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
    for (&c, &t) in clusters.iter().zip(truth) {
        *by.entry(c).or_default().entry(t).or_default() += 1;
    }
    by.values().map(|m| *m.values().max().unwrap_or(&0)).sum::<usize>() as f64 / clusters.len().max(1) as f64
}

fn silhouette(x: &Array2<f64>, labels: &[usize]) -> Option<f64> {
    let k = labels.iter().collect::<BTreeSet<_>>().len();
    if k < 2 || k >= labels.len() {
        return None;
    }
    let ds = DatasetBase::new(x.clone(), Array1::from(labels.to_vec()));
    ds.silhouette_score().ok()
}

fn kmeans(x: &Array2<f64>, k: usize, seed: u64) -> Result<Vec<usize>> {
    let ds = DatasetBase::from(x.clone());
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(10)
        .max_n_iterations(300)
        .tolerance(1e-10)
        .fit(&ds)
        .map_err(|e| Error::run(format!("kmeans k={k}: {e}")))?;
    Ok(model.predict(x).to_vec())
}

/// KMeans for every k in 2..=min(k_max, n - 1); the clustering with the best silhouette
/// (the smallest k on ties): (silhouette, k, labels).
fn kmeans_best_silhouette(
    x: &Array2<f64>,
    k_max: usize,
    seed: u64,
) -> Result<Option<(f64, usize, Vec<usize>)>> {
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    for k in 2..=k_max.min(x.nrows().saturating_sub(1)) {
        let l = kmeans(x, k, seed)?;
        if let Some(s) = silhouette(x, &l) {
            if best.as_ref().is_none_or(|(b, _, _)| s > *b + 1e-12) {
                best = Some((s, k, l));
            }
        }
    }
    Ok(best)
}

/// The mean row of `x` per label (labels `0..n`).
fn means_by(x: &Array2<f64>, labels: &[usize], n: usize) -> Array2<f64> {
    let mut sum = Array2::zeros((n, x.ncols()));
    let mut count = vec![0usize; n];
    for (row, &l) in x.rows().into_iter().zip(labels) {
        let mut s = sum.row_mut(l);
        s += &row;
        count[l] += 1;
    }
    for (mut s, c) in sum.rows_mut().into_iter().zip(count) {
        s /= c.max(1) as f64;
    }
    sum
}

fn gmm(x: &Array2<f64>, k: usize, seed: u64) -> Result<Vec<usize>> {
    let ds = DatasetBase::from(x.clone());
    let model = GaussianMixtureModel::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(3)
        .reg_covariance(1e-4)
        .max_n_iterations(200)
        .fit(&ds)
        .map_err(|e| Error::run(format!("gaussian mixture k={k}: {e}")))?;
    Ok(model.predict(x).to_vec())
}

fn dbscan(x: &Array2<f64>, neighbours: usize) -> (Vec<usize>, f64) {
    let n = x.nrows();
    let dist = |i: usize, j: usize| {
        x.row(i).iter().zip(x.row(j).iter()).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt()
    };
    let mut kth: Vec<f64> = (0..n)
        .map(|i| {
            let mut d: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| dist(i, j)).collect();
            d.sort_by(f64::total_cmp);
            d.get(neighbours.saturating_sub(1).min(d.len().saturating_sub(1))).copied().unwrap_or(0.0)
        })
        .collect();
    kth.sort_by(f64::total_cmp);
    let eps = (1.5 * kth[n / 2]).max(1e-12);
    let found = Dbscan::params(2).tolerance(eps).transform(x).map(|a| a.to_vec()).unwrap_or_default();
    // Noise points (None) become singleton clusters.
    let mut next = found.iter().flatten().max().map_or(0, |m| m + 1);
    let labels = found
        .into_iter()
        .map(|c| {
            c.unwrap_or_else(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    (labels, eps)
}

fn score(name: &'static str, labels: Vec<usize>, x: &Array2<f64>, id: &[usize], fam: &[usize]) -> AlgoResult {
    let families = fam.iter().collect::<BTreeSet<_>>().len() >= 2;
    AlgoResult {
        name,
        k: labels.iter().collect::<BTreeSet<_>>().len(),
        ari_identity: ari(&labels, id),
        ari_family: families.then(|| ari(&labels, fam)),
        purity_identity: purity(&labels, id),
        purity_family: families.then(|| purity(&labels, fam)),
        silhouette: silhouette(x, &labels),
        labels,
    }
}

/// Cluster every group and channel.
pub fn analyse(p: &ClusterParams, seed: u64, samples: &[Sample]) -> Result<Vec<ChannelResult>> {
    let real_name = p.real.as_ref().map(|r| r.model.name.clone()).unwrap_or_default();
    let mut groups: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for s in samples {
        let m: Measurement = serde_json::from_value(s.output.clone())
            .map_err(|e| Error::run(format!("sample `{}`: {e}", s.item)))?;
        let (identity, family, group) =
            labels(&s.item, &real_name).ok_or_else(|| Error::run(format!("unknown item `{}`", s.item)))?;
        if m.broken.is_some() {
            continue;
        }
        groups.entry(group.clone()).or_default().push(Point { identity, family, group, fp: m.decode()? });
    }
    let mut out = vec![];
    for (group, points) in groups {
        if points.len() < 4 {
            continue;
        }
        let identities: Vec<String> = points.iter().map(|q| q.identity.clone()).collect();
        let families: Vec<String> = points.iter().map(|q| q.family.clone()).collect();
        let (id, fam) = (encode(&identities), encode(&families));
        for channel in CHANNELS {
            let per_point: Vec<Cow<[Block]>> =
                points.iter().map(|q| channel_blocks(&q.fp, channel)).collect::<Result<_>>()?;
            let blocks: Vec<&[Block]> = per_point.iter().map(|b| b.as_ref()).collect();
            debug_assert!(points.iter().all(|q| q.group == group));
            let x = features(&blocks);
            let dims = p.pca_components.min(x.nrows() - 1).min(x.ncols());
            let pca = Pca::params(dims)
                .fit(&DatasetBase::from(x.clone()))
                .map_err(|e| Error::run(format!("PCA of {group}/{channel}: {e}")))?;
            let explained = pca.explained_variance_ratio().sum();
            let mut z: Array2<f64> = pca.predict(&x);
            // One overall scale (geometry kept) so the mixture's covariance floor and
            // DBSCAN's eps work at any feature magnitude.
            let sd = (z.iter().map(|v| v * v).sum::<f64>() / z.len().max(1) as f64).sqrt();
            if sd > 0.0 {
                z.mapv_inplace(|v| v / sd);
            }
            let coords = z.rows().into_iter().map(|r| (r[0], if r.len() > 1 { r[1] } else { 0.0 })).collect();
            let mut algos = vec![];
            let k_chosen = match kmeans_best_silhouette(&z, p.k_max, seed)? {
                Some((_, k, l)) => {
                    algos.push(score("kmeans", l, &z, &id, &fam));
                    k
                }
                None => 2,
            };
            if let Ok(l) = gmm(&z, k_chosen, seed) {
                algos.push(score("gmm", l, &z, &id, &fam));
            }
            let (l, _eps) = dbscan(&z, p.draws - 1);
            algos.push(score("dbscan", l, &z, &id, &fam));
            let n_fam = fam.iter().collect::<BTreeSet<_>>().len();
            if n_fam >= 2 && n_fam < z.nrows() {
                algos.push(score("kmeans_oracle_family_k", kmeans(&z, n_fam, seed)?, &z, &id, &fam));
            }
            let n_id = id.iter().collect::<BTreeSet<_>>().len();
            if n_id >= 3 {
                let centroids = means_by(&z, &id, n_id);
                if let Some((_, _, l)) = kmeans_best_silhouette(&centroids, p.k_max, seed)? {
                    let per_point = id.iter().map(|&i| l[i]).collect();
                    algos.push(score("kmeans_models", per_point, &z, &id, &fam));
                }
                let (l, _) = dbscan(&centroids, 1);
                algos.push(score("dbscan_models", id.iter().map(|&i| l[i]).collect(), &z, &id, &fam));
            }
            out.push(ChannelResult {
                group: group.clone(),
                channel,
                identities: identities.clone(),
                families: families.clone(),
                coords,
                explained,
                algos,
            });
        }
    }
    Ok(out)
}

pub fn summarise(p: &ClusterParams, seed: u64, samples: &[Sample]) -> Result<Metrics> {
    let results = analyse(p, seed, samples)?;
    let mut out = Metrics::new();
    out.insert("items".into(), samples.len() as f64);
    let mut id_min: Option<f64> = None;
    for r in &results {
        let k = |s: &str| format!("{}.{}.{s}", r.group, r.channel);
        out.insert(k("n"), r.identities.len() as f64);
        out.insert(k("identities"), r.identities.iter().collect::<BTreeSet<_>>().len() as f64);
        out.insert(k("families"), r.families.iter().collect::<BTreeSet<_>>().len() as f64);
        out.insert(k("pca.explained_variance_ratio"), r.explained);
        for a in &r.algos {
            let ak = |s: &str| k(&format!("{}.{s}", a.name));
            out.insert(ak("k"), a.k as f64);
            out.insert(ak("ari_identity"), a.ari_identity);
            out.insert(ak("purity_identity"), a.purity_identity);
            if let (Some(ari), Some(purity)) = (a.ari_family, a.purity_family) {
                out.insert(ak("ari_family"), ari);
                out.insert(ak("purity_family"), purity);
            }
            if let Some(s) = a.silhouette {
                out.insert(ak("silhouette"), s);
            }
            if r.channel == "identity" && a.name == "kmeans" {
                id_min = Some(id_min.map_or(a.ari_identity, |m: f64| m.min(a.ari_identity)));
            }
        }
    }
    if let Some(v) = id_min {
        out.insert("headline.identity.kmeans.ari_identity_min".into(), v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_and_purity_known_values() {
        assert_eq!(ari(&[0, 0, 1, 1], &[5, 5, 7, 7]), 1.0);
        // sklearn: adjusted_rand_score([0,0,1,1],[0,1,0,1]) = -0.5
        assert!((ari(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
        // sklearn: adjusted_rand_score([0,0,0,1,1,1],[0,0,1,1,2,2]) = 0.24242...
        assert!((ari(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]) - 0.242_424_242_4).abs() < 1e-9);
        assert_eq!(purity(&[0, 0, 1, 1], &[0, 1, 1, 1]), 0.75);
    }

    #[test]
    fn means_by_label() {
        let x = ndarray::array![[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]];
        assert_eq!(means_by(&x, &[0, 0, 1], 2), ndarray::array![[2.0, 3.0], [10.0, 0.0]]);
    }

    #[test]
    fn unit_rows_keep_direction_and_drop_length() {
        let b = Block {
            name: "mean_sketch".into(),
            kind: BlockKind::Real,
            rows: 2,
            cols: 2,
            values: vec![3.0, 4.0, 0.0, 0.0],
        };
        assert_eq!(unit_rows(&b).values, vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn kmeans_with_silhouette_finds_separated_blobs() {
        let mut x = Array2::zeros((12, 2));
        for i in 0..12 {
            let c = (i / 3) as f64;
            x[[i, 0]] = c * 10.0 + (i % 3) as f64 * 0.01;
            x[[i, 1]] = -c * 5.0;
        }
        let truth: Vec<usize> = (0..12).map(|i| i / 3).collect();
        let best = (2..=8)
            .map(|k| {
                let l = kmeans(&x, k, 1).unwrap();
                (silhouette(&x, &l).unwrap_or(-1.0), k, l)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap();
        assert_eq!(best.1, 4);
        assert_eq!(ari(&best.2, &truth), 1.0);
        let (l, _) = dbscan(&x, 2);
        assert_eq!(ari(&l, &truth), 1.0);
    }
}

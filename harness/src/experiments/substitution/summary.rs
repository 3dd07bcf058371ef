//! From stored fingerprints to rates. Pure: reads only the samples.
//!
//! Detectors (each a distance to the enrolment; larger = more suspicious):
//! - `identity`, `lineage`: the fingerprint channels, distance to the nearest enrolled
//!   kernel path;
//! - `logit`: the fingerprint's logit blocks alone (what a black-box verifier that sees
//!   only output distributions could use);
//! - `cka`: 1 - mean linear CKA to the reference activations (REEF-style; needs them);
//! - `sha256`: 0 when the weights hash to the enrolled hash, else 1 (needs the weights).
//!
//! Thresholds (`tau`) come from the calibration half of the null only: split conformal
//! when the calibration sample can certify `alpha` (method 0), else a generalised-Pareto
//! tail fitted to it (method 1, a model), else the calibration maximum, which certifies
//! only `1 / (n + 1)` (method 2; `alpha_certified` says what was certified). The
//! threshold used is `max(tau_calibrated, tau_floor)` (`tau_floor²` for CKA, whose
//! distance is quadratic in a perturbation; no floor for sha256): the floor is declared in
//! the spec, never fitted, and guards against within-path nuisance that is bit-exact on
//! the calibration machine. The evaluation half and the substitutes are scored against
//! those thresholds.

use std::collections::{BTreeMap, BTreeSet};

use crate::detect::calibration::{min_detectable_severity, sensitivity_curve, GpdTail};
use crate::detect::metrics::{auc, proportion, CiMethod};
use crate::detect::splits::{check_disjoint, Calibration, Evaluation, Splits};
use crate::detect::{conformal_threshold, Decision, DecisionRule};
use crate::error::{Error, Result};
use crate::experiments::Metrics;
use crate::fingerprint::{distance, Fingerprint};
use crate::record::Sample;

use super::spec::{severity_label, SubstitutionParams, Sweep};
use super::subjects::Measurement;

const LEVEL: f64 = 0.95;

struct Item {
    m: Measurement,
    /// None for a broken substitute (see `Measurement::broken`).
    fp: Option<Fingerprint>,
}

/// Score of a substitute whose activations overflowed (JSON has no infinity).
const BROKEN: f64 = f64::MAX;

type Items = BTreeMap<String, Item>;

/// One scored measurement, for figures (`gapbench report`): what `summarise` reduces to
/// rates, kept per item. Scores are at the smallest alpha.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScoreRow {
    pub subject: String,
    pub detector: &'static str,
    /// `null-cal`, `null-eval` or `substitute`.
    pub role: &'static str,
    pub item: String,
    /// Attack label and severity (substitutes only).
    pub attack: Option<String>,
    pub severity: Option<f64>,
    pub is_default: bool,
    /// Raw distance to the nearest enrolled path's reference (calibration nulls: to
    /// their own path's; f64::MAX: broken).
    pub distance: f64,
    /// Distance over threshold to the nearest enrolled path (None for calibration nulls).
    pub ratio: Option<f64>,
    /// That subject and detector's threshold on the first path.
    pub tau: f64,
}

/// A distinct-model pair whose identity distance fell within the threshold (a false
/// accept), for the report: which substitutes a verifier could not tell apart.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairRow {
    pub a: String,
    pub b: String,
    pub distance: f64,
    pub tau: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Det {
    Identity,
    Lineage,
    Logit,
    Cka,
    Sha256,
}

const DETECTORS: [Det; 5] = [Det::Identity, Det::Lineage, Det::Logit, Det::Cka, Det::Sha256];

impl Det {
    fn name(self) -> &'static str {
        match self {
            Det::Identity => "identity",
            Det::Lineage => "lineage",
            Det::Logit => "logit",
            Det::Cka => "cka",
            Det::Sha256 => "sha256",
        }
    }
}

/// Distance of `x` to the reference of one enrolled path under detector `d`; None when
/// the detector does not apply (no logits, no CKA measured against that path).
fn raw(d: Det, x: &Item, r: &PathRef) -> Result<Option<f64>> {
    let rfp = r.item.fp.as_ref().ok_or_else(|| Error::run("summary: a reference has no fingerprint"))?;
    Ok(match (d, &x.fp) {
        (Det::Sha256, _) => Some(if x.m.weights_sha256 == r.item.m.weights_sha256 { 0.0 } else { 1.0 }),
        (_, None) => Some(BROKEN),
        (Det::Identity, Some(fp)) => Some(distance(fp, rfp)?.identity.total),
        (Det::Lineage, Some(fp)) => Some(distance(fp, rfp)?.lineage.total),
        (Det::Logit, Some(fp)) => {
            let dd = distance(fp, rfp)?;
            let l: Vec<f64> =
                dd.identity.blocks.iter().filter(|(n, _)| n.starts_with("logit")).map(|(_, v)| *v).collect();
            (!l.is_empty()).then(|| l.iter().sum::<f64>() / l.len() as f64)
        }
        (Det::Cka, Some(_)) => x.m.cka.get(&r.path).copied(),
    })
}

/// One enrolled kernel path: its name and its reference item.
struct PathRef<'a> {
    path: String,
    item: &'a Item,
}

/// `d / tau`, with `tau = 0` (an exact detector) mapping any change to [`BROKEN`].
fn normalised(d: f64, tau: f64) -> f64 {
    if tau > 0.0 {
        d / tau
    } else if d > 0.0 {
        BROKEN
    } else {
        0.0
    }
}

/// The suspect's score: distance over threshold to the nearest enrolled path (accept at
/// `<= 1`). None when the detector applies to no path.
fn score(d: Det, x: &Item, refs: &[PathRef], taus: &[f64]) -> Result<Option<f64>> {
    let mut best: Option<f64> = None;
    for (r, &tau) in refs.iter().zip(taus) {
        if let Some(v) = raw(d, x, r)? {
            let s = normalised(v, tau);
            best = Some(best.map_or(s, |b: f64| b.min(s)));
        }
    }
    Ok(best)
}

/// Raw distance to the nearest enrolled path (BROKEN when no path applies).
fn nearest(d: Det, x: &Item, refs: &[PathRef]) -> Result<f64> {
    let mut best = BROKEN;
    for r in refs {
        if let Some(v) = raw(d, x, r)? {
            best = best.min(v);
        }
    }
    Ok(best)
}

/// `(tau, method, alpha certified)`; see the module docs.
pub fn threshold(cal: &[f64], alpha: f64) -> (f64, f64, f64) {
    if let Ok(c) = conformal_threshold(cal, alpha) {
        return (c.tau, 0.0, alpha);
    }
    let n = cal.len();
    let max = cal.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let certified = 1.0 / (n as f64 + 1.0);
    if n >= 30 {
        let start = 1.0 - 10.0 / n as f64;
        if let Ok(t) = GpdTail::fit(cal, start).and_then(|g| g.threshold(alpha)) {
            if t.is_finite() && t >= max {
                return (t, 1.0, certified);
            }
        }
    }
    (max, 2.0, certified)
}

fn alabel(a: f64) -> String {
    severity_label(a)
}

/// A group of substitutes at one severity.
struct Group {
    label: String,
    sev_label: String,
    severity: f64,
    is_default: bool,
    ids: Vec<String>,
}

fn groups_of(prefix: &str, sweeps: &[Sweep], items: &Items) -> Vec<Group> {
    let mut out = vec![];
    for s in sweeps {
        for (sev_label, sev) in s.points() {
            let p = format!("{prefix}/{}/{sev_label}/", s.label);
            let ids: Vec<String> = items.keys().filter(|k| k.starts_with(&p)).cloned().collect();
            let severity = match sev {
                Some(v) => v,
                None => ids.first().and_then(|i| items[i].m.attack.as_ref()).map_or(1.0, |a| a.severity),
            };
            out.push(Group {
                label: s.label.clone(),
                sev_label,
                severity,
                is_default: sev.is_none() || sev == s.default,
                ids,
            });
        }
    }
    out
}

fn get<'a>(items: &'a Items, id: &str) -> Result<&'a Item> {
    items.get(id).ok_or_else(|| Error::run(format!("summary: item `{id}` has no sample (run incomplete?)")))
}

/// The kernel path a null or reference item ran on (`real/null/<path>/<i>`,
/// `real/ref/<path>`; zoo items run on `f32`).
fn path_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    match parts.as_slice() {
        ["real", "null", path, _] | ["real", "ref", path] => path.to_string(),
        _ => "f32".into(),
    }
}

/// Calibrate every detector on one subject, **per enrolled kernel path** (each path's
/// threshold from its own calibration nulls), and score its null and substitutes by the
/// distance over threshold to the nearest path. Returns the identity threshold of the
/// first path at the smallest alpha (for the pair analysis).
#[allow(clippy::too_many_arguments)]
fn subject(
    out: &mut Metrics,
    name: &str,
    p: &SubstitutionParams,
    seed: u64,
    items: &Items,
    refs: &[String],
    nulls: &[String],
    groups: &[Group],
    sink: &mut Vec<ScoreRow>,
) -> Result<f64> {
    let refs: Vec<PathRef> =
        refs.iter().map(|r| Ok(PathRef { path: path_of(r), item: get(items, r)? })).collect::<Result<_>>()?;
    // Strata: kernel path and batch size, the nuisance that moves fingerprints.
    let strata: Vec<String> = nulls
        .iter()
        .map(|id| Ok(format!("{}/b{}", path_of(id), get(items, id)?.m.nuisance.batch_size)))
        .collect::<Result<_>>()?;
    let seeded = if p.stratify {
        let null_refs: Vec<(&str, &str)> =
            nulls.iter().zip(&strata).map(|(a, b)| (a.as_str(), b.as_str())).collect();
        Splits::stratified(&null_refs, seed, p.calibration_fraction)?
    } else {
        let null_refs: Vec<&str> = nulls.iter().map(String::as_str).collect();
        Splits::seeded(&null_refs, seed, 0.0, p.calibration_fraction)?
    };
    let cal_ids = seeded.ids(crate::detect::Split::Calibration);
    let eval_ids = seeded.ids(crate::detect::Split::Evaluation);
    let ref_ids: Vec<String> = refs.iter().map(|r| format!("ref:{}", r.path)).collect();
    let ref_id_refs: Vec<&str> = ref_ids.iter().map(String::as_str).collect();
    let splits = Splits::new(&ref_id_refs, &cal_ids, &eval_ids)?;
    let min_alpha = p.alphas.iter().copied().fold(1.0, f64::min);
    let mut identity_tau = f64::NAN;
    for det in DETECTORS {
        let key = |k: &str| format!("{name}.{}.{k}", det.name());
        // Calibration distances per path, each null to its own path's reference.
        let mut cal_by_path: Vec<Vec<f64>> = vec![vec![]; refs.len()];
        let mut cal_items = vec![];
        for id in &cal_ids {
            let path = path_of(id);
            let Some(k) = refs.iter().position(|r| r.path == path) else {
                return Err(Error::run(format!("summary: null `{id}` ran on a path that was not enrolled")));
            };
            if let Some(v) = raw(det, get(items, id)?, &refs[k])? {
                cal_by_path[k].push(v);
                cal_items.push((id.to_string(), v));
            }
        }
        let cal = splits.take::<Calibration>(cal_items)?;
        if cal.is_empty() {
            continue;
        }
        if let Some(k) = cal_by_path.iter().position(|v| v.is_empty()) {
            return Err(Error::input(
                format!("substitution run `{name}`"),
                format!("path `{}` has no calibration null; add null draws on it", refs[k].path),
            ));
        }
        let calv = cal.values();
        out.insert(key("null.cal_n"), calv.len() as f64);
        out.insert(key("null.cal_max"), calv.iter().copied().fold(0.0, f64::max));
        let mut taus_by_alpha = vec![];
        for &a in &p.alphas {
            let ak = |k: &str| key(&format!("a{}.{k}", alabel(a)));
            let mut taus = vec![];
            for (r, c) in refs.iter().zip(&cal_by_path) {
                let (calibrated, method, certified) = threshold(c, a);
                let tau = match det {
                    Det::Sha256 => calibrated,
                    // 1 - CKA is quadratic in a relative perturbation: the same floor, squared.
                    Det::Cka => calibrated.max(p.tau_floor * p.tau_floor),
                    _ => calibrated.max(p.tau_floor),
                };
                out.insert(ak(&format!("tau.{}", r.path)), tau);
                out.insert(ak(&format!("tau_calibrated.{}", r.path)), calibrated);
                out.insert(ak(&format!("method.{}", r.path)), method);
                out.insert(ak(&format!("alpha_certified.{}", r.path)), certified);
                out.insert(ak(&format!("cal_n.{}", r.path)), c.len() as f64);
                taus.push(tau);
            }
            out.insert(ak("tau"), taus[0]);
            if det == Det::Identity && a == min_alpha {
                identity_tau = taus[0];
            }
            taus_by_alpha.push((a, taus));
        }
        // Evaluation nulls and substitutes, scored against every path's threshold.
        let mut curves: BTreeMap<&str, Vec<(f64, Vec<f64>)>> = BTreeMap::new();
        for (ai, (a, taus)) in taus_by_alpha.iter().enumerate() {
            let ak = |k: &str| key(&format!("a{}.{k}", alabel(*a)));
            let mut eval_items = vec![];
            for id in &eval_ids {
                if let Some(s) = score(det, get(items, id)?, &refs, taus)? {
                    eval_items.push((id.to_string(), s));
                }
            }
            let keep = *a == min_alpha;
            let row = |role, item: &str, attack: Option<&Group>, distance, ratio| ScoreRow {
                subject: name.to_string(),
                detector: det.name(),
                role,
                item: item.to_string(),
                attack: attack.map(|g| g.label.clone()),
                severity: attack.map(|g| g.severity),
                is_default: attack.is_some_and(|g| g.is_default),
                distance,
                ratio,
                tau: taus[0],
            };
            if keep {
                for (id, v) in cal.items() {
                    sink.push(row("null-cal", id, None, *v, None));
                }
                for (id, v) in &eval_items {
                    sink.push(row("null-eval", id, None, nearest(det, get(items, id)?, &refs)?, Some(*v)));
                }
            }
            let eval = splits.take::<Evaluation>(eval_items)?;
            check_disjoint(&cal, &eval)?;
            let evalv = eval.values();
            if evalv.is_empty() {
                continue;
            }
            out.insert(key("null.eval_n"), evalv.len() as f64);
            out.insert(ak("eval_max_ratio"), evalv.iter().copied().fold(0.0, f64::max));
            let fp = evalv.iter().filter(|&&s| s > 1.0).count();
            let pr = proportion(fp, evalv.len(), LEVEL, CiMethod::ClopperPearson)?;
            out.insert(ak("eval_fpr"), pr.estimate);
            out.insert(ak("eval_fpr_hi"), pr.hi);
            let rule = DecisionRule::new(1.0, p.margin)?;
            let dec: Vec<Decision> = evalv.iter().map(|&s| rule.decide(s)).collect();
            out.insert(ak("eval_rejects"), dec.iter().filter(|d| **d == Decision::Reject).count() as f64);
            out.insert(
                ak("eval_inconclusive"),
                dec.iter().filter(|d| **d == Decision::Inconclusive).count() as f64,
            );
            for g in groups {
                let mut pos = vec![];
                let mut dist = vec![];
                for id in &g.ids {
                    let it = get(items, id)?;
                    if let Some(s) = score(det, it, &refs, taus)? {
                        pos.push(s);
                        let d = raw(det, it, &refs[0])?.unwrap_or(BROKEN);
                        dist.push(d);
                        if keep {
                            sink.push(row("substitute", id, Some(g), nearest(det, it, &refs)?, Some(s)));
                        }
                    }
                }
                if pos.is_empty() {
                    continue;
                }
                let gk = |k: &str| key(&format!("{}.{}.{k}", g.label, g.sev_label));
                let mut sorted = pos.clone();
                sorted.sort_by(f64::total_cmp);
                if ai == 0 {
                    out.insert(gk("n"), pos.len() as f64);
                    let broken =
                        g.ids.iter().filter(|id| items.get(*id).is_some_and(|i| i.fp.is_none())).count();
                    out.insert(gk("broken"), broken as f64);
                    dist.sort_by(f64::total_cmp);
                    // Raw distance to the first path's reference (the substitutes run on it).
                    out.insert(gk("median"), dist[dist.len() / 2]);
                }
                let k = pos.iter().filter(|&&s| s > 1.0).count();
                let pr = proportion(k, pos.len(), LEVEL, CiMethod::ClopperPearson)?;
                let gak = |s: &str| gk(&format!("a{}.{s}", alabel(*a)));
                out.insert(gak("tpr"), pr.estimate);
                out.insert(gak("tpr_lo"), pr.lo);
                out.insert(gak("tpr_hi"), pr.hi);
                out.insert(gak("ratio_median"), sorted[sorted.len() / 2]);
                out.insert(gak("ratio_min"), sorted[0]);
                out.insert(
                    gak("rejected"),
                    pos.iter().filter(|&&s| s > p.margin).count() as f64 / pos.len() as f64,
                );
                if *a == min_alpha {
                    out.insert(gk("auc"), auc(&evalv, &pos)?);
                    if g.is_default && det == Det::Identity {
                        out.insert(format!("headline.{name}.{}.tpr", g.label), pr.estimate);
                        out.insert(format!("headline.{name}.{}.tpr_lo", g.label), pr.lo);
                        out.insert(format!("headline.{name}.{}.n", g.label), pos.len() as f64);
                    }
                }
                curves.entry(g.label.as_str()).or_default().push((g.severity, pos));
            }
            for (label, pts) in std::mem::take(&mut curves) {
                if pts.len() < 2 {
                    continue;
                }
                let curve = sensitivity_curve(1.0, &pts, LEVEL, CiMethod::ClopperPearson)?;
                let lk = |s: &str| key(&format!("{label}.a{}.{s}", alabel(*a)));
                for (s, lower) in [("min_detectable", false), ("min_detectable_ci", true)] {
                    match min_detectable_severity(&curve, p.target_tpr, lower) {
                        Some(v) => {
                            out.insert(lk(s), v);
                            out.insert(lk(&format!("{s}_found")), 1.0);
                        }
                        None => {
                            out.insert(lk(&format!("{s}_found")), 0.0);
                        }
                    }
                }
            }
        }
    }
    Ok(identity_tau)
}

fn width_of(id: &str) -> Option<&str> {
    id.split('/').find(|s| s.starts_with("zoo-w")).and_then(|z| z.split('-').nth(1))
}

/// Zoo seed family `(width, seed)` of an item naming a zoo checkpoint.
fn family_of(id: &str) -> Option<(String, String)> {
    let z = id.split('/').find(|s| s.starts_with("zoo-w"))?;
    let mut it = z.split('-');
    it.next();
    Some((it.next()?.to_string(), it.next()?.to_string()))
}

/// False accepts over every pair of distinct models (distinct weight hashes).
fn pairs(
    out: &mut Metrics,
    items: &Items,
    real_tau: Option<f64>,
    zoo_taus: &BTreeMap<String, f64>,
    accepted: &mut Vec<PairRow>,
) -> Result<()> {
    let mut models: Vec<&str> = vec![];
    let mut seen = BTreeSet::new();
    for (id, it) in items {
        if it.fp.is_none() {
            continue;
        }
        let canonical = id.starts_with("zoo/fp/")
            || (id.starts_with("real/ref/") && models.iter().all(|m| !m.starts_with("real/ref/")))
            || ((id.starts_with("real/var/") || id.starts_with("zoo/var/")) && id.ends_with("/0"));
        if canonical && seen.insert(it.m.weights_sha256.clone()) {
            models.push(id);
        }
    }
    let zoo_max = zoo_taus.values().copied().fold(f64::NAN, f64::max);
    let (mut comparable, mut incomparable, mut false_accepts) = (0usize, 0usize, 0usize);
    let mut min_ratio = f64::INFINITY;
    let (mut same_fam, mut diff_fam) = (vec![], vec![]);
    for (i, a) in models.iter().enumerate() {
        for b in &models[i + 1..] {
            let (Some(fa), Some(fb)) = (&items[*a].fp, &items[*b].fp) else {
                continue;
            };
            let d = match distance(fa, fb) {
                Ok(d) => d,
                Err(_) => {
                    incomparable += 1;
                    continue;
                }
            };
            comparable += 1;
            let tau = if a.starts_with("real/") && b.starts_with("real/") {
                real_tau.unwrap_or(f64::NAN)
            } else {
                width_of(a).and_then(|w| zoo_taus.get(w)).copied().unwrap_or(zoo_max)
            };
            if tau.is_nan() {
                continue;
            }
            if d.identity.total <= tau {
                false_accepts += 1;
                accepted.push(PairRow {
                    a: a.to_string(),
                    b: b.to_string(),
                    distance: d.identity.total,
                    tau,
                });
            }
            if tau > 0.0 {
                min_ratio = min_ratio.min(d.identity.total / tau);
            }
            if let (Some(fa), Some(fb)) = (family_of(a), family_of(b)) {
                if fa == fb {
                    same_fam.push(d.lineage.total);
                } else if fa.0 == fb.0 {
                    diff_fam.push(d.lineage.total);
                }
            }
        }
    }
    out.insert("pairs.models".into(), models.len() as f64);
    out.insert("pairs.total".into(), (models.len() * models.len().saturating_sub(1) / 2) as f64);
    out.insert("pairs.comparable".into(), comparable as f64);
    out.insert("pairs.incomparable_architecture".into(), incomparable as f64);
    out.insert("pairs.false_accepts".into(), false_accepts as f64);
    if min_ratio.is_finite() {
        out.insert("pairs.min_distance_over_tau".into(), min_ratio);
    }
    if !same_fam.is_empty() && !diff_fam.is_empty() {
        // Lineage: do checkpoints of one training run sit closer than other runs of the
        // same width? AUC of "different run" against "same run".
        out.insert("pairs.lineage.same_run_n".into(), same_fam.len() as f64);
        out.insert("pairs.lineage.other_run_n".into(), diff_fam.len() as f64);
        out.insert("pairs.lineage.auc_other_vs_same_run".into(), auc(&same_fam, &diff_fam)?);
    }
    Ok(())
}

fn power(out: &mut Metrics, p: &SubstitutionParams, items: &Items) -> Result<()> {
    let Some(pw) = &p.power else { return Ok(()) };
    for t in &pw.tokens {
        let r = get(items, &format!("power/{t}/ref"))?;
        let pr = PathRef { path: "f32".into(), item: r };
        let nulls: Vec<f64> = (0..pw.null_draws)
            .map(|i| {
                raw(Det::Identity, get(items, &format!("power/{t}/null/{i}"))?, &pr).map(|s| s.unwrap_or(0.0))
            })
            .collect::<Result<_>>()?;
        let null_max = nulls.iter().copied().fold(0.0, f64::max);
        let tau = null_max.max(p.tau_floor);
        out.insert(format!("power.{t}.tokens_used"), r.m.tokens_used as f64);
        out.insert(format!("power.{t}.tau"), tau);
        out.insert(format!("power.{t}.null_max"), null_max);
        for (label, _) in &pw.variants {
            let pos: Vec<f64> = (1..=pw.draws)
                .map(|d| {
                    raw(Det::Identity, get(items, &format!("power/{t}/{label}/{d}"))?, &pr)
                        .map(|s| s.unwrap_or(0.0))
                })
                .collect::<Result<_>>()?;
            let k = pos.iter().filter(|&&d| d > tau).count();
            out.insert(format!("power.{t}.{label}.detected"), k as f64 / pos.len() as f64);
            out.insert(
                format!("power.{t}.{label}.min_distance"),
                pos.iter().copied().fold(f64::INFINITY, f64::min),
            );
            if tau > 0.0 {
                out.insert(
                    format!("power.{t}.{label}.min_over_tau"),
                    pos.iter().copied().fold(f64::INFINITY, f64::min) / tau,
                );
            }
        }
    }
    Ok(())
}

pub fn summarise(p: &SubstitutionParams, seed: u64, samples: &[Sample]) -> Result<Metrics> {
    summarise_with_scores(p, seed, samples, &mut Vec::new(), &mut Vec::new())
}

/// Every scored item behind the summary (for figures); same computation as `summarise`.
pub fn scores(p: &SubstitutionParams, seed: u64, samples: &[Sample]) -> Result<Vec<ScoreRow>> {
    let mut sink = Vec::new();
    summarise_with_scores(p, seed, samples, &mut sink, &mut Vec::new())?;
    Ok(sink)
}

/// The distinct-model pairs counted as false accepts (`pairs.false_accepts`).
pub fn false_accept_pairs(p: &SubstitutionParams, seed: u64, samples: &[Sample]) -> Result<Vec<PairRow>> {
    let mut accepted = Vec::new();
    summarise_with_scores(p, seed, samples, &mut Vec::new(), &mut accepted)?;
    Ok(accepted)
}

fn summarise_with_scores(
    p: &SubstitutionParams,
    seed: u64,
    samples: &[Sample],
    sink: &mut Vec<ScoreRow>,
    accepted: &mut Vec<PairRow>,
) -> Result<Metrics> {
    let mut items = Items::new();
    let mut max_bytes = 0usize;
    for s in samples {
        let m: Measurement = serde_json::from_value(s.output.clone())
            .map_err(|e| Error::run(format!("sample `{}`: {e}", s.item)))?;
        max_bytes = max_bytes.max(m.fingerprint.len() / 2);
        let fp = if m.broken.is_some() { None } else { Some(m.decode()?) };
        items.insert(s.item.clone(), Item { m, fp });
    }
    let mut out = Metrics::new();
    out.insert("items".into(), items.len() as f64);
    out.insert("fingerprint.max_encoded_bytes".into(), max_bytes as f64);
    let mut real_tau = None;
    if let Some(r) = &p.real {
        let refs: Vec<String> = r.paths.iter().map(|m| format!("real/ref/{m}")).collect();
        let nulls: Vec<String> = items.keys().filter(|k| k.starts_with("real/null/")).cloned().collect();
        let groups = groups_of("real/var", &r.variants, &items);
        real_tau = Some(subject(&mut out, "real", p, seed, &items, &refs, &nulls, &groups, sink)?);
    }
    let mut zoo_taus = BTreeMap::new();
    if let Some(z) = &p.zoo {
        for id in &z.enrol {
            let refs = vec![format!("zoo/fp/{id}")];
            let nulls: Vec<String> =
                items.keys().filter(|k| k.starts_with(&format!("zoo/null/{id}/"))).cloned().collect();
            let mut groups = groups_of(&format!("zoo/var/{id}"), &z.variants, &items);
            let w = width_of(&refs[0]);
            let others: Vec<String> = items
                .keys()
                .filter(|k| k.starts_with("zoo/fp/") && **k != refs[0] && width_of(k) == w)
                .cloned()
                .collect();
            if !others.is_empty() {
                groups.push(Group {
                    label: "other-checkpoint".into(),
                    sev_label: "fixed".into(),
                    severity: 1.0,
                    is_default: true,
                    ids: others,
                });
            }
            let tau = subject(&mut out, &format!("zoo.{id}"), p, seed, &items, &refs, &nulls, &groups, sink)?;
            if let Some(w) = w {
                zoo_taus.insert(w.to_string(), tau);
            }
        }
    }
    pairs(&mut out, &items, real_tau, &zoo_taus, accepted)?;
    power(&mut out, p, &items)?;
    // Headline: the weakest default-severity TPR, and benign rejects over all subjects.
    let tprs: Vec<f64> = out
        .iter()
        .filter(|(k, _)| k.starts_with("headline.") && k.ends_with(".tpr"))
        .map(|(_, v)| *v)
        .collect();
    if !tprs.is_empty() {
        out.insert("headline.min_default_tpr".into(), tprs.iter().copied().fold(1.0, f64::min));
    }
    let min_alpha = p.alphas.iter().copied().fold(1.0, f64::min);
    let suffix = format!(".identity.a{}.eval_rejects", alabel(min_alpha));
    let rejects: f64 = out.iter().filter(|(k, _)| k.ends_with(&suffix)).map(|(_, v)| *v).sum();
    out.insert("headline.benign_rejects".into(), rejects);
    Ok(out)
}

//! Tables and figures of a `substitution` run (same-family, supply-chain): detection per
//! attack and severity, thresholds and held-out false rejects, baselines side by side,
//! distinct pairs, power; ROC curves, distance histograms with the threshold,
//! sensitivity and power curves.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Result;
use crate::experiments::substitution::spec::{severity_label, SubstitutionParams};
use crate::experiments::substitution::summary::{scores, ScoreRow};
use crate::experiments::Params;
use crate::figures::{self, Scale, Series};
use crate::report::table::{num, rate_ci, rate_upper, Table};
use crate::report::{LoadedRun, Written};

const ZERO_AT: f64 = 1e-10;
const DETECTORS: [&str; 5] = ["identity", "lineage", "logit", "cka", "sha256"];

/// Subjects of the run as metric prefixes: `real`, `zoo.<checkpoint>`.
fn subjects(p: &SubstitutionParams) -> Vec<(String, String)> {
    let mut out = vec![];
    if let Some(r) = &p.real {
        out.push(("real".to_string(), r.model.name.clone()));
    }
    if let Some(z) = &p.zoo {
        out.extend(z.enrol.iter().map(|id| (format!("zoo.{id}"), format!("zoo {id}"))));
    }
    out
}

/// `(attack, severity label, severity)` groups of a subject, from its metric names,
/// ordered by attack then severity.
fn groups(run: &LoadedRun, subject: &str) -> Vec<(String, String, f64)> {
    let prefix = format!("{subject}.identity.");
    let mut g: Vec<(String, String, f64)> = run
        .summary
        .metrics
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix(".n"))
        .filter_map(|rest| {
            let (attack, sev) = rest.split_once('.')?;
            (!sev.contains('.')).then(|| {
                let v = sev.replace('p', ".").parse::<f64>().unwrap_or(f64::NAN);
                (attack.to_string(), sev.to_string(), v)
            })
        })
        .collect();
    g.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.total_cmp(&b.2)));
    g
}

fn alpha_label(p: &SubstitutionParams) -> String {
    severity_label(p.alphas.iter().copied().fold(1.0, f64::min))
}

pub fn report(run: &LoadedRun, tables: &Path, figures_dir: &Path, w: &mut Written) -> Result<()> {
    let Params::Substitution(p) = &run.exp.params else { return Ok(()) };
    let name = &run.exp.name;
    let a = alpha_label(p);
    let m = |k: &str| run.metric(k);
    let rows = scores(p, run.exp.seed, &run.samples)?;

    // Detection per attack and severity (identity channel).
    let mut det = String::new();
    let mut thr = Table::new(&[
        "subject",
        "detector",
        "path",
        "τ used",
        "τ calibrated",
        "method",
        "cal n",
        "α certified",
    ]);
    let mut heldout =
        Table::new(&["subject", "detector", "eval n", "false rejects", "FPR [95 % upper bound]", "max d/τ"]);
    let mut base_header = vec!["subject", "attack (default severity)", "n"];
    base_header.extend(DETECTORS.iter().map(|d| match *d {
        "identity" => "identity TPR",
        "lineage" => "lineage TPR",
        "logit" => "logit TPR",
        "cka" => "CKA TPR",
        _ => "sha256 TPR",
    }));
    let mut base = Table::new(&base_header);
    for (subject, title) in subjects(p) {
        let mut t = Table::new(&[
            "attack",
            "severity",
            "n",
            "median distance",
            "min d/τ",
            &format!("TPR at α = {a} [95 % CI]"),
            "AUC",
            "broken",
        ]);
        let gs = groups(run, subject.as_str());
        for (attack, sev, _) in &gs {
            let k = |s: &str| m(&format!("{subject}.identity.{attack}.{sev}.{s}"));
            let ka = |s: &str| m(&format!("{subject}.identity.{attack}.{sev}.a{a}.{s}"));
            t.row(vec![
                attack.clone(),
                sev.replace('p', "."),
                num(k("n")),
                num(k("median")),
                num(ka("ratio_min")),
                rate_ci(ka("tpr"), ka("tpr_lo"), ka("tpr_hi")),
                num(k("auc")),
                num(k("broken")),
            ]);
        }
        let mut mins = vec![];
        for attack in gs.iter().map(|g| &g.0).collect::<std::collections::BTreeSet<_>>() {
            let k = format!("{subject}.identity.{attack}.a{a}.min_detectable");
            match (m(&k), m(&format!("{k}_found"))) {
                (Some(v), _) => mins.push(format!("{attack} {}", num(Some(v)))),
                (None, Some(_)) => mins.push(format!("{attack}: not reached")),
                _ => {}
            }
        }
        det.push_str(&format!("**{title}** (`{subject}`)\n\n{}\n", t.markdown()));
        if !mins.is_empty() {
            det.push_str(&format!(
                "Minimum detectable severity (TPR ≥ {}): {}.\n\n",
                p.target_tpr,
                mins.join("; ")
            ));
        }
        for d in DETECTORS {
            let paths: Vec<String> = run
                .summary
                .metrics
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{subject}.{d}.a{a}.tau.")).map(str::to_string))
                .collect();
            for path in &paths {
                let k = |s: &str| m(&format!("{subject}.{d}.a{a}.{s}.{path}"));
                let method = match k("method") {
                    Some(0.0) => "conformal",
                    Some(1.0) => "GPD tail",
                    Some(_) => "cal. max",
                    None => "—",
                };
                thr.row(vec![
                    subject.clone(),
                    d.into(),
                    path.clone(),
                    num(k("tau")),
                    num(k("tau_calibrated")),
                    method.into(),
                    num(k("cal_n")),
                    num(k("alpha_certified")),
                ]);
            }
            let k = |s: &str| m(&format!("{subject}.{d}.a{a}.{s}"));
            if m(&format!("{subject}.{d}.null.eval_n")).is_some() {
                heldout.row(vec![
                    subject.clone(),
                    d.into(),
                    num(m(&format!("{subject}.{d}.null.eval_n"))),
                    num(k("eval_rejects")),
                    rate_upper(k("eval_fpr"), k("eval_fpr_hi")),
                    num(k("eval_max_ratio")),
                ]);
            }
        }
        for (attack, sev, _) in gs.iter().filter(|(atk, sev, _)| is_default(p, &subject, atk, sev)) {
            let mut row = vec![subject.clone(), format!("{attack} ({})", sev.replace('p', "."))];
            row.push(num(m(&format!("{subject}.identity.{attack}.{sev}.n"))));
            for d in DETECTORS {
                row.push(num(m(&format!("{subject}.{d}.{attack}.{sev}.a{a}.tpr"))));
            }
            base.row(row);
        }
        figures_for_subject(run, p, &subject, &title, &rows, figures_dir, w)?;
    }
    w.table(tables, &format!("{name}-detection"), &det)?;
    w.table(tables, &format!("{name}-thresholds"), &thr.markdown())?;
    w.table(tables, &format!("{name}-null"), &heldout.markdown())?;
    w.table(tables, &format!("{name}-baselines"), &base.markdown())?;
    w.table(tables, &format!("{name}-pairs"), &pairs(run, p)?)?;
    if p.power.is_some() {
        w.table(tables, &format!("{name}-power"), &power_table(run))?;
        power_figure(run, figures_dir, w)?;
    }
    Ok(())
}

fn is_default(p: &SubstitutionParams, subject: &str, attack: &str, sev: &str) -> bool {
    if attack == "other-checkpoint" {
        return true;
    }
    let sweeps = if subject == "real" {
        p.real.as_ref().map(|r| &r.variants)
    } else {
        p.zoo.as_ref().map(|z| &z.variants)
    };
    sweeps
        .into_iter()
        .flatten()
        .any(|s| s.label == attack && s.default.map(severity_label).as_deref().unwrap_or("fixed") == sev)
}

fn pairs(run: &LoadedRun, p: &SubstitutionParams) -> Result<String> {
    let m = |k: &str| num(run.metric(&format!("pairs.{k}")));
    let mut t = Table::new(&[
        "models",
        "pairs",
        "comparable",
        "different architecture",
        "false accepts",
        "min d/τ",
        "lineage AUC (other run vs same run)",
    ]);
    t.row(vec![
        m("models"),
        m("total"),
        m("comparable"),
        m("incomparable_architecture"),
        m("false_accepts"),
        m("min_distance_over_tau"),
        m("lineage.auc_other_vs_same_run"),
    ]);
    let accepted =
        crate::experiments::substitution::summary::false_accept_pairs(p, run.record.seed, &run.samples)?;
    if accepted.is_empty() {
        return Ok(t.markdown());
    }
    // Name every false accept: they are usually substitutes below the detection floor.
    let mut fa = Table::new(&["false accept: model A", "model B", "identity distance", "τ", "d/τ"]);
    for r in &accepted {
        fa.row(vec![
            format!("`{}`", r.a),
            format!("`{}`", r.b),
            format!("{:.3e}", r.distance),
            format!("{:.3e}", r.tau),
            format!("{:.3}", r.distance / r.tau),
        ]);
    }
    Ok(format!("{}\n{}", t.markdown(), fa.markdown()))
}

/// Token budgets and variant labels of the power section, from metric names.
fn power_points(run: &LoadedRun) -> (Vec<u64>, Vec<String>) {
    let mut tokens = std::collections::BTreeSet::new();
    let mut labels = std::collections::BTreeSet::new();
    for k in run.summary.metrics.keys() {
        let Some(rest) = k.strip_prefix("power.") else { continue };
        let mut it = rest.splitn(2, '.');
        let (Some(t), Some(tail)) = (it.next(), it.next()) else { continue };
        if let Ok(t) = t.parse::<u64>() {
            tokens.insert(t);
            if let Some(l) = tail.strip_suffix(".min_distance") {
                labels.insert(l.to_string());
            }
        }
    }
    (tokens.into_iter().collect(), labels.into_iter().collect())
}

fn power_table(run: &LoadedRun) -> String {
    let (tokens, labels) = power_points(run);
    let mut header = vec!["probe tokens".to_string(), "null max".into(), "τ".into()];
    header.extend(labels.iter().map(|l| format!("{l}: min distance (detected)")));
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&h);
    for tok in tokens {
        let m = |k: &str| run.metric(&format!("power.{tok}.{k}"));
        let mut row = vec![tok.to_string(), num(m("null_max")), num(m("tau"))];
        for l in &labels {
            row.push(format!(
                "{} ({})",
                num(m(&format!("{l}.min_distance"))),
                num(m(&format!("{l}.detected")))
            ));
        }
        t.row(row);
    }
    t.markdown()
}

fn power_figure(run: &LoadedRun, dir: &Path, w: &mut Written) -> Result<()> {
    let (tokens, labels) = power_points(run);
    let pts = |k: &str| -> Vec<(f64, f64)> {
        tokens.iter().filter_map(|t| Some((*t as f64, run.metric(&format!("power.{t}.{k}"))?))).collect()
    };
    let mut series: Vec<Series> = labels
        .iter()
        .map(|l| Series::new(format!("{l} (smallest of draws)"), pts(&format!("{l}.min_distance"))))
        .collect();
    series.push(Series::new("benign null (largest)", pts("null_max")));
    series.push(Series::new("threshold τ", pts("tau")));
    let stem = dir.join(format!("{}-power", run.exp.name));
    w.figures.extend(figures::lines(
        &stem,
        &format!("{}: identity distance against probe budget", run.exp.name),
        "probe tokens",
        "identity distance (relative)",
        &series,
        Scale::Log,
        Scale::Log,
        &[],
        None,
    )?);
    Ok(())
}

fn figures_for_subject(
    run: &LoadedRun,
    p: &SubstitutionParams,
    subject: &str,
    title: &str,
    rows: &[ScoreRow],
    dir: &Path,
    w: &mut Written,
) -> Result<()> {
    let name = &run.exp.name;
    let slug = subject.replace('.', "-");
    let of = |det: &str, role: &str| -> Vec<&ScoreRow> {
        rows.iter().filter(|r| r.subject == subject && r.detector == det && r.role == role).collect()
    };
    // ROC: held-out benign runs against every substitute, per detector (score d/τ).
    let mut curves = vec![];
    for d in ["identity", "lineage", "logit", "cka"] {
        let neg: Vec<f64> = of(d, "null-eval").iter().filter_map(|r| r.ratio).collect();
        let pos: Vec<f64> = of(d, "substitute").iter().filter_map(|r| r.ratio).collect();
        if neg.is_empty() || pos.is_empty() {
            continue;
        }
        let pts = figures::roc_points(&neg, &pos);
        let label =
            format!("{d} (AUC {:.3}; {} benign, {} substitutes)", figures::auc(&pts), neg.len(), pos.len());
        curves.push(Series::new(label, pts));
    }
    w.figures.extend(figures::roc(
        dir.join(format!("{name}-{slug}-roc")),
        &format!("{name}, {title}: ROC, held-out benign runs vs all substitutes"),
        &curves,
    )?);

    // Histogram of identity distances with the threshold of each enrolled path.
    // Exactly reproduced fingerprints (distance 0) cannot sit on a log axis: they are
    // drawn at ZERO_AT and the axis label says so.
    let dist = |role: &str, default_only: bool| -> Vec<f64> {
        of("identity", role)
            .iter()
            .filter(|r| !default_only || r.is_default)
            .map(|r| if r.distance == 0.0 { ZERO_AT } else { r.distance })
            .collect()
    };
    let hist = vec![
        ("benign, calibration".to_string(), dist("null-cal", false)),
        ("benign, held out".to_string(), dist("null-eval", false)),
        ("substitutes at default severity".to_string(), dist("substitute", true)),
        ("substitutes, all severities".to_string(), dist("substitute", false)),
    ];
    let a = alpha_label(p);
    let vlines: Vec<(String, f64)> = run
        .summary
        .metrics
        .iter()
        .filter_map(|(k, v)| {
            let path = k.strip_prefix(&format!("{subject}.identity.a{a}.tau."))?;
            Some((format!("τ ({path} path)"), *v))
        })
        .collect();
    w.figures.extend(figures::histogram(
        dir.join(format!("{name}-{slug}-distances")),
        &format!("{name}, {title}: identity distance to the enrolment"),
        "identity distance to the nearest enrolled path (relative, log scale; exactly 0 drawn at 1e-10)",
        &hist,
        Scale::Log,
        &vlines,
    )?);

    // Sensitivity: median d/τ against severity per attack (log-log), threshold at 1.
    let mut by_attack: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (attack, sev, v) in groups(run, subject) {
        if let Some(r) = run.metric(&format!("{subject}.identity.{attack}.{sev}.a{a}.ratio_median")) {
            if v.is_finite() {
                by_attack.entry(attack).or_default().push((v, r));
            }
        }
    }
    let series: Vec<Series> =
        by_attack.into_iter().filter(|(_, p)| p.len() >= 2).map(|(k, p)| Series::new(k, p)).collect();
    if !series.is_empty() {
        w.figures.extend(figures::lines(
            dir.join(format!("{name}-{slug}-sensitivity")),
            &format!("{name}, {title}: sensitivity to attack severity"),
            "attack severity (attack-specific units, log scale)",
            "median distance / threshold (log scale)",
            &series,
            Scale::Log,
            Scale::Log,
            &[],
            Some(("threshold (d = τ)".into(), 1.0)),
        )?);
    }
    Ok(())
}

//! Tables and figures of a `compression` run: per-signal separation and the calibrated
//! detectors' rates; per-signal ROC against the confound controls; the signals and the
//! combined score over the turns after the compaction event, with the alarm threshold
//! and the detector's alarm.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Result;
use crate::experiments::compression::summary::{session_scores, SessionScore};
use crate::experiments::Params;
use crate::figures::{self, Scale, Series};
use crate::report::table::{num, rate_upper, Table};
use crate::report::{LoadedRun, Written};

const SIGNALS: [(&str, &str); 8] = [
    ("lexicon", "ghost lexicon decay (window-corrected)"),
    ("lexicon_naive", "ghost lexicon decay (uncorrected)"),
    ("constraint_lexicon", "constraint-vocabulary decay"),
    ("consistency", "context consistency, mean drop"),
    ("consistency_max", "context consistency, largest probe drop"),
    ("toolshift", "tool-call distribution shift (JSD)"),
    ("anchor_mean", "anchor composite (plain mean)"),
    ("combined", "combined (calibrated logistic)"),
];

pub fn report(run: &LoadedRun, tables: &Path, figures_dir: &Path, w: &mut Written) -> Result<()> {
    let Params::Compression(p) = &run.exp.params else { return Ok(()) };
    let name = &run.exp.name;
    let m = |k: &str| run.metric(k);

    let mut sig = Table::new(&[
        "signal",
        "AUROC vs confound controls",
        "AUROC vs all negatives",
        "TPR at FPR 1 % (eval ROC, controls)",
    ]);
    for (key, label) in SIGNALS {
        let k = |s: &str| m(&format!("signal.{key}.{s}"));
        if k("auroc_vs_all").is_none() {
            continue;
        }
        sig.row(vec![
            label.into(),
            num(k("auroc_vs_confound")),
            num(k("auroc_vs_all")),
            num(k("eval_roc_tpr_at_fpr_0p01_vs_confound")),
        ]);
    }
    let mut det = Table::new(&[
        "detector",
        "TPR [95 % CI lower]",
        "false alarms, confound controls",
        "FAR controls [95 % upper bound]",
        "false alarms, all negatives",
        "FAR all [95 % upper bound]",
    ]);
    for (key, label) in [("combined", "combined, calibrated"), ("anchor_mean", "anchor composite, 0.375")] {
        let k = |s: &str| m(&format!("detector.{key}.{s}"));
        det.row(vec![
            label.into(),
            format!("{} [{}]", num(k("tpr")), num(k("tpr_lo"))),
            num(k("false_alarms.confound_controls")),
            rate_upper(k("false_alarm_rate.confound_controls"), k("false_alarm_rate.confound_controls_hi")),
            num(k("false_alarms.all_negatives")),
            rate_upper(k("false_alarm_rate.all_negatives"), k("false_alarm_rate.all_negatives_hi")),
        ]);
    }
    let mut lat = Table::new(&[
        "detected sessions",
        "median turns",
        "p90 turns",
        "median actions",
        "p90 actions",
        "within 3 actions",
    ]);
    let k = |s: &str| m(&format!("detector.combined.latency.{s}"));
    lat.row(vec![
        num(k("n")),
        num(k("turns_median")),
        num(k("turns_p90")),
        num(k("actions_median")),
        num(k("actions_p90")),
        num(k("within_3_actions")),
    ]);
    let mut sessions = Table::new(&[
        "sessions",
        "calibration",
        "evaluation",
        "positives (eval)",
        "confound controls (eval)",
        "negatives (eval)",
        "violating action given loss",
    ]);
    sessions.row(vec![
        num(m("sessions.total")),
        num(m("sessions.calibration")),
        num(m("sessions.evaluation")),
        num(m("eval.positives")),
        num(m("eval.confound_controls")),
        num(m("eval.negatives")),
        num(m("violations.rate_given_loss")),
    ]);
    let mut cond = Table::new(&["condition or cell", "sessions (eval)", "alarm rate"]);
    for (k, v) in &run.summary.metrics {
        if let Some(c) = k.strip_suffix(".alarm_rate") {
            cond.row(vec![c.to_string(), num(m(&format!("{c}.n"))), num(Some(*v))]);
        }
    }
    let body = format!(
        "{}\n{}\n{}\nLatency of the combined detector (detected positives):\n\n{}\n{}",
        sessions.markdown(),
        sig.markdown(),
        det.markdown(),
        lat.markdown(),
        cond.markdown()
    );
    w.table(tables, &format!("{name}-signals"), &body)?;
    if m("llm.sessions").is_some() {
        w.table(tables, &format!("{name}-llm"), &llm_table(run))?;
    }

    let s = session_scores(p, run.exp.seed, &run.samples)?;
    roc_figure(name, &s, figures_dir, w)?;
    over_turns(name, &s, figures_dir, w)?;
    Ok(())
}

fn roc_figure(name: &str, s: &[SessionScore], dir: &Path, w: &mut Written) -> Result<()> {
    let mut curves = vec![];
    for key in ["constraint_lexicon", "consistency_max", "toolshift", "anchor_mean", "combined"] {
        let by = |role: &str| -> Vec<f64> {
            s.iter().filter(|x| x.role == role).map(|x| x.signals[key]).collect()
        };
        let (pos, neg) = (by("positive"), by("confound-control"));
        if pos.is_empty() || neg.is_empty() {
            continue;
        }
        let pts = figures::roc_points(&neg, &pos);
        let label = SIGNALS.iter().find(|(k, _)| *k == key).map_or(key, |(_, l)| l);
        curves.push(Series::new(format!("{label} (AUC {:.3})", figures::auc(&pts)), pts));
    }
    let n_pos = s.iter().filter(|x| x.role == "positive").count();
    let n_neg = s.iter().filter(|x| x.role == "confound-control").count();
    w.figures.extend(figures::roc(
        dir.join(format!("{name}-roc")),
        &format!("{name}: loss ({n_pos}) vs confound-only controls ({n_neg}), held out"),
        &curves,
    )?);
    Ok(())
}

/// Mean per turn since the compaction event, over sessions of one role.
fn mean_by_turn(
    s: &[SessionScore],
    role: &str,
    value: impl Fn(&SessionScore, usize) -> Option<(i64, f64)>,
) -> Vec<(f64, f64)> {
    let mut acc: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for x in s.iter().filter(|x| x.role == role) {
        for i in 0..x.stream.len() {
            if let Some((t, v)) = value(x, i) {
                // Stream points fall every other turn, on odd or even turns depending on
                // the boundary's parity: 2-turn bins keep every session in every bin.
                let e = acc.entry((t + 1).div_euclid(2) * 2).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
    }
    // Turns with few sessions are noise; keep those most sessions reach.
    let max_n = acc.values().map(|(_, n)| *n).max().unwrap_or(0);
    acc.into_iter()
        .filter(|(_, (_, n))| *n * 2 >= max_n)
        .map(|(t, (sum, n))| (t as f64, sum / n as f64))
        .collect()
}

fn over_turns(name: &str, s: &[SessionScore], dir: &Path, w: &mut Written) -> Result<()> {
    let roles = [
        ("positive", "compaction, constraint lost"),
        ("confound-control", "no compaction, confound on"),
        ("negative", "other sessions without loss"),
    ];
    let threshold = s.first().map(|x| x.threshold);
    let mut alarms: Vec<f64> =
        s.iter().filter(|x| x.role == "positive").filter_map(|x| x.alarm.map(|a| a as f64)).collect();
    alarms.sort_by(f64::total_cmp);
    let mut vlines = vec![("compaction event".to_string(), 0.0)];
    if !alarms.is_empty() {
        vlines.push(("median first alarm (detected positives)".into(), alarms[alarms.len() / 2]));
    }
    let series: Vec<Series> = roles
        .iter()
        .map(|(role, label)| Series::new(*label, mean_by_turn(s, role, |x, i| Some(x.combined_stream[i]))))
        .collect();
    w.figures.extend(figures::lines(
        dir.join(format!("{name}-combined-over-turns")),
        &format!("{name}: combined score after the compaction event (mean over held-out sessions)"),
        "turns since the compaction event (2-turn bins)",
        "combined score (probability)",
        &series,
        Scale::Linear,
        Scale::Linear,
        &vlines,
        threshold.map(|t| ("alarm threshold".to_string(), t)),
    )?);
    for (key, label, unit) in [
        ("lexicon", "constraint-vocabulary lexicon decay", "decay (fraction of anchors gone)"),
        (
            "consistency",
            "context consistency drop (probes answered once, at the boundary)",
            "largest per-probe drop (cosine)",
        ),
        ("toolshift", "tool-call distribution shift", "Jensen–Shannon divergence (bits)"),
    ] {
        let pick = |x: &SessionScore, i: usize| {
            let (t, f) = &x.stream[i];
            let v = match key {
                "lexicon" => f.lexicon,
                "consistency" => f.consistency,
                _ => f.toolshift,
            };
            Some((*t, v))
        };
        let series: Vec<Series> =
            roles.iter().map(|(role, l)| Series::new(*l, mean_by_turn(s, role, pick))).collect();
        w.figures.extend(figures::lines(
            dir.join(format!("{name}-{key}-over-turns")),
            &format!("{name}: {label} after the compaction event (mean over held-out sessions)"),
            "turns since the compaction event (2-turn bins)",
            unit,
            &series,
            Scale::Linear,
            Scale::Linear,
            &vlines,
            None,
        )?);
    }
    Ok(())
}

/// The LLM-backed subset: sizes, per-signal AUROC, the scripted-calibrated combiner's
/// rates on it (a transfer test), and the agent's obedience.
fn llm_table(run: &LoadedRun) -> String {
    let m = |k: &str| run.metric(&format!("llm.{k}"));
    let mut size = Table::new(&[
        "LLM sessions",
        "positives",
        "negatives",
        "confound controls",
        "mean compression ratio",
        "mean post-window (actions)",
        "share of actions that ask the user",
    ]);
    size.row(vec![
        num(m("sessions")),
        num(m("positives")),
        num(m("negatives")),
        num(m("confound_controls")),
        num(m("mean_compression_ratio")),
        num(m("mean_window_post")),
        num(m("actions.ask_user_share")),
    ]);
    let mut sig =
        Table::new(&["signal (LLM sessions)", "AUROC vs confound controls", "AUROC vs all negatives"]);
    for (key, label) in SIGNALS {
        let k = |s: &str| m(&format!("signal.{key}.{s}"));
        if k("auroc_vs_all").is_none() && k("auroc_vs_confound").is_none() {
            continue;
        }
        sig.row(vec![label.into(), num(k("auroc_vs_confound")), num(k("auroc_vs_all"))]);
    }
    let k = |s: &str| m(&format!("detector.combined.{s}"));
    let mut det = Table::new(&[
        "combined detector (fitted on scripted sessions)",
        "TPR [95 % CI lower]",
        "FAR controls [95 % upper bound]",
        "FAR all negatives [95 % upper bound]",
    ]);
    det.row(vec![
        "LLM sessions".into(),
        format!("{} [{}]", num(k("tpr")), num(k("tpr_lo"))),
        rate_upper(k("false_alarm_rate.confound_controls"), k("false_alarm_rate.confound_controls_hi")),
        rate_upper(k("false_alarm_rate.all_negatives"), k("false_alarm_rate.all_negatives_hi")),
    ]);
    let mut obey = Table::new(&["tool calls", "count", "violating a constraint", "rate"]);
    for (key, label) in [
        ("before_boundary", "before the boundary (every constraint in context)"),
        ("after_boundary_lost", "after the boundary, a constraint lost"),
        ("after_boundary_kept", "after the boundary, nothing lost"),
    ] {
        let v = |s: &str| m(&format!("violations.{key}.{s}"));
        obey.row(vec![label.into(), num(v("tool_calls")), num(v("violating")), num(v("rate"))]);
    }
    format!("{}\n{}\n{}\n{}", size.markdown(), sig.markdown(), det.markdown(), obey.markdown())
}

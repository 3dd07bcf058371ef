//! `gapbench reproduce RUN` and `gapbench diff A B`: the reviewer's tools. Reproduce
//! re-runs a recorded run from its own `spec.json` and checks every metric against the
//! recorded `summary.json` under the tolerance the spec declared before it ran.
//!
//! On the recorded machine (same CPU model, SIMD features and threads) a reproduction
//! must be bit-identical: every sample byte for byte. On another machine, floats may move
//! in their last bits (candle's kernels follow the CPU's SIMD features), so reproduce
//! says so and checks what can be promised there: every differing sample within its
//! kind's drift limit (a fingerprint within the detector's declared floor of the
//! recorded one, `record::drift`), every metric within the spec's tolerance raised to
//! `record::drift::CROSS_MACHINE_REL` or within one of the spec's declared
//! `[[reproduce.across_machines]]` rules (`record::tolerance`).

use std::path::{Path, PathBuf};

use crate::cli::commands::Config;
use crate::error::{Error, Result};
use crate::experiments::ExperimentKind;
use crate::record::diff::{self, Row};
use crate::record::drift::{Drift, CROSS_MACHINE_REL};
use crate::record::env::Environment;
use crate::record::run::{read_json, resolve_run, RunDir};
use crate::record::samples::read_samples;
use crate::record::tolerance::Tolerance;
use crate::record::{Record, RunStatus, Summary};
use crate::runner::{self, RunOptions};
use crate::spec::Experiment;

struct Loaded {
    dir: RunDir,
    exp: Experiment,
    record: Record,
    summary: Summary,
}

fn load(path: &Path) -> Result<Loaded> {
    let dir = resolve_run(path)?;
    let exp: Experiment = read_json(&dir.spec())?;
    let record = dir.read_record()?;
    let summary = dir.read_summary()?;
    Ok(Loaded { dir, exp, record, summary })
}

fn provenance(l: &Loaded) -> String {
    let e = &l.record.environment;
    format!(
        "{} · spec {} · seed {} · commit {}{}{} · {} · {} threads",
        l.dir.path.display(),
        &l.record.spec_hash[..12.min(l.record.spec_hash.len())],
        l.record.seed,
        e.git.commit.as_deref().map(|c| &c[..12.min(c.len())]).unwrap_or("unknown"),
        if e.git.dirty == Some(true) { " (dirty)" } else { "" },
        e.git.build_mismatch().map(|m| format!(" [{m}]")).unwrap_or_default(),
        e.target_cpu.model.as_deref().unwrap_or(&e.target_cpu.arch),
        e.threads,
    )
}

fn print_rows(rows: &[Row], all: bool, a: &str, b: &str) {
    let shown: Vec<Row> =
        rows.iter().filter(|r| all || r.verdict != diff::Verdict::Identical).cloned().collect();
    if !shown.is_empty() {
        print!("{}", diff::table(&shown, a, b));
    }
    let tally = diff::tally(rows);
    let counts: Vec<String> = tally.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("{} metrics: {}", rows.len(), counts.join(", "));
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    crate::record::atomic::write_json_atomic(path, value)
}

/// Why this machine may not reproduce the run bit for bit (`None`: the machine it was
/// recorded on, as far as its records tell, for every part of a resumed run).
fn machine_change(rec: &Record, now: &Environment) -> Option<String> {
    std::iter::once(&rec.environment).chain(&rec.resumed_environments).find_map(|e| {
        e.target_cpu.differs_from(&now.target_cpu).or_else(|| {
            (e.threads != now.threads).then(|| format!("{} vs {} threads", e.threads, now.threads))
        })
    })
}

/// Say, once, that the run was recorded elsewhere and what is checked instead.
fn announce(change: &Option<String>, metrics: &str) {
    if let Some(why) = change {
        println!(
            "note: recorded on another machine ({why}): bit-identity is promised only on the same \
             machine; samples that differ are checked by drift, {metrics}"
        );
    }
}

/// The tolerance metrics are compared under: the spec's; when the machine changed,
/// raised to the cross-machine floor and widened by the spec's `across_machines` rules.
fn effective_tolerance(exp: &Experiment, change: &Option<String>) -> Tolerance {
    match change {
        None => exp.reproduce.same_machine(),
        Some(_) => exp.reproduce.across_machines(CROSS_MACHINE_REL),
    }
}

/// Byte-identical samples, and for the others their drift (`record::drift`).
#[derive(Default, serde::Serialize)]
struct SampleCheck {
    identical: usize,
    /// (item, drift), the worst first.
    differing: Vec<(String, Drift)>,
    /// Differing items that fail: all of them on the same machine, those beyond their
    /// drift limit on another.
    failing: Vec<String>,
}

fn check_samples<'a>(
    kind: &dyn ExperimentKind,
    pairs: impl Iterator<Item = (&'a str, &'a serde_json::Value, &'a serde_json::Value)>,
    cross_machine: bool,
) -> Result<SampleCheck> {
    let mut c = SampleCheck::default();
    for (item, rec, new) in pairs {
        if rec == new {
            c.identical += 1;
            continue;
        }
        let drift = match kind.sample_drift(rec, new)? {
            Some(d) => d,
            None => crate::record::drift::numeric(rec, new, CROSS_MACHINE_REL),
        };
        if !cross_machine || !drift.within() {
            c.failing.push(item.to_string());
        }
        c.differing.push((item.to_string(), drift));
    }
    c.differing.sort_by(|a, b| (b.1.value / b.1.limit).total_cmp(&(a.1.value / a.1.limit)));
    Ok(c)
}

fn print_samples(c: &SampleCheck, cross_machine: bool) {
    let n = c.identical + c.differing.len();
    println!("samples: {} of {n} byte-identical", c.identical);
    for (item, d) in c.differing.iter().take(12) {
        let verdict = if !cross_machine {
            "DIFFERS (same machine: must be identical)"
        } else if d.within() {
            "within"
        } else {
            "BEYOND LIMIT"
        };
        println!(
            "  {item}: {} {:.3e} (limit {:.1e}){}: {verdict}",
            d.measure,
            d.value,
            d.limit,
            d.at.as_deref().map(|a| format!(" at {a}")).unwrap_or_default()
        );
    }
    if c.differing.len() > 12 {
        println!("  ... and {} more differing samples (all in --json)", c.differing.len() - 12);
    }
}

/// A complete run whose spec.json still hashes to the recorded spec hash.
fn load_checked(run: &Path) -> Result<Loaded> {
    let rec = load(run)?;
    let what = rec.dir.path.display().to_string();
    if rec.record.status != RunStatus::Complete {
        return Err(Error::input(what, "the run is not complete; only complete runs can be reproduced"));
    }
    // The spec hash in record.json must match spec.json: a hand-edited spec is not the
    // experiment that produced these numbers.
    let hash = rec.exp.hash()?;
    if hash != rec.record.spec_hash || hash != rec.summary.spec_hash {
        return Err(Error::input(
            format!("{what}/spec.json"),
            format!("hashes to {hash}, but the run recorded spec {}", rec.record.spec_hash),
        ));
    }
    Ok(rec)
}

pub fn reproduce(
    config: &Config,
    run: &Path,
    out: Option<PathBuf>,
    all: bool,
    json: Option<&Path>,
) -> Result<i32> {
    let rec = load_checked(run)?;
    println!("recorded:   {}", provenance(&rec));
    let scratch = tempfile::tempdir().map_err(|e| Error::run(format!("temporary folder: {e}")))?;
    let results = out.unwrap_or_else(|| scratch.path().to_path_buf());
    let ctx = config.context(rec.exp.seed)?;
    let opts = RunOptions { results, resume: None, shard: rec.record.shard };
    let outcome = runner::run(&rec.exp, &ctx, &opts)?;
    let new = load(&outcome.dir.path)?;
    println!("reproduced: {}", provenance(&new));
    if rec.record.environment.git.commit != new.record.environment.git.commit {
        println!("note: different commits; code changes may legitimately change results");
    }
    let change = machine_change(&rec.record, &new.record.environment);
    let rules = rec.exp.reproduce.across_machines.len();
    announce(
        &change,
        &format!(
            "metrics with rel >= {CROSS_MACHINE_REL:e}{}",
            if rules > 0 {
                format!(" and the spec's {rules} across-machines rule(s)")
            } else {
                String::new()
            }
        ),
    );
    let tol = effective_tolerance(&rec.exp, &change);
    let rows = diff::compare(&rec.summary.metrics, &new.summary.metrics, &tol);
    print_rows(&rows, all, "recorded", "reproduced");
    let samples_identical = std::fs::read(rec.dir.samples()).ok() == std::fs::read(new.dir.samples()).ok();
    let check = if samples_identical {
        println!("samples.jsonl byte-identical: yes");
        SampleCheck::default()
    } else {
        let (a, b) = (read_samples(&rec.dir.samples())?, read_samples(&new.dir.samples())?);
        let by_item: std::collections::BTreeMap<&str, &serde_json::Value> =
            b.iter().map(|s| (s.item.as_str(), &s.output)).collect();
        let missing: Vec<&str> =
            a.iter().map(|s| s.item.as_str()).filter(|i| !by_item.contains_key(i)).collect();
        if !missing.is_empty() || a.len() != b.len() {
            return Err(Error::run(format!(
                "the reproduced run has {} samples, the recorded {} ({} recorded items missing)",
                b.len(),
                a.len(),
                missing.len()
            )));
        }
        let kind = crate::experiments::instantiate(&rec.exp.params, rec.exp.seed);
        let c = check_samples(
            kind.as_ref(),
            a.iter().map(|s| (s.item.as_str(), &s.output, by_item[s.item.as_str()])),
            change.is_some(),
        )?;
        print_samples(&c, change.is_some());
        c
    };
    let failures = rows.iter().filter(|r| r.verdict.is_failure()).count();
    if let Some(path) = json {
        write_json(
            path,
            &serde_json::json!({
                "recorded": rec.dir.path, "reproduced": new.dir.path, "machine_change": change,
                "tolerance": tol, "samples_identical": samples_identical, "samples": check,
                "failures": failures, "rows": rows,
            }),
        )?;
    }
    if failures > 0 || !check.failing.is_empty() {
        println!(
            "REPRODUCTION FAILED: {failures} metric(s) outside the tolerance; {} sample(s) {}",
            check.failing.len(),
            if change.is_some() { "beyond their drift limit" } else { "not byte-identical" }
        );
        return Ok(1);
    }
    match change {
        None => println!("reproduced: every metric within the declared tolerance, samples byte-identical"),
        Some(_) => println!(
            "reproduced across machines: every metric within the tolerance, {} sample(s) drifted within their limit",
            check.differing.len()
        ),
    }
    Ok(0)
}

pub struct DiffOptions {
    pub all: bool,
    pub prefix: Option<String>,
    pub rel: f64,
    pub spec_tolerance: bool,
    pub json: Option<PathBuf>,
}

pub fn diff(_config: &Config, a: &Path, b: &Path, o: &DiffOptions) -> Result<i32> {
    let (all, prefix, rel) = (o.all, o.prefix.as_deref(), o.rel);
    if !(rel.is_finite() && rel >= 0.0) {
        return Err(Error::input("--rel", "must be finite and >= 0"));
    }
    let (la, lb) = (load(a)?, load(b)?);
    println!("A: {}", provenance(&la));
    println!("B: {}", provenance(&lb));
    if la.record.spec_hash == lb.record.spec_hash {
        println!("same spec");
    } else if la.exp.name == lb.exp.name {
        println!("same experiment `{}`, different specs", la.exp.name);
    } else {
        println!("different experiments: `{}` and `{}`", la.exp.name, lb.exp.name);
    }
    let keep = |m: &std::collections::BTreeMap<String, f64>| {
        m.iter()
            .filter(|(k, _)| prefix.is_none_or(|p| k.starts_with(p)))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let tol = if o.spec_tolerance {
        let change = machine_change(&la.record, &lb.record.environment);
        match &change {
            Some(why) => println!("tolerance: B's spec, across machines ({why})"),
            None => println!("tolerance: B's spec, same machine"),
        }
        effective_tolerance(&lb.exp, &change)
    } else {
        Tolerance { rel, ..Default::default() }
    };
    let rows = diff::compare(&keep(&la.summary.metrics), &keep(&lb.summary.metrics), &tol);
    print_rows(&rows, all, "A", "B");
    if let Some(path) = &o.json {
        write_json(
            path,
            &serde_json::json!({ "a": la.dir.path, "b": lb.dir.path, "tolerance": tol, "rows": rows }),
        )?;
    }
    Ok(0)
}

/// `reproduce --items N`: re-run N items spread over the item order and compare their
/// samples byte for byte; re-summarise the recorded samples and compare every metric.
/// Together these check both halves of a run (items → samples, samples → summary)
/// without its full cost.
pub fn reproduce_items(config: &Config, run: &Path, n: usize, all: bool, json: Option<&Path>) -> Result<i32> {
    use crate::record::canonical::to_canonical_json;
    use crate::record::Sample;
    if n == 0 {
        return Err(Error::input("--items", "must be at least 1"));
    }
    let rec = load_checked(run)?;
    println!("recorded:   {}", provenance(&rec));
    let kind = crate::experiments::instantiate(&rec.exp.params, rec.exp.seed);
    let samples = read_samples(&rec.dir.samples())?;
    let recorded: std::collections::BTreeMap<&str, &Sample> =
        samples.iter().map(|s| (s.item.as_str(), s)).collect();
    let items: Vec<String> = kind.items().into_iter().filter(|i| recorded.contains_key(i.as_str())).collect();
    let k = n.min(items.len());
    let picked: Vec<&String> = (0..k).map(|i| &items[i * items.len() / k]).collect();
    let ctx = config.context(rec.exp.seed)?;
    let change = machine_change(&rec.record, &Environment::capture(&ctx.root));
    announce(&change, "metrics re-summarised from the recorded samples, exactly");
    let mut rerun = vec![];
    for item in &picked {
        let output = kind.run_item(&ctx, item)?;
        // Through canonical JSON, as the runner writes samples, so equal means equal bytes.
        let bytes = to_canonical_json(&Sample { item: item.to_string(), output })?;
        let same = bytes == to_canonical_json(recorded[item.as_str()])?;
        println!("  item {item}: {}", if same { "byte-identical" } else { "differs" });
        rerun.push(serde_json::from_slice::<Sample>(&bytes).map_err(|e| Error::run(format!("sample: {e}")))?);
    }
    let check = check_samples(
        kind.as_ref(),
        rerun.iter().map(|s| (s.item.as_str(), &recorded[s.item.as_str()].output, &s.output)),
        change.is_some(),
    )?;
    print_samples(&check, change.is_some());
    // The summary is a pure function of the recorded samples: exact on any machine.
    let metrics: std::collections::BTreeMap<String, f64> =
        kind.summarise(&samples)?.into_iter().filter(|(_, v)| v.is_finite()).collect();
    let rows = diff::compare(&rec.summary.metrics, &metrics, &rec.exp.reproduce.same_machine());
    print_rows(&rows, all, "recorded", "re-summarised");
    let failures = rows.iter().filter(|r| r.verdict.is_failure()).count();
    if let Some(path) = json {
        write_json(
            path,
            &serde_json::json!({
                "recorded": rec.dir.path, "items_checked": picked, "machine_change": change,
                "samples": check, "tolerance": rec.exp.reproduce.same_machine(), "failures": failures, "rows": rows,
            }),
        )?;
    }
    if failures > 0 || !check.failing.is_empty() {
        println!(
            "REPRODUCTION FAILED: {} of {} items {}; {failures} metric(s) outside the declared tolerance",
            check.failing.len(),
            picked.len(),
            if change.is_some() { "beyond their drift limit" } else { "not byte-identical" }
        );
        return Ok(1);
    }
    println!(
        "reproduced: {} items byte-identical, {} drifted within their limit on this other machine; every \
         metric re-summarised within the declared tolerance",
        check.identical,
        check.differing.len()
    );
    Ok(0)
}

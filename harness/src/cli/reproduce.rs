//! `gapbench reproduce RUN` and `gapbench diff A B`: the reviewer's tools. Reproduce
//! re-runs a recorded run from its own `spec.json` and checks every metric against the
//! recorded `summary.json` under the tolerance the spec declared before it ran.

use std::path::{Path, PathBuf};

use crate::cli::commands::Config;
use crate::error::{Error, Result};
use crate::record::diff::{self, Row};
use crate::record::run::{read_json, resolve_run, RunDir};
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
        "{} · spec {} · seed {} · commit {}{} · {} · {} threads",
        l.dir.path.display(),
        &l.record.spec_hash[..12.min(l.record.spec_hash.len())],
        l.record.seed,
        e.git.commit.as_deref().map(|c| &c[..12.min(c.len())]).unwrap_or("unknown"),
        if e.git.dirty == Some(true) { " (dirty)" } else { "" },
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
    let rows = diff::compare(&rec.summary.metrics, &new.summary.metrics, &rec.exp.reproduce);
    print_rows(&rows, all, "recorded", "reproduced");
    let samples_identical = std::fs::read(rec.dir.samples()).ok() == std::fs::read(new.dir.samples()).ok();
    println!("samples.jsonl byte-identical: {}", if samples_identical { "yes" } else { "no" });
    let failures = rows.iter().filter(|r| r.verdict.is_failure()).count();
    if let Some(path) = json {
        write_json(
            path,
            &serde_json::json!({
                "recorded": rec.dir.path, "reproduced": new.dir.path,
                "tolerance": rec.exp.reproduce, "samples_identical": samples_identical,
                "failures": failures, "rows": rows,
            }),
        )?;
    }
    if failures > 0 {
        println!("REPRODUCTION FAILED: {failures} metric(s) outside the declared tolerance");
        return Ok(1);
    }
    println!("reproduced: every metric within the declared tolerance");
    Ok(0)
}

pub fn diff(
    _config: &Config,
    a: &Path,
    b: &Path,
    all: bool,
    prefix: Option<&str>,
    rel: f64,
    json: Option<&Path>,
) -> Result<i32> {
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
    let tol = Tolerance { rel, ..Default::default() };
    let rows = diff::compare(&keep(&la.summary.metrics), &keep(&lb.summary.metrics), &tol);
    print_rows(&rows, all, "A", "B");
    if let Some(path) = json {
        write_json(path, &serde_json::json!({ "a": la.dir.path, "b": lb.dir.path, "rows": rows }))?;
    }
    Ok(0)
}

/// `reproduce --items N`: re-run N items spread over the item order and compare their
/// samples byte for byte; re-summarise the recorded samples and compare every metric.
/// Together these check both halves of a run (items → samples, samples → summary)
/// without its full cost.
pub fn reproduce_items(config: &Config, run: &Path, n: usize, all: bool, json: Option<&Path>) -> Result<i32> {
    use crate::record::canonical::to_canonical_json;
    use crate::record::samples::read_samples;
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
    let mut sample_failures = vec![];
    for item in &picked {
        let output = kind.run_item(&ctx, item)?;
        let again = to_canonical_json(&Sample { item: item.to_string(), output })?;
        let same = again == to_canonical_json(recorded[item.as_str()])?;
        println!("  item {item}: {}", if same { "byte-identical" } else { "DIFFERS" });
        if !same {
            sample_failures.push(item.to_string());
        }
    }
    let metrics: std::collections::BTreeMap<String, f64> =
        kind.summarise(&samples)?.into_iter().filter(|(_, v)| v.is_finite()).collect();
    let rows = diff::compare(&rec.summary.metrics, &metrics, &rec.exp.reproduce);
    print_rows(&rows, all, "recorded", "re-summarised");
    let failures = rows.iter().filter(|r| r.verdict.is_failure()).count();
    if let Some(path) = json {
        write_json(
            path,
            &serde_json::json!({
                "recorded": rec.dir.path, "items_checked": picked, "items_differing": sample_failures,
                "tolerance": rec.exp.reproduce, "failures": failures, "rows": rows,
            }),
        )?;
    }
    if failures > 0 || !sample_failures.is_empty() {
        println!(
            "REPRODUCTION FAILED: {} of {} items differ; {failures} metric(s) outside the declared tolerance",
            sample_failures.len(),
            picked.len()
        );
        return Ok(1);
    }
    println!(
        "reproduced: {} items byte-identical; every metric re-summarised within the declared tolerance",
        picked.len()
    );
    Ok(0)
}

//! The runner: a resolved [`Experiment`] → items → samples → summary, with the run
//! record written around it. Resume, sharding and merging live here once for every kind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;

use crate::error::{Error, Result};
use crate::experiments::{instantiate, RunContext};
use crate::record::env::Environment;
use crate::record::run::{read_json, ItemCounts};
use crate::record::samples::{append_sample, order_samples, read_samples, write_samples};
use crate::record::{Record, RunDir, RunStatus, Sample, Shard, Summary};
use crate::spec::Experiment;

pub struct RunOptions {
    /// `results/` folder; runs go to `results/<experiment>/<run-id>/`.
    pub results: PathBuf,
    /// Continue this run directory instead of starting a new one.
    pub resume: Option<PathBuf>,
    pub shard: Option<Shard>,
}

pub struct RunOutcome {
    pub dir: RunDir,
    pub summary: Summary,
}

pub fn run(exp: &Experiment, ctx: &RunContext, opts: &RunOptions) -> Result<RunOutcome> {
    let spec_hash = exp.hash()?;
    let kind = instantiate(&exp.params, exp.seed);
    let items = kind.items();
    let (dir, mut record, done) = match &opts.resume {
        Some(path) => open_for_resume(&ctx.root, path, exp, &spec_hash, opts.shard)?,
        None => start_new(exp, &spec_hash, ctx, opts, kind.as_ref(), items.len())?,
    };
    let assigned: Vec<String> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| record.shard.is_none_or(|s| s.owns(*i)))
        .map(|(_, it)| it.clone())
        .collect();
    let done_ids: BTreeSet<&str> = done.iter().map(|s| s.item.as_str()).collect();
    let todo: Vec<&String> = assigned.iter().filter(|i| !done_ids.contains(i.as_str())).collect();
    record.items =
        ItemCounts { total: items.len(), assigned: assigned.len(), resumed: assigned.len() - todo.len() };
    dir.write_record(&record)?;

    let clock = Instant::now();
    let bar = crate::progress::items_bar(todo.len() as u64, &format!("{} items", exp.name));
    let mut samples = done;
    for item in todo {
        bar.set_message(format!("{}: {item}", exp.name));
        match kind.run_item(ctx, item) {
            Ok(output) => {
                let sample = Sample { item: item.clone(), output };
                append_sample(&dir.samples(), &sample)?;
                samples.push(sample);
                bar.inc(1);
            }
            Err(e) => {
                bar.abandon();
                finish(&dir, &mut record, clock, RunStatus::Failed, Some(format!("item `{item}`: {e}")))?;
                return Err(e);
            }
        }
    }
    bar.finish_and_clear();

    let samples = order_samples(samples, &assigned)?;
    write_samples(&dir.samples(), &samples)?;
    let summary = summarise(kind.as_ref(), exp, &dir, &spec_hash, &samples)?;
    finish(&dir, &mut record, clock, RunStatus::Complete, None)?;
    if record.shard.is_none() {
        dir.mark_latest()?;
    }
    Ok(RunOutcome { dir, summary })
}

fn start_new(
    exp: &Experiment,
    spec_hash: &str,
    ctx: &RunContext,
    opts: &RunOptions,
    kind: &dyn crate::experiments::ExperimentKind,
    n_items: usize,
) -> Result<(RunDir, Record, Vec<Sample>)> {
    let suffix = opts.shard.map(|s| format!("-shard{}of{}", s.index, s.count)).unwrap_or_default();
    let (dir, run_id) = RunDir::create(&opts.results, &exp.name, spec_hash, &suffix)?;
    crate::record::atomic::write_json_atomic(&dir.spec(), exp)?;
    let record = Record {
        experiment: exp.name.clone(),
        kind: exp.kind().to_string(),
        run_id,
        spec_hash: spec_hash.to_string(),
        seed: exp.seed,
        status: RunStatus::Running,
        dtype: kind.dtype(),
        device: crate::models::device::device_name(&ctx.device),
        models: kind.models(),
        environment: Environment::capture(&ctx.root),
        shard: opts.shard,
        merged_from: Vec::new(),
        items: ItemCounts { total: n_items, assigned: 0, resumed: 0 },
        started_at: Utc::now(),
        ended_at: None,
        wall_seconds: None,
        resumed_at: Vec::new(),
        resumed_environments: Vec::new(),
        error: None,
    };
    Ok((dir, record, Vec::new()))
}

fn open_for_resume(
    root: &Path,
    path: &Path,
    exp: &Experiment,
    spec_hash: &str,
    shard: Option<Shard>,
) -> Result<(RunDir, Record, Vec<Sample>)> {
    let dir = RunDir::new(path);
    let recorded: Experiment = read_json(&dir.spec())?;
    let recorded_hash = recorded.hash()?;
    if recorded_hash != spec_hash || recorded != *exp {
        return Err(Error::input(
            format!("--resume {}", path.display()),
            format!("the run was made from spec {recorded_hash}, not this spec ({spec_hash})"),
        ));
    }
    let mut record = dir.read_record()?;
    if shard.is_some() && shard != record.shard {
        return Err(Error::input("--shard", "differs from the shard of the run being resumed"));
    }
    record.status = RunStatus::Running;
    record.error = None;
    record.resumed_at.push(Utc::now());
    record.resumed_environments.push(Environment::capture(root));
    let done = read_samples(&dir.samples())?;
    Ok((dir, record, done))
}

fn summarise(
    kind: &dyn crate::experiments::ExperimentKind,
    exp: &Experiment,
    dir: &RunDir,
    spec_hash: &str,
    samples: &[Sample],
) -> Result<Summary> {
    let metrics = kind.summarise(samples)?;
    let (finite, undefined): (Vec<_>, Vec<_>) = metrics.into_iter().partition(|(_, v)| v.is_finite());
    if !undefined.is_empty() {
        tracing::warn!(
            "metrics without a finite value are left out: {:?}",
            undefined.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
    }
    let summary = Summary {
        experiment: exp.name.clone(),
        run_id: dir.run_id(),
        spec_hash: spec_hash.to_string(),
        metrics: finite.into_iter().collect(),
    };
    dir.write_summary(&summary)?;
    Ok(summary)
}

fn finish(
    dir: &RunDir,
    record: &mut Record,
    clock: Instant,
    status: RunStatus,
    error: Option<String>,
) -> Result<()> {
    record.status = status;
    record.error = error;
    record.ended_at = Some(Utc::now());
    record.wall_seconds = Some(record.wall_seconds.unwrap_or(0.0) + clock.elapsed().as_secs_f64());
    dir.write_record(record)
}

/// Join the shards of one sharded run into a complete run, equal to an unsharded one.
pub fn merge(shards: &[PathBuf], results: &Path, root: &Path) -> Result<RunOutcome> {
    let first = shards.first().ok_or_else(|| Error::input("merge", "no run directories given"))?;
    let exp: Experiment = read_json(&RunDir::new(first).spec())?;
    let spec_hash = exp.hash()?;
    let kind = instantiate(&exp.params, exp.seed);
    let items = kind.items();
    let mut samples = Vec::new();
    let mut records = Vec::new();
    for path in shards {
        let dir = RunDir::new(path);
        let other: Experiment = read_json(&dir.spec())?;
        if other.hash()? != spec_hash {
            return Err(Error::input(
                path.display().to_string(),
                "made from a different spec than the first shard",
            ));
        }
        let record = dir.read_record()?;
        if record.status != RunStatus::Complete {
            return Err(Error::input(path.display().to_string(), "shard is not complete; resume it first"));
        }
        samples.extend(read_samples(&dir.samples())?);
        records.push(record);
    }
    let samples = order_samples(samples, &items)
        .map_err(|e| Error::input("merge", format!("shards overlap or do not match the spec: {e}")))?;
    if samples.len() != items.len() {
        return Err(Error::input(
            "merge",
            format!("shards cover {} of {} items", samples.len(), items.len()),
        ));
    }
    let (dir, run_id) = RunDir::create(results, &exp.name, &spec_hash, "-merged")?;
    crate::record::atomic::write_json_atomic(&dir.spec(), &exp)?;
    write_samples(&dir.samples(), &samples)?;
    let summary = summarise(kind.as_ref(), &exp, &dir, &spec_hash, &samples)?;
    let base = &records[0];
    let record = Record {
        run_id,
        status: RunStatus::Complete,
        environment: Environment::capture(root),
        shard: None,
        merged_from: shards.iter().map(|p| p.display().to_string()).collect(),
        items: ItemCounts { total: items.len(), assigned: items.len(), resumed: 0 },
        started_at: records.iter().map(|r| r.started_at).min().unwrap_or_else(Utc::now),
        ended_at: records.iter().filter_map(|r| r.ended_at).max(),
        wall_seconds: Some(records.iter().filter_map(|r| r.wall_seconds).sum()),
        resumed_at: Vec::new(),
        resumed_environments: Vec::new(),
        error: None,
        ..base.clone()
    };
    dir.write_record(&record)?;
    dir.mark_latest()?;
    Ok(RunOutcome { dir, summary })
}

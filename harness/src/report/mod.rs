//! `gapbench report`: every figure and results table of the paper, regenerated from
//! `results/*/LATEST` (summaries *and* the per-item samples behind them), with no number
//! typed by hand. Tables go to `paper/tables/*.md`, figures (PNG and SVG) to
//! `paper/figures/`, and `paper/paper.md`'s generated blocks are refreshed from them
//! (see [`paper`]), then rendered to `paper/paper.html`.

mod cluster;
mod compression;
pub mod paper;
mod substitution;
pub mod table;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::record::run::{latest_run, read_json, RunDir};
use crate::record::samples::read_samples;
use crate::record::{Record, Sample, Summary};
use crate::spec::Experiment;
use table::{num, Table};

/// One experiment's LATEST run, fully loaded.
pub struct LoadedRun {
    pub dir: RunDir,
    pub exp: Experiment,
    pub record: Record,
    pub summary: Summary,
    pub samples: Vec<Sample>,
}

impl LoadedRun {
    pub fn load(dir: RunDir) -> Result<Self> {
        let exp: Experiment = read_json(&dir.spec())?;
        let record = dir.read_record()?;
        let summary = dir.read_summary()?;
        if summary.spec_hash != record.spec_hash || exp.hash()? != record.spec_hash {
            return Err(Error::input(
                dir.path.display().to_string(),
                "spec.json, record.json and summary.json name different specs",
            ));
        }
        let samples = read_samples(&dir.samples())?;
        Ok(Self { dir, exp, record, summary, samples })
    }

    pub fn metric(&self, key: &str) -> Option<f64> {
        self.summary.metrics.get(key).copied()
    }
}

/// What one report wrote.
#[derive(Default)]
pub struct Written {
    pub tables: Vec<PathBuf>,
    pub figures: Vec<PathBuf>,
}

impl Written {
    fn table(&mut self, dir: &Path, name: &str, body: &str) -> Result<()> {
        let path = dir.join(format!("{name}.md"));
        crate::record::atomic::write_atomic(&path, body.as_bytes())?;
        self.tables.push(path);
        Ok(())
    }
}

/// Every experiment folder under `results` with a LATEST run, in name order.
pub fn latest_runs(results: &Path) -> Result<Vec<LoadedRun>> {
    let mut names: Vec<String> = std::fs::read_dir(results)
        .map_err(Error::io(results))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("LATEST").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().map(|n| LoadedRun::load(latest_run(results, &n)?)).collect()
}

/// Regenerate `out/tables`, `out/figures`, and `out/paper.md`'s generated blocks (when
/// the file exists) from the LATEST run of every experiment in `results`.
pub fn report(results: &Path, out: &Path) -> Result<Written> {
    let runs = latest_runs(results)?;
    if runs.is_empty() {
        return Err(Error::input(results.display().to_string(), "no experiment has a LATEST run"));
    }
    let tables = out.join("tables");
    let figures = out.join("figures");
    for d in [&tables, &figures] {
        std::fs::create_dir_all(d).map_err(Error::io(d))?;
    }
    let mut w = Written::default();
    w.table(&tables, "provenance", &provenance(&runs))?;
    for run in &runs {
        let kind = run.record.kind.as_str();
        tracing::info!("report: {} ({kind}, run {})", run.exp.name, run.summary.run_id);
        match kind {
            "substitution" => substitution::report(run, &tables, &figures, &mut w)?,
            "compression" => compression::report(run, &tables, &figures, &mut w)?,
            "cluster" => cluster::report(run, &tables, &figures, &mut w)?,
            _ => {}
        }
    }
    let paper_md = out.join("paper.md");
    if paper_md.is_file() {
        paper::refresh(&paper_md, out)?;
        w.tables.push(paper::render_html(&paper_md, &out.join("paper.html"))?);
    }
    Ok(w)
}

/// A resumed run records the wall time of its last part only: say so, with how many
/// items that part inherited, rather than print a time the run never took.
fn wall_minutes(r: &crate::record::run::Record) -> String {
    let m = num(r.wall_seconds.map(|s| (s / 60.0).round()));
    if r.resumed_at.is_empty() {
        m
    } else {
        format!(
            "{m} (last of {} parts; {} items from earlier parts)",
            r.resumed_at.len() + 1,
            r.items.resumed
        )
    }
}

/// Which run every table and figure came from.
fn provenance(runs: &[LoadedRun]) -> String {
    let mut t = Table::new(&[
        "experiment",
        "run",
        "spec sha256",
        "seed",
        "commit",
        "CPU",
        "threads",
        "items",
        "wall time (min)",
    ]);
    for r in runs {
        let e = &r.record.environment;
        t.row(vec![
            format!("`{}`", r.exp.name),
            format!("`{}`", r.summary.run_id),
            format!("`{}`", &r.record.spec_hash[..12.min(r.record.spec_hash.len())]),
            r.record.seed.to_string(),
            format!(
                "`{}`{}",
                e.git.commit.as_deref().map(|c| &c[..10.min(c.len())]).unwrap_or("?"),
                if e.git.dirty == Some(true) { " (dirty)" } else { "" }
            ),
            e.target_cpu.model.clone().unwrap_or_else(|| e.target_cpu.arch.clone()),
            e.threads.to_string(),
            r.record.items.total.to_string(),
            wall_minutes(&r.record),
        ]);
    }
    t.markdown()
}

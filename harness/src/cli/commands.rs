//! Validated configuration and the verbs. Each verb calls one library function and
//! prints its result.

use std::path::{Path, PathBuf};

use crate::cli::args::{Command, GlobalArgs, ModelsCommand, ZooCommand};
use crate::error::{Error, Result};
use crate::experiments::RunContext;
use crate::fingerprint::Fingerprint;
use crate::models::fetch::{self, Cache, Fetched, FileState};
use crate::models::registry::Registry;
use crate::record::run::latest_run;
use crate::record::Shard;
use crate::runner::{self, RunOptions};

/// Global options after validation.
pub struct Config {
    pub root: PathBuf,
    pub registry_path: PathBuf,
    pub results: PathBuf,
    pub cache: Cache,
    pub device: candle_core::Device,
}

impl Config {
    pub fn from_args(args: &GlobalArgs) -> Result<Self> {
        if let Some(n) = args.threads {
            if n == 0 {
                return Err(Error::input("--threads", "must be at least 1"));
            }
            // candle's CPU kernels and rayon both read this before their pools start.
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
            let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
        }
        let root = project_root();
        Ok(Config {
            registry_path: args.registry.clone().unwrap_or_else(|| root.join("datasets/models.toml")),
            results: args.results.clone().unwrap_or_else(|| root.join("results")),
            cache: Cache::new(args.cache_dir.clone(), args.offline),
            device: crate::models::device::parse_device(&args.device)?,
            root,
        })
    }

    pub fn registry(&self) -> Result<Registry> {
        Registry::load(&self.registry_path)
    }

    pub(crate) fn context(&self, seed: u64) -> Result<RunContext> {
        Ok(RunContext {
            registry: self.registry()?,
            cache: self.cache.clone(),
            device: self.device.clone(),
            seed,
            root: self.root.clone(),
        })
    }
}

/// The nearest ancestor of the working directory holding `datasets/models.toml`, else
/// the working directory itself.
fn project_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors().find(|d| d.join("datasets/models.toml").is_file()).map(Path::to_path_buf).unwrap_or(cwd)
}

pub fn dispatch(command: Command, config: &Config) -> Result<i32> {
    match command {
        Command::Run { specs, resume, shard } => run(config, specs, resume, shard),
        Command::Validate { spec } => {
            let exp = crate::spec::load(&spec, &config.registry()?)?;
            let pretty = crate::record::canonical::to_pretty_json(&exp)?;
            println!("{}", String::from_utf8_lossy(&pretty));
            println!("spec_hash: {}", exp.hash()?);
            Ok(0)
        }
        Command::Ls { dir } => ls(config, dir),
        Command::Merge { runs } => {
            let out = runner::merge(&runs, &config.results, &config.root)?;
            println!("merged {} shards into {}", runs.len(), out.dir.path.display());
            Ok(0)
        }
        Command::Models(m) => models(config, m),
        Command::Zoo(z) => zoo(config, z),
        Command::Fingerprint { model, weights, probes, tokens, batch, variant, variant_seed, out } => {
            let variant = variant.map(|v| (v, variant_seed));
            fingerprint(config, &model, &weights, &probes, (tokens, batch), variant, &out)
        }
        Command::Monitor { transcript, format, lenient, out, agent_id, subject, window, no_embeddings } => {
            crate::cli::monitor::monitor(
                config,
                crate::cli::monitor::MonitorArgs {
                    transcript,
                    format,
                    lenient,
                    out,
                    agent_id,
                    subject,
                    window,
                    no_embeddings,
                },
            )
        }
        Command::Compare { a, b, calibration, alpha, tau, json } => {
            compare(config, CompareArgs { a, b, calibration, alpha, tau, json })
        }
        Command::Report { out } => {
            let out = out.unwrap_or_else(|| config.root.join("paper"));
            let w = crate::report::report(&config.results, &out)?;
            println!(
                "{} tables and {} figure files written under {}",
                w.tables.len(),
                w.figures.len(),
                out.display()
            );
            Ok(0)
        }
        Command::Reproduce { run, out, items: Some(n), all, json } => {
            if out.is_some() {
                return Err(Error::input("--out", "a quick check (--items) writes no run"));
            }
            crate::cli::reproduce::reproduce_items(config, &run, n, all, json.as_deref())
        }
        Command::Reproduce { run, out, items: None, all, json } => {
            crate::cli::reproduce::reproduce(config, &run, out, all, json.as_deref())
        }
        Command::Diff { a, b, all, prefix, rel, spec_tolerance, json } => {
            let opts = crate::cli::reproduce::DiffOptions { all, prefix, rel, spec_tolerance, json };
            crate::cli::reproduce::diff(config, &a, &b, &opts)
        }
        Command::Capture { model, text, file, weights, top_k, json } => {
            capture(config, &model, text, file, &weights, top_k, json)
        }
    }
}

fn run(config: &Config, specs: Vec<PathBuf>, resume: Option<PathBuf>, shard: Option<String>) -> Result<i32> {
    let registry = config.registry()?;
    let exps = match (specs.is_empty(), &resume) {
        (false, None) => specs.iter().map(|p| crate::spec::load(p, &registry)).collect::<Result<Vec<_>>>()?,
        (false, Some(_)) if specs.len() > 1 => {
            return Err(Error::input("run", "--resume continues one run: give at most one SPEC"))
        }
        (false, Some(_)) => vec![crate::spec::load(&specs[0], &registry)?],
        (true, Some(dir)) => vec![crate::record::run::read_json(&dir.join("spec.json"))?],
        (true, None) => return Err(Error::input("run", "give a SPEC, or --resume RUN_DIR")),
    };
    let shard = shard.map(|s| s.parse::<Shard>()).transpose()?;
    if shard.is_some() && exps.len() > 1 {
        return Err(Error::input("run", "--shard splits one experiment: give one SPEC"));
    }
    for exp in exps {
        let ctx = config.context(exp.seed)?;
        let opts = RunOptions { results: config.results.clone(), resume: resume.clone(), shard };
        let out = runner::run(&exp, &ctx, &opts)?;
        println!("run {} complete: {}", out.summary.run_id, out.dir.path.display());
        // Large summaries: the headline numbers here, everything in summary.json.
        let many = out.summary.metrics.len() > 40;
        for (k, v) in &out.summary.metrics {
            if !many || k.starts_with("headline.") || k.starts_with("pairs.") {
                println!("  {k} = {v}");
            }
        }
        if many {
            println!("  ({} metrics in {})", out.summary.metrics.len(), out.dir.summary().display());
        }
    }
    Ok(0)
}

fn ls(config: &Config, dir: Option<PathBuf>) -> Result<i32> {
    let dir = dir.unwrap_or_else(|| config.root.join("experiments"));
    let registry = config.registry()?;
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(Error::io(&dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    specs.sort();
    println!("{:<28} {:<14} {:<40} DESCRIPTION", "SPEC", "KIND", "LATEST RUN");
    for path in specs {
        let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        match crate::spec::load(&path, &registry) {
            Ok(exp) => {
                let latest =
                    latest_run(&config.results, &exp.name).map(|d| d.run_id()).unwrap_or_else(|_| "-".into());
                println!("{:<28} {:<14} {:<40} {}", file, exp.kind().to_string(), latest, exp.description);
            }
            Err(e) => println!("{file:<28} INVALID: {e}"),
        }
    }
    Ok(0)
}

fn models(config: &Config, command: ModelsCommand) -> Result<i32> {
    let registry = config.registry()?;
    match command {
        ModelsCommand::List => {
            println!(
                "{:<30} {:<10} {:<8} {:<12} {:<7} SOURCES",
                "NAME", "FAMILY", "ARCH", "FORMAT", "CACHED"
            );
            for m in &registry.models {
                let cached = m.files.iter().all(|f| config.cache.model_dir(&m.name).join(&f.path).is_file());
                let sources: Vec<String> = m.sources.iter().map(|s| s.describe()).collect();
                println!(
                    "{:<30} {:<10} {:<8} {:<12} {:<7} {}",
                    m.name,
                    m.family,
                    m.architecture,
                    format!("{:?}", m.format).to_lowercase(),
                    if cached { "yes" } else { "no" },
                    sources.join(" > ")
                );
            }
            Ok(0)
        }
        ModelsCommand::Fetch { name, all: _ } => {
            let entries: Vec<_> = match &name {
                Some(n) => vec![registry.get(n)?.clone()],
                None => registry.models.clone(),
            };
            for entry in &entries {
                let (dir, how) = fetch::fetch(entry, &registry, &config.cache)?;
                match how {
                    Fetched::Cached => println!("{}: cached and verified at {}", entry.name, dir.display()),
                    Fetched::From(src) => {
                        println!("{}: fetched from {src} into {}", entry.name, dir.display())
                    }
                }
            }
            Ok(0)
        }
        ModelsCommand::Verify { name } => {
            let entries: Vec<_> = match &name {
                Some(n) => vec![registry.get(n)?.clone()],
                None => registry.models.clone(),
            };
            let mut bad = 0;
            for entry in &entries {
                for (path, state) in fetch::verify(entry, &config.cache)? {
                    let expected = &entry.files.iter().find(|f| f.path == path).expect("listed").sha256;
                    match state {
                        FileState::Ok => println!("ok        {}/{path}", entry.name),
                        FileState::Missing => {
                            bad += 1;
                            println!(
                                "MISSING   {}/{path}  (run `gapbench models fetch {}`)",
                                entry.name, entry.name
                            )
                        }
                        FileState::Mismatch { actual } => {
                            bad += 1;
                            println!("MISMATCH  {}/{path}  expected {expected}, got {actual}", entry.name)
                        }
                    }
                }
            }
            Ok(if bad == 0 { 0 } else { 1 })
        }
    }
}

fn capture(
    config: &Config,
    model: &str,
    text: Option<String>,
    file: Option<PathBuf>,
    weights: &str,
    top_k: usize,
    json: bool,
) -> Result<i32> {
    let text = match (text, file) {
        (Some(t), _) => t,
        (None, Some(f)) => {
            std::fs::read_to_string(&f).map_err(|e| Error::input(f.display().to_string(), e.to_string()))?
        }
        (None, None) => return Err(Error::input("capture", "give --text or --file")),
    };
    let mut loaded = load_model(config, model, weights)?;
    let out = crate::models::text_capture::capture_text(&mut loaded, &text, top_k)?;
    if json {
        println!("{}", String::from_utf8_lossy(&crate::record::canonical::to_pretty_json(&out)?));
        return Ok(0);
    }
    println!("model {} ({} weights), {} tokens", out.model, out.weights, out.token_ids.len());
    println!(
        "{:>5}  {:<12} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "index", "layer", "last ‖h‖", "mean ‖h‖", "mean", "std", "max |h|"
    );
    for l in &out.layers {
        println!(
            "{:>5}  {:<12} {:>12.4} {:>12.4} {:>10.4} {:>10.4} {:>10.3}",
            l.index, l.label, l.last_token_norm, l.mean_token_norm, l.mean, l.std, l.max_abs
        );
    }
    if !out.next_tokens.is_empty() {
        println!("top {} next tokens:", out.next_tokens.len());
        for t in &out.next_tokens {
            println!("  {:>6}  {:<16} p={:.4}  logit={:.3}", t.id, format!("{:?}", t.text), t.prob, t.logit);
        }
    }
    Ok(0)
}

fn zoo(config: &Config, command: ZooCommand) -> Result<i32> {
    use crate::zoo::{build_zoo, ZooEvent, ZooManifest, ZooSpec};
    match command {
        ZooCommand::Build { size, seed_offset, out } => {
            let spec = ZooSpec::by_size(&size).with_seed_offset(seed_offset);
            let out = out.unwrap_or_else(|| crate::zoo::cache_dir(&config.cache.root, &size, seed_offset));
            let bar = crate::progress::items_bar(0, "zoo: preparing corpus and tokenizer");
            let manifest = build_zoo(&spec, &out, &|event: &ZooEvent| match event {
                ZooEvent::Prepared { runs, .. } => {
                    let steps = spec.checkpoint_steps.iter().max().copied().unwrap_or(0);
                    bar.set_length((runs * steps) as u64);
                    bar.set_message("zoo: training");
                }
                ZooEvent::Step { .. } => bar.inc(1),
                ZooEvent::Checkpoint { id, train_loss } => tracing::info!("{id}: train loss {train_loss:.3}"),
            })?;
            bar.finish_and_clear();
            println!("zoo of {} models in {}", manifest.models.len(), out.display());
            println!("manifest sha256: {}", manifest.manifest_sha256);
            Ok(0)
        }
        ZooCommand::Verify { dir } => {
            let manifest = ZooManifest::load(&dir)?;
            manifest.verify(&dir)?;
            println!(
                "{} models verified against {}",
                manifest.models.len(),
                dir.join("manifest.json").display()
            );
            println!("manifest sha256: {}", manifest.manifest_sha256);
            Ok(0)
        }
    }
}

/// Fetch (if needed) and load a registry model under a weight mode given as text.
fn load_model(config: &Config, model: &str, weights: &str) -> Result<crate::models::load::Loaded> {
    let weights: crate::models::gguf_llama::WeightMode =
        weights.parse().map_err(|e: String| Error::input("--weights", e))?;
    let registry = config.registry()?;
    let entry = registry.get(model)?;
    let (dir, _) = fetch::fetch(entry, &registry, &config.cache)?;
    crate::models::load::load(entry, &dir, weights, &config.device)
}

fn fingerprint(
    config: &Config,
    model: &str,
    weights: &str,
    probes: &str,
    (tokens, batch): (usize, usize),
    variant: Option<(String, u64)>,
    out: &Path,
) -> Result<i32> {
    use crate::fingerprint::compute::{fingerprint_model, ProbeRun};
    let probe_path = Path::new(probes);
    let probes = if probe_path.is_file() {
        crate::probes::ProbeSet::load(probe_path)?
    } else {
        crate::probes::shipped(&config.root.join("datasets/probes"), probes)?
    };
    if batch == 0 {
        return Err(Error::input("--batch", "must be at least 1"));
    }
    let mut loaded = match variant {
        None => load_model(config, model, weights)?,
        Some((json, seed)) => {
            let spec: crate::models::variants::VariantSpec =
                serde_json::from_str(&json).map_err(|e| Error::input("--variant", e.to_string()))?;
            let mode = weights.parse().map_err(|e: String| Error::input("--weights", e))?;
            let registry = config.registry()?;
            let entry = registry.get(model)?;
            let (dir, _) = fetch::fetch(entry, &registry, &config.cache)?;
            let (loaded, report) =
                crate::models::load::load_variant(entry, &dir, mode, &spec, seed, &config.device)?;
            eprintln!(
                "{}: {} values changed in {} tensors",
                report.attack,
                report.n_changed,
                report.changes.len()
            );
            loaded
        }
    };
    let run = ProbeRun { tokens, batch_size: batch, ..ProbeRun::default() };
    let fp = fingerprint_model(&mut loaded, &probes, &run, &Default::default())?;
    let file = crate::fingerprint::file::write(out, &fp)?;
    println!(
        "{}: {} tokens of {} ({}), {} bytes encoded, digest {}",
        out.display(),
        fp.meta.tokens_used,
        fp.meta.probe_set,
        &fp.meta.probe_sha256[..12],
        file.encoded_bytes,
        file.digest
    );
    Ok(0)
}

struct CompareArgs {
    a: PathBuf,
    b: PathBuf,
    calibration: Option<PathBuf>,
    alpha: f64,
    tau: Option<f64>,
    json: bool,
}

/// A threshold and margin, and where they came from.
#[derive(serde::Serialize)]
struct Threshold {
    tau: f64,
    margin: f64,
    source: String,
}

/// The identity threshold at `alpha` from a substitution run's summary (real subject).
fn calibrated_threshold(
    config: &Config,
    run: Option<&Path>,
    alpha: f64,
    a: &Fingerprint,
) -> Result<Threshold> {
    use crate::record::run::{read_json, RunDir, Summary};
    let default = config.results.join("same-family");
    let path = run.unwrap_or(&default);
    let dir = if path.join("LATEST").is_file() {
        latest_run(
            path.parent().unwrap_or(Path::new(".")),
            &path.file_name().unwrap_or_default().to_string_lossy(),
        )?
    } else {
        RunDir::new(path.to_path_buf())
    };
    let what = format!("calibration run {}", dir.path.display());
    let summary: Summary = read_json(&dir.path.join("summary.json")).map_err(|e| {
        Error::input(what.clone(), format!("{e} (run a substitution experiment, or pass --tau)"))
    })?;
    let exp: crate::spec::Experiment = read_json(&dir.path.join("spec.json"))?;
    let crate::experiments::Params::Substitution(p) = &exp.params else {
        return Err(Error::input(what, format!("`{}` is not a substitution experiment", exp.name)));
    };
    if p.probe_sha256 != a.meta.probe_sha256 || p.tokens != a.meta.tokens_used as usize {
        return Err(Error::input(
            what,
            format!(
                "calibrated for {} tokens of `{}`; the fingerprints use {} tokens of `{}`",
                p.tokens, p.probes, a.meta.tokens_used, a.meta.probe_set
            ),
        ));
    }
    // The enrolled subject the reference names: a zoo checkpoint, else the real model.
    let a_label = crate::experiments::substitution::spec::severity_label(alpha);
    let name = a.meta.model_id.split('@').next().unwrap_or_default();
    let zoo_key = format!("zoo.{name}.identity.a{a_label}.tau");
    let key = if summary.metrics.contains_key(&zoo_key) {
        zoo_key
    } else {
        format!("real.identity.a{a_label}.tau")
    };
    let tau = *summary.metrics.get(&key).ok_or_else(|| {
        Error::input(what.clone(), format!("no `{key}` in its summary (alphas computed: {:?})", p.alphas))
    })?;
    Ok(Threshold { tau, margin: p.margin, source: format!("{} ({key})", dir.path.display()) })
}

fn compare(config: &Config, c: CompareArgs) -> Result<i32> {
    use crate::detect::{Decision, DecisionRule};
    let (fa, fb) = (crate::fingerprint::file::read(&c.a)?, crate::fingerprint::file::read(&c.b)?);
    let d = crate::fingerprint::distance(&fa.fingerprint, &fb.fingerprint)?;
    // An explicit --tau or --calibration must work; the implicit default (the latest
    // same-family run) may not match these fingerprints, and then there is no decision.
    let th = match (c.tau, &c.calibration) {
        (Some(tau), _) => Some(Threshold { tau, margin: 4.0, source: "--tau".into() }),
        (None, Some(run)) => Some(calibrated_threshold(config, Some(run), c.alpha, &fa.fingerprint)?),
        (None, None) => match calibrated_threshold(config, None, c.alpha, &fa.fingerprint) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("no decision: {e} (pass --calibration RUN or --tau)");
                None
            }
        },
    };
    let decision =
        th.as_ref().map(|t| DecisionRule::new(t.tau, t.margin).map(|r| r.decide(d.identity.total)));
    let decision = decision.transpose()?;
    let code = match decision {
        None | Some(Decision::Accept) => 0,
        Some(Decision::Reject) => 3,
        Some(Decision::Inconclusive) => 4,
    };
    if c.json {
        let v = serde_json::json!({ "distance": d, "threshold": th, "decision": decision });
        println!("{}", String::from_utf8_lossy(&crate::record::canonical::to_pretty_json(&v)?));
        return Ok(code);
    }
    println!(
        "A: {} ({})\nB: {} ({})",
        fa.fingerprint.meta.model_id, fa.digest, fb.fingerprint.meta.model_id, fb.digest
    );
    for (name, c) in [("lineage", &d.lineage), ("identity", &d.identity)] {
        println!("{name:<9} distance {:.6e}", c.total);
        for (block, v) in &c.blocks {
            println!("    {block:<22} {v:.6e}");
        }
    }
    match (&th, decision) {
        (Some(th), Some(decision)) => {
            println!(
                "threshold {:.6e} (identity; reject above {:.6e}) from {}",
                th.tau,
                th.tau * th.margin,
                th.source
            );
            println!(
                "decision  {decision:?} (identity distance / threshold = {:.3e})",
                d.identity.total / th.tau.max(f64::MIN_POSITIVE)
            );
        }
        _ => println!("threshold and decision: none (no matching calibration)"),
    }
    Ok(code)
}

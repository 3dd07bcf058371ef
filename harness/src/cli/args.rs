//! Raw command-line arguments (clap derive). Nothing here is validated beyond syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// gapbench: measure model substitution, context compression and the obligation gap,
/// reproducibly.
#[derive(Debug, Parser)]
#[command(name = "gapbench", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v info, -vv debug, -vvv trace). GAPBENCH_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Model cache directory [default: $GAPBENCH_CACHE or ~/.cache/gapbench].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Model registry [default: datasets/models.toml in the project root].
    #[arg(long, global = true, value_name = "FILE", env = "GAPBENCH_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Results directory [default: results/ in the project root].
    #[arg(long, global = true, value_name = "DIR", env = "GAPBENCH_RESULTS")]
    pub results: Option<PathBuf>,
    /// Compute device: cpu, cuda:N (needs the `cuda` feature) or metal.
    #[arg(long, global = true, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// Worker threads for CPU compute [default: all cores]. Recorded in every run.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Never use the network (the HF cache and local sources still work).
    #[arg(long, global = true)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an experiment spec and write results/<experiment>/<run-id>/.
    Run {
        /// Experiment specs (TOML), run one after another; every spec is resolved before
        /// the first runs. None with --resume (the run's spec.json is used).
        specs: Vec<PathBuf>,
        /// Continue an interrupted run in this directory, skipping finished items.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// Run only shard K of N (1-based), e.g. `--shard 2/8`; join shards with `merge`.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
    },
    /// Parse and resolve a spec; print the resolved spec and its hash.
    Validate {
        /// The experiment spec (TOML).
        spec: PathBuf,
    },
    /// List experiment specs in experiments/ and their latest runs.
    Ls {
        /// Folder of specs [default: experiments/ in the project root].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Join the shard runs of one sharded experiment into one complete run.
    Merge {
        /// Shard run directories (all shards of one spec).
        #[arg(required = true, value_name = "RUN_DIR")]
        runs: Vec<PathBuf>,
    },
    /// Run a registry model on a text; print per-layer residual-stream statistics and the
    /// top next tokens.
    Capture {
        /// Registry model name (fetched first if needed).
        #[arg(long)]
        model: String,
        /// The text to run.
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Read the text from a file instead.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// GGUF weight mode: shipped (as stored), f32, f16, requant-<type>[-f32] with type in
        /// q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k.
        #[arg(long, default_value = "f32")]
        weights: String,
        /// How many next tokens to print.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fingerprint a registry model on a probe set and write it as JSON.
    Fingerprint {
        /// Registry model name.
        #[arg(long)]
        model: String,
        /// GGUF weight mode (see `capture --help`).
        #[arg(long, default_value = "f32")]
        weights: String,
        /// A shipped probe set name (general-en-v1, diverse-v1) or a probe-set file.
        #[arg(long, default_value = "general-en-v1")]
        probes: String,
        /// Probe tokens to use (the first N of the probe stream).
        #[arg(long, default_value_t = 512)]
        tokens: usize,
        /// Sequences per forward pass.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Fingerprint a substitute instead: an attack as JSON, e.g.
        /// '{"attack":"weight-noise","severity":1e-3}' (see the README's attack table).
        #[arg(long, value_name = "JSON")]
        variant: Option<String>,
        /// Seed of the attack's randomness.
        #[arg(long, default_value_t = 0)]
        variant_seed: u64,
        /// Output file.
        #[arg(short, long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Compare two fingerprint files: per-channel distances with a per-block breakdown,
    /// the calibrated threshold and the decision. Exit status: 0 accept, 3 reject,
    /// 4 inconclusive (errors: 1 and 2 as everywhere).
    Compare {
        /// The enrolled (reference) fingerprint file.
        a: PathBuf,
        /// The candidate fingerprint file.
        b: PathBuf,
        /// A substitution run (directory, or `results/<experiment>` for its LATEST run)
        /// whose calibrated identity threshold is used [default: results/same-family]
        #[arg(long, value_name = "RUN")]
        calibration: Option<PathBuf>,
        /// Target false-reject rate; must be one the calibration run computed.
        #[arg(long, default_value_t = 1e-3)]
        alpha: f64,
        /// Use this threshold instead of a calibration run (margin 4).
        #[arg(long)]
        tau: Option<f64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Scan a transcript for context compactions; emit hash-chained compression-event
    /// records (JSONL) with the protected constraints' survival and the three signals.
    Monitor {
        /// Claude Code session JSONL, OpenAI messages (JSON array / {"messages": [...]}),
        /// OpenAI request log (JSONL), or a gapbench session (JSONL).
        transcript: PathBuf,
        /// claude-code | openai | openai-jsonl | gapbench [default: detected]
        #[arg(long)]
        format: Option<String>,
        /// Skip and count malformed lines instead of stopping at the first.
        #[arg(long)]
        lenient: bool,
        /// Append records to this log (its chain is verified first) instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        /// The agent the transcript belongs to (audit field).
        #[arg(long, default_value = "unknown-agent")]
        agent_id: String,
        /// The delegating user / subject (audit field).
        #[arg(long)]
        subject: Option<String>,
        /// Conversation events in each window before and after a boundary.
        #[arg(long, default_value_t = 20)]
        window: usize,
        /// Skip the embedding-based consistency signal (no MiniLM needed).
        #[arg(long)]
        no_embeddings: bool,
    },
    /// Re-run a recorded run from its spec.json (into a scratch results folder) and
    /// compare every metric with the recorded one under the spec's `[reproduce]`
    /// tolerance (exact by default). Exit status 1 on any mismatch.
    Reproduce {
        /// The run directory, or `results/<experiment>` for its LATEST run.
        run: PathBuf,
        /// Keep the reproduced run here instead of a temporary folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Quick check for long runs: re-run only N items spread evenly over the item
        /// order and compare their samples byte for byte, and re-summarise the recorded
        /// samples and compare every metric (instead of re-running everything).
        #[arg(long, value_name = "N")]
        items: Option<usize>,
        /// Print every metric, not only those that differ.
        #[arg(long)]
        all: bool,
        /// Also write the full comparison as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Regenerate every paper table and figure from results/*/LATEST into paper/tables
    /// and paper/figures, refresh paper.md's generated blocks and render paper.html.
    Report {
        /// Output folder [default: paper/ in the project root].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Compare two runs side by side: provenance, then every metric that differs.
    Diff {
        /// First run (directory, or `results/<experiment>` for its LATEST run).
        a: PathBuf,
        /// Second run.
        b: PathBuf,
        /// Print every metric, including identical ones.
        #[arg(long)]
        all: bool,
        /// Only metrics whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Count differences within this relative tolerance as equal.
        #[arg(long, default_value_t = 0.0, conflicts_with = "spec_tolerance")]
        rel: f64,
        /// Compare under B's declared `[reproduce]` tolerance, as `reproduce` would (its
        /// across-machines rules too when A and B ran on different machines): e.g. a run
        /// recorded elsewhere against a run of the same computation here.
        #[arg(long)]
        spec_tolerance: bool,
        /// Write the comparison as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// The synthetic model zoo: tiny llama decoders trained from scratch, reproducibly.
    #[command(subcommand)]
    Zoo(ZooCommand),
    /// The model registry: list, fetch and verify models.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registry models and whether each is in the cache.
    List,
    /// Fetch models into the cache, verifying sha256; does nothing for cached models.
    Fetch {
        /// Registry model name.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Fetch every registry model.
        #[arg(long)]
        all: bool,
    },
    /// Re-hash cached models against the registry pins (all when no name is given).
    Verify {
        /// Registry model name.
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ZooCommand {
    /// Train the zoo and write HF-layout checkpoints, loss curves and a sha256 manifest.
    /// The same size and seed offset give byte-identical files on the same machine.
    Build {
        /// `standard` (60 models: 6 seeds x 5 checkpoints x 2 widths) or `tiny` (for tests).
        #[arg(long, default_value = "standard", value_parser = ["standard", "tiny"])]
        size: String,
        /// Added to every training seed, to build an independent zoo of the same shape.
        #[arg(long, default_value_t = 0)]
        seed_offset: u64,
        /// Output directory [default: <cache>/zoo/<size>-<offset>].
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Check every file of a built zoo against its manifest.
    Verify {
        /// The zoo directory (holding manifest.json).
        dir: PathBuf,
    },
}

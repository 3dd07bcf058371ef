//! `gapbench monitor TRANSCRIPT`: find compaction boundaries in a real transcript (Claude
//! Code JSONL, OpenAI chat-completions arrays or request logs, gapbench sessions), check
//! which protected constraints survived, measure the three signals around each boundary
//! and emit one hash-chained compression-event record per boundary.
//!
//! Signals on transcripts (no probe answers exist in a real session, so consistency is
//! measured on the assistant's own turns):
//! - `ghost_lexicon_decay`: window-corrected decay of the assistant's vocabulary;
//! - `constraint_lexicon_decay`: the same over the protected constraints' words;
//! - `context_consistency`: drop of MiniLM cosine between the centroid of the assistant
//!   turns after the boundary and those just before it, normalised by the cosine between
//!   the two halves of the pre-boundary window (the noise floor);
//! - `tool_shift`: smoothed Jensen–Shannon divergence of tool-call names before vs after.
//!
//! Thresholds are declared constants from the public anchors, not fitted on transcripts:
//! per signal compression-monitor's "high" lexicon band 0.3, its JSD/KL example 0.15, and
//! its consistency bands 0.85 → 0.65 read as a normalised drop of 0.25 (recorded for
//! reading, they decide nothing alone: short windows are noisy); the decision uses its
//! composite, the plain mean of lexicon (constraint vocabulary where it has anchors),
//! consistency and tool shift, alerting above 0.375 (its 0.35–0.4 band). A lost constraint
//! always recommends re-authorisation; a composite alert alone asks to keep monitoring.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::commands::Config;
use crate::compression::event::{
    record_hash, CompressionEvent, Decision, EventLog, RiskState, SignalValue, ZERO_HASH,
};
use crate::compression::signals::consistency::consistency;
use crate::compression::signals::lexicon::{
    constraint_lexicon_decay, ghost_lexicon_decay, tokenize, LexiconConfig,
};
use crate::compression::signals::toolshift::tool_shift;
use crate::compression::transcript::boundary::BoundaryConfig;
use crate::compression::transcript::scan::{scan_transcript, BoundaryScan, WindowSizes};
use crate::compression::transcript::{Format, ReadOptions, Role};
use crate::error::{Error, Result};

const LEXICON_THRESHOLD: f64 = 0.3;
const TOOL_SHIFT_THRESHOLD: f64 = 0.15;
const CONSISTENCY_THRESHOLD: f64 = 0.25;
const COMPOSITE_THRESHOLD: f64 = 0.375;

pub struct MonitorArgs {
    pub transcript: PathBuf,
    pub format: Option<String>,
    pub lenient: bool,
    pub out: Option<PathBuf>,
    pub agent_id: String,
    pub subject: Option<String>,
    pub window: usize,
    pub no_embeddings: bool,
}

type Embed<'a> = dyn FnMut(&[String]) -> Result<Vec<Vec<f32>>> + 'a;

fn centroid(v: &[Vec<f32>]) -> Vec<f32> {
    let d = v.first().map_or(0, Vec::len);
    let mut c = vec![0f32; d];
    for x in v {
        for (a, b) in c.iter_mut().zip(x) {
            *a += b / v.len() as f32;
        }
    }
    c
}

/// The signals of one boundary.
fn signals(b: &BoundaryScan, embed: Option<&mut Embed>) -> Result<Vec<SignalValue>> {
    let texts = |evs: &[crate::compression::transcript::TranscriptEvent]| -> Vec<String> {
        evs.iter()
            .filter(|e| e.role == Role::Assistant && !e.text.trim().is_empty())
            .map(|e| e.text.clone())
            .collect()
    };
    let tools = |evs: &[crate::compression::transcript::TranscriptEvent]| -> Vec<String> {
        evs.iter().filter(|e| e.role == Role::ToolCall).filter_map(|e| e.tool.clone()).collect()
    };
    let (pre, post) = (texts(&b.pre), texts(&b.post));
    let (pre_t, post_t) = (tools(&b.pre), tools(&b.post));
    let pre_r: Vec<&str> = pre.iter().map(String::as_str).collect();
    let post_r: Vec<&str> = post.iter().map(String::as_str).collect();
    let cfg = LexiconConfig::default();
    let vocab: Vec<String> = b.constraints.iter().flat_map(|c| tokenize(&c.text)).collect();
    let mut out = vec![];
    let sv =
        |name: &str, value: f64, pre: usize, post: usize, floor: Option<f64>, threshold: f64| SignalValue {
            name: name.into(),
            value,
            window_pre: pre as u64,
            window_post: post as u64,
            noise_floor: floor,
            threshold,
        };
    if let Some(d) = ghost_lexicon_decay(&pre_r, &post_r, &cfg).decay {
        out.push(sv("ghost_lexicon_decay", d, pre.len(), post.len(), None, LEXICON_THRESHOLD));
    }
    if let Some(d) = constraint_lexicon_decay(&pre_r, &post_r, &vocab, &cfg).decay {
        out.push(sv("constraint_lexicon_decay", d, pre.len(), post.len(), None, LEXICON_THRESHOLD));
    }
    if !pre_t.is_empty() || !post_t.is_empty() {
        let a: Vec<&str> = pre_t.iter().map(String::as_str).collect();
        let c: Vec<&str> = post_t.iter().map(String::as_str).collect();
        let js = tool_shift(&a, &c, &[], 0.5).jsd;
        out.push(sv("tool_shift", js, pre_t.len(), post_t.len(), None, TOOL_SHIFT_THRESHOLD));
    }
    if let Some(embed) = embed {
        if pre.len() >= 2 && !post.is_empty() {
            let half = pre.len() / 2;
            let e_pre = embed(&pre)?;
            let e_post = embed(&post)?;
            let (a, bb) = (centroid(&e_pre[..half]), centroid(&e_pre[half..]));
            let c = consistency(&[bb], &[a], &[centroid(&e_post)])?;
            out.push(sv(
                "context_consistency",
                c.drop,
                pre.len(),
                post.len(),
                Some(c.floor),
                CONSISTENCY_THRESHOLD,
            ));
        }
    }
    let get = |n: &str| out.iter().find(|s| s.name == n).map(|s| s.value);
    let lexicon = get("constraint_lexicon_decay").or(get("ghost_lexicon_decay")).unwrap_or(0.0);
    let composite =
        (lexicon + get("context_consistency").unwrap_or(0.0) + get("tool_shift").unwrap_or(0.0)) / 3.0;
    out.push(sv("composite", composite, pre.len(), post.len(), None, COMPOSITE_THRESHOLD));
    Ok(out)
}

pub fn monitor(config: &Config, a: MonitorArgs) -> Result<i32> {
    let format = a.format.as_deref().map(|f| f.parse::<Format>()).transpose()?;
    if a.window == 0 {
        return Err(Error::input("--window", "must be at least 1"));
    }
    let scan = scan_transcript(
        &a.transcript,
        &ReadOptions { format, lenient: a.lenient },
        &BoundaryConfig::default(),
        WindowSizes { pre: a.window, post: a.window },
    )?;
    let mut embedder = None;
    if !a.no_embeddings && !scan.boundaries.is_empty() {
        let registry = config.registry()?;
        let entry = registry.get("all-minilm-l6-v2")?;
        let (dir, _) = crate::models::fetch::fetch(entry, &registry, &config.cache)?;
        embedder = Some(crate::models::bert::MiniLm::load(&dir, &config.device)?);
    }
    let mut embed = |t: &[String]| -> Result<Vec<Vec<f32>>> {
        let refs: Vec<&str> = t.iter().map(String::as_str).collect();
        embedder.as_ref().expect("checked").embed_batched(&refs, 32)
    };
    let source = a.transcript.display().to_string();
    let mut log = a.out.as_deref().map(EventLog::open).transpose()?;
    let mut prev = ZERO_HASH.to_string();
    let stdout = std::io::stdout();
    let mut lines = stdout.lock();
    let mut flagged = 0;
    for b in &scan.boundaries {
        let mut ev = CompressionEvent::from_scan(b, &a.agent_id, Some(&source), None);
        ev.delegated_subject = a.subject.clone();
        let use_embed = !a.no_embeddings;
        ev.signals = signals(b, if use_embed { Some(&mut embed as &mut Embed) } else { None })?;
        let alert = ev.signals.iter().any(|s| s.name == "composite" && s.value > s.threshold);
        if ev.decision == Decision::None && alert {
            let over: Vec<&str> =
                ev.signals.iter().filter(|s| s.value > s.threshold).map(|s| s.name.as_str()).collect();
            ev.decision = Decision::Monitor;
            ev.risk_state = RiskState::Elevated;
            ev.remediation.push(format!("composite signal over threshold ({})", over.join(", ")));
        }
        if ev.decision == Decision::Reauthorise {
            flagged += 1;
        }
        match &mut log {
            Some(l) => {
                l.append(ev)?;
            }
            None => {
                ev.prev_hash = prev.clone();
                let v = serde_json::to_value(&ev).map_err(|e| Error::run(e.to_string()))?;
                prev = record_hash(&v);
                writeln!(lines, "{}", crate::compression::event::canonical_json(&v))
                    .map_err(Error::io("<stdout>"))?;
            }
        }
    }
    eprintln!(
        "{}: {:?}, {} lines, {} events, {} skipped; {} boundaries, {} with a lost constraint (re-authorise)",
        source,
        scan.stats.format,
        scan.stats.lines,
        scan.stats.events,
        scan.stats.skipped,
        scan.boundaries.len(),
        flagged
    );
    if let (Some(l), Some(p)) = (&log, &a.out) {
        eprintln!("records appended to {} (chain head {})", p.display(), l.head());
    }
    Ok(0)
}

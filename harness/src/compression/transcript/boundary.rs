//! Compaction boundaries in a transcript event stream.
//!
//! Real transcripts say when they were compacted only sometimes, so a boundary is either
//! **explicit** (a Claude Code `compact_boundary` line and/or `isCompactSummary` summary,
//! a gapbench compaction turn) or **inferred**: an OpenAI request log whose next request no
//! longer extends the previous one (`inferred-reset`, found by the reader), or the context
//! size reported by usage dropping by more than [`BoundaryConfig::token_drop`] between two
//! consecutive turns that carry usage (`inferred-token-drop`).
//!
//! The detector is a streaming state machine: [`BoundaryDetector::push`] each event, collect
//! the finished boundaries it returns, then [`BoundaryDetector::finish`]. A boundary is
//! finished when the first later turn with usage gives its `tokens_after`, at the next
//! boundary, after [`MAX_PENDING_EVENTS`] events, or at the end.

use serde::{Deserialize, Serialize};

use super::{Role, TranscriptEvent};

/// A boundary still waiting for its `tokens_after` is closed after this many events.
pub const MAX_PENDING_EVENTS: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoundaryTrigger {
    Explicit,
    InferredReset,
    InferredTokenDrop,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boundary {
    /// Source line (or array element) where the boundary starts.
    pub line: u64,
    /// Ordinal of the starting event in the stream (0-based), to align windows.
    pub event_index: u64,
    pub trigger: BoundaryTrigger,
    /// What the source called the trigger (`auto`, `manual`, `context-reset`, `tokens`).
    pub source_trigger: Option<String>,
    pub tokens_before: Option<u64>,
    pub tokens_after: Option<u64>,
    /// tokens_after / tokens_before (smaller is stronger compression).
    pub ratio: Option<f64>,
    /// True when the token counts are characters / 4 estimates.
    pub tokens_estimated: bool,
    pub summary_text: Option<String>,
    pub timestamp: Option<String>,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BoundaryConfig {
    /// Fractional drop of usage tokens between consecutive turns that counts as a boundary.
    pub token_drop: f64,
    /// Treat Claude Code `type: "summary"` lines as boundaries. Off by default: current
    /// Claude Code writes them as session titles, not at compactions.
    pub title_summaries_as_boundaries: bool,
}

impl Default for BoundaryConfig {
    fn default() -> Self {
        BoundaryConfig { token_drop: 0.5, title_summaries_as_boundaries: false }
    }
}

#[derive(Debug, Default)]
pub struct BoundaryDetector {
    config: BoundaryConfig,
    pending: Option<Boundary>,
    pending_age: u64,
    last_tokens: Option<u64>,
    seen: u64,
}

fn finished(mut b: Boundary) -> Boundary {
    if let (Some(before), Some(after)) = (b.tokens_before, b.tokens_after) {
        b.ratio = Some(after as f64 / before.max(1) as f64);
    }
    b
}

impl BoundaryDetector {
    pub fn new(config: BoundaryConfig) -> Self {
        BoundaryDetector { config, ..Default::default() }
    }

    fn open(&mut self, ev: &TranscriptEvent, trigger: BoundaryTrigger, out: &mut Vec<Boundary>) {
        if let Some(p) = self.pending.take() {
            out.push(finished(p));
        }
        let info = ev.compaction.clone().unwrap_or_default();
        let is_summary = matches!(ev.raw_kind.as_str(), "user/compact_summary" | "compaction" | "summary")
            || trigger == BoundaryTrigger::InferredReset;
        self.pending = Some(Boundary {
            line: ev.line,
            event_index: self.seen,
            trigger,
            source_trigger: info.trigger,
            tokens_before: info.pre_tokens.or(self.last_tokens),
            tokens_after: info.post_tokens,
            ratio: None,
            tokens_estimated: info.estimated,
            summary_text: (is_summary && !ev.text.is_empty()).then(|| ev.text.clone()),
            timestamp: ev.timestamp.clone(),
            session_id: ev.session_id.clone(),
        });
        self.pending_age = 0;
    }

    /// Feed one event; returns the boundaries that this event finished (usually none).
    pub fn push(&mut self, ev: &TranscriptEvent) -> Vec<Boundary> {
        let mut out = Vec::new();
        let title = ev.raw_kind == "summary" && self.config.title_summaries_as_boundaries;
        if ev.role == Role::Compaction || title {
            match ev.raw_kind.as_str() {
                // Claude Code writes the boundary line, then the summary as a user line.
                "user/compact_summary"
                    if self.pending.as_ref().is_some_and(|p| {
                        p.summary_text.is_none() && p.trigger == BoundaryTrigger::Explicit
                    }) =>
                {
                    if let Some(p) = &mut self.pending {
                        p.summary_text = Some(ev.text.clone());
                    }
                }
                "openai/context-reset" => self.open(ev, BoundaryTrigger::InferredReset, &mut out),
                _ => self.open(ev, BoundaryTrigger::Explicit, &mut out),
            }
        } else if let Some(p) = &mut self.pending {
            self.pending_age += 1;
            if let Some(t) = ev.tokens {
                p.tokens_after.get_or_insert(t);
            }
            if ev.tokens.is_some() || self.pending_age >= MAX_PENDING_EVENTS {
                out.push(finished(self.pending.take().expect("pending")));
            }
        } else if let (Some(t), Some(prev)) = (ev.tokens, self.last_tokens) {
            if (t as f64) < prev as f64 * (1.0 - self.config.token_drop) {
                out.push(finished(Boundary {
                    line: ev.line,
                    event_index: self.seen,
                    trigger: BoundaryTrigger::InferredTokenDrop,
                    source_trigger: None,
                    tokens_before: Some(prev),
                    tokens_after: Some(t),
                    ratio: None,
                    tokens_estimated: false,
                    summary_text: None,
                    timestamp: ev.timestamp.clone(),
                    session_id: ev.session_id.clone(),
                }));
            }
        }
        if let Some(t) = ev.tokens {
            self.last_tokens = Some(t);
        }
        self.seen += 1;
        out
    }

    /// Event ordinal of the boundary waiting for its `tokens_after`, if any.
    pub fn pending_start(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.event_index)
    }

    /// The boundary still open at the end of the stream, if any.
    pub fn finish(mut self) -> Option<Boundary> {
        self.pending.take().map(finished)
    }
}

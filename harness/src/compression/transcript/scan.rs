//! One streaming pass over a transcript for `gapbench monitor`: the boundaries, a window of
//! conversation events before and after each, and the survival of every constraint given
//! before it.
//!
//! Memory stays bounded: a ring of the last `pre` conversation events, the constraints
//! found so far, and the windows of boundaries whose post-window is still filling (a
//! window closes when it is full or when the next boundary starts, so at most a few).
//! "Conversation events" are everything but compaction events and `/retained` re-emissions;
//! the post-boundary *context* for survival is the summary, the retained turns, and later
//! user and system turns inside the post-window (not assistant or tool text: a tool result
//! quoting an instruction does not put it back in force).

use std::collections::VecDeque;
use std::path::Path;

use super::boundary::{Boundary, BoundaryConfig, BoundaryDetector, BoundaryTrigger};
use super::{read_transcript, ReadOptions, ReadStats, Role, TranscriptEvent};
use crate::compression::event::constraints::{check_survival, Constraint, ConstraintExtractor};
use crate::compression::event::ConstraintSurvival;
use crate::error::Result;

#[derive(Debug, Clone, Copy)]
pub struct WindowSizes {
    pub pre: usize,
    pub post: usize,
}

impl Default for WindowSizes {
    fn default() -> Self {
        WindowSizes { pre: 20, post: 20 }
    }
}

#[derive(Debug, Clone)]
pub struct BoundaryScan {
    pub boundary: Boundary,
    /// Up to `pre` conversation events just before the boundary, in order.
    pub pre: Vec<TranscriptEvent>,
    /// Up to `post` conversation events after it (from the boundary event itself for a token
    /// drop), stopping at the next boundary.
    pub post: Vec<TranscriptEvent>,
    /// Every constraint found before the boundary, checked against the post context.
    pub constraints: Vec<ConstraintSurvival>,
    /// The first tool called after the boundary (the record's `resource`).
    pub first_tool_after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Scan {
    pub stats: ReadStats,
    /// All constraints found in the transcript.
    pub constraints: Vec<Constraint>,
    pub boundaries: Vec<BoundaryScan>,
}

struct Open {
    event_index: u64,
    line: u64,
    boundary: Option<Boundary>,
    pre: Vec<TranscriptEvent>,
    post: Vec<TranscriptEvent>,
    context: Vec<(String, String)>,
    constraints: Vec<Constraint>,
    filling: bool,
}

fn close(o: Open) -> BoundaryScan {
    let boundary = o.boundary.expect("closed windows have their boundary");
    let mut context = o.context;
    if let Some(s) = &boundary.summary_text {
        context.insert(0, (format!("compaction summary (line {})", boundary.line), s.clone()));
    }
    let constraints = o.constraints.iter().map(|c| check_survival(c, &context)).collect();
    let first_tool_after = o.post.iter().find(|e| e.role == Role::ToolCall).and_then(|e| e.tool.clone());
    BoundaryScan { boundary, pre: o.pre, post: o.post, constraints, first_tool_after }
}

/// Scan a transcript file; see the module docs.
pub fn scan_transcript(
    path: &Path,
    options: &ReadOptions,
    config: &BoundaryConfig,
    sizes: WindowSizes,
) -> Result<Scan> {
    let mut detector = BoundaryDetector::new(config.clone());
    let mut extractor = ConstraintExtractor::default();
    let mut ring: VecDeque<TranscriptEvent> = VecDeque::with_capacity(sizes.pre + 1);
    let mut open: Vec<Open> = Vec::new();
    let mut done: Vec<BoundaryScan> = Vec::new();
    let mut ordinal = 0u64;
    let mut on_event = |ev: TranscriptEvent| -> Result<()> {
        let pending_before = detector.pending_start();
        let finished = detector.push(&ev);
        let started = match detector.pending_start() {
            Some(i) if i == ordinal && pending_before != Some(i) => true,
            _ => finished
                .iter()
                .any(|b| b.event_index == ordinal && b.trigger == BoundaryTrigger::InferredTokenDrop),
        };
        if started {
            for o in &mut open {
                o.filling = false;
            }
            open.push(Open {
                event_index: ordinal,
                line: ev.line,
                boundary: None,
                pre: ring.iter().cloned().collect(),
                post: Vec::new(),
                context: Vec::new(),
                constraints: extractor.found.iter().filter(|c| c.line < ev.line).cloned().collect(),
                filling: true,
            });
        }
        for b in finished {
            if let Some(o) = open.iter_mut().find(|o| o.event_index == b.event_index) {
                o.boundary = Some(b);
            }
        }
        let conversation = ev.role != Role::Compaction && !ev.raw_kind.ends_with("/retained");
        for o in open.iter_mut().filter(|o| o.filling) {
            let retained = ev.raw_kind.ends_with("/retained");
            if retained || (conversation && matches!(ev.role, Role::User | Role::System)) {
                let what = if retained { "retained turn" } else { "post-boundary turn" };
                o.context.push((format!("{what} (line {})", ev.line), ev.text.clone()));
            }
            if conversation {
                o.post.push(ev.clone());
                o.filling = o.post.len() < sizes.post;
            }
        }
        let mut i = 0;
        while i < open.len() {
            if open[i].boundary.is_some() && !open[i].filling {
                done.push(close(open.remove(i)));
            } else {
                i += 1;
            }
        }
        extractor.push(&ev);
        if conversation && sizes.pre > 0 {
            if ring.len() == sizes.pre {
                ring.pop_front();
            }
            ring.push_back(ev);
        }
        ordinal += 1;
        Ok(())
    };
    let stats = read_transcript(path, options, &mut on_event)?;
    if let Some(b) = detector.finish() {
        if let Some(o) = open.iter_mut().find(|o| o.event_index == b.event_index) {
            o.boundary = Some(b);
        }
    }
    for o in open {
        debug_assert!(o.boundary.is_some(), "boundary at line {} never finished", o.line);
        if o.boundary.is_some() {
            done.push(close(o));
        }
    }
    done.sort_by_key(|s| s.boundary.event_index);
    Ok(Scan { stats, constraints: extractor.found, boundaries: done })
}

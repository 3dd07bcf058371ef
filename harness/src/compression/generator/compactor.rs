//! The compactor: turns the active context at a boundary into a [`Role::Compaction`] turn.
//!
//! Two independent choices, as in the frameworks (`shared/research/compression.md`): the
//! *summariser* decides the form (which recent turns stay verbatim, how the rest is
//! summarised, which tool outputs are elided), and the *fate* decides what happens to each
//! instruction in the context (kept, dropped, paraphrased, negated). The fate is applied on
//! top of every summariser, including an LLM's summary (its output is stripped of every
//! wording of every instruction, then the surviving wordings are appended), so the ground
//! truth is exact: [`Constraint::presence`] on the result says what survived.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::tasks::TaskDef;
use super::SessionSpec;
use crate::compression::session::{
    approx_tokens, CompactionInfo, Constraint, Fate, Presence, Role, Summariser, Turn, MASKED_TOOL_OUTPUT,
};
use crate::error::{Error, Result};

/// An LLM summariser: prompt in, summary out.
pub type LlmSummariser<'a> = &'a mut dyn FnMut(&str) -> Result<String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Keep,
    Drop,
    Paraphrase,
    Negate,
}

fn decide(c: &Constraint, before: Presence, spec: &SessionSpec, rng: &mut ChaCha8Rng) -> State {
    if before == Presence::Negated {
        return State::Negate; // a negation, once written, is carried forward
    }
    let targeted = !c.distractor && spec.target_classes.contains(&c.class);
    // Draw for every constraint so the stream does not depend on the fate's branch.
    let coin = rng.gen::<f64>();
    match spec.fate {
        Fate::Kept => State::Keep,
        Fate::RandomDrop if coin < spec.drop_probability => State::Drop,
        Fate::RandomDrop => State::Keep,
        Fate::TargetedDrop if targeted => State::Drop,
        Fate::ParaphrasedKept => State::Paraphrase,
        Fate::NegationFlip if targeted => State::Negate,
        Fate::TargetedDrop | Fate::NegationFlip => State::Keep,
    }
}

fn wording(c: &Constraint, before: Presence, s: State) -> Option<&str> {
    match s {
        State::Drop => None,
        State::Negate => Some(&c.negation),
        State::Paraphrase => Some(&c.paraphrase),
        State::Keep if before == Presence::Paraphrased => Some(&c.paraphrase),
        State::Keep => Some(&c.text),
    }
}

fn tool_counts(ctx: &[Turn]) -> String {
    let mut m = std::collections::BTreeMap::new();
    for t in ctx.iter().filter(|t| t.role == Role::ToolCall) {
        *m.entry(t.tool.clone().unwrap_or_default()).or_insert(0usize) += 1;
    }
    if m.is_empty() {
        return "no tools yet".into();
    }
    m.iter().map(|(k, v)| format!("{k} ({v}x)")).collect::<Vec<_>>().join(", ")
}

/// Build the compaction turn (index `index`) for the active context `ctx`.
#[allow(clippy::too_many_arguments)]
pub fn compact(
    index: usize,
    ctx: &[Turn],
    constraints: &[Constraint],
    task: &TaskDef,
    spec: &SessionSpec,
    rng: &mut ChaCha8Rng,
    llm: Option<LlmSummariser<'_>>,
) -> Result<Turn> {
    let tokens_before: usize = ctx.iter().map(|t| approx_tokens(&t.text)).sum();
    let mut dropped = Vec::new();
    let mut paraphrased = Vec::new();
    let mut negated = Vec::new();
    // (constraint, wording after) for every constraint in the context.
    let mut after: Vec<(&Constraint, Option<&str>)> = Vec::new();
    for c in constraints {
        let before = c.presence(ctx);
        if before == Presence::Absent {
            continue;
        }
        let s = decide(c, before, spec, rng);
        match s {
            State::Drop => dropped.push(c.id.clone()),
            State::Paraphrase => paraphrased.push(c.id.clone()),
            State::Negate if before != Presence::Negated => negated.push(c.id.clone()),
            _ => {}
        }
        after.push((c, wording(c, before, s)));
    }

    // Form: which earlier turns stay (system turns always), and which are masked.
    let body: Vec<&Turn> =
        ctx.iter().filter(|t| t.role != Role::System && t.role != Role::Compaction).collect();
    let budget = (spec.ratio * tokens_before as f64) as usize;
    let tail_within = |budget: usize| -> usize {
        let mut used = 0;
        let mut n = 0;
        for t in body.iter().rev() {
            used += approx_tokens(&t.text);
            if used > budget {
                break;
            }
            n += 1;
        }
        n
    };
    let keep_tail = match spec.summariser {
        Summariser::Truncation => tail_within(budget),
        Summariser::SlidingWindowSummary => tail_within(budget / 2),
        Summariser::StructuredSummary | Summariser::Llm => 2.min(body.len()),
        Summariser::ToolOutputMasking => body.len(),
    };
    let mut kept_turns: Vec<&Turn> = ctx.iter().filter(|t| t.role == Role::System).collect();
    kept_turns.extend(body[body.len() - keep_tail..].iter().copied());
    // A kept turn may not carry an instruction in a wording the fate did not keep.
    kept_turns.retain(|t| {
        after.iter().all(|(c, w)| {
            let carries = [&c.text, &c.paraphrase, &c.negation].iter().any(|s| t.text.contains(s.as_str()));
            !carries || w.is_some_and(|w| t.text.contains(w))
        })
    });
    let mut masked: Vec<usize> = kept_turns
        .iter()
        .filter(|t| t.role == Role::ToolResult && t.text == MASKED_TOOL_OUTPUT)
        .map(|t| t.index)
        .collect();
    if spec.summariser == Summariser::ToolOutputMasking {
        let results: Vec<usize> =
            kept_turns.iter().filter(|t| t.role == Role::ToolResult).map(|t| t.index).collect();
        masked.extend(results.iter().take(results.len().saturating_sub(2)));
    }
    masked.sort_unstable();
    masked.dedup();

    let kept_text = |w: &str| kept_turns.iter().any(|t| t.text.contains(w));
    let lines: Vec<&str> = after.iter().filter_map(|(_, w)| *w).filter(|w| !kept_text(w)).collect();
    let goal =
        if ctx.iter().any(|t| t.text.contains(task.phase2_goal)) { task.phase2_goal } else { task.goal };
    let n_gone = body.len() - keep_tail;
    let bullets = |lines: &[&str]| lines.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n");
    let summary = match spec.summariser {
        Summariser::Truncation => {
            let mut s = format!("[Context compacted: {n_gone} earlier turns were truncated.]");
            if !lines.is_empty() {
                s += &format!("\nPinned instructions:\n{}", bullets(&lines));
            }
            s
        }
        Summariser::SlidingWindowSummary => {
            let mut s = format!(
                "Summary of the earlier conversation: the user asked: \"{goal}\" So far the assistant used {}.",
                tool_counts(ctx)
            );
            if !lines.is_empty() {
                s += &format!(" Standing instructions from the user: {}", lines.join(" "));
            }
            s
        }
        Summariser::StructuredSummary => format!(
            "## Goal\n{goal}\n## User instructions\n{}\n## Progress\n- Tools used: {}\n## Next step\nContinue the task.",
            if lines.is_empty() { "- (none recorded)".to_string() } else { bullets(&lines) },
            tool_counts(ctx)
        ),
        Summariser::ToolOutputMasking => {
            let mut s = "[Older tool outputs were elided to save context.]".to_string();
            if !lines.is_empty() {
                s += &format!("\nCarried-over notes:\n{}", bullets(&lines));
            }
            s
        }
        Summariser::Llm => {
            let llm = llm.ok_or_else(|| Error::run("summariser `llm` needs an LLM summariser callback"))?;
            let transcript: Vec<String> = ctx.iter().map(|t| format!("{:?}: {}", t.role, t.text)).collect();
            let prompt = format!(
                "Summarise this agent session so the agent can continue the task. Keep the user's \
                 instructions.\n\n{}\n\nSummary:",
                transcript.join("\n")
            );
            let mut s = llm(&prompt)?;
            for (c, _) in &after {
                for w in [&c.text, &c.paraphrase, &c.negation] {
                    s = s.replace(w.as_str(), "");
                }
            }
            if !lines.is_empty() {
                s += &format!("\nInstructions: {}", lines.join(" "));
            }
            s
        }
    };

    let tokens_after = kept_turns
        .iter()
        .map(|t| {
            if masked.contains(&t.index) {
                approx_tokens(MASKED_TOOL_OUTPUT)
            } else {
                approx_tokens(&t.text)
            }
        })
        .sum::<usize>()
        + approx_tokens(&summary);
    let info = CompactionInfo {
        trigger: spec.trigger,
        summariser: spec.summariser,
        fate: spec.fate,
        confound: spec.confound,
        tokens_before,
        tokens_after,
        kept: kept_turns.iter().map(|t| t.index).collect(),
        masked,
        dropped,
        paraphrased,
        negated,
        summary_sha256: hex::encode(Sha256::digest(summary.as_bytes())),
    };
    Ok(Turn { compaction: Some(info), ..Turn::new(index, Role::Compaction, summary) })
}

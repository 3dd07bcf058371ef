//! gapbench's own session JSONL ([`crate::compression::session`]): a `{"kind":"header"}`
//! line, then one `{"kind":"turn"}` line per turn. Lines are parsed with the session
//! module's own `Record` type, so the two cannot drift apart.
//!
//! A compaction turn replaces the context by its summary plus the earlier turns it lists in
//! `kept`; to show the monitor that post-boundary context, the kept turns are re-emitted
//! after the [`Role::Compaction`] event with raw kind `<role>/retained`. That needs the
//! earlier turns' text in memory, so unlike the other readers this one holds the session
//! (gapbench sessions are synthetic and small). The header (ground truth) is not an event.

use serde_json::Value;

use super::{CompactionInfo, Mapped, Role, TranscriptEvent};
use crate::compression::session::{self, Record, Trigger};

#[derive(Default)]
pub(super) struct State {
    session_id: Option<String>,
    seen_header: bool,
    turns: Vec<(Role, String, Option<String>)>,
}

fn kind_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::ToolCall => "tool_call",
        Role::ToolResult => "tool_result",
        Role::Compaction => "compaction",
    }
}

impl State {
    pub(super) fn map_line(&mut self, line: u64, v: Value, out: &mut Vec<TranscriptEvent>) -> Mapped {
        let record: Record = match serde_json::from_value(v) {
            Ok(r) => r,
            Err(e) => return Mapped::Malformed(format!("not a gapbench session record: {e}")),
        };
        match record {
            Record::Header(h) => {
                if self.seen_header {
                    return Mapped::Malformed("a second header".into());
                }
                self.seen_header = true;
                self.session_id = Some(h.id);
                Mapped::Ignored
            }
            Record::Turn(t) => {
                let r = t.role;
                let mut ev = TranscriptEvent::new(line, r, t.text.as_str(), kind_name(r));
                ev.tool.clone_from(&t.tool);
                ev.session_id.clone_from(&self.session_id);
                let kept = match &t.compaction {
                    Some(c) => {
                        ev.compaction = Some(CompactionInfo {
                            trigger: Some(
                                match c.trigger {
                                    Trigger::Tokens { .. } => "tokens",
                                    Trigger::Turns { .. } => "turns",
                                }
                                .into(),
                            ),
                            pre_tokens: Some(c.tokens_before as u64),
                            post_tokens: Some(c.tokens_after as u64),
                            estimated: true,
                        });
                        c.kept.iter().map(|&i| (i, c.masked.contains(&i))).collect()
                    }
                    None => Vec::new(),
                };
                out.push(ev);
                for (i, masked) in kept {
                    if let Some((r, text, tool)) = self.turns.get(i) {
                        let text = if masked { session::MASKED_TOOL_OUTPUT } else { text.as_str() };
                        let mut kept_ev =
                            TranscriptEvent::new(line, *r, text, format!("{}/retained", kind_name(*r)));
                        kept_ev.tool.clone_from(tool);
                        kept_ev.session_id.clone_from(&self.session_id);
                        out.push(kept_ev);
                    }
                }
                self.turns.push((r, t.text, t.tool));
                Mapped::Events
            }
        }
    }
}

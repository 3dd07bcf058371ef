//! Claude Code session JSONL (`~/.claude/projects/<project>/<session>.jsonl`).
//!
//! Shape, as written by Claude Code and described in public issues about it: one object per
//! line with `type` (`user` | `assistant` | `system` | `summary` | bookkeeping kinds such as
//! `file-history-snapshot`), `uuid`, `parentUuid`, `sessionId`, `timestamp`, and for turns a
//! `message {role, content, usage}` whose content is a string or an array of blocks
//! (`text`, `tool_use {id, name, input}`, `tool_result {tool_use_id, content}`, `thinking`).
//! A compaction writes a `{"type": "system", "subtype": "compact_boundary",
//! "compactMetadata": {"trigger", "preTokens"}}` line followed by a `user` line with
//! `isCompactSummary: true` carrying the summary. The SDK stream spells the metadata
//! `compact_metadata {pre_tokens, post_tokens}`; both spellings are read.
//!
//! `type: "summary"` lines (`{summary, leafUuid}`) are session *titles* in current Claude
//! Code, not compactions, so they become [`Role::System`] events with raw kind `summary`;
//! [`super::boundary::BoundaryConfig::title_summaries_as_boundaries`] opts into treating
//! them as boundaries. Thinking and image blocks carry no instruction text and are skipped.

use std::collections::HashMap;

use serde_json::Value;

use super::{content_text, CompactionInfo, Mapped, Role, TranscriptEvent};

/// Tool-use ids remembered to name the tool of a later `tool_result`; cleared past this
/// many so a multi-GB session keeps bounded state.
const MAX_TOOL_IDS: usize = 100_000;

#[derive(Default)]
pub(super) struct State {
    tool_names: HashMap<String, String>,
}

fn u64_at(v: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_u64))
}

impl State {
    pub(super) fn map_line(&mut self, line: u64, v: Value, out: &mut Vec<TranscriptEvent>) -> Mapped {
        let Some(kind) = v.get("type").and_then(Value::as_str) else {
            return Mapped::Malformed("Claude Code line without a string `type`".into());
        };
        let timestamp = v.get("timestamp").and_then(Value::as_str).map(str::to_string);
        let session_id = v.get("sessionId").and_then(Value::as_str).map(str::to_string);
        let start = out.len();
        let mapped = match kind {
            "user" | "assistant" => self.map_turn(line, kind, &v, out),
            "system" => {
                let subtype = v.get("subtype").and_then(Value::as_str).unwrap_or("");
                let text = v.get("content").and_then(content_text).unwrap_or_default();
                if subtype == "compact_boundary" {
                    let meta = v.get("compactMetadata").or_else(|| v.get("compact_metadata"));
                    let info = CompactionInfo {
                        trigger: meta
                            .and_then(|m| m.get("trigger"))
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        pre_tokens: meta.and_then(|m| u64_at(m, &["preTokens", "pre_tokens"])),
                        post_tokens: meta.and_then(|m| u64_at(m, &["postTokens", "post_tokens"])),
                        estimated: false,
                    };
                    let mut ev =
                        TranscriptEvent::new(line, Role::Compaction, text, "system/compact_boundary");
                    ev.compaction = Some(info);
                    out.push(ev);
                } else {
                    out.push(TranscriptEvent::new(line, Role::System, text, format!("system/{subtype}")));
                }
                Mapped::Events
            }
            "summary" => match v.get("summary").and_then(Value::as_str) {
                Some(s) => {
                    out.push(TranscriptEvent::new(line, Role::System, s, "summary"));
                    Mapped::Events
                }
                None => Mapped::Malformed("`summary` line without a string `summary`".into()),
            },
            _ => Mapped::Ignored,
        };
        for ev in &mut out[start..] {
            ev.timestamp.clone_from(&timestamp);
            ev.session_id.clone_from(&session_id);
        }
        mapped
    }

    fn map_turn(&mut self, line: u64, kind: &str, v: &Value, out: &mut Vec<TranscriptEvent>) -> Mapped {
        let start = out.len();
        let Some(message) = v.get("message").filter(|m| m.is_object()) else {
            return Mapped::Malformed(format!("`{kind}` line without a `message` object"));
        };
        let Some(content) = message.get("content") else {
            return Mapped::Malformed(format!("`{kind}` message without `content`"));
        };
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let base_role = if kind == "assistant" { Role::Assistant } else { Role::User };
        if flag("isCompactSummary") {
            let Some(text) = content_text(content) else {
                return Mapped::Malformed("compact summary whose `content` is not text".into());
            };
            out.push(TranscriptEvent::new(line, Role::Compaction, text, "user/compact_summary"));
            return Mapped::Events;
        }
        let role = if flag("isMeta") { Role::System } else { base_role };
        let meta_kind = if flag("isMeta") { "user/meta" } else { kind };
        match content {
            Value::String(s) => out.push(TranscriptEvent::new(line, role, s.as_str(), meta_kind)),
            Value::Array(blocks) => {
                for block in blocks {
                    let btype = block.get("type").and_then(Value::as_str).unwrap_or("");
                    match btype {
                        "text" => {
                            let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                            out.push(TranscriptEvent::new(line, role, text, format!("{meta_kind}/text")));
                        }
                        "tool_use" => {
                            let name = block.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                            if let Some(id) = block.get("id").and_then(Value::as_str) {
                                if self.tool_names.len() >= MAX_TOOL_IDS {
                                    self.tool_names.clear();
                                }
                                self.tool_names.insert(id.to_string(), name.clone());
                            }
                            let input = block.get("input").map(Value::to_string).unwrap_or_default();
                            let mut ev =
                                TranscriptEvent::new(line, Role::ToolCall, input, format!("{kind}/tool_use"));
                            ev.tool = Some(name);
                            out.push(ev);
                        }
                        "tool_result" => {
                            let text = block.get("content").and_then(content_text).unwrap_or_default();
                            let mut ev = TranscriptEvent::new(
                                line,
                                Role::ToolResult,
                                text,
                                format!("{kind}/tool_result"),
                            );
                            ev.tool = block
                                .get("tool_use_id")
                                .and_then(Value::as_str)
                                .and_then(|id| self.tool_names.get(id).cloned());
                            out.push(ev);
                        }
                        _ => {} // thinking, redacted_thinking, image, document: no instruction text
                    }
                }
            }
            _ => {
                return Mapped::Malformed(format!(
                    "`{kind}` message `content` is neither a string nor an array"
                ))
            }
        }
        if kind == "assistant" {
            if let Some(usage) = message.get("usage") {
                let keys = ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"];
                let parts: Vec<u64> =
                    keys.iter().filter_map(|k| usage.get(*k).and_then(Value::as_u64)).collect();
                if let (false, Some(first)) = (parts.is_empty(), out.get_mut(start)) {
                    first.tokens = Some(parts.iter().sum());
                }
            }
        }
        Mapped::Events
    }
}

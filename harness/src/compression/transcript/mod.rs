//! Reading real agent transcripts into one normalised, streamed event sequence.
//!
//! `gapbench monitor` has to work on transcripts nobody generated for it: Claude Code
//! session JSONL files, OpenAI chat-completions message arrays or request logs, and
//! gapbench's own session files. These run to gigabytes, so every reader here streams:
//! JSONL line by line through `BufRead`, JSON arrays element by element through a serde
//! `SeqAccess` visitor ([`for_each_array_element`]). No reader keeps more than one line
//! (or one array element) plus small per-session state.
//!
//! Each reader hands [`TranscriptEvent`]s to a callback. [`boundary`] turns that stream
//! into compaction [`boundary::Boundary`]s (explicit markers or inferred resets).
//!
//! A malformed line is an [`Error::input`] naming `file:line`; with
//! [`ReadOptions::lenient`] it is skipped and counted in [`ReadStats::skipped`] instead.

pub mod boundary;
mod claude_code;
mod gapbench;
mod openai;
pub mod scan;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use openai::for_each_array_element;

/// Who produced a piece of text, normalised across formats: the session format's roles.
pub use crate::compression::session::Role;

/// What a source says about a compaction it recorded (Claude Code `compactMetadata`, or an
/// inferred OpenAI context reset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompactionInfo {
    /// `auto` / `manual` as the source says; `context-reset` when inferred.
    pub trigger: Option<String>,
    pub pre_tokens: Option<u64>,
    pub post_tokens: Option<u64>,
    /// True when the token counts are estimates (characters / 4), not source usage.
    pub estimated: bool,
}

/// One normalised piece of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEvent {
    /// 1-based source line (JSONL) or array element index (JSON arrays).
    pub line: u64,
    pub timestamp: Option<String>,
    pub role: Role,
    pub text: String,
    /// Tool name for tool calls and (where resolvable) tool results.
    pub tool: Option<String>,
    pub session_id: Option<String>,
    /// Context size in tokens at this turn, where the source carries usage (Claude Code:
    /// input + cache-creation + cache-read input tokens; OpenAI: `prompt_tokens`).
    pub tokens: Option<u64>,
    /// The source's own kind, e.g. `assistant/tool_use`, `system/compact_boundary`.
    pub raw_kind: String,
    /// Set on [`Role::Compaction`] events that mark a boundary.
    pub compaction: Option<CompactionInfo>,
}

impl TranscriptEvent {
    pub(crate) fn new(line: u64, role: Role, text: impl Into<String>, raw_kind: impl Into<String>) -> Self {
        TranscriptEvent {
            line,
            timestamp: None,
            role,
            text: text.into(),
            tool: None,
            session_id: None,
            tokens: None,
            raw_kind: raw_kind.into(),
            compaction: None,
        }
    }
}

/// The transcript formats gapbench reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Claude Code `~/.claude/projects/**/<session>.jsonl`.
    ClaudeCode,
    /// One JSON document: an array of chat-completions messages or `{"messages": [...]}`.
    OpenAiMessages,
    /// JSONL, one chat-completions request (`{"messages": [...]}`) per line.
    OpenAiJsonl,
    /// gapbench's own session JSONL (first line `{"kind": "header", ...}`; a
    /// `"format": "gapbench-session/1"` field is also recognised).
    Gapbench,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "claude-code" => Ok(Format::ClaudeCode),
            "openai" | "openai-messages" => Ok(Format::OpenAiMessages),
            "openai-jsonl" => Ok(Format::OpenAiJsonl),
            "gapbench" => Ok(Format::Gapbench),
            _ => Err(Error::input(
                "transcript format",
                format!("`{s}` is not one of claude-code, openai-messages, openai-jsonl, gapbench"),
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// `None`: detect from the first bytes ([`detect_format`]).
    pub format: Option<Format>,
    /// Skip and count malformed lines instead of failing on the first one.
    pub lenient: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadStats {
    pub format: Format,
    /// Source lines (JSONL) or array elements read.
    pub lines: u64,
    pub events: u64,
    /// Malformed lines skipped under `lenient`.
    pub skipped: u64,
    /// Well-formed lines of kinds that carry no conversation (snapshots, progress, ...).
    pub ignored: u64,
}

/// Longest first line looked at by format detection; a longer one is taken as the start
/// of a single JSON document.
const DETECT_LINE_CAP: u64 = 16 << 20;

/// Detect a transcript's format from its first bytes / first line.
pub fn detect_format(path: &Path) -> Result<Format> {
    let file = File::open(path).map_err(Error::io(path))?;
    detect_format_from(BufReader::new(file), &path.display().to_string())
}

/// [`detect_format`] on any reader (`name` is for messages).
pub fn detect_format_from<R: BufRead>(mut reader: R, name: &str) -> Result<Format> {
    let mut first = Vec::new();
    // Skip leading whitespace and blank lines.
    loop {
        first.clear();
        let n = (&mut reader).take(DETECT_LINE_CAP).read_until(b'\n', &mut first).map_err(Error::io(name))?;
        if n == 0 {
            return Err(Error::input(name, "empty transcript: cannot detect its format"));
        }
        if first.iter().any(|b| !b.is_ascii_whitespace()) {
            break;
        }
    }
    let start = first.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    match first[start] {
        b'[' => return Ok(Format::OpenAiMessages),
        b'{' => {}
        other => {
            return Err(Error::input(
                name,
                format!("cannot detect transcript format: starts with `{}`, not `[` or `{{`", other as char),
            ))
        }
    }
    let value: serde_json::Value = match serde_json::from_slice(&first) {
        Ok(v) => v,
        // The first line is not a whole object: a pretty-printed (or huge) single document.
        Err(_) => return Ok(Format::OpenAiMessages),
    };
    let gapbench_format =
        value.get("format").and_then(|f| f.as_str()).is_some_and(|f| f.starts_with("gapbench-session/"));
    if gapbench_format || value.get("kind").and_then(|k| k.as_str()) == Some("header") {
        return Ok(Format::Gapbench);
    }
    if value.get("messages").is_some() || value.pointer("/request/messages").is_some() {
        // One object on one line: a single-request file is still a valid JSONL log.
        return Ok(Format::OpenAiJsonl);
    }
    let claude_keys = ["sessionId", "uuid", "parentUuid", "leafUuid", "message"];
    let claude_types = ["user", "assistant", "system", "summary", "file-history-snapshot", "queue-operation"];
    let kind = value.get("type").and_then(|t| t.as_str());
    if kind.is_some_and(|t| claude_types.contains(&t))
        || (kind.is_some() && claude_keys.iter().any(|k| value.get(k).is_some()))
    {
        return Ok(Format::ClaudeCode);
    }
    Err(Error::input(
        format!("{name}:1"),
        "cannot detect transcript format (expected a Claude Code line with `type`, an OpenAI \
         `messages` request, a message array, or a gapbench-session header); pass the format explicitly",
    ))
}

/// Read a transcript file, handing each event to `on_event`, in bounded memory.
pub fn read_transcript(
    path: &Path,
    options: &ReadOptions,
    on_event: &mut dyn FnMut(TranscriptEvent) -> Result<()>,
) -> Result<ReadStats> {
    let format = match options.format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    let file = File::open(path).map_err(Error::io(path))?;
    read_from(
        BufReader::with_capacity(1 << 16, file),
        &path.display().to_string(),
        format,
        options.lenient,
        on_event,
    )
}

/// [`read_transcript`] on any buffered reader; `name` is used in error messages.
pub fn read_from<R: BufRead>(
    reader: R,
    name: &str,
    format: Format,
    lenient: bool,
    on_event: &mut dyn FnMut(TranscriptEvent) -> Result<()>,
) -> Result<ReadStats> {
    let mut stats = ReadStats { format, lines: 0, events: 0, skipped: 0, ignored: 0 };
    // The three line-oriented formats differ only in how one line maps to events.
    let (mut cc, mut oa, mut gb) =
        (claude_code::State::default(), openai::JsonlState::default(), gapbench::State::default());
    let mut map: Box<LineMapper<'_>> = match format {
        Format::ClaudeCode => Box::new(|line, value, out| cc.map_line(line, value, out)),
        Format::OpenAiJsonl => Box::new(|line, value, out| oa.map_request(line, value, out)),
        Format::Gapbench => Box::new(|line, value, out| gb.map_line(line, value, out)),
        Format::OpenAiMessages => {
            openai::read_messages_document(reader, name, lenient, &mut stats, on_event)?;
            return Ok(stats);
        }
    };
    for_each_line(reader, name, lenient, &mut stats, &mut *map, on_event)?;
    Ok(stats)
}

/// What a per-line mapper reports: the events of the line, or why it is malformed, or that
/// it is a well-formed line with no conversation in it.
pub(crate) enum Mapped {
    Events,
    Ignored,
    Malformed(String),
}

type LineMapper<'a> = dyn FnMut(u64, serde_json::Value, &mut Vec<TranscriptEvent>) -> Mapped + 'a;

/// Drive a JSONL reader: one line in memory at a time, errors located to `name:line`.
fn for_each_line<R: BufRead>(
    mut reader: R,
    name: &str,
    lenient: bool,
    stats: &mut ReadStats,
    map: &mut LineMapper<'_>,
    on_event: &mut dyn FnMut(TranscriptEvent) -> Result<()>,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(Error::io(name))? == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        stats.lines += 1;
        let problem = match serde_json::from_slice::<serde_json::Value>(&buf) {
            Err(e) => Some(format!("not valid JSON: {e}")),
            Ok(value) if !value.is_object() => Some("expected a JSON object on this line".to_string()),
            Ok(value) => {
                out.clear();
                match map(line_no, value, &mut out) {
                    Mapped::Events => {
                        for ev in out.drain(..) {
                            stats.events += 1;
                            on_event(ev)?;
                        }
                        None
                    }
                    Mapped::Ignored => {
                        stats.ignored += 1;
                        None
                    }
                    Mapped::Malformed(m) => Some(m),
                }
            }
        };
        if let Some(message) = problem {
            if lenient {
                stats.skipped += 1;
            } else {
                return Err(Error::input(format!("{name}:{line_no}"), message));
            }
        }
    }
}

/// Text of a content value that is a string, null, or an array of parts/blocks carrying
/// `text` (Claude `{type: text}`, OpenAI `{type: text | input_text | output_text}`).
pub(crate) fn content_text(content: &serde_json::Value) -> Option<String> {
    match content {
        serde_json::Value::Null => Some(String::new()),
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p {
                    serde_json::Value::String(s) => Some(s.as_str()),
                    _ => p.get("text").and_then(|t| t.as_str()),
                })
                .collect();
            Some(texts.join("\n"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;

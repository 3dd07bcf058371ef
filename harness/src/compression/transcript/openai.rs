//! OpenAI chat-completions transcripts: a message array (or `{"messages": [...]}`) in one
//! JSON document, or a JSONL log with one request per line.
//!
//! The document form is streamed element by element through a serde `SeqAccess` visitor
//! ([`for_each_array_element`]): a multi-GB array never sits in memory, only one element.
//!
//! The JSONL form logs successive requests of one agent loop; each request repeats the
//! conversation so far. Only the messages that extend the previous request are emitted.
//! A request that does *not* extend the previous one is a **context reset**: the agent
//! framework replaced earlier turns (typically by a summary). Its fresh messages before the
//! first message carried over from the previous request are taken as the summary and
//! emitted as one [`Role::Compaction`] event (raw kind `openai/context-reset`); the rest of
//! the new context follows, carried-over messages marked `/retained`, so that whatever
//! survived the reset is visible after the boundary.
//!
//! In the document form, `lenient` skips elements that are valid JSON but not messages; a
//! JSON *syntax* error still ends the read with `file:line`, since a single document cannot
//! be resynchronised after one.
//!
//! Optional per-line fields: `response` (a message, or a completion with
//! `choices[0].message`), `usage.prompt_tokens` (top level or in `response`), `timestamp`,
//! `session_id`. Messages are compared by a hash of their JSON, one `u64` per message of the
//! previous request: state stays proportional to one request, not to the log.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, Read};
use std::marker::PhantomData;
use std::rc::Rc;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;
use serde_json::Value;

use super::{content_text, CompactionInfo, Mapped, ReadStats, Role, TranscriptEvent};
use crate::error::{Error, Result};

/// Map one chat-completions message to events; `Err` says why it is malformed.
fn map_message(
    line: u64,
    m: &Value,
    tool_names: &mut HashMap<String, String>,
    out: &mut Vec<TranscriptEvent>,
) -> std::result::Result<(), String> {
    let Some(role) = m.get("role").and_then(Value::as_str) else {
        return Err("message without a string `role`".into());
    };
    let content = m.get("content").unwrap_or(&Value::Null);
    let Some(text) = content_text(content) else {
        return Err(format!("`{role}` message whose `content` is not a string, array or null"));
    };
    match role {
        "system" | "developer" => out.push(TranscriptEvent::new(line, Role::System, text, role)),
        "user" => out.push(TranscriptEvent::new(line, Role::User, text, "user")),
        "assistant" => {
            if !text.is_empty() {
                out.push(TranscriptEvent::new(line, Role::Assistant, text, "assistant"));
            }
            let calls = m.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
            let legacy = m.get("function_call").map(std::slice::from_ref).unwrap_or(&[]);
            for call in calls.iter().chain(legacy) {
                let f = call.get("function").unwrap_or(call);
                let name = f.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    if tool_names.len() >= 100_000 {
                        tool_names.clear();
                    }
                    tool_names.insert(id.to_string(), name.clone());
                }
                let args = match f.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let mut ev = TranscriptEvent::new(line, Role::ToolCall, args, "assistant/tool_call");
                ev.tool = Some(name);
                out.push(ev);
            }
        }
        "tool" | "function" => {
            let mut ev = TranscriptEvent::new(line, Role::ToolResult, text, role);
            ev.tool = m.get("name").and_then(Value::as_str).map(str::to_string).or_else(|| {
                m.get("tool_call_id").and_then(Value::as_str).and_then(|id| tool_names.get(id).cloned())
            });
            out.push(ev);
        }
        other => return Err(format!("unknown message role `{other}`")),
    }
    Ok(())
}

fn message_chars(m: &Value) -> u64 {
    let content = m.get("content").and_then(content_text).map(|t| t.len()).unwrap_or(0);
    let calls = m.get("tool_calls").map(|c| c.to_string().len()).unwrap_or(0);
    (content + calls) as u64
}

fn hash_value(v: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

/// State of a JSONL request log: the previous request's message hashes (plus its response).
#[derive(Default)]
pub(super) struct JsonlState {
    prev: Vec<u64>,
    /// Number of `prev` entries that were request messages (the rest: the response).
    prev_request_len: usize,
    prev_tokens: Option<u64>,
    prev_chars: u64,
    tool_names: HashMap<String, String>,
}

impl JsonlState {
    pub(super) fn map_request(&mut self, line: u64, v: Value, out: &mut Vec<TranscriptEvent>) -> Mapped {
        let Some(messages) =
            v.get("messages").or_else(|| v.pointer("/request/messages")).and_then(Value::as_array)
        else {
            return Mapped::Malformed("request line without a `messages` array".into());
        };
        let response = v.get("response").map(|r| r.pointer("/choices/0/message").unwrap_or(r));
        let tokens = v
            .pointer("/usage/prompt_tokens")
            .or_else(|| v.pointer("/response/usage/prompt_tokens"))
            .and_then(Value::as_u64);
        let hashes: Vec<u64> = messages.iter().map(hash_value).collect();
        let chars: u64 = messages.iter().map(message_chars).sum();
        let lcp = self.prev.iter().zip(&hashes).take_while(|(a, b)| a == b).count();
        let start = out.len();
        let result = if lcp >= self.prev_request_len {
            messages[lcp..].iter().try_for_each(|m| map_message(line, m, &mut self.tool_names, out))
        } else {
            self.map_reset(line, messages, &hashes, tokens, chars, out)
        };
        if let Err(m) = result {
            out.truncate(start);
            return Mapped::Malformed(m);
        }
        self.prev = hashes;
        self.prev_request_len = self.prev.len();
        if let Some(r) = response {
            if let Err(m) = map_message(line, r, &mut self.tool_names, out) {
                out.truncate(start);
                return Mapped::Malformed(format!("response: {m}"));
            }
            self.prev.push(hash_value(r));
        }
        if let Some(last) = out[start..].last_mut() {
            last.tokens = tokens;
        }
        let (ts, sid) =
            (v.get("timestamp"), v.get("session_id").or_else(|| v.pointer("/metadata/session_id")));
        for ev in &mut out[start..] {
            ev.timestamp = ts.and_then(Value::as_str).map(str::to_string);
            ev.session_id = sid.and_then(Value::as_str).map(str::to_string);
        }
        self.prev_tokens = tokens;
        self.prev_chars = chars;
        Mapped::Events
    }

    fn map_reset(
        &mut self,
        line: u64,
        messages: &[Value],
        hashes: &[u64],
        tokens: Option<u64>,
        chars: u64,
        out: &mut Vec<TranscriptEvent>,
    ) -> std::result::Result<(), String> {
        let carried: HashSet<u64> = self.prev.iter().copied().collect();
        let lead = hashes.iter().take_while(|h| carried.contains(h)).count();
        let summary_end = match hashes[lead..].iter().position(|h| carried.contains(h)) {
            Some(p) => lead + p,
            // Nothing carried after the fresh run: the last fresh message is the new input.
            None if messages.len() - lead > 1 => messages.len() - 1,
            None => messages.len(),
        };
        let summary: Vec<String> = messages[lead..summary_end]
            .iter()
            .filter_map(|m| m.get("content").and_then(content_text))
            .collect();
        let estimated = tokens.is_none() || self.prev_tokens.is_none();
        let info = CompactionInfo {
            trigger: Some("context-reset".into()),
            pre_tokens: if estimated { Some(self.prev_chars / 4) } else { self.prev_tokens },
            post_tokens: if estimated { Some(chars / 4) } else { tokens },
            estimated,
        };
        let mut ev = TranscriptEvent::new(line, Role::Compaction, summary.join("\n"), "openai/context-reset");
        ev.compaction = Some(info);
        out.push(ev);
        for (i, (m, h)) in messages.iter().zip(hashes).enumerate() {
            if (lead..summary_end).contains(&i) {
                continue;
            }
            let first = out.len();
            map_message(line, m, &mut self.tool_names, out)?;
            if carried.contains(h) {
                for e in &mut out[first..] {
                    e.raw_kind.push_str("/retained");
                }
            }
        }
        Ok(())
    }
}

/// Where a streaming callback stopped with its own error (kept out of serde's error type).
struct Sink<'f, T> {
    f: &'f mut dyn FnMut(u64, T) -> Result<()>,
    count: u64,
    failed: Option<Error>,
}

struct SeqSeed<'s, 'f, T>(&'s mut Sink<'f, T>);

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for SeqSeed<'_, '_, T> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for SeqSeed<'_, '_, T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            self.0.count += 1;
            if let Err(e) = (self.0.f)(self.0.count, item) {
                self.0.failed = Some(e);
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Top level of a messages document: an array, or an object whose `messages` is one.
struct DocVisitor<'s, 'f, T>(&'s mut Sink<'f, T>, PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for DocVisitor<'_, '_, T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of messages or an object with a `messages` array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<(), A::Error> {
        SeqSeed(self.0).visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "messages" && !found {
                map.next_value_seed(SeqSeed(&mut *self.0))?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if found {
            Ok(())
        } else {
            Err(A::Error::custom("object without a `messages` array"))
        }
    }
}

/// Counts newlines as serde_json pulls bytes, to locate errors by line.
struct LineCounter<R> {
    inner: R,
    line: Rc<Cell<u64>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let nl = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.line.set(self.line.get() + nl);
        Ok(n)
    }
}

fn stream<R: Read, T: DeserializeOwned>(
    reader: R,
    name: &str,
    whole_document: bool,
    line: Rc<Cell<u64>>,
    f: &mut dyn FnMut(u64, T) -> Result<()>,
) -> Result<u64> {
    let counter = LineCounter { inner: reader, line: line.clone() };
    let mut de = serde_json::Deserializer::from_reader(counter);
    let mut sink = Sink { f, count: 0, failed: None };
    let result = if whole_document {
        de.deserialize_any(DocVisitor(&mut sink, PhantomData))
    } else {
        de.deserialize_seq(SeqSeed(&mut sink))
    };
    let result = result.and_then(|_| de.end());
    if let Some(e) = sink.failed {
        return Err(e);
    }
    result.map_err(|e| {
        let at = if e.line() > 0 { e.line() as u64 } else { line.get() };
        Error::input(format!("{name}:{at}"), format!("after element {}: {e}", sink.count))
    })?;
    Ok(sink.count)
}

/// Stream the elements of a top-level JSON array to `f(index, element)` (1-based index)
/// without collecting the array; returns the element count. Wrap unbuffered readers in a
/// `BufReader`: serde_json pulls one byte at a time.
pub fn for_each_array_element<R: Read, T: DeserializeOwned>(
    reader: R,
    name: &str,
    f: &mut dyn FnMut(u64, T) -> Result<()>,
) -> Result<u64> {
    stream(reader, name, false, Rc::new(Cell::new(1)), f)
}

/// Read a messages document (array or `{"messages": [...]}`) into events.
pub(super) fn read_messages_document<R: BufRead>(
    reader: R,
    name: &str,
    lenient: bool,
    stats: &mut ReadStats,
    on_event: &mut dyn FnMut(TranscriptEvent) -> Result<()>,
) -> Result<()> {
    let mut tool_names = HashMap::new();
    let mut out = Vec::new();
    let line = Rc::new(Cell::new(1));
    let at = line.clone();
    let mut f = |index: u64, m: Value| -> Result<()> {
        stats.lines += 1;
        out.clear();
        match map_message(index, &m, &mut tool_names, &mut out) {
            Ok(()) => {
                for ev in out.drain(..) {
                    stats.events += 1;
                    on_event(ev)?;
                }
            }
            Err(_) if lenient => stats.skipped += 1,
            Err(msg) => {
                return Err(Error::input(format!("{name}:{}", at.get()), format!("message {index}: {msg}")))
            }
        }
        Ok(())
    };
    stream(reader, name, true, line, &mut f)?;
    Ok(())
}

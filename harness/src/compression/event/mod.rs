//! Compression-event records: one audit record per compaction boundary, appended to a
//! JSONL log as a tamper-evident hash chain.
//!
//! The fields follow `shared/research/compression.md` ("Where the record goes"): the AIMS
//! draft's monitoring record (agent id, delegated subject, resource/tool, action + decision,
//! timestamp + correlation id, risk state, remediation) plus what a compaction adds (session,
//! trigger, tokens before/after, ratio, summariser and summary hash, protected constraints
//! and whether each survived, the signals with their windows and noise floor, decision).
//! `datasets/schemas/compression-event.schema.json` is the JSON Schema of exactly this
//! struct; a test keeps the two in step.
//!
//! Chain: `prev_hash` is the sha256 (hex) of the previous record's *canonical* JSON (keys
//! sorted recursively, no whitespace, serde_json number formatting), all zeros for the
//! first. Canonical rather than raw bytes so that any tool (`jq -cS`) can re-derive it.
//! Editing, inserting, removing or reordering a record breaks the next record's link;
//! truncating the tail does not, so keep [`ChainReport::head`] somewhere else to anchor it.

pub mod constraints;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::compression::transcript::scan::BoundaryScan;
use crate::error::{Error, Result};

pub const SCHEMA: &str = "gapbench-compression-event/1";
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Nothing to do.
    None,
    /// Keep watching: signals moved, no constraint known lost.
    Monitor,
    /// Stop and ask the delegating principal to re-authorise (or restate) the lost constraints.
    Reauthorise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskState {
    Nominal,
    Elevated,
    High,
}

/// One protected constraint and whether it is still in the context after the boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintSurvival {
    pub id: String,
    pub text: String,
    pub survived: bool,
    /// Why: where it was found, or the best near-miss.
    pub evidence: String,
}

/// One signal's value at this boundary, with what it was computed over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalValue {
    /// e.g. `ghost_lexicon_decay`, `context_consistency`, `tool_shift`, `combined`.
    pub name: String,
    pub value: f64,
    /// Turns (or events) in the windows before / after the boundary.
    pub window_pre: u64,
    pub window_post: u64,
    /// The value measured between two pre-boundary windows, where known.
    pub noise_floor: Option<f64>,
    pub threshold: f64,
}

/// The audit record for one compaction boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionEvent {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Unique per record (e.g. `<session>:<line>`), ties it to other audit records.
    pub correlation_id: String,
    /// RFC 3339: when the boundary happened if the transcript says, else when recorded.
    pub timestamp: String,
    pub agent_id: String,
    /// On whose behalf the agent acts (the delegating user), if known.
    pub delegated_subject: Option<String>,
    /// Resource or tool the record concerns (the first tool called after the boundary).
    pub resource: Option<String>,
    /// What happened: `context-compaction`.
    pub action: String,
    pub decision: Decision,
    pub risk_state: RiskState,
    /// Remediation taken or requested (e.g. `paused agent`, `re-authorisation sent`).
    pub remediation: Vec<String>,
    pub session_id: Option<String>,
    /// Where in the transcript: file and 1-based line / element.
    pub source_file: Option<String>,
    pub source_line: Option<u64>,
    /// `explicit`, `inferred-reset`, `inferred-token-drop`.
    pub trigger: String,
    /// What the source called the trigger (`auto`, `manual`, ...).
    pub source_trigger: Option<String>,
    pub tokens_before: Option<u64>,
    pub tokens_after: Option<u64>,
    /// tokens_after / tokens_before.
    pub ratio: Option<f64>,
    pub tokens_estimated: bool,
    /// Who compacted (`claude-code`, `openai-agent`, a gapbench summariser), if known.
    pub summariser: Option<String>,
    /// sha256 hex of the summary text; null when the boundary had no visible summary.
    pub summary_sha256: Option<String>,
    pub constraints: Vec<ConstraintSurvival>,
    pub signals: Vec<SignalValue>,
    pub reauthorisation: Option<String>,
    /// sha256 hex of the previous record's canonical JSON; [`ZERO_HASH`] for the first.
    pub prev_hash: String,
}

impl CompressionEvent {
    /// A record for one scanned boundary, with the transcript-derived fields filled in and
    /// `signals` empty for the caller to add. Decision: `reauthorise` (risk `high`) when a
    /// constraint did not survive, else `none` (risk `nominal`); the caller may raise it to
    /// `monitor` from the signals. `prev_hash` is set by [`EventLog::append`].
    pub fn from_scan(
        scan: &BoundaryScan,
        agent_id: &str,
        source_file: Option<&str>,
        summariser: Option<&str>,
    ) -> Self {
        let b = &scan.boundary;
        let lost: Vec<&ConstraintSurvival> = scan.constraints.iter().filter(|c| !c.survived).collect();
        let (decision, risk_state, reauthorisation) = if lost.is_empty() {
            (Decision::None, RiskState::Nominal, None)
        } else {
            let list: Vec<String> = lost.iter().map(|c| format!("{} \"{}\"", c.id, c.text)).collect();
            let text = format!(
                "Pause the agent and ask the delegating user to restate or re-authorise {} constraint(s) \
                 missing from the context after the compaction: {}",
                lost.len(),
                list.join("; ")
            );
            (Decision::Reauthorise, RiskState::High, Some(text))
        };
        let session = b.session_id.clone().unwrap_or_else(|| "unknown-session".into());
        CompressionEvent {
            schema: SCHEMA.into(),
            correlation_id: format!("{session}:{}", b.line),
            timestamp: b.timestamp.clone().unwrap_or_else(|| chrono::Utc::now().to_rfc3339()),
            agent_id: agent_id.into(),
            delegated_subject: None,
            resource: scan.first_tool_after.clone(),
            action: "context-compaction".into(),
            decision,
            risk_state,
            remediation: Vec::new(),
            session_id: b.session_id.clone(),
            source_file: source_file.map(str::to_string),
            source_line: Some(b.line),
            trigger: serde_json::to_value(b.trigger)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            source_trigger: b.source_trigger.clone(),
            tokens_before: b.tokens_before,
            tokens_after: b.tokens_after,
            ratio: b.ratio,
            tokens_estimated: b.tokens_estimated,
            summariser: summariser.map(str::to_string),
            summary_sha256: b.summary_text.as_deref().map(sha256_hex),
            constraints: scan.constraints.clone(),
            signals: Vec::new(),
            reauthorisation,
            prev_hash: ZERO_HASH.into(),
        }
    }
}

/// sha256 hex of a text (for `summary_sha256`).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        Value::Array(xs) => Value::Array(xs.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// Canonical JSON of a value: keys sorted recursively, no insignificant whitespace.
pub fn canonical_json(v: &Value) -> String {
    sort_keys(v.clone()).to_string()
}

/// The chain hash of a record: sha256 hex of its canonical JSON.
pub fn record_hash(v: &Value) -> String {
    sha256_hex(&canonical_json(v))
}

/// Appends records to a JSONL log, filling in `prev_hash`.
pub struct EventLog {
    path: PathBuf,
    file: File,
    head: String,
}

impl EventLog {
    /// Open (or create) a log; an existing one is verified first and appended to.
    pub fn open(path: &Path) -> Result<EventLog> {
        let head = if path.exists() { verify_chain(path)?.head } else { ZERO_HASH.to_string() };
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(Error::io(path))?;
        Ok(EventLog { path: path.to_path_buf(), file, head })
    }

    /// Hash of the last record (all zeros when empty).
    pub fn head(&self) -> &str {
        &self.head
    }

    /// Set `prev_hash`, append the record as one line, flush; returns the new head hash.
    pub fn append(&mut self, mut event: CompressionEvent) -> Result<String> {
        event.prev_hash = self.head.clone();
        let value =
            serde_json::to_value(&event).map_err(|e| Error::run(format!("serialising event: {e}")))?;
        let line = canonical_json(&value);
        writeln!(self.file, "{line}").and_then(|_| self.file.flush()).map_err(Error::io(&self.path))?;
        self.head = sha256_hex(&line);
        Ok(self.head.clone())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChainReport {
    pub records: u64,
    /// Hash of the last record: anchor it elsewhere to detect tail truncation.
    pub head: String,
}

/// Check every record parses as a [`CompressionEvent`] and links to its predecessor; the
/// first broken link is an error naming `file:line`.
pub fn verify_chain(path: &Path) -> Result<ChainReport> {
    let reader = BufReader::new(File::open(path).map_err(Error::io(path))?);
    let mut head = ZERO_HASH.to_string();
    let mut records = 0;
    for (i, line) in reader.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        let line = line.map_err(Error::io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(&line).map_err(|e| Error::input(at(), format!("not JSON: {e}")))?;
        let event: CompressionEvent = serde_json::from_value(value.clone())
            .map_err(|e| Error::input(at(), format!("not a compression-event record: {e}")))?;
        if event.prev_hash != head {
            return Err(Error::input(
                at(),
                format!(
                    "chain broken: prev_hash {} but the previous record hashes to {head} \
                     (a record was edited, inserted, removed or reordered)",
                    event.prev_hash
                ),
            ));
        }
        head = record_hash(&value);
        records += 1;
    }
    Ok(ChainReport { records, head })
}

#[cfg(test)]
mod tests;

//! Protected constraints in real transcripts, found heuristically, and whether each
//! survives a compaction.
//!
//! Synthetic sessions carry their constraints as ground truth; real transcripts do not, so
//! the monitor extracts candidates from user (and system-prompt) sentences that match
//! instruction cues: negations (`don't`, `do not`, `never`, `must not`), approval gates
//! (`wait for`, `ask me`, `approval`, `confirm`, `before you`, `before <verb>ing`) and
//! limits (`only`, `at most`, `no more than`, `limit`). This over-collects (every "only"
//! is a candidate) and misses constraints phrased without cues; it is a screen, not truth.
//!
//! A constraint survives when the post-boundary context (summary, retained turns, later
//! user/system turns) contains it verbatim, or has one sentence sharing at least
//! [`MIN_OVERLAP`] of its keyword stems (5-letter prefixes, so `deleting`/`delete` and
//! `approval`/`approve` meet) *and* a cue of the same class: a summary that says "deleting
//! emails" but not "wait"/"approve" does not carry an approval gate.

use std::collections::HashSet;

use super::ConstraintSurvival;
use crate::compression::transcript::{Role, TranscriptEvent};

/// Share of a constraint's keyword stems that one sentence must contain.
pub const MIN_OVERLAP: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CueClass {
    Negation,
    Gate,
    Limit,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Constraint {
    /// `c1`, `c2`, ... in order of appearance.
    pub id: String,
    pub text: String,
    /// Source line of the turn it came from.
    pub line: u64,
    pub cues: Vec<CueClass>,
    pub keywords: Vec<String>,
}

const STOP: &[&str] = &[
    "the", "and", "for", "any", "you", "your", "with", "this", "that", "are", "was", "from", "have", "has",
    "will", "all", "but", "can", "its", "into", "our", "out", "please", "them", "they", "then", "these",
    "those", "what", "when", "which", "who", "would", "could", "should", "about", "just", "also", "there",
];

fn normalise(text: &str) -> String {
    text.replace(['\u{2019}', '\u{2018}'], "'").to_lowercase()
}

fn words(text: &str) -> Vec<String> {
    normalise(text)
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

fn stem(w: &str) -> String {
    w.chars().take(5).collect()
}

fn keyword_stems(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// Cue classes of a sentence (an instruction must have at least one).
fn cues(sentence: &str) -> Vec<CueClass> {
    let s = format!(" {} ", normalise(sentence));
    let w = words(sentence);
    let has = |p: &str| s.contains(p);
    let mut out = Vec::new();
    if [
        "don't",
        "do not",
        " never ",
        "must not",
        "not allowed",
        "under no circumstances",
        "doesn't",
        "shouldn't",
    ]
    .iter()
    .any(|p| has(p))
    {
        out.push(CueClass::Negation);
    }
    let before_ing = w.windows(2).any(|p| p[0] == "before" && (p[1].ends_with("ing") || p[1] == "you"));
    if before_ing
        || [
            "wait for",
            "ask me",
            "approval",
            "approve",
            "confirm",
            "without asking",
            "permission",
            "sign-off",
        ]
        .iter()
        .any(|p| has(p))
    {
        out.push(CueClass::Gate);
    }
    if [" only ", "at most", "no more than", " limit", "maximum", " up to "].iter().any(|p| has(p)) {
        out.push(CueClass::Limit);
    }
    out
}

/// Whether a context sentence carries a cue of this class (looser than extraction).
fn sentence_has_class(stems: &HashSet<String>, lower: &str, class: CueClass) -> bool {
    let any = |xs: &[&str]| xs.iter().any(|x| stems.contains(*x));
    match class {
        CueClass::Negation => {
            lower.contains("n't") || any(&["not", "never", "no", "witho", "prohi", "forbi", "avoid"])
        }
        CueClass::Gate => any(&["appro", "confi", "wait", "ask", "permi", "conse", "sign"]),
        CueClass::Limit => any(&["only", "most", "more", "limit", "maxim", "excee", "cap"]),
    }
}

fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', ';', '.', '!', '?']).map(str::trim).filter(|s| s.len() >= 3)
}

/// Streams constraints out of transcript events (user turns and plain system prompts).
#[derive(Debug, Default)]
pub struct ConstraintExtractor {
    seen: HashSet<String>,
    pub found: Vec<Constraint>,
}

impl ConstraintExtractor {
    /// Extract from one event; returns how many new constraints it added to `found`.
    pub fn push(&mut self, ev: &TranscriptEvent) -> usize {
        let source = match ev.role {
            Role::User => !ev.raw_kind.ends_with("/retained"),
            Role::System => matches!(ev.raw_kind.as_str(), "system" | "developer"),
            _ => false,
        };
        if !source {
            return 0;
        }
        let before = self.found.len();
        for s in sentences(&ev.text) {
            let c = cues(s);
            if c.is_empty() || s.len() > 400 || !self.seen.insert(normalise(s)) {
                continue;
            }
            let id = format!("c{}", self.found.len() + 1);
            self.found.push(Constraint {
                id,
                text: s.to_string(),
                line: ev.line,
                cues: c,
                keywords: keyword_stems(s),
            });
        }
        self.found.len() - before
    }
}

/// Does `constraint` survive in the post-boundary context `context` (pairs of a label for
/// the evidence, e.g. `compaction summary (line 57)`, and the text)?
pub fn check_survival(constraint: &Constraint, context: &[(String, String)]) -> ConstraintSurvival {
    let needle = normalise(&constraint.text);
    let kw: HashSet<&String> = constraint.keywords.iter().collect();
    let mut best: Option<(f64, &str, &str)> = None;
    for (label, text) in context {
        if normalise(text).contains(&needle) {
            return ConstraintSurvival {
                id: constraint.id.clone(),
                text: constraint.text.clone(),
                survived: true,
                evidence: format!("verbatim in {label}"),
            };
        }
        for s in sentences(text) {
            let lower = normalise(s);
            let stems: HashSet<String> = words(s).iter().map(|w| stem(w)).collect();
            if !constraint.cues.iter().any(|&c| sentence_has_class(&stems, &lower, c)) {
                continue;
            }
            let overlap =
                kw.iter().filter(|k| stems.contains(k.as_str())).count() as f64 / kw.len().max(1) as f64;
            if best.is_none_or(|(b, _, _)| overlap > b) {
                best = Some((overlap, label, s));
            }
        }
    }
    let (survived, evidence) = match best {
        Some((o, label, s)) if o >= MIN_OVERLAP => {
            (true, format!("keyword overlap {o:.2} with a same-class cue in {label}: \"{s}\""))
        }
        Some((o, label, s)) => (
            false,
            format!(
                "best sentence with a same-class cue shares only {o:.2} of the keywords ({label}: \"{s}\")"
            ),
        ),
        None => (false, "no post-boundary sentence carries a cue of the same class".to_string()),
    };
    ConstraintSurvival { id: constraint.id.clone(), text: constraint.text.clone(), survived, evidence }
}

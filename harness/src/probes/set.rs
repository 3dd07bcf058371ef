//! Probe-set files: JSON Lines, a header line then one item per line.
//!
//! ```text
//! {"probe_set": "general-en-v1", "version": 1, "description": "...", "license": "CC0-1.0"}
//! {"id": "g001", "text": "The morning ferry left ..."}
//! {"id": "d001", "kind": "code-python", "text": "def f(x):\n    ..."}
//! ```
//!
//! Unknown fields are errors; ids must be unique and non-empty, texts non-empty; the
//! name in the header must match the file stem. Errors name the file and the line.
//!
//! The **sha256** of a set is taken over its canonical content only: the canonical JSON
//! (sorted keys, no whitespace) of `{"probe_set", "version", "items": [{"id", "kind"?,
//! "text"}...]}` in file order. Description, licence and JSON formatting do not change
//! it; any change to a text, an id, the order or the version does.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::canonical::canonical_hash;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    probe_set: String,
    version: u32,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    license: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeItem {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSet {
    pub name: String,
    pub version: u32,
    pub description: Option<String>,
    pub license: Option<String>,
    pub items: Vec<ProbeItem>,
    sha256: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    probe_set: &'a str,
    version: u32,
    items: &'a [ProbeItem],
}

impl ProbeSet {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        Self::parse(&text, path)
    }

    /// Parse file contents; `path` is used in error messages and to check the name.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let at = |line: usize, msg: String| Error::input(format!("{}:{line}", path.display()), msg);
        let mut lines =
            text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty());
        let Some((hl, header)) = lines.next() else {
            return Err(at(1, "empty probe-set file; expected a header line".into()));
        };
        let header: Header = serde_json::from_str(header).map_err(|e| at(hl, format!("bad header: {e}")))?;
        if header.probe_set.is_empty() {
            return Err(at(hl, "header field `probe_set` is empty".into()));
        }
        if let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl")) {
            if stem != header.probe_set {
                return Err(at(
                    hl,
                    format!("header names probe set `{}` but the file is `{stem}.jsonl`", header.probe_set),
                ));
            }
        }
        let mut items: Vec<ProbeItem> = Vec::new();
        let mut seen = std::collections::BTreeMap::new();
        for (ln, line) in lines {
            let item: ProbeItem = serde_json::from_str(line).map_err(|e| at(ln, format!("bad item: {e}")))?;
            if item.id.trim().is_empty() {
                return Err(at(ln, "item has an empty `id`".into()));
            }
            if item.text.trim().is_empty() {
                return Err(at(ln, format!("item `{}` has an empty `text`", item.id)));
            }
            if let Some(prev) = seen.insert(item.id.clone(), ln) {
                return Err(at(ln, format!("duplicate id `{}` (first on line {prev})", item.id)));
            }
            items.push(item);
        }
        if items.is_empty() {
            return Err(at(hl, "the probe set holds no items".into()));
        }
        let sha256 = canonical_hash(&Canonical {
            probe_set: &header.probe_set,
            version: header.version,
            items: &items,
        })?;
        Ok(Self {
            name: header.probe_set,
            version: header.version,
            description: header.description,
            license: header.license,
            items,
            sha256,
        })
    }

    /// sha256 (hex) of the canonical content, see the module docs.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn texts(&self) -> Vec<&str> {
        self.items.iter().map(|i| i.text.as_str()).collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Token sequences for a total budget of `budget` tokens, deterministically: items are
    /// tokenized in file order (`tokenize` decides about special tokens such as BOS, and
    /// they count), each sequence is cut to `max_seq_len`, and sequences are taken whole
    /// until the next one would overflow the budget; that one is cut to the tokens left,
    /// and nothing after it is used. So a budget of `B` always selects the first `B`
    /// tokens of the same stream, and a smaller budget's tokens are a prefix of a larger
    /// one's. When the set runs out first, `tokens_used < budget` and `exhausted` says so.
    pub fn tokenize_budget<F>(&self, budget: usize, max_seq_len: usize, tokenize: F) -> Result<Budgeted>
    where
        F: Fn(&str) -> Result<Vec<u32>>,
    {
        let what = format!("probe set `{}`", self.name);
        if budget == 0 || max_seq_len == 0 {
            return Err(Error::input(
                what,
                format!("token budget {budget} and max sequence length {max_seq_len} must be positive"),
            ));
        }
        let mut out = Budgeted { budget, ..Budgeted::default() };
        for item in &self.items {
            let left = budget - out.tokens_used;
            if left == 0 {
                break;
            }
            let mut ids = tokenize(&item.text)?;
            if ids.is_empty() {
                return Err(Error::input(what, format!("item `{}` tokenizes to no tokens", item.id)));
            }
            ids.truncate(max_seq_len);
            if ids.len() > left {
                ids.truncate(left);
                out.truncated = true;
            }
            out.tokens_used += ids.len();
            out.ids.push(item.id.clone());
            out.sequences.push(ids);
        }
        out.exhausted = out.tokens_used < budget;
        Ok(out)
    }
}

/// What [`ProbeSet::tokenize_budget`] selected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgeted {
    pub sequences: Vec<Vec<u32>>,
    /// Item id of each sequence.
    pub ids: Vec<String>,
    pub budget: usize,
    pub tokens_used: usize,
    /// The last sequence was cut to fit the budget.
    pub truncated: bool,
    /// The set ran out before the budget was met.
    pub exhausted: bool,
}

/// The shipped probe sets with the sha256 each must have. Editing a file without bumping
/// its name (`-v2`) fails [`shipped`], so results always name the probes they used.
pub const SHIPPED: &[(&str, &str)] = &[
    ("general-en-v1", "32fa67f44f9addfd0bd01f98c736854ecc48741c9cf00574f92027d88f6059c2"),
    ("diverse-v1", "781562a1ec27e05b01e478c50dcffbbc45ccead63bcd2654ba4f038e5a918f71"),
];

/// `datasets/probes/` of this source tree.
pub fn dataset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("datasets").join("probes")
}

/// Load a shipped probe set by name from `dir` and check its pinned sha256.
pub fn shipped(dir: &Path, name: &str) -> Result<ProbeSet> {
    let Some((_, want)) = SHIPPED.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        return Err(Error::input(
            "probe set",
            format!("unknown probe set `{name}`; shipped: {}", known.join(", ")),
        ));
    };
    let path = dir.join(format!("{name}.jsonl"));
    let set = ProbeSet::load(&path)?;
    if set.sha256() != *want {
        return Err(Error::Checksum {
            file: path,
            expected: want.to_string(),
            actual: set.sha256().to_string(),
        });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Result<Vec<u32>> {
        // A stand-in tokenizer: BOS (id 1) then one token per whitespace-separated word.
        Ok(std::iter::once(1).chain(s.split_whitespace().map(|w| 2 + w.len() as u32)).collect())
    }

    fn parse(text: &str) -> Result<ProbeSet> {
        ProbeSet::parse(text, Path::new("datasets/probes/toy-v1.jsonl"))
    }

    const TOY: &str = r#"{"probe_set": "toy-v1", "version": 1, "description": "d"}
{"id": "a", "text": "one two three"}
{"id": "b", "kind": "x", "text": "four five"}

{"id": "c", "text": "six seven eight nine"}
"#;

    #[test]
    fn parses_and_hashes_canonical_content() {
        let s = parse(TOY).unwrap();
        assert_eq!((s.name.as_str(), s.version, s.len()), ("toy-v1", 1, 3));
        assert_eq!(s.texts(), ["one two three", "four five", "six seven eight nine"]);
        // Formatting and description do not change the hash; a text or the order does.
        let reformatted =
            TOY.replace(": ", ":").replace(r#""description": "d""#, r#""description": "other""#);
        assert_eq!(parse(&reformatted).unwrap().sha256(), s.sha256());
        assert_ne!(parse(&TOY.replace("four five", "four  five")).unwrap().sha256(), s.sha256());
        assert_ne!(parse(&TOY.replace(r#""version": 1"#, r#""version": 2"#)).unwrap().sha256(), s.sha256());
        let lines: Vec<&str> = TOY.lines().collect();
        let swapped = [lines[0], lines[2], lines[1], lines[4]].join("\n");
        assert_ne!(parse(&swapped).unwrap().sha256(), s.sha256());
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("", ":1", "empty"),
            ("{\"probe_set\": \"toy-v1\"}", ":1", "version"),
            ("{\"probe_set\": \"other-v1\", \"version\": 1}\n{\"id\":\"a\",\"text\":\"x\"}", ":1", "other-v1"),
            ("{\"probe_set\": \"toy-v1\", \"version\": 1}", ":1", "no items"),
            ("{\"probe_set\": \"toy-v1\", \"version\": 1}\n{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"a\",\"text\":\"y\"}", ":3", "duplicate id `a` (first on line 2)"),
            ("{\"probe_set\": \"toy-v1\", \"version\": 1}\n{\"id\":\"a\",\"text\":\"  \"}", ":2", "empty `text`"),
            ("{\"probe_set\": \"toy-v1\", \"version\": 1}\n{\"id\":\"a\",\"txt\":\"x\"}", ":2", "unknown field"),
            ("{\"probe_set\": \"toy-v1\", \"version\": 1}\nnot json", ":2", "bad item"),
        ];
        for (text, line, msg) in cases {
            let e = parse(text).unwrap_err();
            let s = e.to_string();
            assert!(s.contains(&format!("toy-v1.jsonl{line}")) && s.contains(msg), "{s}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn budget_takes_a_deterministic_prefix() {
        let s = parse(TOY).unwrap(); // token counts per item: 4, 3, 5 (BOS included)
        let b = s.tokenize_budget(5, 100, words).unwrap();
        assert_eq!(b.sequences, vec![vec![1, 5, 5, 7], vec![1]]);
        assert_eq!((b.tokens_used, b.truncated, b.exhausted), (5, true, false));
        assert_eq!(b.ids, ["a", "b"]);
        let b = s.tokenize_budget(7, 100, words).unwrap();
        assert_eq!((b.tokens_used, b.truncated, b.sequences.len()), (7, false, 2));
        // Smaller budgets select a prefix of the token stream of larger ones.
        let flat = |n| s.tokenize_budget(n, 100, words).unwrap().sequences.concat();
        let big = flat(12);
        for n in 1..=12 {
            assert_eq!(flat(n), big[..n], "budget {n}");
        }
        let b = s.tokenize_budget(100, 100, words).unwrap();
        assert_eq!((b.tokens_used, b.exhausted), (12, true));
        // The per-sequence cap applies before the budget.
        let b = s.tokenize_budget(100, 2, words).unwrap();
        assert_eq!(b.sequences.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2]);
        assert!(s.tokenize_budget(0, 10, words).is_err());
        assert!(s.tokenize_budget(5, 10, |_| Ok(Vec::new())).is_err());
        assert!(s.tokenize_budget(5, 10, |_| Err(Error::run("tokenizer broke"))).is_err());
    }

    #[test]
    fn shipped_sets_load_with_pinned_hashes() {
        for (name, _) in SHIPPED {
            let set = shipped(&dataset_dir(), name).unwrap_or_else(|e| panic!("{e}"));
            assert!((60..=100).contains(&set.len()), "{name}: {} items", set.len());
            assert_eq!(set.license.as_deref(), Some("CC0-1.0"));
            // Enough text for the largest budget of the experiments (4096 tokens) at a
            // conservative 4 characters per token.
            let chars: usize = set.texts().iter().map(|t| t.chars().count()).sum();
            assert!(chars >= 8000, "{name}: only {chars} characters");
        }
        assert!(shipped(&dataset_dir(), "nope-v1").is_err());
    }
}

//! Ghost lexicon decay, corrected for window length.
//!
//! compression-monitor's form: anchors = terms matching `[a-z][a-z'-]{2,}` (lowercased)
//! seen ≥ 2 times before the boundary and not among the pre-window's top-N terms;
//! decay = |anchors missing after| / |anchors|. Its weakness: a post window shorter than the
//! pre window misses rare anchors by chance alone, so decay rises with no loss at all.
//!
//! The correction: with an anchor's pre-window rate r = count / len_pre (per token), under a
//! Poisson model its chance of not appearing in a post window of len_post tokens is
//! P₀ = exp(−r · len_post). An anchor is *eligible* only when P₀ < α (default 0.05), i.e. its
//! absence would be surprising; it is *lost* when eligible and absent.
//! decay = lost / eligible ∈ [0, 1], `None` when no anchor is eligible (the post window is
//! too short to say anything). [`LexiconDecay::naive`] keeps the uncorrected form for
//! comparison. [`constraint_lexicon_decay`] restricts anchors to the constraints' keywords
//! (which need only appear once before: a constraint is stated once).

use std::collections::{BTreeMap, BTreeSet};

/// Short function words that carry no task vocabulary.
pub const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "your", "all", "any", "can", "had", "her", "was", "one",
    "our", "out", "has", "have", "him", "his", "how", "its", "may", "new", "now", "see", "two", "who", "did",
    "get", "let", "say", "she", "too", "use", "that", "this", "with", "from", "they", "will", "what", "when",
    "into", "them", "then", "than", "there", "their", "been", "were", "which", "would", "could", "should",
    "about", "each", "just", "more", "also", "some", "only", "over", "such", "very", "here", "i'll", "it's",
    "don't", "i'm", "let's", "these", "those", "other", "after", "before", "while", "where", "being", "does",
];

/// Lowercase word tokens matching `[a-z][a-z'-]{2,}` (maximal runs of `[a-z'-]` starting
/// with a letter, at least 3 characters), without stopwords.
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        let w = cur.trim_end_matches(['\'', '-']);
        if w.chars().count() >= 3 && !STOPWORDS.contains(&w) {
            out.push(w.to_string());
        }
        cur.clear();
    };
    for ch in lower.chars() {
        let word_char = ch.is_ascii_lowercase() || ((ch == '\'' || ch == '-') && !cur.is_empty());
        if word_char {
            cur.push(ch);
        } else {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LexiconConfig {
    /// Minimum pre-window count for a term to be an anchor.
    pub min_count: usize,
    /// The pre-window's `top_n` most frequent terms are excluded (too generic to lose).
    pub top_n: usize,
    /// An anchor is eligible when its Poisson absence probability is below `alpha`.
    pub alpha: f64,
}

impl Default for LexiconConfig {
    fn default() -> Self {
        LexiconConfig { min_count: 2, top_n: 10, alpha: 0.05 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LexiconDecay {
    /// Pre/post window lengths in tokens.
    pub len_pre: usize,
    pub len_post: usize,
    pub anchors: usize,
    pub eligible: usize,
    pub lost: Vec<String>,
    /// lost / eligible; `None` when nothing is eligible.
    pub decay: Option<f64>,
    /// compression-monitor's uncorrected form: anchors absent after / anchors.
    pub naive: Option<f64>,
}

fn counts(tokens: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for t in tokens {
        *m.entry(t.as_str()).or_insert(0) += 1;
    }
    m
}

fn decay_over(pre: &[String], post: &[String], anchors: Vec<(&str, usize)>, alpha: f64) -> LexiconDecay {
    let post_set: BTreeSet<&str> = post.iter().map(String::as_str).collect();
    let (len_pre, len_post) = (pre.len(), post.len());
    let mut eligible = 0;
    let mut lost = Vec::new();
    let mut naive_missing = 0;
    for (term, c) in &anchors {
        let absent = !post_set.contains(term);
        naive_missing += absent as usize;
        let rate = *c as f64 / len_pre.max(1) as f64;
        if (-rate * len_post as f64).exp() < alpha {
            eligible += 1;
            if absent {
                lost.push(term.to_string());
            }
        }
    }
    let frac = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    LexiconDecay {
        len_pre,
        len_post,
        anchors: anchors.len(),
        eligible,
        decay: frac(lost.len(), eligible),
        naive: frac(naive_missing, anchors.len()),
        lost,
    }
}

/// Window-corrected ghost lexicon decay between the texts before and after a boundary.
pub fn ghost_lexicon_decay(pre: &[&str], post: &[&str], cfg: &LexiconConfig) -> LexiconDecay {
    let pre_t: Vec<String> = pre.iter().flat_map(|t| tokenize(t)).collect();
    let post_t: Vec<String> = post.iter().flat_map(|t| tokenize(t)).collect();
    let c = counts(&pre_t);
    let mut by_freq: Vec<(&str, usize)> = c.iter().map(|(k, v)| (*k, *v)).collect();
    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: BTreeSet<&str> = by_freq.iter().take(cfg.top_n).map(|(k, _)| *k).collect();
    let anchors: Vec<(&str, usize)> =
        c.iter().filter(|(k, v)| **v >= cfg.min_count && !top.contains(*k)).map(|(k, v)| (*k, *v)).collect();
    decay_over(&pre_t, &post_t, anchors, cfg.alpha)
}

/// The same, with anchors restricted to `vocabulary` (constraint keywords) seen ≥ 1 time
/// before the boundary; the top-N exclusion does not apply.
pub fn constraint_lexicon_decay(
    pre: &[&str],
    post: &[&str],
    vocabulary: &[String],
    cfg: &LexiconConfig,
) -> LexiconDecay {
    let pre_t: Vec<String> = pre.iter().flat_map(|t| tokenize(t)).collect();
    let post_t: Vec<String> = post.iter().flat_map(|t| tokenize(t)).collect();
    let vocab: BTreeSet<String> = vocabulary.iter().map(|v| v.to_lowercase()).collect();
    let c = counts(&pre_t);
    let anchors: Vec<(&str, usize)> =
        c.iter().filter(|(k, _)| vocab.contains(**k)).map(|(k, v)| (*k, *v)).collect();
    decay_over(&pre_t, &post_t, anchors, cfg.alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_follows_the_pattern() {
        assert_eq!(
            tokenize("Don't DELETE the foo_bar files -- ok? re-run x1y approval's"),
            vec!["delete", "foo", "bar", "files", "re-run", "approval's"]
        );
    }

    fn filler(n: usize) -> String {
        (0..n).map(|i| format!("w{} ", ["alpha", "beta", "gamma", "delta"][i % 4])).collect()
    }

    #[test]
    fn short_post_window_does_not_count_rare_anchors_as_lost() {
        // "approval" appears 3 times in ~600 pre tokens; post window has 40 tokens without it.
        let pre = format!("{} approval approval approval {}", filler(300), filler(300));
        let post = filler(40);
        let cfg = LexiconConfig { top_n: 4, ..Default::default() };
        let d = ghost_lexicon_decay(&[&pre], &[&post], &cfg);
        assert_eq!(d.naive, Some(1.0), "naive form calls it lost");
        assert_eq!(d.eligible, 0);
        assert_eq!(d.decay, None);
        // A long post window without it: now the absence is surprising.
        let post_long = filler(4000);
        let d = ghost_lexicon_decay(&[&pre], &[&post_long], &cfg);
        assert_eq!(d.lost, vec!["approval"]);
        assert_eq!(d.decay, Some(1.0));
        // And present after: nothing lost.
        let back = format!("{} approval", filler(4000));
        assert_eq!(ghost_lexicon_decay(&[&pre], &[&back], &cfg).decay, Some(0.0));
    }

    #[test]
    fn constraint_vocabulary_restriction() {
        let pre = "wait for approval before deleting. approval matters. the list of files";
        let post = "deleting files now, deleting more files, deleting deleting";
        let vocab = vec!["approval".to_string(), "deleting".to_string()];
        let d = constraint_lexicon_decay(
            &[pre],
            &[post],
            &vocab,
            &LexiconConfig { alpha: 0.5, ..Default::default() },
        );
        assert_eq!(d.anchors, 2);
        assert_eq!(d.lost, vec!["approval"]);
    }
}

//! Conversations through one KV cache per token prefix.
//!
//! An agent's context grows by appending turns, so re-running the whole prompt for every
//! action costs O(turns²) prefill; CPU prefill of SmolLM2 runs at ~250 tokens/s, which
//! made an LLM-backed agent too slow to run sessions at all. A [`Prefix`] holds the token
//! ids fed so far, the model's KV cache after them and the next-token logits; advancing
//! it to a new id sequence re-uses the longest common prefix (a compaction, which
//! rewrites the context, simply shares less). The model's own cache is scratch: every
//! call restores the prefix it starts from, so prefixes can be forked freely (a probe
//! question, a scored candidate) without disturbing the conversation.
//!
//! Determinism: the floats depend on how a sequence was split into forward calls (the
//! matmul shapes differ), so the same conversation driven the same way gives the same
//! bits, which is what a seeded session needs; a prefix fed in one piece may differ from
//! the same ids fed in two in the last bits.

use candle_core::Tensor;

use super::GgufLlama;
use crate::error::{CandleContext, Error, Result};

type Kv = Vec<Option<(Tensor, Tensor)>>;

/// Token ids fed so far, the KV cache after them and the logits for the next token.
#[derive(Clone, Debug, Default)]
pub struct Prefix {
    ids: Vec<u32>,
    kv: Kv,
    /// Next-token logits after `ids` (empty when `ids` is).
    logits: Vec<f32>,
}

impl Prefix {
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Next-token logits after the prefix.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

/// `log_softmax(logits)[id]`, in f64.
pub fn log_prob(logits: &[f32], id: u32) -> f64 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&x| (x as f64 - m).exp()).sum();
    logits.get(id as usize).map_or(f64::NEG_INFINITY, |&x| x as f64 - m - z.ln())
}

/// Index of the largest value; ties go to the lowest index.
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

impl GgufLlama {
    fn check_room(&self, n: usize, what: &str) -> Result<()> {
        if n > self.info.max_seq_len {
            return Err(Error::input(
                format!("{what} with {}", self.path.display()),
                format!(
                    "{n} tokens exceed the context length of {} (llama.context_length)",
                    self.info.max_seq_len
                ),
            ));
        }
        Ok(())
    }

    /// Run `new` after the first `keep` ids of `from` (whose cache is restored first);
    /// returns the KV cache after them and the logits of every new position.
    fn feed(&mut self, from: &Prefix, keep: usize, new: &[u32]) -> Result<(Kv, Vec<Vec<f32>>)> {
        self.model.kv_restore(&from.kv, keep).ctx("restore the KV cache")?;
        let x = Tensor::new(new, &self.device).and_then(|t| t.unsqueeze(0)).ctx("token ids")?;
        let logits = self.model.forward_all_logits(&x, keep).ctx("forward through the KV cache")?;
        let rows = logits.squeeze(0).and_then(|l| l.to_vec2::<f32>()).ctx("read logits")?;
        Ok((self.model.kv_snapshot(), rows))
    }

    /// The prefix `ids`, re-using as much of `from` as they share.
    pub fn advance(&mut self, from: &Prefix, ids: &[u32]) -> Result<Prefix> {
        if ids.is_empty() {
            return Ok(Prefix::default());
        }
        self.check_room(ids.len(), "a conversation")?;
        let mut keep = from.ids.iter().zip(ids).take_while(|(a, b)| a == b).count();
        if keep == ids.len() && keep == from.ids.len() {
            return Ok(from.clone());
        }
        // At least one id must be fed to get the logits after the last one.
        keep = keep.min(ids.len() - 1);
        let (kv, rows) = self.feed(from, keep, &ids[keep..])?;
        let logits = rows.into_iter().last().unwrap_or_default();
        Ok(Prefix { ids: ids.to_vec(), kv, logits })
    }

    /// Sum of log-probabilities of `cont` following `from` (the prefix is unchanged).
    pub fn score(&mut self, from: &Prefix, cont: &[u32]) -> Result<f64> {
        if from.is_empty() {
            return Err(Error::run("scoring a continuation needs a non-empty prefix"));
        }
        let Some((&first, _)) = cont.split_first() else { return Ok(0.0) };
        self.check_room(from.len() + cont.len(), "scoring")?;
        let mut lp = log_prob(&from.logits, first);
        if cont.len() > 1 {
            let (_, rows) = self.feed(from, from.len(), &cont[..cont.len() - 1])?;
            for (row, &id) in rows.iter().zip(&cont[1..]) {
                lp += log_prob(row, id);
            }
        }
        Ok(lp)
    }

    /// Greedy continuation of `from`: up to `max_new` ids, stopping before any id in
    /// `stop` (the prefix is unchanged).
    pub fn continue_greedy(&mut self, from: &Prefix, max_new: usize, stop: &[u32]) -> Result<Vec<u32>> {
        if from.is_empty() {
            return Err(Error::run("generation needs a non-empty prefix"));
        }
        self.check_room(from.len() + max_new, "generation")?;
        let mut out = Vec::new();
        let mut cur = from.clone();
        let mut next = argmax(&cur.logits);
        while out.len() < max_new && !stop.contains(&next) {
            out.push(next);
            if out.len() == max_new {
                break;
            }
            let (kv, rows) = self.feed(&cur, cur.len(), &[next])?;
            cur.ids.push(next);
            cur.kv = kv;
            cur.logits = rows.into_iter().next().unwrap_or_default();
            next = argmax(&cur.logits);
        }
        Ok(out)
    }
}

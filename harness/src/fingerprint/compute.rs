//! A model + a probe set → a fingerprint: tokenize the probe set to a token budget, run
//! the batches through the backend reading every residual layer (and the logits where
//! the model has them), and reduce.

use crate::error::Result;
use crate::fingerprint::collect::Collector;
use crate::fingerprint::{Fingerprint, FingerprintConfig, Subject};
use crate::models::capture::{CaptureRequest, Pooling, TokenBatch};
use crate::models::load::Loaded;
use crate::probes::ProbeSet;

/// How the probe set is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRun {
    /// Total real tokens to use (the first `tokens` of the probe stream).
    pub tokens: usize,
    /// Sequences per forward pass. Benign nuisance: must not change the decision.
    pub batch_size: usize,
    /// Longest sequence; longer probe items are cut.
    pub max_seq_len: usize,
}

impl Default for ProbeRun {
    fn default() -> Self {
        ProbeRun { tokens: 512, batch_size: 8, max_seq_len: 128 }
    }
}

pub fn fingerprint_model(
    loaded: &mut Loaded,
    probes: &ProbeSet,
    run: &ProbeRun,
    cfg: &FingerprintConfig,
) -> Result<Fingerprint> {
    let info = loaded.model.info().clone();
    let max_len = run.max_seq_len.min(info.max_seq_len);
    let tokenizer = &loaded.tokenizer;
    let budget = probes.tokenize_budget(run.tokens, max_len, |text| tokenizer.encode(text))?;
    let req = CaptureRequest {
        layers: (0..info.n_residual()).collect(),
        pooling: Pooling::All,
        // Encoders have no logits; the fingerprint then has no logit blocks.
        logits: info.has_logits(),
    };
    let mut collector = Collector::new();
    let bar =
        crate::progress::items_bar(budget.sequences.len() as u64, &format!("fingerprint {}", info.name));
    for chunk in budget.sequences.chunks(run.batch_size.max(1)) {
        let capture = loaded.model.capture(&TokenBatch::new(chunk.to_vec()), &req)?;
        collector.add(&capture)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let subject = Subject {
        model_id: format!("{}@{}", info.name, info.weights),
        probe_set: probes.name.clone(),
        probe_sha256: probes.sha256().to_string(),
        tokens_used: collector.tokens() as u32,
    };
    collector.fingerprint(subject, cfg)
}

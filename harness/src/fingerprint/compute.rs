//! A model + a probe set → a fingerprint: tokenize the probe set to a token budget, run
//! the batches through the backend reading every residual layer (and the logits where
//! the model has them), and reduce.

use crate::error::{Error, Result};
use crate::fingerprint::collect::Collector;
use crate::fingerprint::stats::Mat;
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
    Ok(fingerprint_ordered(loaded, probes, run, None, false, cfg)?.0)
}

/// Every layer's activations: (residual index, tokens × width).
pub type Layers = Vec<(usize, Mat)>;

/// [`fingerprint_model`] with the probe sequences fed in the order `order` (a permutation
/// of the selected sequences; probe order is benign nuisance) and, with `keep`, every
/// layer's activations returned in the canonical probe order (for baselines such as CKA
/// that compare activations token by token).
pub fn fingerprint_ordered(
    loaded: &mut Loaded,
    probes: &ProbeSet,
    run: &ProbeRun,
    order: Option<&[usize]>,
    keep: bool,
    cfg: &FingerprintConfig,
) -> Result<(Fingerprint, Option<Layers>)> {
    let info = loaded.model.info().clone();
    let max_len = run.max_seq_len.min(info.max_seq_len);
    let tokenizer = &loaded.tokenizer;
    let budget = probes.tokenize_budget(run.tokens, max_len, |text| tokenizer.encode(text))?;
    let n = budget.sequences.len();
    let order: Vec<usize> = match order {
        None => (0..n).collect(),
        Some(o) => {
            let mut sorted = o.to_vec();
            sorted.sort_unstable();
            if sorted != (0..n).collect::<Vec<_>>() {
                return Err(Error::run(format!("probe order is not a permutation of the {n} sequences")));
            }
            o.to_vec()
        }
    };
    let req = CaptureRequest {
        layers: (0..info.n_residual()).collect(),
        pooling: Pooling::All,
        // Encoders have no logits; the fingerprint then has no logit blocks.
        logits: info.has_logits(),
    };
    let mut collector = Collector::new();
    let bar = crate::progress::items_bar(n as u64, &format!("fingerprint {}", info.name));
    for chunk in order.chunks(run.batch_size.max(1)) {
        let seqs = chunk.iter().map(|&i| budget.sequences[i].clone()).collect();
        let capture = loaded.model.capture(&TokenBatch::new(seqs), &req)?;
        collector.add(&capture)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let kept = if keep {
        // Row offset of each sequence as fed, then rows copied back in canonical order.
        let lens: Vec<usize> = budget.sequences.iter().map(Vec::len).collect();
        let mut fed_start = vec![0usize; n];
        let mut at = 0;
        for &i in &order {
            fed_start[i] = at;
            at += lens[i];
        }
        let mut out = Vec::new();
        for (l, m) in collector.matrices()? {
            let d = m.cols();
            let mut data = Vec::with_capacity(m.rows() * d);
            for i in 0..n {
                data.extend_from_slice(&m.data()[fed_start[i] * d..(fed_start[i] + lens[i]) * d]);
            }
            out.push((l, Mat::new(data, m.rows(), d)?));
        }
        Some(out)
    } else {
        None
    };
    let subject = Subject {
        model_id: format!("{}@{}", info.name, info.weights),
        probe_set: probes.name.clone(),
        probe_sha256: probes.sha256().to_string(),
        tokens_used: collector.tokens() as u32,
    };
    Ok((collector.fingerprint(subject, cfg)?, kept))
}

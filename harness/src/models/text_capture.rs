//! One text through one model: per-layer statistics of the residual stream and the top
//! next tokens. What `gapbench capture` prints, as a library call.

use candle_core::{DType, D};
use serde::{Deserialize, Serialize};

use crate::error::{CandleContext, Result};
use crate::models::capture::{CaptureRequest, Pooling, TokenBatch};
use crate::models::load::Loaded;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerStats {
    /// Residual-stream index (0 = embedding, n_blocks + 1 = after the final norm).
    pub index: usize,
    pub label: String,
    /// L2 norm of the last token's vector.
    pub last_token_norm: f64,
    /// Mean over tokens of each token's L2 norm.
    pub mean_token_norm: f64,
    pub mean: f64,
    pub std: f64,
    pub max_abs: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NextToken {
    pub id: u32,
    pub text: String,
    pub logit: f64,
    pub prob: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TextCapture {
    pub model: String,
    pub weights: String,
    pub token_ids: Vec<u32>,
    pub layers: Vec<LayerStats>,
    /// Empty for models without logits (encoders).
    pub next_tokens: Vec<NextToken>,
}

pub fn capture_text(loaded: &mut Loaded, text: &str, top_k: usize) -> Result<TextCapture> {
    let ids = loaded.tokenizer.encode(text)?;
    let info = loaded.model.info().clone();
    let has_logits = info.architecture != "bert";
    let req = CaptureRequest {
        layers: (0..info.n_residual()).collect(),
        pooling: Pooling::All,
        logits: has_logits,
    };
    let cap = loaded.model.capture(&TokenBatch::new(vec![ids.clone()]), &req)?;
    let mut layers = Vec::new();
    for (&index, hidden) in &cap.layers {
        let h = hidden.get(0).and_then(|h| h.to_dtype(DType::F32)).ctx("capture: layer")?; // [t, d]
        let rows = h.to_vec2::<f32>().ctx("capture: read layer")?;
        let norms: Vec<f64> =
            rows.iter().map(|r| r.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt()).collect();
        let all: Vec<f64> = rows.iter().flatten().map(|&x| x as f64).collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / all.len() as f64;
        layers.push(LayerStats {
            index,
            label: match index {
                0 => "embedding".into(),
                i if i == info.n_blocks + 1 => "final norm".into(),
                i => format!("block {i}"),
            },
            last_token_norm: *norms.last().unwrap_or(&0.0),
            mean_token_norm: norms.iter().sum::<f64>() / norms.len().max(1) as f64,
            mean,
            std: var.sqrt(),
            max_abs: all.iter().fold(0f64, |m, x| m.max(x.abs())),
        });
    }
    let mut next_tokens = Vec::new();
    if let Some(logits) = &cap.logits {
        let last = logits.get(0).and_then(|l| l.get(ids.len() - 1)).ctx("capture: last logits")?;
        let probs = candle_nn::ops::softmax(&last, D::Minus1).ctx("capture: softmax")?;
        let (logits, probs) = (last.to_vec1::<f32>().ctx("capture")?, probs.to_vec1::<f32>().ctx("capture")?);
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        for &i in order.iter().take(top_k) {
            next_tokens.push(NextToken {
                id: i as u32,
                text: loaded.tokenizer.decode(&[i as u32])?,
                logit: logits[i] as f64,
                prob: probs[i] as f64,
            });
        }
    }
    Ok(TextCapture { model: info.name, weights: info.weights, token_ids: ids, layers, next_tokens })
}

//! The GGUF llama backend and the GGUF tokenizer on the real SmolLM2-135M-Instruct file,
//! against transformers' reference activations (`benches/peers/smollm2_reference.py`).

use std::io::Write;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use gapbench::models::capture::{CaptureModel, CaptureRequest, Pooling, TokenBatch};
use gapbench::models::gguf_llama::{self, GgufLlama, QuantType, RequantCompute, WeightMode};
use gapbench::models::tokenizer::{ChatMessage, GgufTokenizer};
use gapbench::Error;
use serde_json::Value;

use crate::common::smollm2_gguf;

const BERLIN: u32 = 11452;

fn fixture() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_reference.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn prompt_ids(fx: &Value) -> Vec<u32> {
    fx["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// max |a - b| / max |b|: relative to the vector's scale, so near-zero entries do not
/// dominate.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn softmax_prob(logits: &[f32], id: u32) -> f64 {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    (logits[id as usize] as f64 - max).exp() / z
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32
}

fn last_logits(model: &mut GgufLlama, ids: &[u32]) -> Vec<f32> {
    let req = CaptureRequest { layers: vec![], pooling: Pooling::Last, logits: true };
    let cap = model.capture(&TokenBatch::new(vec![ids.to_vec()]), &req).unwrap();
    cap.logits.unwrap().get(0).unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn tokenizer_matches_transformers() {
    let fx = fixture();
    let tok = GgufTokenizer::load(&smollm2_gguf()).unwrap();
    assert_eq!(tok.n_special, 17);
    let ids = tok.encode(fx["prompt"].as_str().unwrap()).unwrap();
    assert_eq!(ids.len(), 60);
    assert_eq!(&ids[..12], &[504, 1695, 314, 253, 1890, 12973, 17099, 351, 5360, 30, 15232, 42]);
    assert_eq!(ids, prompt_ids(&fx));
    assert_eq!(tok.decode(&ids, false).unwrap(), fx["prompt"].as_str().unwrap());
}

#[test]
fn tokenizer_has_no_prefix_space_bug() {
    // candle's Tokenizer::from_gguf-style setup prepends a space: "The" -> "ĠThe" (390).
    let tok = GgufTokenizer::load(&smollm2_gguf()).unwrap();
    assert_eq!(tok.encode("The").unwrap(), vec![504]);
    assert_eq!(tok.encode(" The").unwrap(), vec![tok.token_to_id("ĠThe").unwrap()]);
    // Digits are split one by one (pre = smollm).
    assert_eq!(tok.encode("2024").unwrap().len(), 4);
}

#[test]
fn chat_template_from_gguf_renders_im_start_format() {
    let tok = GgufTokenizer::load(&smollm2_gguf()).unwrap();
    let text = tok.apply_chat_template(&[ChatMessage::new("user", "Hi there")], true).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = tok.encode(&text).unwrap();
    assert_eq!(ids[0], 1, "<|im_start|> must be one control token");
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2, "two <|im_end|>");
}

#[test]
fn f32_matches_transformers_reference() {
    let fx = fixture();
    let ids = prompt_ids(&fx);
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    assert_eq!(model.info().weights, "f32");
    let n = model.info().n_blocks;
    assert_eq!(n, 30);
    let cap =
        model.capture(&TokenBatch::new(vec![ids.clone()]), &CaptureRequest::all(n, Pooling::Last)).unwrap();

    let norms = fx["last_token_norms"].as_object().unwrap();
    assert_eq!(norms.len(), n + 2);
    let (mut worst_norm, mut worst_vals) = (0f64, 0f64);
    for (k, v) in norms {
        let layer: usize = k.parse().unwrap();
        let h = cap.layers[&layer].get(0).unwrap().to_vec1::<f32>().unwrap();
        let norm = h.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        let want = v.as_f64().unwrap();
        assert!((norm - want).abs() / want <= 1e-3, "residual {layer}: norm {norm} vs {want}");
        worst_norm = worst_norm.max((norm - want).abs() / want);
    }
    for (k, v) in fx["last_token_values_first8"].as_object().unwrap() {
        let layer: usize = k.parse().unwrap();
        let h = cap.layers[&layer].get(0).unwrap().to_vec1::<f32>().unwrap();
        let got: Vec<f64> = h[..8].iter().map(|&x| x as f64).collect();
        let e = rel_err(&got, &f64s(v));
        assert!(e <= 1e-3, "residual {layer}: first values {got:?} vs {v}, rel err {e}");
        worst_vals = worst_vals.max(e);
    }
    let logits = cap.logits.unwrap().get(0).unwrap().to_vec1::<f32>().unwrap();
    let got: Vec<f64> = logits[..16].iter().map(|&x| x as f64).collect();
    let e = rel_err(&got, &f64s(&fx["logits_first16"]));
    assert!(e <= 1e-3, "logits rel err {e}");
    println!(
        "f32 vs transformers: worst rel err norms {worst_norm:.2e}, values {worst_vals:.2e}, logits {e:.2e}"
    );
    assert_eq!(argmax(&logits), BERLIN);
    let p = softmax_prob(&logits, BERLIN);
    let want = fx["top5"][0]["prob"].as_f64().unwrap();
    println!("f32: p(\" Berlin\") = {p:.6} (transformers {want:.6})");
    assert!((p - want).abs() <= 1e-3, "p(Berlin) {p} vs {want}");
}

#[test]
fn shipped_q4_1_predicts_berlin() {
    let ids = prompt_ids(&fixture());
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::Shipped, &Device::Cpu).unwrap();
    assert_eq!(model.info().weights, "q4_1");
    let logits = last_logits(&mut model, &ids);
    assert_eq!(argmax(&logits), BERLIN);
    println!("shipped q4_1: p(\" Berlin\") = {:.6}", softmax_prob(&logits, BERLIN));
}

#[test]
fn capture_last_logits_equal_upstream_forward_exactly() {
    let ids = prompt_ids(&fixture());
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::Shipped, &Device::Cpu).unwrap();
    let upstream = model.forward_last_logits(&ids).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap();
    let captured = last_logits(&mut model, &ids);
    assert_eq!(upstream.len(), 49152);
    let diff = upstream.iter().zip(&captured).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(diff, 0, "{diff} logits differ between capture and upstream forward");
}

#[test]
fn capture_last_logits_equal_upstream_forward_in_f32() {
    let ids = prompt_ids(&fixture());
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    let upstream = model.forward_last_logits(&ids).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap();
    let captured = last_logits(&mut model, &ids);
    let diff = upstream.iter().zip(&captured).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(diff, 0, "{diff} logits differ between capture and upstream forward");
}

#[test]
fn mean_pooled_logits_match_mean_of_all_positions() {
    // Mean-pooled logits of a dense f32 head are computed from the pooled hidden state
    // (linearity); they must agree with pooling the per-position logits.
    let ids = prompt_ids(&fixture());
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    let batch = TokenBatch::new(vec![ids[..9].to_vec()]);
    let req = |pooling| CaptureRequest { layers: vec![], pooling, logits: true };
    let all = model.capture(&batch, &req(Pooling::All)).unwrap().logits.unwrap();
    assert_eq!(all.dims(), &[1, 9, 49152]);
    let want: Vec<f64> =
        all.mean(1).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap().iter().map(|&x| x as f64).collect();
    let mean = model.capture(&batch, &req(Pooling::Mean)).unwrap();
    assert!(mean.layers.is_empty(), "only requested layers are returned");
    let got: Vec<f64> =
        mean.logits.unwrap().get(0).unwrap().to_vec1::<f32>().unwrap().iter().map(|&x| x as f64).collect();
    let e = rel_err(&got, &want);
    assert!(e <= 1e-5, "rel err {e}");
}

#[test]
fn right_padding_does_not_change_real_tokens() {
    let ids = prompt_ids(&fixture());
    let short = ids[..17].to_vec();
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    let req = CaptureRequest { layers: vec![0, 5, 31], pooling: Pooling::Mean, logits: true };
    let alone = model.capture(&TokenBatch::new(vec![short.clone()]), &req).unwrap();
    let padded = model.capture(&TokenBatch::new(vec![ids.clone(), short]), &req).unwrap();
    for l in [0, 5, 31] {
        let a: Vec<f64> =
            alone.layers[&l].get(0).unwrap().to_vec1::<f32>().unwrap().iter().map(|&x| x as f64).collect();
        let b: Vec<f64> =
            padded.layers[&l].get(1).unwrap().to_vec1::<f32>().unwrap().iter().map(|&x| x as f64).collect();
        let e = rel_err(&b, &a);
        assert!(e <= 1e-4, "layer {l}: padded vs alone rel err {e}");
    }
    let a = alone.logits.unwrap().get(0).unwrap().to_vec1::<f32>().unwrap();
    let b = padded.logits.unwrap().get(1).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(argmax(&a), argmax(&b));
}

#[test]
fn capture_stops_at_the_deepest_requested_block() {
    let ids = prompt_ids(&fixture());
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::Shipped, &Device::Cpu).unwrap();
    let req = CaptureRequest { layers: vec![0, 3], pooling: Pooling::All, logits: false };
    let cap = model.capture(&TokenBatch::new(vec![ids.clone(), ids[..5].to_vec()]), &req).unwrap();
    assert_eq!(cap.layers.keys().copied().collect::<Vec<_>>(), vec![0, 3]);
    assert!(cap.logits.is_none());
    assert_eq!(cap.layers[&3].dims(), &[2, 60, 576]);
    // Padding rows are zeroed by pooling.
    let pad_row = cap.layers[&3].get(1).unwrap().get(10).unwrap().to_vec1::<f32>().unwrap();
    assert!(pad_row.iter().all(|&x| x == 0.0));
}

#[test]
fn requant_reports_k_quant_fallbacks() {
    let ids = prompt_ids(&fixture());
    let mode = WeightMode::Requant { to: QuantType::Q4K, compute: RequantCompute::F32 };
    let mut model = GgufLlama::load(&smollm2_gguf(), mode, &Device::Cpu).unwrap();
    assert_eq!(model.info().weights, "requant-q4_k-f32");
    let report = model.requant_report();
    // 30 blocks x 7 matrices + token_embd; norms stay f32.
    assert_eq!(report.len(), 30 * 7 + 1);
    assert_eq!(report["blk.0.ffn_down.weight"], "q4_k", "rows of 1536 = 6 x 256");
    assert_eq!(report["blk.0.attn_q.weight"], "q5_0", "rows of 576 fall back like llama.cpp");
    assert_eq!(report["token_embd.weight"], "q5_0");
    assert_eq!(model.requant_fallbacks().len(), 30 * 6 + 1);
    let logits = last_logits(&mut model, &ids);
    println!("requant q4_k (f32 compute): p(\" Berlin\") = {:.6}", softmax_prob(&logits, BERLIN));
    assert_eq!(argmax(&logits), BERLIN);

    let mode = WeightMode::Requant { to: QuantType::Q8_0, compute: RequantCompute::Quantized };
    let mut model = GgufLlama::load(&smollm2_gguf(), mode, &Device::Cpu).unwrap();
    assert_eq!(model.info().weights, "requant-q8_0");
    assert!(model.requant_fallbacks().is_empty());
    let logits = last_logits(&mut model, &ids);
    println!("requant q8_0 (quantized): p(\" Berlin\") = {:.6}", softmax_prob(&logits, BERLIN));
    assert_eq!(argmax(&logits), BERLIN);
}

#[test]
fn f16_mode_predicts_berlin() {
    let ids = prompt_ids(&fixture());
    let mut model = GgufLlama::load(&smollm2_gguf(), WeightMode::F16, &Device::Cpu).unwrap();
    assert_eq!(model.info().weights, "f16");
    let logits = last_logits(&mut model, &ids);
    println!("f16: p(\" Berlin\") = {:.6}", softmax_prob(&logits, BERLIN));
    assert_eq!(argmax(&logits), BERLIN);
}

#[test]
fn inspect_summarises_the_file() {
    let inv = gguf_llama::inspect(&smollm2_gguf()).unwrap();
    assert_eq!(inv.architecture, "llama");
    assert_eq!(inv.n_tensors, 272);
    assert_eq!(inv.tensor_dtypes["q4_1"], 210);
    assert_eq!(inv.tensor_dtypes["f32"], 61);
    assert_eq!(inv.tensor_dtypes["q8_0"], 1);
    assert_eq!(inv.context_length, Some(8192));
    assert_eq!(inv.block_count, Some(30));
    assert_eq!(inv.embedding_length, Some(576));
    assert_eq!(inv.vocab_size, Some(49152));
    assert_eq!(inv.embedding_rows, Some(49152));
    assert_eq!(inv.tokenizer_pre.as_deref(), Some("smollm"));
    // 134.5M parameters (the tied output head is stored once).
    assert!((134_000_000..135_000_000).contains(&inv.n_params), "{}", inv.n_params);
}

// ---- bad input -------------------------------------------------------------------------

fn assert_model_error(e: &Error, path: &Path, needle: &str) {
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert!(matches!(e, Error::Model { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "message does not name the file: {msg}");
    assert!(msg.contains(needle), "message lacks `{needle}`: {msg}");
}

fn load_err(path: &Path) -> Error {
    GgufLlama::load(path, WeightMode::Shipped, &Device::Cpu).unwrap_err()
}

#[test]
fn truncated_gguf_is_a_model_error() {
    let bytes = std::fs::read(smollm2_gguf()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut inside the tensor data, then inside the header.
    for (n, needle) in [(bytes.len() / 2, "truncated"), (4096, "not a readable GGUF")] {
        let p = dir.path().join(format!("cut-{n}.gguf"));
        std::fs::write(&p, &bytes[..n]).unwrap();
        assert_model_error(&load_err(&p), &p, needle);
    }
}

#[test]
fn random_bytes_are_a_model_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("noise.gguf");
    let mut f = std::fs::File::create(&p).unwrap();
    let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    f.write_all(&noise).unwrap();
    drop(f);
    assert_model_error(&load_err(&p), &p, "not a readable GGUF");
    let e = gguf_llama::inspect(&p).unwrap_err();
    assert_model_error(&e, &p, "not a readable GGUF");
    let e = GgufTokenizer::load(&p).unwrap_err();
    assert_model_error(&e, &p, "not a readable GGUF");
}

/// A tiny GGUF written with candle's writer.
fn write_gguf(path: &Path, metadata: &[(&str, gguf_file::Value)], tensors: &[(&str, Tensor)]) {
    let md: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let qs: Vec<(&str, QTensor)> =
        tensors.iter().map(|(k, t)| (*k, QTensor::quantize(t, GgmlDType::F32).unwrap())).collect();
    let qs_ref: Vec<(&str, &QTensor)> = qs.iter().map(|(k, q)| (*k, q)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &qs_ref).unwrap();
}

#[test]
fn wrong_architecture_and_missing_tensors_are_model_errors() {
    use gguf_file::Value as V;
    let dir = tempfile::tempdir().unwrap();
    let emb = Tensor::zeros((8, 32), candle_core::DType::F32, &Device::Cpu).unwrap();

    let p = dir.path().join("gpt2.gguf");
    write_gguf(
        &p,
        &[("general.architecture", V::String("gpt2".into()))],
        &[("token_embd.weight", emb.clone())],
    );
    assert_model_error(&load_err(&p), &p, "architecture `gpt2`");
    assert_eq!(gguf_llama::inspect(&p).unwrap().architecture, "gpt2");

    let p = dir.path().join("hollow.gguf");
    let md = [
        ("general.architecture", V::String("llama".into())),
        ("llama.block_count", V::U32(1)),
        ("llama.embedding_length", V::U32(32)),
        ("llama.attention.head_count", V::U32(4)),
        ("llama.attention.head_count_kv", V::U32(2)),
        ("llama.rope.dimension_count", V::U32(8)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5)),
        ("llama.context_length", V::U32(64)),
    ];
    write_gguf(&p, &md, &[("token_embd.weight", emb.clone())]);
    assert_model_error(&load_err(&p), &p, "tensor `output_norm.weight` is missing");

    // Zero heads must not divide by zero.
    let p = dir.path().join("zero-heads.gguf");
    let mut md0 = md.to_vec();
    md0[3] = ("llama.attention.head_count", V::U32(0));
    write_gguf(&p, &md0, &[("token_embd.weight", emb.clone())]);
    assert_model_error(&load_err(&p), &p, "inconsistent hyper-parameters");

    // Tokenizer whose vocabulary does not match the embedding rows.
    let p = dir.path().join("vocab.gguf");
    let toks = |n: usize| V::Array((0..n).map(|i| V::String(format!("t{i}"))).collect());
    let md_tok = [
        ("general.architecture", V::String("llama".into())),
        ("tokenizer.ggml.model", V::String("gpt2".into())),
        ("tokenizer.ggml.pre", V::String("smollm".into())),
        ("tokenizer.ggml.tokens", toks(5)),
        ("tokenizer.ggml.merges", V::Array(vec![])),
    ];
    write_gguf(&p, &md_tok, &[("token_embd.weight", emb)]);
    let e = GgufTokenizer::load(&p).unwrap_err();
    assert_model_error(&e, &p, "does not match the 8 rows of token_embd.weight");
}

#[test]
fn sequence_longer_than_context_is_an_input_error() {
    let path = smollm2_gguf();
    let mut model = GgufLlama::load(&path, WeightMode::Shipped, &Device::Cpu).unwrap();
    assert_eq!(model.info().max_seq_len, 8192);
    let long = vec![504u32; 8193];
    let req = CaptureRequest { layers: vec![0], pooling: Pooling::Mean, logits: false };
    let e = model.capture(&TokenBatch::new(vec![vec![504], long]), &req).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("8193") && msg.contains("8192"), "{msg}");
    // Out-of-vocabulary ids are refused before compute too.
    let e = model.capture(&TokenBatch::new(vec![vec![49152]]), &req).unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

/// The geography prompt through one prefix, or split in two: same next-token choice,
/// logits equal to the one-shot forward up to the rounding a different split gives.
#[test]
fn prefix_cache_extends_a_conversation_like_one_forward() {
    use gapbench::models::gguf_llama::prefix::Prefix;
    let fx = fixture();
    let ids = prompt_ids(&fx);
    let mut m = GgufLlama::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    let reference = last_logits(&mut m, &ids);
    let one = m.advance(&Prefix::default(), &ids).unwrap();
    let half = m.advance(&Prefix::default(), &ids[..30]).unwrap();
    let two = m.advance(&half, &ids).unwrap();
    assert_eq!(two.ids(), &ids[..]);
    for p in [&one, &two] {
        assert_eq!(argmax(p.logits()), BERLIN);
        let err = p.logits().iter().zip(&reference).fold(0f32, |e, (a, b)| e.max((a - b).abs()));
        assert!(err < 1e-3, "logits differ from the one-shot forward by {err}");
    }
    // A shorter sequence re-uses the cache (truncated), and the same ids are a no-op.
    let back = m.advance(&two, &ids[..40]).unwrap();
    let fresh = m.advance(&Prefix::default(), &ids[..40]).unwrap();
    let err = back.logits().iter().zip(fresh.logits()).fold(0f32, |e, (a, b)| e.max((a - b).abs()));
    assert!(err < 1e-3, "truncated prefix differs by {err}");
    assert_eq!(m.advance(&two, &ids).unwrap().logits(), two.logits());
}

#[test]
fn prefix_score_and_greedy_continuation_agree_with_full_forwards() {
    use gapbench::models::gguf_llama::prefix::{log_prob, Prefix};
    let fx = fixture();
    let ids = prompt_ids(&fx);
    let mut m = GgufLlama::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    let p = m.advance(&Prefix::default(), &ids).unwrap();
    let cont = m.continue_greedy(&p, 6, &[]).unwrap();
    assert_eq!(cont[0], BERLIN);
    assert_eq!(
        cont,
        m.generate_greedy(&ids, 6, &[]).unwrap(),
        "prefix decoding departs from generate_greedy"
    );
    // The score of the greedy continuation is the sum of its per-token log-probabilities.
    let mut want = 0.0;
    let mut seq = ids.clone();
    for &t in &cont[..3] {
        want += log_prob(&last_logits(&mut m, &seq), t);
        seq.push(t);
    }
    let got = m.score(&p, &cont[..3]).unwrap();
    assert!((got - want).abs() < 1e-3, "score {got} vs {want}");
    assert!(m.score(&p, &[27093]).unwrap() < m.score(&p, &[BERLIN]).unwrap(), "Munich scored above Berlin");
    // The prefix itself is untouched by scoring and decoding.
    assert_eq!(m.continue_greedy(&p, 6, &[]).unwrap(), cont);
}

//! The BERT backend against the Python peers (sentence-transformers and transformers, via
//! `benches/peers/minilm_reference.py`), and its handling of broken model directories.

use std::path::Path;

use candle_core::Device;
use gapbench::models::bert::MiniLm;
use gapbench::models::capture::{CaptureModel, CaptureRequest, Pooling, TokenBatch};
use serde::Deserialize;

use crate::common::minilm_dir;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embedding_head: Vec<Vec<f32>>,
    cosine: Vec<Vec<f64>>,
    layer_mean_norms_sentence0: Vec<f64>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture parses")
}

fn load() -> MiniLm {
    MiniLm::load(&minilm_dir(), &Device::Cpu).expect("MiniLM loads")
}

/// Within 1e-4 absolute or 1e-3 relative.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 || (a - b).abs() <= 1e-3 * b.abs()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

#[test]
fn token_ids_match_hf_tokenizers() {
    let (model, r) = (load(), reference());
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let batch = model.tokenize(&texts).unwrap();
    assert_eq!(batch.sequences, r.token_ids);
}

#[test]
fn embeddings_match_sentence_transformers() {
    let (model, r) = (load(), reference());
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let emb = model.embed(&texts).unwrap();
    assert_eq!(emb.len(), texts.len());
    for (i, (ours, theirs)) in emb.iter().zip(&r.embedding_head).enumerate() {
        assert_eq!(ours.len(), 384);
        for (j, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
            assert!(close(a as f64, b as f64), "sentence {i} dim {j}: ours {a}, sentence-transformers {b}");
        }
    }
    for i in 0..texts.len() {
        for j in 0..texts.len() {
            let c = dot(&emb[i], &emb[j]);
            assert!(close(c, r.cosine[i][j]), "cosine[{i}][{j}]: ours {c}, reference {}", r.cosine[i][j]);
        }
    }
}

#[test]
fn layer_norms_match_transformers_hidden_states() {
    let (mut model, r) = (load(), reference());
    let n = model.info().n_blocks;
    assert_eq!((n, model.info().max_seq_len, model.info().vocab_size), (6, 512, 30522));
    let batch = TokenBatch::new(vec![r.token_ids[0].clone()]);
    let cap = model
        .capture(
            &batch,
            &CaptureRequest { layers: (0..=n + 1).collect(), pooling: Pooling::Mean, logits: false },
        )
        .unwrap();
    assert!(cap.logits.is_none());
    let norms: Vec<f64> = (0..=n + 1)
        .map(|l| {
            cap.layers[&l].sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap()
                as f64
        })
        .collect();
    for (l, (&ours, &theirs)) in norms.iter().zip(&r.layer_mean_norms_sentence0).enumerate() {
        assert!((ours - theirs).abs() <= 1e-3 * theirs, "layer {l}: ours {ours}, transformers {theirs}");
    }
    // No final norm in an encoder: the last residual position is the last layer again.
    let (last, after) =
        (cap.layers[&n].to_vec2::<f32>().unwrap(), cap.layers[&(n + 1)].to_vec2::<f32>().unwrap());
    assert_eq!(last, after);
}

#[test]
fn batching_and_padding_do_not_change_embeddings() {
    let (model, r) = (load(), reference());
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let together = model.embed(&texts).unwrap();
    let in_pairs = model.embed_batched(&texts, 2).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let alone = model.embed(&[text]).unwrap().remove(0);
        for (which, other) in [("one padded batch", &together[i]), ("batches of 2", &in_pairs[i])] {
            let worst = alone.iter().zip(other).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-5, "sentence {i}: alone vs {which} differ by {worst}");
        }
    }
}

#[test]
fn padding_is_to_the_longest_sentence_not_the_tokenizer_default() {
    let (mut model, r) = (load(), reference());
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let batch = model.tokenize(&texts).unwrap();
    let longest = r.token_ids.iter().map(Vec::len).max().unwrap();
    assert!(longest < 128, "the fixture must not reach the shipped tokenizer's padding length");
    assert_eq!(batch.lengths(), r.token_ids.iter().map(Vec::len).collect::<Vec<_>>());
    let req = CaptureRequest { layers: vec![1], pooling: Pooling::All, logits: false };
    let cap = model.capture(&batch, &req).unwrap();
    assert_eq!(cap.layers[&1].dims(), &[texts.len(), longest, 384]);
}

#[test]
fn long_texts_are_truncated_to_the_position_limit() {
    let model = load();
    let long = "word ".repeat(2000);
    let batch = model.tokenize(&[&long]).unwrap();
    assert_eq!(batch.max_len(), 512);
    let emb = model.embed(&[&long]).unwrap();
    assert!((dot(&emb[0], &emb[0]) - 1.0).abs() < 1e-5);
}

#[test]
fn logits_and_bad_layers_are_input_errors() {
    let mut model = load();
    let batch = TokenBatch::new(vec![vec![101, 7632, 999, 102]]);
    let err = model.capture(&batch, &CaptureRequest::all(6, Pooling::Mean)).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("no logits"), "{err}");
    let req = CaptureRequest { layers: vec![8], pooling: Pooling::Mean, logits: false };
    assert_eq!(model.capture(&batch, &req).unwrap_err().exit_code(), 2);
    let bad_id = TokenBatch::new(vec![vec![101, 40000, 102]]);
    let req = CaptureRequest { layers: vec![1], pooling: Pooling::Mean, logits: false };
    assert_eq!(model.capture(&bad_id, &req).unwrap_err().exit_code(), 2);
    assert_eq!(model.embed_batched(&["x"], 0).unwrap_err().exit_code(), 2);
}

// ---- broken model directories ----

/// A temp dir holding copies of the real config.json and tokenizer.json.
fn partial_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(minilm_dir().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn load_err(dir: &Path) -> gapbench::Error {
    match MiniLm::load(dir, &Device::Cpu) {
        Ok(_) => panic!("{} should not load", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_weights_name_the_file() {
    let dir = partial_copy();
    let err = load_err(dir.path());
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn wrong_model_type_names_the_config() {
    let dir = partial_copy();
    std::fs::copy(minilm_dir().join("model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    let cfg = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(cfg.contains(r#""model_type": "bert""#));
    std::fs::write(
        dir.path().join("config.json"),
        cfg.replace(r#""model_type": "bert""#, r#""model_type": "llama""#),
    )
    .unwrap();
    let err = load_err(dir.path());
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("config.json") && msg.contains("llama"), "{msg}");
}

#[test]
fn a_missing_tensor_names_file_and_tensor() {
    let dir = partial_copy();
    let bytes = std::fs::read(minilm_dir().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let dropped = "encoder.layer.3.attention.self.key.weight";
    let kept: Vec<_> = st.tensors().into_iter().filter(|(name, _)| name != dropped).collect();
    assert_eq!(kept.len() + 1, st.len());
    safetensors::serialize_to_file(kept, None, &dir.path().join("model.safetensors")).unwrap();
    let err = load_err(dir.path());
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("model.safetensors") && msg.contains(dropped), "{msg}");
}

#[test]
fn a_truncated_safetensors_names_the_file() {
    let dir = partial_copy();
    let bytes = std::fs::read(minilm_dir().join("model.safetensors")).unwrap();
    for cut in [bytes.len() / 2, 4] {
        std::fs::write(dir.path().join("model.safetensors"), &bytes[..cut]).unwrap();
        let err = load_err(dir.path());
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("model.safetensors"), "cut at {cut}: {err}");
    }
}

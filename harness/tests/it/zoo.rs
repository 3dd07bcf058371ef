//! The synthetic zoo and the HF llama backend it writes for: byte-identical rebuilds,
//! seed sensitivity, learning, and checkpoints that load back into the same function.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use gapbench::models::capture::{CaptureModel, CaptureRequest, Pooling, TokenBatch};
use gapbench::models::hf_llama::{load_tokenizer, safetensors_bytes, HfLlama, Kernels, LlamaConfig};
use gapbench::zoo::{build_zoo, tokenizer, train, ZooManifest, ZooSpec};

pub(crate) fn tiny_zoo() -> &'static (tempfile::TempDir, ZooManifest) {
    static ZOO: OnceLock<(tempfile::TempDir, ZooManifest)> = OnceLock::new();
    ZOO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let m = build_zoo(&ZooSpec::tiny(), dir.path(), &|_| {}).unwrap();
        (dir, m)
    })
}

#[test]
fn tiny_zoo_rebuilds_byte_identically() {
    let (dir_a, a) = tiny_zoo();
    let dir_b = tempfile::tempdir().unwrap();
    let b = build_zoo(&ZooSpec::tiny(), dir_b.path(), &|_| {}).unwrap();
    assert_eq!(a.models.len(), 8);
    assert_eq!(a, &b);
    assert_eq!(a.manifest_sha256, b.manifest_sha256);
    for name in ["manifest.json", "loss_curves.jsonl"] {
        assert_eq!(
            std::fs::read(dir_a.path().join(name)).unwrap(),
            std::fs::read(dir_b.path().join(name)).unwrap()
        );
    }
    // The manifest on disk matches the files on disk.
    let loaded = ZooManifest::load(dir_b.path()).unwrap();
    assert_eq!(loaded.manifest_sha256, b.manifest_sha256);
    loaded.verify(dir_b.path()).unwrap();
    std::fs::write(dir_b.path().join(&b.models[0].id).join("config.json"), "{}").unwrap();
    assert!(loaded.verify(dir_b.path()).is_err());
}

#[test]
fn different_seeds_give_different_weights_and_steps_differ() {
    let (_dir, m) = tiny_zoo();
    let weights: BTreeMap<&str, &str> =
        m.models.iter().map(|x| (x.id.as_str(), x.files["model.safetensors"].as_str())).collect();
    assert_ne!(weights["zoo-w32-s1-step30"], weights["zoo-w32-s2-step30"]);
    assert_ne!(weights["zoo-w32-s1-step15"], weights["zoo-w32-s1-step30"]);
    let distinct: std::collections::BTreeSet<&&str> = weights.values().collect();
    assert_eq!(distinct.len(), m.models.len());
    // One tokenizer for the whole zoo.
    assert!(m.models.iter().all(|x| x.files["tokenizer.json"] == m.tokenizer_sha256));
}

#[test]
fn training_loss_decreases() {
    let (dir, _m) = tiny_zoo();
    let text = std::fs::read_to_string(dir.path().join("loss_curves.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    for l in lines {
        let losses: Vec<f64> = l["losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(losses.len(), 30);
        let first = losses[0];
        let tail = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
        assert!(tail < first - 1.0, "{}: first {first}, last-5 mean {tail}", l["run"]);
    }
}

#[test]
fn zoo_checkpoints_load_through_the_hf_loader() {
    let (dir, m) = tiny_zoo();
    for entry in [&m.models[0], m.models.last().unwrap()] {
        let path = dir.path().join(&entry.id);
        let mut model = HfLlama::load_dir(&path, &Device::Cpu).unwrap();
        assert_eq!(model.info().n_params, entry.n_params);
        let tok = load_tokenizer(&path).unwrap();
        let ids = tok.encode("Anna lives in Paris.", false).unwrap().get_ids().to_vec();
        let n = model.info().n_blocks;
        let cap = model.capture(&TokenBatch::new(vec![ids]), &CaptureRequest::all(n, Pooling::Mean)).unwrap();
        assert_eq!(cap.layers.len(), n + 2);
        assert_eq!(cap.logits.unwrap().dims(), &[1, m.vocab_size]);
    }
}

fn small_config(tied: bool) -> LlamaConfig {
    let text = serde_json::json!({
        "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 1, "rms_norm_eps": 1e-5, "rope_theta": 500.0, "vocab_size": 270,
        "max_position_embeddings": 64, "tie_word_embeddings": tied
    });
    LlamaConfig::from_json(&text.to_string(), Path::new("test")).unwrap()
}

/// Write an HF directory for `cfg` with weights from `seed`, leaving out `skip`.
fn write_checkpoint(dir: &Path, cfg: &LlamaConfig, seed: u64, skip: Option<&str>) -> candle_nn::VarMap {
    let vm = train::init_weights(cfg, seed, &Device::Cpu).unwrap();
    let tensors: BTreeMap<String, Tensor> = vm
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    std::fs::write(dir.join("model.safetensors"), safetensors_bytes(&tensors).unwrap()).unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_hf_json(268, 268)).unwrap();
    let tok = tokenizer::train(&gapbench::zoo::corpus::generate(1, 200), 270).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer::to_json(&tok).unwrap()).unwrap();
    vm
}

#[test]
fn random_checkpoint_roundtrips_exactly() {
    for tied in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small_config(tied);
        let vm = write_checkpoint(dir.path(), &cfg, 11, None);
        let mut mem = HfLlama::trainable(&cfg, &vm, &Device::Cpu, "mem").unwrap();
        mem.set_kernels(Kernels::Fused);
        let mut disk = HfLlama::load_dir(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(disk.info().n_params, mem.info().n_params);
        assert_eq!(disk.info().weights, "f32");
        let tok = load_tokenizer(dir.path()).unwrap();
        let seqs: Vec<Vec<u32>> = ["Ben saw a dog.", "Q: What is 2 plus 3? A: 5. Grüße"]
            .iter()
            .map(|t| tok.encode(*t, false).unwrap().get_ids().to_vec())
            .collect();
        let batch = TokenBatch::new(seqs);
        let req = CaptureRequest::all(2, Pooling::All);
        let a = mem.capture(&batch, &req).unwrap();
        let b = disk.capture(&batch, &req).unwrap();
        assert_eq!(b.layers.len(), 4);
        assert_eq!(b.layers[&3].dims(), &[2, batch.max_len(), 32]);
        for (l, t) in &a.layers {
            assert_eq!(t.to_vec3::<f32>().unwrap(), b.layers[l].to_vec3::<f32>().unwrap(), "layer {l}");
        }
        assert_eq!(a.logits.unwrap().to_vec3::<f32>().unwrap(), b.logits.unwrap().to_vec3::<f32>().unwrap());
    }
}

fn load_err(dir: &Path) -> String {
    match HfLlama::load_dir(dir, &Device::Cpu) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        }
    }
}

#[test]
fn broken_checkpoints_are_errors_naming_file_and_tensor() {
    // A missing tensor.
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &small_config(true), 1, Some("model.layers.1.mlp.up_proj.weight"));
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors") && e.contains("model.layers.1.mlp.up_proj.weight"), "{e}");

    // An untied config whose file has no LM head.
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &small_config(false), 1, Some("lm_head.weight"));
    let e = load_err(dir.path());
    assert!(e.contains("lm_head.weight"), "{e}");

    // A truncated weights file.
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &small_config(true), 1, None);
    let st = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors"), "{e}");

    // A config that does not fit the weights, and one that does not parse.
    let cfg_path = dir.path().join("config.json");
    std::fs::write(&st, &bytes).unwrap();
    let mut wrong = small_config(true);
    wrong.intermediate_size = 41;
    std::fs::write(&cfg_path, wrong.to_hf_json(0, 0)).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.layers.0.mlp.gate_proj.weight"), "{e}");
    std::fs::write(&cfg_path, "{\"hidden_size\": 32").unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("config.json"), "{e}");

    // No weights at all.
    std::fs::write(&cfg_path, small_config(true).to_hf_json(0, 0)).unwrap();
    std::fs::remove_file(&st).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

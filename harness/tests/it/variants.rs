//! Substitution generators on the real SmolLM2-135M-Instruct GGUF: an unmodified weight
//! set runs exactly like the file, and each attack moves the activations by a measured
//! amount.

use candle_core::{Device, Tensor};
use gapbench::models::capture::{Capture, CaptureModel, CaptureRequest, Pooling, TokenBatch};
use gapbench::models::gguf_llama::{GgufLlama, WeightMode};
use gapbench::models::tokenizer::GgufTokenizer;
use gapbench::models::variants::{low_rank_edit::LowRankEdit, Kind, VariantSpec, WeightSet};

use crate::common::smollm2_gguf;

const TEXT: &str =
    "The capital of France is Paris, the capital of Italy is Rome, and the capital of Germany is";

fn ids16() -> Vec<u32> {
    let tok = GgufTokenizer::load(&smollm2_gguf()).unwrap();
    let mut ids = tok.encode(TEXT).unwrap();
    ids.truncate(16);
    assert_eq!(ids.len(), 16, "the probe text must give 16 tokens");
    ids
}

fn capture_all(model: &mut GgufLlama, ids: &[u32]) -> Capture {
    let n = model.info().n_blocks;
    model.capture(&TokenBatch::new(vec![ids.to_vec()]), &CaptureRequest::all(n, Pooling::All)).unwrap()
}

/// The unmodified weight set and its capture: the reference every attack is measured from.
fn baseline(path: &std::path::Path, ids: &[u32]) -> (WeightSet, Capture) {
    let base = WeightSet::from_gguf(path).unwrap();
    let mut m0 = GgufLlama::from_weights(path, &base, WeightMode::F32, &Device::Cpu).unwrap();
    let c0 = capture_all(&mut m0, ids);
    (base, c0)
}

/// Apply `spec` (seed 1) to a copy of `base`; relative change of the final-norm
/// activations and of the logits against `c0`.
fn effect(
    path: &std::path::Path,
    base: &WeightSet,
    c0: &Capture,
    ids: &[u32],
    spec: &VariantSpec,
) -> (gapbench::models::variants::AttackReport, f64, f64) {
    let mut w = base.clone();
    let rep = spec.apply(&mut w, 1).unwrap();
    let mut m = GgufLlama::from_weights(path, &w, WeightMode::F32, &Device::Cpu).unwrap();
    let c = capture_all(&mut m, ids);
    let h = rel_change(&c.layers[&31], &c0.layers[&31]);
    let l = rel_change(c.logits.as_ref().unwrap(), c0.logits.as_ref().unwrap());
    (rep, h, l)
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// ‖a − b‖_F / ‖b‖_F.
fn rel_change(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (flat(a), flat(b));
    let d: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n).sqrt()
}

#[test]
fn unmodified_weight_set_runs_exactly_like_the_f32_file() {
    let path = smollm2_gguf();
    let ids = ids16();
    let w = WeightSet::from_gguf(&path).unwrap();
    assert_eq!((w.n_blocks(), w.len()), (30, 272));
    let mut from_file = GgufLlama::load(&path, WeightMode::F32, &Device::Cpu).unwrap();
    let mut from_set = GgufLlama::from_weights(&path, &w, WeightMode::F32, &Device::Cpu).unwrap();
    assert_eq!(from_set.info().weights, "f32");
    assert_eq!(from_set.info().n_params, from_file.info().n_params);
    let (a, b) = (capture_all(&mut from_file, &ids), capture_all(&mut from_set, &ids));
    assert_eq!(a.layers.len(), 32);
    for (i, t) in &a.layers {
        assert_eq!(flat(t), flat(&b.layers[i]), "residual {i} differs");
    }
    assert_eq!(flat(a.logits.as_ref().unwrap()), flat(b.logits.as_ref().unwrap()));

    // A weight set that does not fit the file is refused with a sentence.
    let mut bad = w.clone();
    let t = bad.get("blk.3.attn_v.weight").unwrap().clone();
    bad.insert(
        "blk.3.attn_k.weight".into(),
        gapbench::models::variants::WTensor::new(vec![t.data.len()], t.data).unwrap(),
    );
    let e = GgufLlama::from_weights(&path, &bad, WeightMode::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("blk.3.attn_k.weight") && e.contains("shape"), "{e}");
}

#[test]
fn low_rank_edit_moves_only_later_layers() {
    let path = smollm2_gguf();
    let ids = ids16();
    let base = WeightSet::from_gguf(&path).unwrap();
    let mut w = base.clone();
    let spec =
        VariantSpec::LowRankEdit(LowRankEdit { severity: 1e-2, rank: 1, kind: Kind::AttnV, block: Some(15) });
    let rep = spec.apply(&mut w, 1).unwrap();
    assert_eq!(rep.changed_names(), vec!["blk.15.attn_v.weight"]);
    assert_eq!(w.diff(&base).unwrap(), rep.changes);
    let mut m0 = GgufLlama::from_weights(&path, &base, WeightMode::F32, &Device::Cpu).unwrap();
    let c0 = capture_all(&mut m0, &ids);
    drop(m0);
    let mut m1 = GgufLlama::from_weights(&path, &w, WeightMode::F32, &Device::Cpu).unwrap();
    let c1 = capture_all(&mut m1, &ids);
    // Blocks 0..15 (residuals 0..=15) run before the edit: bit-identical.
    for i in 0..=15 {
        assert_eq!(flat(&c0.layers[&i]), flat(&c1.layers[&i]), "residual {i} before the edit moved");
    }
    let last = rel_change(&c1.layers[&31], &c0.layers[&31]);
    println!("low-rank edit rho=1e-2 of blk.15.attn_v: final-norm rel change {last:.3e}");
    assert!(last > 1e-5, "final-norm relative change {last}");
}

/// Every attack at its default severity, relative change of the final-norm activations
/// (all 16 positions) and of the logits against the unmodified model.
#[test]
fn every_default_attack_moves_the_final_norm() {
    let path = smollm2_gguf();
    let ids = ids16();
    let (base, c0) = baseline(&path, &ids);
    for spec in VariantSpec::defaults() {
        let (rep, h, l) = effect(&path, &base, &c0, &ids, &spec);
        let worst = rep.changes.iter().map(|c| c.rel_frobenius).fold(0.0, f64::max);
        println!(
            "effect {:<14} severity {:<10.4e} tensors {:>3} values {:>9} max rel dW {:.2e} | final norm {:.3e} logits {:.3e}",
            rep.attack,
            rep.severity,
            rep.changes.len(),
            rep.n_changed,
            worst,
            h,
            l
        );
        assert!(rep.n_changed > 0, "{}: nothing changed", rep.attack);
        if rep.attack == "bit-flips" {
            // 10 flips of the stored Q4_1/Q8_0/f32 encoding: at most one 32-value block each.
            assert!(rep.n_changed <= 10 * 32 && rep.details.len() == 10, "{rep:?}");
        }
        assert!(h > 0.0 && h.is_finite(), "{}: final norm moved by {h}", rep.attack);
    }
}

/// The requant attack computed in f32 is the file's `requant-q8_0-f32` weight mode, and
/// an unmodified set repackaged as the file's own types (`Shipped`) runs like the file.
#[test]
fn requant_attack_and_repackaging_match_the_file_modes() {
    use gapbench::models::gguf_llama::{QuantType, RequantCompute};
    use gapbench::models::variants::requant::Requant;
    let path = smollm2_gguf();
    let ids = ids16();
    let base = WeightSet::from_gguf(&path).unwrap();
    let mode = WeightMode::Requant { to: QuantType::Q8_0, compute: RequantCompute::F32 };
    let mut from_file = GgufLlama::load(&path, mode, &Device::Cpu).unwrap();
    let a = capture_all(&mut from_file, &ids);
    drop(from_file);
    let mut w = base.clone();
    VariantSpec::Requant(Requant { to: QuantType::Q8_0 }).apply(&mut w, 0).unwrap();
    let mut attacked = GgufLlama::from_weights(&path, &w, WeightMode::F32, &Device::Cpu).unwrap();
    let b = capture_all(&mut attacked, &ids);
    drop(attacked);
    for (i, t) in &a.layers {
        assert_eq!(flat(t), flat(&b.layers[i]), "requant: residual {i} differs");
    }
    let mut requant_mode = GgufLlama::from_weights(&path, &base, mode, &Device::Cpu).unwrap();
    assert_eq!(flat(&capture_all(&mut requant_mode, &ids).layers[&31]), flat(&a.layers[&31]));
    drop(requant_mode);

    // Shipped (quantized Q4_1 kernels, slow on CPU): 4 tokens.
    let short = &ids[..4];
    let mut file = GgufLlama::load(&path, WeightMode::Shipped, &Device::Cpu).unwrap();
    let mut repacked = GgufLlama::from_weights(&path, &base, WeightMode::Shipped, &Device::Cpu).unwrap();
    assert_eq!(repacked.info().weights, "q4_1");
    let (a, b) = (capture_all(&mut file, short), capture_all(&mut repacked, short));
    let worst = a.layers.iter().map(|(i, t)| rel_change(&b.layers[i], t)).fold(0.0, f64::max);
    println!("shipped q4_1: repackaged dequantized set vs file, worst residual rel change {worst:.3e}");
    assert!(worst < 1e-4, "repackaging moved activations by {worst}");
}

/// Sensitivity sweep (not run by default, ~1 minute): relative change of the final-norm
/// activations and logits on 16 tokens for each attack over its severity range.
/// `cargo test --release -p gapbench --test it variants::severity_sweep -- --ignored --nocapture`
#[test]
#[ignore]
fn severity_sweep() {
    let path = smollm2_gguf();
    let ids = ids16();
    let (base, c0) = baseline(&path, &ids);
    let specs: Vec<serde_json::Value> = serde_json::from_str(
        r#"[
        {"attack": "requant", "to": "q8_0"}, {"attack": "requant", "to": "q6_k"},
        {"attack": "requant", "to": "q5_0"}, {"attack": "requant", "to": "q4_0"},
        {"attack": "weight-noise", "severity": 1e-5}, {"attack": "weight-noise", "severity": 1e-4},
        {"attack": "weight-noise", "severity": 1e-3}, {"attack": "weight-noise", "severity": 1e-2},
        {"attack": "low-rank-edit", "severity": 1e-3}, {"attack": "low-rank-edit", "severity": 1e-2},
        {"attack": "low-rank-edit", "severity": 1e-1},
        {"attack": "bit-flips", "severity": 1, "field": "mantissa", "representation": "f32"},
        {"attack": "bit-flips", "severity": 100, "field": "mantissa", "representation": "f32"},
        {"attack": "bit-flips", "severity": 1000, "field": "mantissa", "representation": "f32"},
        {"attack": "bit-flips", "severity": 10, "representation": "f32"}, {"attack": "bit-flips", "severity": 100, "representation": "f32"},
        {"attack": "bit-flips", "severity": 1}, {"attack": "bit-flips", "severity": 10}, {"attack": "bit-flips", "severity": 100}, {"attack": "bit-flips", "severity": 1000},
        {"attack": "layer-swap", "severity": 1}, {"attack": "layer-swap", "severity": 1, "block": 28},
        {"attack": "prune", "severity": 0.01}, {"attack": "prune", "severity": 0.1}, {"attack": "prune", "severity": 0.5},
        {"attack": "norm-scale", "severity": 1e-3}, {"attack": "norm-scale", "severity": 1e-2},
        {"attack": "norm-scale", "severity": 1e-1},
        {"attack": "layer-replace", "severity": 1, "donor": {"kind": "noised", "sigma": 1e-3}},
        {"attack": "layer-replace", "severity": 1, "donor": {"kind": "requant", "to": "q4_0"}},
        {"attack": "layer-replace", "severity": 4, "donor": {"kind": "noised", "sigma": 1e-2}}
    ]"#,
    )
    .unwrap();
    for s in specs {
        let spec: VariantSpec = serde_json::from_value(s.clone()).unwrap();
        let (rep, h, l) = effect(&path, &base, &c0, &ids, &spec);
        println!("| `{s}` | {} | {} | {h:.2e} | {l:.2e} |", rep.changes.len(), rep.n_changed);
    }
}

mod zoo {
    //! The same generators on HF-layout zoo checkpoints.

    use std::path::PathBuf;
    use std::sync::OnceLock;

    use candle_core::Device;
    use gapbench::models::capture::{CaptureModel, CaptureRequest, Pooling, TokenBatch};
    use gapbench::models::hf_llama::HfLlama;
    use gapbench::models::variants::further_training::FurtherTraining;
    use gapbench::models::variants::layer_replace::{Donor, LayerReplace};
    use gapbench::models::variants::other_checkpoint::OtherCheckpoint;
    use gapbench::models::variants::{Convention, VariantSpec, WeightSet};
    use gapbench::zoo::{build_zoo, ZooSpec};

    use super::{flat, rel_change};

    fn tiny_zoo() -> &'static tempfile::TempDir {
        static ZOO: OnceLock<tempfile::TempDir> = OnceLock::new();
        ZOO.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            build_zoo(&ZooSpec::tiny(), dir.path(), &|_| {}).unwrap();
            dir
        })
    }

    fn model_dir(id: &str) -> PathBuf {
        tiny_zoo().path().join(id)
    }

    fn run(model: &mut HfLlama) -> gapbench::models::capture::Capture {
        let n = model.info().n_blocks;
        let ids: Vec<u32> = (5..21).collect();
        model.capture(&TokenBatch::new(vec![ids]), &CaptureRequest::all(n, Pooling::All)).unwrap()
    }

    #[test]
    fn unmodified_zoo_set_runs_exactly_like_the_checkpoint() {
        let dir = model_dir("zoo-w32-s1-step30");
        let w = WeightSet::load(&dir).unwrap();
        assert_eq!((w.convention(), w.n_blocks()), (Convention::Hf, 2));
        let mut a = HfLlama::load_dir(&dir, &Device::Cpu).unwrap();
        let mut b = HfLlama::from_weights_in(&dir, &w, &Device::Cpu).unwrap();
        let (ca, cb) = (run(&mut a), run(&mut b));
        for (i, t) in &ca.layers {
            assert_eq!(flat(t), flat(&cb.layers[i]), "residual {i}");
        }
        assert_eq!(flat(ca.logits.as_ref().unwrap()), flat(cb.logits.as_ref().unwrap()));
        // Every default attack applies to HF names and moves the output.
        for spec in VariantSpec::defaults() {
            let mut e = w.clone();
            let rep = spec.apply(&mut e, 3).unwrap();
            assert_eq!(e.diff(&w).unwrap(), rep.changes);
            let mut m = HfLlama::from_weights_in(&dir, &e, &Device::Cpu).unwrap();
            let h = rel_change(&run(&mut m).layers[&3], &ca.layers[&3]);
            println!("zoo effect {:<14} final norm {h:.3e}", rep.attack);
            assert!(h > 0.0, "{}", rep.attack);
        }
    }

    #[test]
    fn further_training_is_deterministic_and_moves_every_matrix() {
        let dir = model_dir("zoo-w32-s1-step15");
        let base = WeightSet::load(&dir).unwrap();
        let spec =
            VariantSpec::FurtherTraining(FurtherTraining { severity: 3.0, model: dir.clone(), lr: None });
        let (mut a, mut b) = (base.clone(), base.clone());
        let rep = spec.apply(&mut a, 11).unwrap();
        assert_eq!(spec.apply(&mut b, 11).unwrap(), rep);
        assert_eq!(a, b);
        assert_eq!(a.diff(&base).unwrap(), rep.changes);
        assert!(base.matrices().iter().all(|m| rep.changed_names().contains(&m.as_str())), "{rep:?}");
        println!("further-training: {:?}", rep.details);
        let mut c = base.clone();
        spec.apply(&mut c, 12).unwrap();
        assert_ne!(a, c, "another seed samples other batches");
        let zero = VariantSpec::FurtherTraining(FurtherTraining { severity: 0.0, model: dir, lr: None });
        let mut z = base.clone();
        assert_eq!(zero.apply(&mut z, 11).unwrap().n_changed, 0);
        assert_eq!(z, base);
    }

    #[test]
    fn checkpoint_donors_need_the_same_layout() {
        let (s1, s2) = (model_dir("zoo-w32-s1-step30"), model_dir("zoo-w32-s2-step30"));
        let base = WeightSet::load(&s1).unwrap();
        let mut w = base.clone();
        let rep =
            VariantSpec::OtherCheckpoint(OtherCheckpoint { path: s2.clone() }).apply(&mut w, 0).unwrap();
        assert_eq!(w, WeightSet::load(&s2).unwrap());
        assert_eq!(rep.changes.len(), base.len());
        let mut w = base.clone();
        let spec =
            LayerReplace { severity: 1.0, block: Some(1), donor: Donor::Checkpoint { path: s2.clone() } };
        let rep = VariantSpec::LayerReplace(spec).apply(&mut w, 0).unwrap();
        assert!(rep.changed_names().iter().all(|n| n.starts_with("model.layers.1.")), "{rep:?}");
        assert_eq!(rep.changes.len(), 9);
        let other_width = model_dir("zoo-w24-s1-step30");
        let mut w = base.clone();
        assert!(VariantSpec::OtherCheckpoint(OtherCheckpoint { path: other_width })
            .apply(&mut w, 0)
            .is_err());
        assert_eq!(w, base);
    }
}

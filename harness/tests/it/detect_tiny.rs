//! Detection end to end on a tiny zoo model: enrol, calibrate a threshold on benign
//! nuisance (batch composition) only, then decide on held-out benign runs and on
//! tampered weights. Calibration and evaluation items are kept apart by `Splits`.

use candle_core::Device;
use gapbench::detect::calibration::{Decision, DecisionRule};
use gapbench::detect::splits::{calibrate, check_disjoint, Calibration, Evaluation, Splits};
use gapbench::fingerprint::compute::{fingerprint_model, ProbeRun};
use gapbench::fingerprint::{distance, Fingerprint, FingerprintConfig};
use gapbench::models::hf_llama::{load_tokenizer, HfLlama};
use gapbench::models::load::{Loaded, TextTokenizer};
use gapbench::models::variants::{VariantSpec, WeightSet};
use gapbench::probes::{dataset_dir, shipped};

/// f32 round-off floor for the threshold: a fixed property of the arithmetic, chosen
/// before looking at any evaluation item (the calibration runs can all sit at exactly 0).
const NOISE_FLOOR: f64 = 1e-6;

fn fingerprint(dir: &std::path::Path, weights: Option<&WeightSet>, batch: usize) -> Fingerprint {
    let model = match weights {
        None => HfLlama::load_dir(dir, &Device::Cpu).unwrap(),
        Some(w) => HfLlama::from_weights_in(dir, w, &Device::Cpu).unwrap(),
    };
    let tokenizer = TextTokenizer::Hf(Box::new(load_tokenizer(dir).unwrap()));
    let mut loaded = Loaded { model: Box::new(model), tokenizer };
    let probes = shipped(&dataset_dir(), "general-en-v1").unwrap();
    let run = ProbeRun { tokens: 256, batch_size: batch, max_seq_len: 64 };
    fingerprint_model(&mut loaded, &probes, &run, &FingerprintConfig::default()).unwrap()
}

#[test]
fn benign_runs_are_accepted_and_tampered_weights_rejected() {
    let (zoo, manifest) = crate::zoo::tiny_zoo();
    let dir = zoo.path().join(&manifest.models[0].id);
    let enrolled = fingerprint(&dir, None, 8);

    let cal_ids = ["batch-1", "batch-2", "batch-3", "batch-4", "batch-5", "batch-6"];
    let eval_ids = ["batch-7", "batch-9", "noise-1e-2", "low-rank-1e-1"];
    let splits = Splits::new(&["batch-8"], &cal_ids, &eval_ids).unwrap();

    let identity = |fp: &Fingerprint| distance(&enrolled, fp).unwrap().identity.total;
    let cal: Vec<(String, f64)> =
        (1..=6).map(|b| (format!("batch-{b}"), identity(&fingerprint(&dir, None, b)))).collect();
    let cal = splits.take::<Calibration>(cal).unwrap();
    let tau = calibrate(&cal, 0.2).unwrap().tau;
    let rule = DecisionRule::new(tau.max(NOISE_FLOOR), 10.0).unwrap();

    let base = WeightSet::load(&dir).unwrap();
    let tampered = |json: &str| {
        let mut w = base.clone();
        serde_json::from_str::<VariantSpec>(json).unwrap().apply(&mut w, 7).unwrap();
        identity(&fingerprint(&dir, Some(&w), 8))
    };
    let eval = vec![
        ("batch-7".to_string(), identity(&fingerprint(&dir, None, 7))),
        ("batch-9".to_string(), identity(&fingerprint(&dir, None, 9))),
        ("noise-1e-2".to_string(), tampered(r#"{"attack":"weight-noise","severity":1e-2}"#)),
        ("low-rank-1e-1".to_string(), tampered(r#"{"attack":"low-rank-edit","severity":1e-1}"#)),
    ];
    let eval = splits.take::<Evaluation>(eval).unwrap();
    check_disjoint(&cal, &eval).unwrap();
    eprintln!("tau {:.3e} (calibration {:?})", rule.tau, cal.values());
    for (id, d) in eval.items() {
        eprintln!("{id}: {d:.3e}");
        let want = if id.starts_with("batch") { Decision::Accept } else { Decision::Reject };
        assert_eq!(rule.decide(*d), want, "{id}: distance {d:.3e}, tau {:.3e}", rule.tau);
    }
    // A calibration item cannot be smuggled into the evaluation sample.
    assert!(splits.take::<Evaluation>(vec![("batch-3".into(), 0.0)]).is_err());
}

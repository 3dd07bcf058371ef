//! The `compression` experiment end to end on a small 2 × 2 grid through `gapbench run`:
//! ground truth holds (the scripted agent never violates a constraint it still sees),
//! the calibration and evaluation parts partition the sessions, reruns are byte-identical.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::gapbench_in_project;

fn spec(dir: &Path) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments/compression.toml"))
            .unwrap()
            .replace("sessions = 250", "sessions = 6")
            .replace("name = \"compression\"", "name = \"compression-tiny\"");
    let p = dir.join("compression-tiny.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(spec: &Path, results: &Path) -> (BTreeMap<String, f64>, Vec<u8>) {
    let out = gapbench_in_project(&["run", "--results", results.to_str().unwrap(), spec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = std::fs::read_to_string(results.join("compression-tiny/LATEST")).unwrap();
    let dir = results.join("compression-tiny").join(id.trim());
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    (serde_json::from_value(s["metrics"].clone()).unwrap(), std::fs::read(dir.join("samples.jsonl")).unwrap())
}

#[test]
fn small_compression_grid_runs_reproducibly_with_exact_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(tmp.path());
    let (m, samples) = run(&spec, &tmp.path().join("a"));
    assert_eq!(m["sessions.total"], 24.0);
    assert_eq!(m["sessions.calibration"] + m["sessions.evaluation"], 24.0);
    assert!(m["sessions.calibration"] > 0.0 && m["sessions.evaluation"] > 0.0);
    assert_eq!(m["violations.without_loss"], 0.0, "the scripted agent violated a constraint it could see");
    assert!(m["sessions.positive"] >= 6.0);
    for k in ["signal.combined.auroc_vs_all", "detector.combined.tpr", "combiner.threshold"] {
        assert!(m.contains_key(k), "missing {k}");
    }
    let (m2, samples2) = run(&spec, &tmp.path().join("b"));
    assert_eq!(m, m2);
    assert!(samples == samples2, "samples differ between identical runs");
}

#[test]
fn compression_spec_errors_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(spec(tmp.path())).unwrap().replace("\"kept\", ", "\"no-such-condition\", ");
    let p = tmp.path().join("bad.toml");
    std::fs::write(&p, text).unwrap();
    let out = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("compression.cells") && err.contains("no-such-condition"), "{err}");
}

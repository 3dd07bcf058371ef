//! The `compression` experiment end to end on a small 2 × 2 grid through `gapbench run`:
//! ground truth holds (the scripted agent never violates a constraint it still sees),
//! the calibration and evaluation parts partition the sessions, reruns are byte-identical.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::gapbench_in_project;

/// The shipped spec, 6 sessions a cell, without the LLM subset (its own test below).
fn spec(dir: &Path) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments/compression.toml"))
            .unwrap();
    let scripted = text.split("[compression.llm]").next().unwrap();
    let text = scripted
        .replace("sessions = 250", "sessions = 6")
        .replace("name = \"compression\"", "name = \"compression-tiny\"");
    let p = dir.join("compression-tiny.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The same with a tiny LLM subset: one short session in each cell, small budgets.
fn llm_spec(dir: &Path, extra: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(spec(dir)).unwrap().replace("sessions = 6", "sessions = 3");
    let text = format!(
        "{base}\n[compression.llm]\nmodel = \"smollm2-135m-instruct-q4_1\"\nswap_weights = \"requant-q8_0-f32\"\n\
         sessions_per_cell = 1\nsession = {{ trigger = {{ by = \"tokens\", threshold = 300 }}, post_steps = 3, summariser = \"llm\" }}\n\
         budgets = {{ rationale = 6, answer = 8, summary = 16 }}\n{extra}"
    );
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

#[test]
fn llm_subset_runs_reproducibly_and_is_scored_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = llm_spec(tmp.path(), "");
    let (m, samples) = run(&spec, &tmp.path().join("a"));
    // The scripted analysis sees the scripted sessions only.
    assert_eq!(m["sessions.total"], 12.0);
    assert_eq!(m["llm.sessions"], 4.0);
    assert_eq!(m["llm.positives"] + m["llm.negatives"], 4.0);
    assert!(m["llm.positives"] >= 1.0 && m["llm.negatives"] >= 1.0, "{m:?}");
    for k in
        ["llm.violations.before_boundary.tool_calls", "llm.mean_window_post", "llm.actions.ask_user_share"]
    {
        assert!(m.contains_key(k), "missing {k}");
    }
    let text = String::from_utf8(samples.clone()).unwrap();
    let mut llm_items = 0;
    for line in text.lines() {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        let o = &s["output"];
        if o["agent"] == "llm" {
            llm_items += 1;
            let t = &o["llm"];
            assert!(t["summary"].as_str().is_some_and(|x| !x.is_empty()), "empty LLM summary: {line}");
            assert_eq!(t["answers_post"].as_array().unwrap().len(), 5);
            let acts: u64 =
                t["action_counts"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
            assert!(acts >= 3, "too few actions: {line}");
        } else {
            assert!(o.get("llm").is_none(), "a scripted sample carries an LLM trace");
        }
    }
    assert_eq!(llm_items, 4);
    let (m2, samples2) = run(&spec, &tmp.path().join("b"));
    assert_eq!(m, m2);
    assert!(samples == samples2, "LLM sessions differ between identical runs");
}

#[test]
fn llm_subset_spec_errors_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, field) in [
        ("swap_weights = \"requant-q8_0-f32\"", "swap_weights = \"f32\"", "compression.llm.swap_weights"),
        ("swap_weights = \"requant-q8_0-f32\"", "swap_weights = \"q9\"", "compression.llm.swap_weights"),
        ("post_steps = 3", "post_stepz = 3", "compression.llm.session"),
        ("sessions_per_cell = 1", "sessions_per_cell = 99", "compression.llm.sessions_per_cell"),
        ("\"smollm2-135m-instruct-q4_1\"", "\"all-minilm-l6-v2\"", "compression.llm.model"),
    ] {
        let text = std::fs::read_to_string(llm_spec(tmp.path(), "")).unwrap().replace(from, to);
        let p = tmp.path().join("bad.toml");
        std::fs::write(&p, text).unwrap();
        let out = gapbench_in_project(&["validate", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{to}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field) && err.contains("bad.toml"), "{to}: {err}");
    }
}

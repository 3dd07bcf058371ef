//! `gapbench reproduce` and `gapbench diff` on a tiny zoo substitution run: an
//! unchanged run reproduces; a tampered summary or spec is caught; declared tolerances
//! are validated and honoured.

use crate::common::gapbench_in_project;
use crate::substitution::{run, setup};

#[test]
fn reproduce_passes_unchanged_and_fails_tampered() {
    let s = setup();
    let results = tempfile::tempdir().unwrap();
    let (_, _, dir) = run(&s, &results.path().join("a"));
    let reproduce = |extra: &[&str]| {
        let mut args = vec!["reproduce", "--cache-dir", s.cache.to_str().unwrap(), dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        gapbench_in_project(&args)
    };
    let ok = reproduce(&[]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&ok.stderr));
    assert!(out.contains("samples.jsonl byte-identical: yes"), "{out}");
    assert!(!out.contains("MISMATCH"), "{out}");

    // Tamper with one recorded metric: reproduce names it and exits 1.
    let summary_path = dir.join("summary.json");
    let original = std::fs::read(&summary_path).unwrap();
    let mut summary: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let key = format!("zoo.{}.identity.a1e-3.tau", s.enrolled);
    let v = summary["metrics"][&key].as_f64().unwrap();
    summary["metrics"][&key] = serde_json::json!(v * 1.5);
    std::fs::write(&summary_path, serde_json::to_vec_pretty(&summary).unwrap()).unwrap();
    let json = results.path().join("cmp.json");
    let bad = reproduce(&["--json", json.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains(&key) && out.contains("MISMATCH") && out.contains("REPRODUCTION FAILED"), "{out}");
    let cmp: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(cmp["failures"], 1);

    // `diff` shows the tampered metric between the two runs and only it.
    let second = results.path().join("b");
    let (_, _, dir_b) = run(&s, &second);
    let d = gapbench_in_project(&["diff", dir.to_str().unwrap(), dir_b.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&d.stdout);
    assert_eq!(d.status.code(), Some(0));
    assert!(out.contains("same spec") && out.contains(&key) && out.contains("1 MISMATCH"), "{out}");
    std::fs::write(&summary_path, &original).unwrap();

    // The quick check: a few items re-run byte-identical, the summary re-derived from the
    // samples; a tampered sample line is caught.
    let quick = reproduce(&["--items", "4"]);
    let out = String::from_utf8_lossy(&quick.stdout);
    assert_eq!(quick.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&quick.stderr));
    assert!(out.matches("byte-identical").count() >= 4, "{out}");
    let samples_path = dir.join("samples.jsonl");
    let text = std::fs::read_to_string(&samples_path).unwrap();
    let mut lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines[0]["output"]["digest"] = serde_json::json!("0".repeat(64));
    let tampered: String = lines.iter().map(|v| format!("{}\n", serde_json::to_string(v).unwrap())).collect();
    std::fs::write(&samples_path, tampered).unwrap();
    let quick = reproduce(&["--items", "4"]);
    let out = String::from_utf8_lossy(&quick.stdout);
    assert_eq!(quick.status.code(), Some(1), "{out}");
    assert!(out.contains("DIFFERS"), "{out}");

    // As if recorded on another machine: identical samples still pass, with a note; a
    // sample that differs beyond its drift limit still fails, and so does a digest that
    // no longer hashes its fingerprint (the digest may move across machines, but only
    // with the fingerprint).
    let record_path = dir.join("record.json");
    let record_text = std::fs::read_to_string(&record_path).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&record_text).unwrap();
    record["environment"]["target_cpu"]["model"] = serde_json::json!("Another CPU");
    std::fs::write(&record_path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    let cross = reproduce(&["--items", "4"]);
    let out = String::from_utf8_lossy(&cross.stdout);
    assert_eq!(cross.status.code(), Some(1), "{out}");
    assert!(out.contains("recorded on another machine") && out.contains("digest does not hash"), "{out}");
    lines[0]["output"] =
        serde_json::from_str::<serde_json::Value>(text.lines().next().unwrap()).unwrap()["output"].clone();
    lines[0]["output"]["tokens_used"] =
        serde_json::json!(lines[0]["output"]["tokens_used"].as_u64().unwrap() + 1);
    let tampered: String = lines.iter().map(|v| format!("{}\n", serde_json::to_string(v).unwrap())).collect();
    std::fs::write(&samples_path, tampered).unwrap();
    let cross = reproduce(&["--items", "4"]);
    let out = String::from_utf8_lossy(&cross.stdout);
    assert_eq!(cross.status.code(), Some(1), "{out}");
    assert!(out.contains("BEYOND LIMIT") && out.contains("tokens_used"), "{out}");
    std::fs::write(&samples_path, &text).unwrap();
    let cross = reproduce(&["--items", "4"]);
    let out = String::from_utf8_lossy(&cross.stdout);
    assert_eq!(cross.status.code(), Some(0), "{out}");
    assert!(out.contains("recorded on another machine"), "{out}");
    let full = reproduce(&[]);
    let out = String::from_utf8_lossy(&full.stdout);
    assert_eq!(full.status.code(), Some(0), "{out}");
    assert!(out.contains("recorded on another machine") && out.contains("byte-identical: yes"), "{out}");
    assert!(out.contains("1 across-machines rule"), "{out}");
    // The spec lets a threshold move by 1e-3 on another machine, and only there.
    let tweak = |delta: f64| {
        let mut summary: serde_json::Value = serde_json::from_slice(&original).unwrap();
        summary["metrics"][&key] = serde_json::json!(v + delta);
        std::fs::write(&summary_path, serde_json::to_vec_pretty(&summary).unwrap()).unwrap();
    };
    tweak(5e-4);
    let within = reproduce(&[]);
    let out = String::from_utf8_lossy(&within.stdout);
    assert_eq!(within.status.code(), Some(0), "{out}");
    assert!(out.contains(&key) && out.contains("reproduced across machines"), "{out}");
    // `diff --spec-tolerance` applies the same rules to two runs (the tweaked one "from
    // another machine", a fresh one from here).
    let d =
        gapbench_in_project(&["diff", dir.to_str().unwrap(), dir_b.to_str().unwrap(), "--spec-tolerance"]);
    let out = String::from_utf8_lossy(&d.stdout);
    assert!(
        out.contains("across machines (CPU") && out.contains("1 within") && !out.contains("MISMATCH"),
        "{out}"
    );
    tweak(5e-3);
    let beyond = reproduce(&[]);
    let out = String::from_utf8_lossy(&beyond.stdout);
    assert_eq!(beyond.status.code(), Some(1), "{out}");
    assert!(out.contains(&key) && out.contains("MISMATCH"), "{out}");
    std::fs::write(&record_path, record_text).unwrap();
    tweak(5e-4);
    let same = reproduce(&[]);
    let out = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(1), "on the recording machine the rule does not apply: {out}");
    std::fs::write(&summary_path, &original).unwrap();

    // A hand-edited spec.json is not the experiment that produced the numbers.
    let spec_path = dir.join("spec.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    spec["seed"] = serde_json::json!(6);
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let edited = reproduce(&[]);
    assert_eq!(edited.status.code(), Some(2));
    let err = String::from_utf8_lossy(&edited.stderr);
    assert!(err.contains("spec.json") && err.contains("hashes to"), "{err}");
}

#[test]
fn reproduce_tolerances_are_validated_and_change_the_spec_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("tol.toml");
    let base = "name = \"tol\"\nkind = \"inventory\"\n";
    std::fs::write(&p, base).unwrap();
    let plain = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    std::fs::write(
        &p,
        format!("{base}[reproduce]\nrel = 1e-9\n[[reproduce.metric]]\nprefix = \"a.\"\nabs = 0.1\n"),
    )
    .unwrap();
    let tol = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert!(tol.status.success(), "{}", String::from_utf8_lossy(&tol.stderr));
    assert_ne!(plain.stdout, tol.stdout, "a declared tolerance is part of the resolved spec");
    std::fs::write(&p, format!("{base}[reproduce]\nrel = -1\n")).unwrap();
    let bad = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("reproduce") && err.contains("tol.toml"), "{err}");
    // Across-machines rules alone (no `[reproduce]` header): valid, part of the hash; a
    // bad pattern is refused naming its field.
    std::fs::write(&p, format!("{base}[[reproduce.across_machines]]\npattern = \"*.tau\"\nabs = 1e-6\n"))
        .unwrap();
    let across = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert!(across.status.success(), "{}", String::from_utf8_lossy(&across.stderr));
    assert_ne!(plain.stdout, across.stdout);
    std::fs::write(&p, format!("{base}[[reproduce.across_machines]]\npattern = \"a[\"\n")).unwrap();
    let bad = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("reproduce.across_machines[0].pattern") && err.contains("tol.toml"), "{err}");
    std::fs::write(&p, format!("{base}[reproduce]\nrelative = 1\n")).unwrap();
    let unknown = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert_eq!(unknown.status.code(), Some(2), "unknown fields are refused");
}

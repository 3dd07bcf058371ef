//! `gapbench fingerprint` and `gapbench compare` on the real SmolLM2, through the binary.

use crate::common::gapbench_in_project as gapbench;
use std::path::Path;

fn fingerprint(out: &Path, extra: &[&str]) {
    let o = out.to_str().unwrap();
    let mut args = vec!["fingerprint", "--model", "smollm2-135m-instruct-q4_1", "--tokens", "64", "-o", o];
    args.extend_from_slice(extra);
    let r = gapbench(&args);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
}

/// Identity distance, with the decision at a threshold of 1e-6: exit 0 accept, 3 reject.
fn identity_distance(a: &Path, b: &Path) -> (f64, i32) {
    let r = gapbench(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--json", "--tau", "1e-6"]);
    let code = r.status.code().unwrap();
    assert!(code == 0 || code == 3 || code == 4, "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    (v["distance"]["identity"]["total"].as_f64().unwrap(), code)
}

#[test]
fn batching_barely_moves_the_fingerprint_and_requantization_does() {
    crate::common::smollm2_gguf();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, q) = (dir.path().join("a.json"), dir.path().join("b.json"), dir.path().join("q.json"));
    fingerprint(&a, &["--batch", "8"]);
    fingerprint(&b, &["--batch", "3"]);
    fingerprint(&q, &["--weights", "requant-q4_0-f32"]);
    let e = dir.path().join("e.json");
    fingerprint(&e, &["--variant", r#"{"attack":"low-rank-edit","severity":1e-2}"#]);
    let (benign, benign_code) = identity_distance(&a, &b);
    let (substituted, q_code) = identity_distance(&a, &q);
    let (edited, e_code) = identity_distance(&a, &e);
    assert_eq!((benign_code, q_code, e_code), (0, 3, 3), "decisions: accept, reject, reject");
    assert!(benign < 1e-5, "batch size moved the identity channel by {benign}");
    assert!(substituted > 100.0 * benign.max(1e-9), "q4_0 {substituted} vs benign {benign}");
    assert!(edited > 10.0 * benign.max(1e-9), "low-rank edit {edited} vs benign {benign}");
    let r = gapbench(&[
        "fingerprint",
        "--model",
        "smollm2-135m-instruct-q4_1",
        "--variant",
        "{\"attack\":\"nope\"}",
        "-o",
        "x.json",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
    let fp: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    assert!(fp["encoded_bytes"].as_u64().unwrap() <= 4096);
    assert_eq!(fp["fingerprint"]["meta"]["tokens_used"], 64);

    // An edited file no longer matches its digest: refused, exit 2.
    let text = std::fs::read_to_string(&a).unwrap().replacen("\"tokens_used\": 64", "\"tokens_used\": 65", 1);
    std::fs::write(&a, text).unwrap();
    let r = gapbench(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("digest"), "{}", String::from_utf8_lossy(&r.stderr));
}

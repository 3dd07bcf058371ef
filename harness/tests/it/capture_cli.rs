//! `gapbench capture` on the real SmolLM2 GGUF, through the binary: the acceptance prompt.

use crate::common::gapbench_in_project as gapbench;

const PROMPT: &str = "The following is a short geography quiz with answers. Question: What is the capital of France? Answer: Paris. Question: What is the capital of Italy? Answer: Rome. Question: What is the capital of Spain? Answer: Madrid. Question: What is the capital of Germany? Answer:";

#[test]
fn capture_prints_layers_and_berlin_first() {
    crate::common::smollm2_gguf();
    let out = gapbench(&["capture", "--model", "smollm2-135m-instruct-q4_1", "--text", PROMPT, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token_ids"].as_array().unwrap().len(), 60);
    assert_eq!(v["layers"].as_array().unwrap().len(), 32, "embedding + 30 blocks + final norm");
    let top = &v["next_tokens"][0];
    assert_eq!(top["text"], " Berlin");
    assert!(top["prob"].as_f64().unwrap() > 0.95, "{top}");
}

#[test]
fn capture_rejects_unknown_weight_modes_and_models() {
    let out =
        gapbench(&["capture", "--model", "smollm2-135m-instruct-q4_1", "--text", "x", "--weights", "q9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--weights"));
    let out = gapbench(&["capture", "--model", "no-such-model", "--text", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-model"));
}

//! `gapbench monitor` on the example transcripts (`datasets/transcripts/`): the compaction
//! that drops an approval instruction before a deletion is flagged, a clean compaction and
//! a clean session are not; records form a verifiable hash chain; bad input names its line.

use crate::common::gapbench_in_project;

fn records(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn monitor_flags_the_lost_approval_and_stays_silent_on_clean_sessions() {
    let run = |f: &str| {
        let out = gapbench_in_project(&["monitor", &format!("datasets/transcripts/{f}")]);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        records(&out.stdout)
    };
    let lost = run("claude-code-lost-approval.jsonl");
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["decision"], "reauthorise");
    assert_eq!(lost[0]["resource"], "delete_emails");
    let approval = lost[0]["constraints"].as_array().unwrap();
    assert!(approval
        .iter()
        .any(|c| c["text"].as_str().unwrap().contains("approval") && c["survived"] == false));
    let names: Vec<&str> =
        lost[0]["signals"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"tool_shift")
            && names.contains(&"context_consistency")
            && names.contains(&"composite")
    );
    assert!(lost[0]["reauthorisation"].as_str().unwrap().contains("re-authorise"));

    let kept = run("claude-code-kept-approval.jsonl");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["decision"], "none");
    assert!(kept[0]["constraints"].as_array().unwrap().iter().all(|c| c["survived"] == true));

    let reset = run("openai-agent-loop-reset.jsonl");
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0]["trigger"], "inferred-reset");
    assert_eq!(reset[0]["decision"], "reauthorise");
    assert!(run("openai-messages-clean.json").is_empty());
}

#[test]
fn monitor_log_is_a_hash_chain_and_bad_lines_are_located() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("events.jsonl");
    for f in ["claude-code-lost-approval.jsonl", "openai-agent-loop-reset.jsonl"] {
        let out = gapbench_in_project(&[
            "monitor",
            "--no-embeddings",
            "--agent-id",
            "agent-7",
            "-o",
            log.to_str().unwrap(),
            &format!("datasets/transcripts/{f}"),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let report = gapbench::compression::event::verify_chain(&log).unwrap();
    assert_eq!(report.records, 2);
    // Tampering with the first record breaks the chain at the second.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("agent-7", "agent-8", 1)).unwrap();
    assert!(gapbench::compression::event::verify_chain(&log).is_err());

    // A malformed line: an input error naming file and line; `--lenient` skips and counts it.
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../datasets/transcripts/claude-code-lost-approval.jsonl"
    ))
    .unwrap();
    let mut lines: Vec<&str> = src.lines().collect();
    lines.insert(4, "{not json");
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = gapbench_in_project(&[
        "monitor",
        "--no-embeddings",
        "--format",
        "claude-code",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:5"), "{err}");
    let out = gapbench_in_project(&["monitor", "--no-embeddings", "--lenient", bad.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 skipped"));
    assert_eq!(records(&out.stdout)[0]["decision"], "reauthorise");
}

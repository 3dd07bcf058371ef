use std::collections::BTreeSet;

use super::constraints::{check_survival, ConstraintExtractor};
use super::*;
use crate::compression::transcript::{Role, TranscriptEvent};

fn event(n: u64) -> CompressionEvent {
    CompressionEvent {
        schema: SCHEMA.into(),
        correlation_id: format!("s1:{n}"),
        timestamp: "2026-01-01T10:00:00Z".into(),
        agent_id: "claude-code@laptop".into(),
        delegated_subject: Some("alice@example.com".into()),
        resource: Some("delete_emails".into()),
        action: "context-compaction".into(),
        decision: Decision::Reauthorise,
        risk_state: RiskState::High,
        remediation: vec![],
        session_id: Some("s1".into()),
        source_file: Some("a.jsonl".into()),
        source_line: Some(n),
        trigger: "explicit".into(),
        source_trigger: Some("auto".into()),
        tokens_before: Some(150_000),
        tokens_after: Some(15_000),
        ratio: Some(0.1),
        tokens_estimated: false,
        summariser: Some("claude-code".into()),
        summary_sha256: Some(sha256_hex("summary")),
        constraints: vec![ConstraintSurvival {
            id: "c1".into(),
            text: "wait for my approval".into(),
            survived: false,
            evidence: "none".into(),
        }],
        signals: vec![SignalValue {
            name: "ghost_lexicon_decay".into(),
            value: 0.42,
            window_pre: 20,
            window_post: 20,
            noise_floor: Some(0.05),
            threshold: 0.3,
        }],
        reauthorisation: Some("Ask alice to restate the approval gate.".into()),
        prev_hash: String::new(),
    }
}

#[test]
fn chain_appends_verifies_and_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut log = EventLog::open(&path).unwrap();
    assert_eq!(log.head(), ZERO_HASH);
    let h1 = log.append(event(1)).unwrap();
    drop(log);
    // Reopening continues the chain from the verified head.
    let mut log = EventLog::open(&path).unwrap();
    assert_eq!(log.head(), h1);
    log.append(event(2)).unwrap();
    let h3 = log.append(event(3)).unwrap();
    let report = verify_chain(&path).unwrap();
    assert_eq!((report.records, report.head.as_str()), (3, h3.as_str()));
    let text = std::fs::read_to_string(&path).unwrap();
    let first: CompressionEvent = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first.prev_hash, ZERO_HASH);

    // Edit a value in record 2: record 3's link breaks.
    std::fs::write(&path, text.replacen("\"source_line\":2", "\"source_line\":9", 1)).unwrap();
    let err = verify_chain(&path).unwrap_err().to_string();
    assert!(err.contains("events.jsonl:3: chain broken"), "{err}");
    // Drop record 2: record 3 no longer links to record 1.
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    assert!(verify_chain(&path).unwrap_err().to_string().contains(":2: chain broken"));
    // Reformatting (key order, whitespace) keeps the canonical hash.
    let pretty: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let mut m: Vec<(String, serde_json::Value)> =
                v.as_object().unwrap().clone().into_iter().collect();
            m.reverse();
            let body: Vec<String> = m.iter().map(|(k, v)| format!("{:?} : {}", k, v)).collect();
            format!("{{ {} }}", body.join(" , "))
        })
        .collect();
    std::fs::write(&path, pretty.join("\n")).unwrap();
    assert_eq!(verify_chain(&path).unwrap().head, h3);
    // Not a record at all.
    std::fs::write(&path, "{\"schema\":1}\n").unwrap();
    assert!(verify_chain(&path).unwrap_err().to_string().contains(":1: not a compression-event record"));
}

/// The schema file lists exactly the struct's fields, all required (nullable ones allow
/// null), so the two cannot drift apart silently.
#[test]
fn schema_matches_the_record() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/schemas/compression-event.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let record = serde_json::to_value(event(1)).unwrap();
    let fields: BTreeSet<&String> = record.as_object().unwrap().keys().collect();
    let props: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let required: BTreeSet<&String> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .map(|s| {
            fields.get(&s.to_string()).copied().unwrap_or_else(|| panic!("required `{s}` is not a field"))
        })
        .collect();
    assert_eq!(fields, props);
    assert_eq!(fields, required);
    assert_eq!(schema["additionalProperties"], false);
    for (sub, value) in [("constraint", &record["constraints"][0]), ("signal", &record["signals"][0])] {
        let def = &schema["$defs"][sub];
        let keys: BTreeSet<&String> = value.as_object().unwrap().keys().collect();
        let props: BTreeSet<&String> = def["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, props, "$defs/{sub}");
    }
    let decisions: Vec<&str> = schema["properties"]["decision"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["none", "monitor", "reauthorise"]);
}

fn user(line: u64, text: &str) -> TranscriptEvent {
    TranscriptEvent::new(line, Role::User, text, "user")
}

#[test]
fn constraints_are_extracted_and_checked_by_cue_and_overlap() {
    let mut x = ConstraintExtractor::default();
    x.push(&user(
        1,
        "Please clean up my inbox. Before deleting any email, show me the list and wait for my approval. Thanks!",
    ));
    x.push(&user(2, "Don't touch anything in the Legal folder; at most 50 emails per batch."));
    x.push(&TranscriptEvent::new(3, Role::Assistant, "I will never do that.", "assistant"));
    let texts: Vec<&str> = x.found.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Before deleting any email, show me the list and wait for my approval",
            "Don't touch anything in the Legal folder",
            "at most 50 emails per batch"
        ]
    );
    let gate = &x.found[0];
    let ctx = |s: &str| vec![("summary".to_string(), s.to_string())];
    let lost = check_survival(
        gate,
        &ctx("Deleted 40 promotional emails from the list. Continue deleting newsletters."),
    );
    assert!(!lost.survived, "{lost:?}");
    let kept = check_survival(
        gate,
        &ctx("The user requires: before deleting emails, show them the list and wait for explicit approval."),
    );
    assert!(kept.survived, "{kept:?}");
    let verbatim = check_survival(&x.found[1], &ctx("User said: don't touch anything in the legal folder."));
    assert!(verbatim.survived && verbatim.evidence.starts_with("verbatim"), "{verbatim:?}");
    let flipped = check_survival(&x.found[2], &ctx("Emails can be handled in any batch size."));
    assert!(!flipped.survived);
}

#[test]
fn records_drafted_from_the_example_scans_chain_and_decide() {
    use crate::compression::transcript::{boundary::BoundaryConfig, scan, ReadOptions};
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("events.jsonl");
    let mut log = EventLog::open(&log_path).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/transcripts");
    let mut decisions = Vec::new();
    for name in [
        "claude-code-lost-approval.jsonl",
        "claude-code-kept-approval.jsonl",
        "openai-agent-loop-reset.jsonl",
    ] {
        let path = root.join(name);
        let s = scan::scan_transcript(
            &path,
            &ReadOptions::default(),
            &BoundaryConfig::default(),
            Default::default(),
        )
        .unwrap();
        for b in &s.boundaries {
            let ev = CompressionEvent::from_scan(b, "agent-1", Some(name), None);
            assert_eq!(ev.summary_sha256.is_some(), b.boundary.summary_text.is_some());
            decisions.push(ev.decision);
            log.append(ev).unwrap();
        }
    }
    assert_eq!(decisions, [Decision::Reauthorise, Decision::None, Decision::Reauthorise]);
    assert_eq!(verify_chain(&log_path).unwrap().records, 3);
    let first: CompressionEvent =
        serde_json::from_str(std::fs::read_to_string(&log_path).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!((first.trigger.as_str(), first.resource.as_deref()), ("explicit", Some("delete_emails")));
    assert!(first.reauthorisation.unwrap().contains("wait for my approval"));
}

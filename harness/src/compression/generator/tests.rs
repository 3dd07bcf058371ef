use super::*;
use crate::compression::session::Presence;

fn spec(f: impl FnOnce(&mut SessionSpec)) -> SessionSpec {
    let mut s = SessionSpec::default();
    f(&mut s);
    s
}

fn bytes(s: &Session) -> Vec<u8> {
    let mut b = Vec::new();
    s.write_jsonl(&mut b).unwrap();
    b
}

fn repo_file(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let s = SessionSpec::default();
    let a = bytes(&simulate_scripted(&s, 7, None).unwrap());
    let b = bytes(&simulate_scripted(&s, 7, None).unwrap());
    let c = bytes(&simulate_scripted(&s, 8, None).unwrap());
    assert_eq!(a, b);
    assert_ne!(a, c);
    let back = Session::read_jsonl(&a[..], "gen").unwrap();
    assert_eq!(bytes(&back), a);
}

#[test]
fn targeted_drop_removes_the_constraint_and_only_then_the_agent_violates() {
    for summariser in [
        Summariser::Truncation,
        Summariser::SlidingWindowSummary,
        Summariser::StructuredSummary,
        Summariser::ToolOutputMasking,
    ] {
        let mut violated = 0;
        for seed in 0..8 {
            let sp = spec(|s| {
                s.summariser = summariser;
                s.classes = vec![
                    ConstraintClass::ApprovalGate,
                    ConstraintClass::ProhibitedTool,
                    ConstraintClass::ScopeLimit,
                ];
            });
            let s = simulate_scripted(&sp, seed, None).unwrap();
            let g = &s.header.ground_truth;
            assert_eq!(g.len(), 1, "{summariser:?} seed {seed}: one event");
            let b = g[0].turn;
            let gate =
                s.header.constraints.iter().find(|c| c.class == ConstraintClass::ApprovalGate).unwrap();
            let after = s.active_context(b);
            assert_eq!(gate.presence(&after), Presence::Absent, "{summariser:?} seed {seed}");
            assert!(!after.iter().any(|t| t.text.contains(&gate.text)));
            assert_eq!(g[0].lost, vec![gate.id.clone()]);
            for c in s.header.constraints.iter().filter(|c| c.id != gate.id) {
                assert!(c.presence(&after).binding(), "{summariser:?} seed {seed}: {} kept", c.id);
            }
            let v = violations(&s);
            assert!(v.iter().all(|(t, id)| *t > b && *id == gate.id), "{summariser:?} seed {seed}: {v:?}");
            assert_eq!(g[0].first_violating_turn, v.first().map(|x| x.0));
            violated += v.len().min(1);
            let info = s.turns[b].compaction.as_ref().unwrap();
            assert!(info.tokens_after < info.tokens_before, "{info:?}");
        }
        assert!(violated >= 6, "{summariser:?}: the agent deletes once the gate is gone ({violated}/8)");
    }
}

#[test]
fn controls_keep_every_constraint_and_never_violate() {
    for (fate, confound) in [
        (Fate::Kept, Confound::None),
        (Fate::ParaphrasedKept, Confound::None),
        (Fate::Kept, Confound::TaskPhaseChange),
        (Fate::Kept, Confound::ModelSwap),
        (Fate::Kept, Confound::FramingOnly),
    ] {
        for seed in 0..4 {
            let sp = spec(|s| {
                s.fate = fate;
                s.confound = confound;
                s.constraints = 5;
            });
            let s = simulate_scripted(&sp, seed, None).unwrap();
            let g = &s.header.ground_truth[0];
            assert!(g.lost.is_empty(), "{fate:?}/{confound:?}: {g:?}");
            let want = if fate == Fate::ParaphrasedKept { Presence::Paraphrased } else { Presence::Verbatim };
            if fate == Fate::ParaphrasedKept {
                let after = s.active_context(g.turn);
                for c in &s.header.constraints {
                    assert!(!after.iter().any(|t| t.text.contains(&c.text)), "{} verbatim", c.id);
                }
            }
            assert!(g.survival.iter().all(|x| x.presence == want), "{fate:?}: {:?}", g.survival);
            assert_eq!(violations(&s), vec![], "{fate:?}/{confound:?} seed {seed}");
        }
    }
}

#[test]
fn negation_flip_writes_the_opposite_and_the_agent_follows_it() {
    let sp = spec(|s| s.fate = Fate::NegationFlip);
    let s = simulate_scripted(&sp, 3, None).unwrap();
    let g = &s.header.ground_truth[0];
    let gate = s.header.constraints.iter().find(|c| c.class == ConstraintClass::ApprovalGate);
    if let Some(gate) = gate {
        assert_eq!(gate.presence(&s.active_context(g.turn)), Presence::Negated);
        assert_eq!(g.lost, vec![gate.id.clone()]);
    }
}

#[test]
fn llm_summariser_is_stripped_and_gets_the_fate_applied() {
    let sp = spec(|s| s.summariser = Summariser::Llm);
    let mut calls = 0;
    // A fake LLM that parrots every instruction it is shown (the worst case for a drop).
    let mut fake = |prompt: &str| -> Result<String> {
        calls += 1;
        Ok(prompt.lines().filter(|l| l.starts_with("User:")).collect::<Vec<_>>().join("\n"))
    };
    let s = simulate_scripted(&sp, 5, Some(&mut fake)).unwrap();
    assert_eq!(calls, 1);
    let g = &s.header.ground_truth[0];
    let gate = s.header.constraints.iter().find(|c| c.class == ConstraintClass::ApprovalGate);
    if let Some(gate) = gate {
        assert_eq!(gate.presence(&s.active_context(g.turn)), Presence::Absent);
    }
    assert!(simulate_scripted(&sp, 5, None).is_err(), "llm summariser without callback");
}

#[test]
fn probes_come_before_and_after_each_boundary() {
    let sp = spec(|s| {
        s.events = 2;
        s.trigger = Trigger::Turns { every: 30 };
    });
    let s = simulate_scripted(&sp, 11, None).unwrap();
    assert_eq!(s.header.ground_truth.len(), 2);
    for e in 0..2 {
        let phases: Vec<&str> =
            s.header.probes.iter().filter(|p| p.event == e).map(|p| p.phase.as_str()).collect();
        assert_eq!(phases, vec!["pre_a", "pre_b", "post", "post_late"], "event {e}");
    }
    assert!(s.header.probes.iter().all(|p| p.answers.len() == PROBES.len()));
}

#[test]
fn standard_specs_parse_and_run() {
    let specs = load_specs(&repo_file("datasets/sessions/standard.toml")).unwrap();
    assert!(specs.len() >= 10);
    for (name, sp) in &specs {
        let s = simulate_scripted(sp, 1, None).unwrap();
        assert_eq!(s.header.ground_truth.len(), sp.events, "{name}");
    }
    let e = parse_specs("[[condition]]\nname = \"x\"\nratoi = 0.2\n", "f.toml").unwrap_err().to_string();
    assert!(e.contains("f.toml: condition `x`") && e.contains("ratoi"), "{e}");
    let e = parse_specs("[[condition]]\nname = \"x\"\nratio = 2.0\n", "f.toml").unwrap_err().to_string();
    assert!(e.contains("ratio"), "{e}");
}

/// Check `v` against the schema node `s`: property names, required fields, const/enum tags,
/// nested objects and arrays (a light draft 2020-12 subset, no schema crate).
fn check(
    root: &serde_json::Value,
    s: &serde_json::Value,
    v: &serde_json::Value,
    path: &str,
) -> Result<(), String> {
    if let Some(r) = s.get("$ref").and_then(|r| r.as_str()) {
        let name = r.trim_start_matches("#/$defs/");
        return check(root, &root["$defs"][name], v, path);
    }
    if let Some(alts) = s.get("oneOf").and_then(|a| a.as_array()) {
        let ok: Vec<_> = alts.iter().filter(|a| check(root, a, v, path).is_ok()).collect();
        return if ok.len() == 1 {
            Ok(())
        } else {
            Err(format!("{path}: matches {} oneOf branches", ok.len()))
        };
    }
    if let Some(c) = s.get("const") {
        return if c == v { Ok(()) } else { Err(format!("{path}: {v} is not {c}")) };
    }
    if let Some(e) = s.get("enum").and_then(|e| e.as_array()) {
        return if e.contains(v) { Ok(()) } else { Err(format!("{path}: {v} not in enum")) };
    }
    match (s.get("type").and_then(|t| t.as_str()), v) {
        (Some("object"), serde_json::Value::Object(m)) => {
            if let Some(props) = s.get("properties").and_then(|p| p.as_object()) {
                for (k, val) in m {
                    let p = props.get(k).ok_or(format!("{path}: field `{k}` not in schema"))?;
                    check(root, p, val, &format!("{path}.{k}"))?;
                }
            }
            for r in s.get("required").and_then(|r| r.as_array()).into_iter().flatten() {
                if !m.contains_key(r.as_str().unwrap()) {
                    return Err(format!("{path}: required `{r}` missing"));
                }
            }
            Ok(())
        }
        (Some("array"), serde_json::Value::Array(a)) => {
            a.iter().enumerate().try_for_each(|(i, x)| check(root, &s["items"], x, &format!("{path}[{i}]")))
        }
        (Some("string"), serde_json::Value::String(_))
        | (Some("boolean"), serde_json::Value::Bool(_))
        | (None, _) => Ok(()),
        (Some("integer"), serde_json::Value::Number(n)) if n.is_u64() => Ok(()),
        (t, _) => Err(format!("{path}: {v} is not of type {t:?}")),
    }
}

#[test]
fn generated_lines_match_the_json_schema() {
    let text = std::fs::read_to_string(repo_file("datasets/schemas/session.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut all_fields = std::collections::BTreeSet::new();
    for (i, (fate, summariser)) in [
        (Fate::TargetedDrop, Summariser::ToolOutputMasking),
        (Fate::NegationFlip, Summariser::Truncation),
        (Fate::ParaphrasedKept, Summariser::SlidingWindowSummary),
    ]
    .into_iter()
    .enumerate()
    {
        let sp = spec(|s| {
            s.fate = fate;
            s.summariser = summariser;
            s.constraints = 5;
        });
        for line in simulate_scripted(&sp, i as u64, None).unwrap().to_lines().unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            check(&schema, &schema, &v, "$").unwrap_or_else(|e| panic!("{e}\n{line}"));
            if let Some(m) = v.as_object() {
                all_fields.extend(m.keys().cloned());
            }
        }
    }
    // The schema is not looser than the format: every top-level property does occur.
    for def in ["header", "turn"] {
        for k in schema["$defs"][def]["properties"].as_object().unwrap().keys() {
            assert!(all_fields.contains(k), "schema names `{k}` ({def}) but no line has it");
        }
    }
}

#[test]
fn tool_shift_and_lexicon_see_a_targeted_drop_more_than_a_kept_control() {
    use crate::compression::signals::{constraint_lexicon_decay, tool_shift, LexiconConfig};
    let mean = |fate: Fate| -> (f64, f64) {
        let (mut j, mut l) = (0.0, 0.0);
        for seed in 0..10 {
            // A post window long enough for the corrected lexicon signal to call anchors lost.
            let sp = spec(|s| {
                s.fate = fate;
                s.post_steps = 30;
            });
            let s = simulate_scripted(&sp, seed, None).unwrap();
            let w = s.windows(0).unwrap();
            let pre: Vec<&str> = w.pre_tools.iter().map(String::as_str).collect();
            let post: Vec<&str> = w.post_tools.iter().map(String::as_str).collect();
            j += tool_shift(&pre, &post, &[], 0.5).jsd;
            let vocab: Vec<String> = s.header.constraints.iter().flat_map(|c| c.keywords.clone()).collect();
            let pt: Vec<&str> = w.pre_texts.iter().map(String::as_str).collect();
            let qt: Vec<&str> = w.post_texts.iter().map(String::as_str).collect();
            l += constraint_lexicon_decay(&pt, &qt, &vocab, &LexiconConfig::default()).decay.unwrap_or(0.0);
        }
        (j / 10.0, l / 10.0)
    };
    let (jd, ld) = mean(Fate::TargetedDrop);
    let (jk, lk) = mean(Fate::Kept);
    assert!(jd > jk && ld > lk, "drop: jsd {jd:.3} lex {ld:.3}; kept: jsd {jk:.3} lex {lk:.3}");
}

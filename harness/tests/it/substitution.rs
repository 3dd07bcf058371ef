//! The `substitution` experiment end to end on the tiny zoo: enrol a checkpoint,
//! calibrate on benign nuisance, score substitutes and distinct pairs, through
//! `gapbench run`, twice (byte-identical results), plus `compare` against the run's
//! calibrated threshold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::gapbench_in_project;

fn spec_toml(enrolled: &str) -> String {
    format!(
        r#"
name = "sub-tiny"
kind = "substitution"
seed = 5
[substitution]
class = "same-family"
tokens = 128
max_seq_len = 64
stratify = true
[substitution.zoo]
size = "tiny"
enrol = ["{enrolled}"]
null_draws = 8
all_checkpoints = true
[[substitution.zoo.variants]]
label = "weight-noise"
attack = {{ attack = "weight-noise" }}
severities = [1e-2, 1e-1]
default = 1e-1
draws = 1
default_draws = 3
# Used by the reproduce tests: only on another machine may a threshold move, by 1e-3.
[[reproduce.across_machines]]
pattern = "*.identity.*.tau"
abs = 1e-3
"#
    )
}

pub(crate) struct Setup {
    pub _tmp: tempfile::TempDir,
    pub cache: PathBuf,
    pub spec: PathBuf,
    pub enrolled: String,
}

/// A cache dir whose `zoo/tiny-0` is the tests' tiny zoo, and the spec file.
pub(crate) fn setup() -> Setup {
    let (zoo, manifest) = crate::zoo::tiny_zoo();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("zoo")).unwrap();
    std::os::unix::fs::symlink(zoo.path(), cache.join("zoo/tiny-0")).unwrap();
    let enrolled = manifest.models.last().unwrap().id.clone();
    let spec = tmp.path().join("sub-tiny.toml");
    std::fs::write(&spec, spec_toml(&enrolled)).unwrap();
    Setup { _tmp: tmp, cache, spec, enrolled }
}

pub(crate) fn run(s: &Setup, results: &Path) -> (BTreeMap<String, f64>, Vec<u8>, PathBuf) {
    let out = gapbench_in_project(&[
        "run",
        "--cache-dir",
        s.cache.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        s.spec.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let latest = std::fs::read_to_string(results.join("sub-tiny/LATEST")).unwrap();
    let dir = results.join("sub-tiny").join(latest.trim());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let metrics = serde_json::from_value(summary["metrics"].clone()).unwrap();
    (metrics, std::fs::read(dir.join("samples.jsonl")).unwrap(), dir)
}

#[test]
fn tiny_zoo_substitution_run_calibrates_detects_and_reproduces() {
    let s = setup();
    let results = tempfile::tempdir().unwrap();
    let (m, samples, dir) = run(&s, &results.path().join("a"));
    let z = |k: &str| -> f64 {
        let key = format!("zoo.{}.{k}", s.enrolled);
        *m.get(&key).unwrap_or_else(|| panic!("no metric `{key}`"))
    };
    // Calibration and evaluation halves of the 8 null draws, disjoint and complete.
    let (cal, eval) = (z("identity.null.cal_n"), z("identity.null.eval_n"));
    assert!(cal >= 1.0 && eval >= 1.0 && cal + eval == 8.0, "{cal} + {eval}");
    // Benign nuisance is never rejected; the threshold is never below the declared floor.
    assert_eq!(m["headline.benign_rejects"], 0.0);
    assert!(z("identity.a1e-3.tau") >= 1e-6);
    // Every other checkpoint of the same width, and weights noised at 10 %, are rejected.
    assert_eq!(z("identity.other-checkpoint.fixed.a1e-3.tpr"), 1.0);
    assert_eq!(z("identity.weight-noise.1e-1.a1e-3.tpr"), 1.0);
    assert_eq!(z("identity.weight-noise.1e-1.n"), 3.0);
    assert_eq!(z("sha256.weight-noise.1e-1.a1e-3.tpr"), 1.0);
    // All 8 tiny-zoo checkpoints plus the noised variants are distinct; none is accepted
    // as another, and pairs across widths are recognised as different architectures.
    assert!(m["pairs.models"] >= 10.0, "{}", m["pairs.models"]);
    assert!(m["pairs.comparable"] >= 12.0);
    assert!(m["pairs.incomparable_architecture"] >= 16.0);
    assert_eq!(m["pairs.false_accepts"], 0.0);
    assert!(m["fingerprint.max_encoded_bytes"] <= 4096.0);

    // Same spec, same seed, same machine: byte-identical samples and metrics.
    let (m2, samples2, _) = run(&s, &results.path().join("b"));
    assert_eq!(m, m2);
    assert!(samples == samples2, "samples differ between identical runs");

    // `compare` reads the run's calibrated threshold: the enrolled model against itself
    // is accepted (exit 0), the noised substitute rejected (exit 3).
    let written: BTreeMap<String, PathBuf> = String::from_utf8(samples)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let item = v["item"].as_str().unwrap().to_string();
            let wanted =
                [format!("zoo/fp/{}", s.enrolled), format!("zoo/var/{}/weight-noise/1e-1/0", s.enrolled)];
            wanted.contains(&item).then(|| {
                let bytes = hex::decode(v["output"]["fingerprint"].as_str().unwrap()).unwrap();
                let fp = gapbench::fingerprint::encode::decode(&bytes).unwrap();
                let path = results.path().join(format!("{}.json", item.replace('/', "_")));
                gapbench::fingerprint::file::write(&path, &fp).unwrap();
                (item, path)
            })
        })
        .collect();
    assert_eq!(written.len(), 2);
    let mut paths = written.values();
    let (enrolled, noised) = (paths.next().unwrap(), paths.next().unwrap());
    let calibration = results.path().join("a/sub-tiny");
    let compare = |b: &Path| {
        gapbench_in_project(&[
            "compare",
            enrolled.to_str().unwrap(),
            b.to_str().unwrap(),
            "--calibration",
            calibration.to_str().unwrap(),
        ])
    };
    let same = compare(enrolled);
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stderr));
    assert!(String::from_utf8_lossy(&same.stdout).contains("decision  Accept"));
    let other = compare(noised);
    assert_eq!(other.status.code(), Some(3), "{}", String::from_utf8_lossy(&other.stdout));
    assert!(dir.join("record.json").is_file());
}

#[test]
fn bad_substitution_specs_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"bad\"\nkind = \"substitution\"\n[substitution]\nclass = \"same-family\"\nmargin = 0.5\n\
         [substitution.zoo]\nsize = \"tiny\"\nenrol = [\"x\"]\nnull_draws = 8\nall_checkpoints = false\nvariants = []\n",
    )
    .unwrap();
    let out = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("substitution.margin") && err.contains("bad.toml"), "{err}");
    std::fs::write(&p, "name = \"bad\"\nkind = \"substitution\"\n[substitution]\nclass = \"sideways\"\n")
        .unwrap();
    let out = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

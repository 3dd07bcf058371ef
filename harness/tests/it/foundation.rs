//! The foundation end to end through the real binary: specs, registry, fetch, records,
//! resume, shard + merge. Models here are tiny files the tests write themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

/// A throwaway project: registry, specs, a local model store, cache and results.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(n_models: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = Project { dir };
        let store = p.path().join("store");
        let mut registry = String::new();
        for i in 0..n_models {
            let name = format!("tiny-{i}");
            let (file, arch, format) = if i % 2 == 0 {
                write_gguf(&store.join(&name), i);
                ("m.gguf", "llama", "gguf")
            } else {
                write_safetensors(&store.join(&name), i);
                ("model.safetensors", "bert", "safetensors")
            };
            let mut files =
                format!("{{ path = \"{file}\", sha256 = \"{}\" }}", sha(&store.join(&name).join(file)));
            if format == "safetensors" {
                files.push_str(&format!(
                    ", {{ path = \"config.json\", sha256 = \"{}\" }}",
                    sha(&store.join(&name).join("config.json"))
                ));
            }
            registry.push_str(&format!(
                "[[models]]\nname = \"{name}\"\nfamily = \"tiny\"\narchitecture = \"{arch}\"\nformat = \"{format}\"\n\
                 files = [{files}]\nsources = [{{ type = \"local\", dir = \"../store/{name}\" }}]\n\n"
            ));
        }
        std::fs::create_dir_all(p.path().join("datasets")).unwrap();
        std::fs::create_dir_all(p.path().join("experiments")).unwrap();
        std::fs::write(p.path().join("datasets/models.toml"), registry).unwrap();
        std::fs::write(
            p.path().join("experiments/inv.toml"),
            "name = \"inv\"\nkind = \"inventory\"\nseed = 7\ndescription = \"test\"\n",
        )
        .unwrap();
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn gapbench(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_gapbench"))
            .current_dir(self.path())
            .args(["-q", "--cache-dir"])
            .arg(self.path().join("cache"))
            .args(args)
            .env_remove("GAPBENCH_REGISTRY")
            .env_remove("GAPBENCH_RESULTS")
            .output()
            .unwrap()
    }

    fn run_dirs(&self, experiment: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path().join("results").join(experiment))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    }
}

fn write_gguf(dir: &Path, seed: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let dev = Device::Cpu;
    let w = Tensor::arange(0f32, 64., &dev)
        .unwrap()
        .affine(1.0 + seed as f64, 0.)
        .unwrap()
        .reshape((2, 32))
        .unwrap();
    let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
    let n =
        QTensor::quantize(&Tensor::ones(32, candle_core::DType::F32, &dev).unwrap(), GgmlDType::F32).unwrap();
    let arch = gguf_file::Value::String("llama".into());
    let layers = gguf_file::Value::U32(1);
    let mut f = std::fs::File::create(dir.join("m.gguf")).unwrap();
    gguf_file::write(
        &mut f,
        &[("general.architecture", &arch), ("llama.block_count", &layers)],
        &[("blk.0.ffn_up.weight", &q), ("output_norm.weight", &n)],
    )
    .unwrap();
}

fn write_safetensors(dir: &Path, seed: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let dev = Device::Cpu;
    let mut t = HashMap::new();
    t.insert("w".to_string(), Tensor::full(seed as f32, (3, 4), &dev).unwrap());
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "bert", "hidden_size": 4}"#).unwrap();
}

fn sha(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_spec(p: &Project, body: &str) -> PathBuf {
    let path = p.path().join("experiments/bad.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn bad_specs_exit_2_naming_field_and_line() {
    let p = Project::new(1);
    let cases = [
        ("name = \"x\"\nkind = \"inventory\"\nseeed = 3\n", "3:1", "seeed"),
        ("name = \"x\"\nkind = \"inventory\"\nseed = \"abc\"\n", "3:8", "seed"),
        ("name = \"x\"\nseed = 3\n", ":1:1", "kind"),
        ("name = \"x\"\nkind = \"fingerprinting\"\n", "2:8", "kind"),
        ("name = \"x\"\nkind = \"inventory\"\n[inventory]\nmodels = [\"nope\"]\n", "4:11", "nope"),
        ("name = \"x\"\nkind = \"inventory\"\n[inventory]\nmodel = []\n", "4:1", "model"),
        ("name = \"Bad Name\"\nkind = \"inventory\"\n", "1:8", "name"),
    ];
    for (body, at, field) in cases {
        let spec = write_spec(&p, body);
        let out = p.gapbench(&["validate", spec.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{body:?}: {err}");
        assert!(
            err.contains(&format!("bad.toml:{}", at.trim_start_matches(':'))) || err.contains(at),
            "{body:?}: {err}"
        );
        assert!(err.contains(field), "{body:?} should name `{field}`: {err}");
    }
}

#[test]
fn validate_prints_the_resolved_spec_and_a_stable_hash() {
    let p = Project::new(2);
    let a = p.gapbench(&["validate", "experiments/inv.toml"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let text = String::from_utf8_lossy(&a.stdout).into_owned();
    assert!(text.contains("\"tiny-1\"") && text.contains("spec_hash: "), "{text}");
    // Reformatting the TOML does not change the resolved spec or its hash.
    std::fs::write(
        p.path().join("experiments/inv.toml"),
        "# comment\nkind = \"inventory\"\ndescription = \"test\"\nseed = 7\nname = \"inv\"\n",
    )
    .unwrap();
    let b = p.gapbench(&["validate", "experiments/inv.toml"]);
    assert_eq!(text, String::from_utf8_lossy(&b.stdout));
}

#[test]
fn checksum_mismatch_fails_and_leaves_nothing_behind() {
    let p = Project::new(1);
    // Corrupt the only source: the pin no longer matches.
    let f = p.path().join("store/tiny-0/m.gguf");
    let mut bytes = std::fs::read(&f).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&f, bytes).unwrap();
    // A staging directory from an earlier interrupted fetch is cleaned up.
    std::fs::create_dir_all(p.path().join("cache/models/.staging-tiny-0-abc")).unwrap();
    let out = p.gapbench(&["models", "fetch", "tiny-0"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("checksum mismatch"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(p.path().join("cache/models")).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {:?}", left.iter().map(|e| e.file_name()).collect::<Vec<_>>());
}

#[test]
fn fetch_is_idempotent_and_verify_catches_damage() {
    let p = Project::new(2);
    let out = p.gapbench(&["models", "fetch", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // With the sources gone, a second fetch must not need them.
    std::fs::remove_dir_all(p.path().join("store")).unwrap();
    let out = p.gapbench(&["models", "fetch", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cached and verified"));
    assert_eq!(p.gapbench(&["models", "verify"]).status.code(), Some(0));
    std::fs::write(p.path().join("cache/models/tiny-1/config.json"), "{}").unwrap();
    let out = p.gapbench(&["models", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH  tiny-1/config.json"));
}

#[test]
fn hf_source_resolves_offline_from_an_hf_cache_layout() {
    let p = Project::new(1);
    let file = p.path().join("store/tiny-0/m.gguf");
    let registry = std::fs::read_to_string(p.path().join("datasets/models.toml")).unwrap().replace(
        "{ type = \"local\", dir = \"../store/tiny-0\" }",
        "{ type = \"hf\", repo = \"acme/tiny\", revision = \"main\" }",
    );
    std::fs::write(p.path().join("datasets/models.toml"), registry).unwrap();
    // The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<rev>/...}.
    let hub = p.path().join("hf/hub");
    let repo = hub.join("models--acme--tiny");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(rev)).unwrap();
    std::fs::write(repo.join("refs/main"), rev).unwrap();
    std::fs::copy(&file, repo.join("snapshots").join(rev).join("m.gguf")).unwrap();
    std::fs::remove_dir_all(p.path().join("store")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gapbench"))
        .current_dir(p.path())
        .args(["-q", "--offline", "--cache-dir"])
        .arg(p.path().join("cache"))
        .args(["models", "fetch", "tiny-0"])
        .env("HF_HUB_CACHE", &hub)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fetched from hf acme/tiny@main"));
    assert!(p.path().join("cache/models/tiny-0/m.gguf").is_file());
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn metrics(run: &Path) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&read(&run.join("summary.json"))).unwrap()["metrics"].clone()
}

#[test]
fn run_writes_a_complete_record_and_summary() {
    let p = Project::new(3);
    let out = p.gapbench(&["run", "experiments/inv.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs = p.run_dirs("inv");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(read(&p.path().join("results/inv/LATEST")).trim(), run.file_name().unwrap().to_str().unwrap());
    let record: serde_json::Value = serde_json::from_str(&read(&run.join("record.json"))).unwrap();
    for key in [
        "spec_hash",
        "seed",
        "dtype",
        "device",
        "models",
        "started_at",
        "ended_at",
        "wall_seconds",
        "status",
        "run_id",
    ] {
        assert!(!record[key].is_null(), "record.json lacks {key}");
    }
    let env = &record["environment"];
    for key in ["git", "crate_versions", "target_cpu", "threads", "gapbench_version", "cargo_lock_sha256"] {
        assert!(!env[key].is_null(), "record.json lacks environment.{key}");
    }
    assert!(env["host"].is_string());
    assert_eq!(env["crate_versions"]["candle-core"], "0.11.1");
    assert!(env["target_cpu"]["arch"].is_string());
    assert_eq!(record["status"], "complete");
    assert_eq!(record["seed"], 7);
    assert_eq!(record["models"][0]["files"]["m.gguf"].as_str().unwrap().len(), 64);
    let summary: serde_json::Value = serde_json::from_str(&read(&run.join("summary.json"))).unwrap();
    assert_eq!(summary["experiment"], "inv");
    assert_eq!(summary["spec_hash"], record["spec_hash"]);
    assert_eq!(summary["run_id"], record["run_id"]);
    assert_eq!(summary["metrics"]["models.count"], 3.0);
    assert_eq!(summary["metrics"]["models.tiny-0.params"], 96.0);
    assert_eq!(read(&run.join("samples.jsonl")).lines().count(), 3);
}

#[test]
fn resume_equals_an_uninterrupted_run() {
    let p = Project::new(4);
    assert_eq!(p.gapbench(&["run", "experiments/inv.toml"]).status.code(), Some(0));
    let full = p.run_dirs("inv").pop().unwrap();
    // A second run, then an interruption: two items done, one line torn mid-write.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(p.gapbench(&["run", "experiments/inv.toml"]).status.code(), Some(0));
    let cut = p.run_dirs("inv").pop().unwrap();
    assert_ne!(cut, full);
    let samples = read(&cut.join("samples.jsonl"));
    let mut lines: Vec<&str> = samples.lines().collect();
    lines.truncate(2);
    let torn = format!("{}\n{}", lines.join("\n"), &samples.lines().nth(3).unwrap()[..20]);
    std::fs::write(cut.join("samples.jsonl"), torn).unwrap();
    std::fs::remove_file(cut.join("summary.json")).unwrap();
    let out = p.gapbench(&["run", "--resume", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read(&full.join("samples.jsonl")), read(&cut.join("samples.jsonl")));
    assert_eq!(metrics(&full), metrics(&cut));
    let record: serde_json::Value = serde_json::from_str(&read(&cut.join("record.json"))).unwrap();
    assert_eq!(record["items"]["resumed"], 2);
    assert_eq!(record["resumed_at"].as_array().unwrap().len(), 1);
    // The resumed part's own environment is kept beside the first part's.
    let envs = record["resumed_environments"].as_array().unwrap();
    assert_eq!(envs.len(), 1);
    assert!(envs[0]["target_cpu"]["arch"].is_string() && envs[0]["threads"].as_u64().unwrap() >= 1);
    // Resuming with a different spec is refused.
    std::fs::write(p.path().join("experiments/inv.toml"), "name = \"inv\"\nkind = \"inventory\"\nseed = 8\n")
        .unwrap();
    let out = p.gapbench(&["run", "experiments/inv.toml", "--resume", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn shards_merge_into_the_unsharded_run() {
    let p = Project::new(5);
    assert_eq!(p.gapbench(&["run", "experiments/inv.toml"]).status.code(), Some(0));
    let full = p.run_dirs("inv").pop().unwrap();
    let mut shard_dirs = Vec::new();
    for k in 1..=3 {
        let out = p.gapbench(&["run", "experiments/inv.toml", "--shard", &format!("{k}/3")]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        shard_dirs.push(
            p.run_dirs("inv")
                .into_iter()
                .find(|d| d.to_str().unwrap().ends_with(&format!("shard{k}of3")))
                .unwrap(),
        );
    }
    // Shards do not move LATEST; an incomplete set is refused.
    assert_eq!(
        read(&p.path().join("results/inv/LATEST")).trim(),
        full.file_name().unwrap().to_str().unwrap()
    );
    let partial: Vec<&str> = shard_dirs[..2].iter().map(|d| d.to_str().unwrap()).collect();
    let out = p.gapbench(&[&["merge"], partial.as_slice()].concat());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let all: Vec<&str> = shard_dirs.iter().map(|d| d.to_str().unwrap()).collect();
    let out = p.gapbench(&[&["merge"], all.as_slice()].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let merged = p.run_dirs("inv").into_iter().find(|d| d.to_str().unwrap().ends_with("merged")).unwrap();
    assert_eq!(read(&full.join("samples.jsonl")), read(&merged.join("samples.jsonl")));
    assert_eq!(metrics(&full), metrics(&merged));
    assert_eq!(
        read(&p.path().join("results/inv/LATEST")).trim(),
        merged.file_name().unwrap().to_str().unwrap()
    );
}

#[test]
fn a_corrupt_model_fails_the_run_and_the_record_says_why() {
    let p = Project::new(1);
    let f = p.path().join("store/tiny-0/m.gguf");
    std::fs::write(&f, b"GGUF but not really").unwrap();
    let registry = read(&p.path().join("datasets/models.toml"));
    let pinned = registry.split("sha256 = \"").nth(1).unwrap()[..64].to_string();
    std::fs::write(p.path().join("datasets/models.toml"), registry.replace(&pinned, &sha(&f))).unwrap();
    let out = p.gapbench(&["run", "experiments/inv.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("m.gguf"), "{}", stderr(&out));
    let run = p.run_dirs("inv").pop().unwrap();
    let record: serde_json::Value = serde_json::from_str(&read(&run.join("record.json"))).unwrap();
    assert_eq!(record["status"], "failed");
    assert!(record["error"].as_str().unwrap().contains("tiny-0"));
    assert!(!run.join("summary.json").exists());
}

//! Shared helpers for the integration tests.

use std::path::PathBuf;

/// Where a real registry model lives: `$GAPBENCH_SMOLLM2_GGUF` / `$GAPBENCH_MINILM_DIR` if
/// set, else the default gapbench cache. Absent models fail the test with the fix to run:
/// CI fetches them before testing, so a silent skip would hide a broken fetch.
#[allow(dead_code)]
pub fn smollm2_gguf() -> PathBuf {
    let p = std::env::var_os("GAPBENCH_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        cache_dir().join("models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    assert!(p.is_file(), "{} is missing: run `gapbench models fetch --all` first", p.display());
    p
}

#[allow(dead_code)]
pub fn minilm_dir() -> PathBuf {
    let p = std::env::var_os("GAPBENCH_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("models/all-minilm-l6-v2"));
    assert!(
        p.join("model.safetensors").is_file(),
        "{} is missing: run `gapbench models fetch --all` first",
        p.join("model.safetensors").display()
    );
    p
}

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GAPBENCH_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/gapbench")
}

/// The binary run from the project root (its own registry), offline and quiet; models
/// come from the default cache the README's test command fills.
#[allow(dead_code)]
pub fn gapbench_in_project(args: &[&str]) -> std::process::Output {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    std::process::Command::new(env!("CARGO_BIN_EXE_gapbench"))
        .current_dir(root)
        .args(["-q", "--offline"])
        .args(args)
        .output()
        .unwrap()
}

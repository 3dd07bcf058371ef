//! What a run record says about where and how it ran: git state, crate versions (from the
//! Cargo.lock this binary was built with), target CPU, host, threads.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The Cargo.lock this binary was built from, so records name the exact crate versions.
const CARGO_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"));

/// Crates whose versions change numbers: recorded by name. The whole lock is hashed too.
const RECORDED_CRATES: &[&str] = &[
    "candle-core",
    "candle-nn",
    "candle-transformers",
    "gemm",
    "tokenizers",
    "hf-hub",
    "safetensors",
    "half",
    "rayon",
    "serde_json",
    "linfa",
    "linfa-clustering",
    "linfa-reduction",
    "plotters",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    /// The checkout the run ran in.
    pub commit: Option<String>,
    pub dirty: Option<bool>,
    /// The commit the binary was built from, and whether its crate sources had
    /// uncommitted changes then (`harness/build.rs`): equal to `commit` under `cargo run`,
    /// different when an older binary runs in a newer checkout. Absent in records written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_dirty: Option<bool>,
}

impl GitState {
    /// Why this record's code may not be its checkout's, if it may not.
    pub fn build_mismatch(&self) -> Option<String> {
        let short = |c: &str| c[..12.min(c.len())].to_string();
        match (&self.build_commit, &self.commit) {
            (Some(b), Some(c)) if b != c => {
                Some(format!("binary built from {} in a checkout at {}", short(b), short(c)))
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCpu {
    pub arch: String,
    pub os: String,
    pub model: Option<String>,
    /// SIMD features this binary was compiled to use.
    pub compiled_features: Vec<String>,
    /// SIMD features the CPU offers at run time: candle's gemm picks its kernels (and so
    /// its summation order) from these, so two machines that differ here need not agree
    /// bit for bit. Absent in records written before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_features: Vec<String>,
    pub logical_cpus: usize,
}

impl TargetCpu {
    /// Why two CPUs may not reproduce each other bit for bit (`None`: the same machine
    /// kind as far as the records tell).
    pub fn differs_from(&self, other: &TargetCpu) -> Option<String> {
        let name = |c: &TargetCpu| c.model.clone().unwrap_or_else(|| c.arch.clone());
        if self.arch != other.arch || self.model != other.model {
            return Some(format!("CPU {} vs {}", name(self), name(other)));
        }
        if !self.runtime_features.is_empty()
            && !other.runtime_features.is_empty()
            && self.runtime_features != other.runtime_features
        {
            return Some(format!(
                "SIMD features [{}] vs [{}]",
                self.runtime_features.join(" "),
                other.runtime_features.join(" ")
            ));
        }
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub gapbench_version: String,
    pub git: GitState,
    pub crate_versions: BTreeMap<String, String>,
    pub cargo_lock_sha256: String,
    pub target_cpu: TargetCpu,
    pub host: Option<String>,
    pub threads: usize,
    pub build_profile: String,
}

impl Environment {
    /// Capture the environment; `repo` is where to ask git (the results' working tree).
    pub fn capture(repo: &Path) -> Self {
        Environment {
            gapbench_version: env!("CARGO_PKG_VERSION").to_string(),
            git: git_state(repo),
            crate_versions: crate_versions(),
            cargo_lock_sha256: crate::record::canonical::sha256_hex(CARGO_LOCK.as_bytes()),
            target_cpu: target_cpu(),
            host: hostname(),
            threads: rayon::current_num_threads(),
            build_profile: if cfg!(debug_assertions) { "debug" } else { "release" }.into(),
        }
    }
}

pub fn crate_versions() -> BTreeMap<String, String> {
    #[derive(Deserialize)]
    struct Lock {
        package: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        version: String,
    }
    let mut out = BTreeMap::new();
    if let Ok(lock) = toml::from_str::<Lock>(CARGO_LOCK) {
        for p in lock.package {
            if RECORDED_CRATES.contains(&p.name.as_str()) {
                // Two versions of one crate: keep both, comma-separated.
                out.entry(p.name)
                    .and_modify(|v: &mut String| {
                        v.push(',');
                        v.push_str(&p.version)
                    })
                    .or_insert(p.version);
            }
        }
    }
    out
}

fn git_state(repo: &Path) -> GitState {
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").arg("-C").arg(repo).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"]);
    // Results are outputs, not code: runs being written (or replaced) there must not
    // count as dirt, nor must untracked files.
    let dirty = commit
        .as_ref()
        .and_then(|_| run(&["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"]))
        .map(|s| !s.is_empty());
    let build_commit = Some(env!("GAPBENCH_BUILD_COMMIT").to_string()).filter(|c| !c.is_empty());
    let build_dirty = match env!("GAPBENCH_BUILD_DIRTY") {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    GitState { commit, dirty, build_commit, build_dirty }
}

fn target_cpu() -> TargetCpu {
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let mut features = Vec::new();
    macro_rules! feat {
        ($($f:literal),*) => {$( if cfg!(target_feature = $f) { features.push($f.to_string()); } )*};
    }
    feat!("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "neon", "fp16");
    TargetCpu {
        runtime_features: runtime_features(),
        arch: std::env::consts::ARCH.into(),
        os: std::env::consts::OS.into(),
        model,
        compiled_features: features,
        logical_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }
}

#[cfg(target_arch = "x86_64")]
fn runtime_features() -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! has {
        ($($f:tt),*) => {$( if std::arch::is_x86_feature_detected!($f) { out.push($f.to_string()); } )*};
    }
    has!(
        "sse4.2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512vnni",
        "avx512bf16"
    );
    out
}

#[cfg(target_arch = "aarch64")]
fn runtime_features() -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! has {
        ($($f:tt),*) => {$( if std::arch::is_aarch64_feature_detected!($f) { out.push($f.to_string()); } )*};
    }
    has!("neon", "fp16", "dotprod", "sve");
    out
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn runtime_features() -> Vec<String> {
    Vec::new()
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_binary_knows_its_commit_and_says_when_the_checkout_differs() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let g = super::git_state(repo);
        // Built by cargo from this history: the stamp is HEAD or, when commits were made
        // between building and running this test, one of its ancestors; and the mismatch
        // is reported exactly when the two differ.
        if let (Some(head), Some(built)) = (&g.commit, &g.build_commit) {
            assert!(built.len() == 40 && built.chars().all(|c| c.is_ascii_hexdigit()), "{built}");
            let ancestor = std::process::Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["merge-base", "--is-ancestor", built, head])
                .status()
                .unwrap();
            assert!(ancestor.success(), "{built} is not in the history of {head}");
            assert_eq!(g.build_mismatch().is_some(), built != head);
        }
        let older = super::GitState { build_commit: Some("a".repeat(40)), ..g.clone() };
        if g.commit.is_some() {
            assert!(older.build_mismatch().unwrap().contains("binary built from aaaaaaaaaaaa"));
        }
        let old_record: super::GitState = serde_json::from_str(r#"{"commit":"abc","dirty":false}"#).unwrap();
        assert_eq!((old_record.build_commit.clone(), old_record.build_mismatch()), (None, None));
    }

    #[test]
    fn another_cpu_or_other_simd_features_is_another_machine() {
        let here = super::target_cpu();
        assert_eq!(here.differs_from(&here), None);
        let other = super::TargetCpu { model: Some("Another CPU".into()), ..here.clone() };
        assert!(here.differs_from(&other).unwrap().contains("Another CPU"));
        let fewer = super::TargetCpu { runtime_features: vec!["sse4.2".into()], ..here.clone() };
        assert_eq!(here.differs_from(&fewer).is_some(), here.runtime_features != fewer.runtime_features);
        // A record from before runtime features were recorded is judged by the model alone.
        let old = super::TargetCpu { runtime_features: vec![], ..here.clone() };
        assert_eq!(here.differs_from(&old), None);
    }

    #[test]
    fn crate_versions_come_from_the_lock() {
        let v = super::crate_versions();
        assert_eq!(v.get("candle-core").map(String::as_str), Some("0.11.1"));
        assert!(v.contains_key("tokenizers"));
    }
}

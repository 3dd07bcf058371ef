//! Records which commit this binary was built from (`GAPBENCH_BUILD_COMMIT`,
//! `GAPBENCH_BUILD_DIRTY`), so a run record can tell a binary from an older checkout apart
//! from the tree it runs in (`record::env::GitState`).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    // Rebuild the stamp when the checked-out commit or the crate's sources change.
    // (Only paths that exist: cargo re-runs a build script whose listed path is missing
    // on every build.)
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for p in ["HEAD", "refs", "packed-refs"] {
            let path = std::path::Path::new(&dir).join(p);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=../Cargo.toml");
    println!("cargo:rerun-if-changed=../Cargo.lock");
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    // Code that goes into the binary: the crate and the workspace manifests.
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no", "--", ".", "../Cargo.toml", "../Cargo.lock"])
            .map(|s| !s.is_empty());
    println!("cargo:rustc-env=GAPBENCH_BUILD_COMMIT={commit}");
    println!(
        "cargo:rustc-env=GAPBENCH_BUILD_DIRTY={}",
        match dirty {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        }
    );
}

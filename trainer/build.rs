//! Build script of the trainer:
//! - with the `openblas` feature, links the system OpenBLAS (Debian: `libopenblas-dev`);
//! - records the git commit the trainer is built from (`TRAINER_GIT_COMMIT`, "unknown" outside a
//!   git checkout or without git), which every model file and `metrics.json` names.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_OPENBLAS").is_some() {
        println!("cargo:rustc-link-lib=openblas");
    }
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TRAINER_GIT_COMMIT={commit}");
    // Build again when HEAD moves: HEAD itself, the branch it names, and the packed refs.
    if let (Some(git), Some(common)) = (git_dir("--git-dir"), git_dir("--git-common-dir")) {
        let head = git.join("HEAD");
        println!("cargo:rerun-if-changed={}", head.display());
        if let Some(branch) = std::fs::read_to_string(&head)
            .ok()
            .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
        {
            println!("cargo:rerun-if-changed={}", common.join(branch).display());
        }
        println!("cargo:rerun-if-changed={}", common.join("packed-refs").display());
    }
}

/// The checkout's git directory (`--git-dir`) or the one its worktrees share
/// (`--git-common-dir`), if the sources are a git checkout.
fn git_dir(which: &str) -> Option<PathBuf> {
    let out = Command::new("git").args(["rev-parse", which]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    Some(if dir.is_absolute() {
        dir
    } else {
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").ok()?).join(dir)
    })
}

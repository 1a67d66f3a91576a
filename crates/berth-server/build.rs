//! Records the commit the server is built from (`BERTH_COMMIT`, shown by
//! `berth --version` and zot's mgmt route), when the source is a git
//! checkout: git's own answer, read again only when the checkout's HEAD
//! or refs move. No git, or no checkout: no commit.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for f in ["HEAD", "packed-refs", "refs/heads"] {
            println!("cargo:rerun-if-changed={dir}/{f}");
        }
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
            println!("cargo:rerun-if-changed={common}/packed-refs");
            println!("cargo:rerun-if-changed={common}/refs/heads");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    }
}

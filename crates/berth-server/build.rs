//! Records the commit the server is built from (`BERTH_COMMIT`, shown by
//! `berth --version` and zot's mgmt route), when the source is a git
//! checkout: git's own answer, read again only when the checkout's HEAD
//! or refs move. No git, or no checkout: no commit.

use std::path::Path;
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
        let mut watched: Vec<String> = ["HEAD", "packed-refs", "refs/heads"]
            .iter()
            .map(|f| format!("{dir}/{f}"))
            .collect();
        if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
            watched.push(format!("{common}/packed-refs"));
            watched.push(format!("{common}/refs/heads"));
        }
        // A path that does not exist (`packed-refs` before git packs refs)
        // would make cargo rerun this script, and rebuild the server, on
        // every build: only existing ones are watched.
        for path in watched.iter().filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    }
}

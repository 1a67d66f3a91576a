//! `berth verify` on every example, and the one-line errors of bad configs.

use crate::support::*;

#[test]
fn every_example_verifies() {
    let dir = workspace().join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml" | "toml")
        ) {
            continue;
        }
        let out = berth().arg("verify").arg(&path).output().expect("run");
        let all_features = cfg!(all(
            feature = "metrics",
            feature = "ratelimit",
            feature = "events",
            feature = "openapi"
        ));
        if !all_features
            && String::from_utf8_lossy(&out.stderr).contains("this berth was built without the")
        {
            // An example of an extension this build leaves out.
            continue;
        }
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    assert!(n >= 3, "expected examples in {}", dir.display());
}

#[test]
fn bad_configs_exit_non_zero_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            "unknown.json",
            r#"{"storage":{"rootDirectory":"/x","dedup":true}}"#,
            "storage.dedup: unknown key",
        ),
        (
            "port.yaml",
            "storage:\n  rootDirectory: /x\nhttp:\n  port: \"70000\"\n",
            "http.port: invalid port",
        ),
        (
            "delay.toml",
            "[storage]\nrootDirectory = \"/x\"\ngcDelay = \"tomorrow\"\n",
            "storage.gcDelay: invalid duration",
        ),
        (
            "auth.json",
            r#"{"storage":{"rootDirectory":"/x"},"http":{"auth":{"ldap":{"address":"ldap.example"}}}}"#,
            "http.auth.ldap",
        ),
        ("syntax.json", r#"{"storage":"#, "not valid JSON"),
    ];
    for (name, text, want) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).expect("write");
        for cmd in ["verify", "serve"] {
            let out = std::process::Command::new("timeout")
                .arg("30")
                .arg(env!("CARGO_BIN_EXE_berth"))
                .arg(cmd)
                .arg(&path)
                .output()
                .expect("run");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} {name} should fail");
            assert!(
                err.contains(want),
                "{cmd} {name}: {err:?} should contain {want:?}"
            );
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{cmd} {name}: one line: {err:?}"
            );
        }
    }
    let out = berth()
        .args(["verify", "/nonexistent/berth.json"])
        .output()
        .expect("run");
    assert!(!out.status.success());
}

#[test]
fn version_names_the_commit_and_the_features_compiled_in() {
    let out = berth().arg("--version").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.starts_with(&format!("berth {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let commit = text
        .split("(commit ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("commit");
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{text}"
    );
    // The same commit git gives, when the tests run in a checkout.
    if let Ok(git) = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace())
        .output()
        && git.status.success()
    {
        assert_eq!(
            commit,
            String::from_utf8_lossy(&git.stdout).trim(),
            "{text}"
        );
    }
    for (feature, on) in [
        ("metrics", cfg!(feature = "metrics")),
        ("search", cfg!(feature = "search")),
        ("sync", cfg!(feature = "sync")),
        ("dynamodb", cfg!(feature = "dynamodb")),
    ] {
        assert_eq!(text.contains(feature), on, "{feature}: {text}");
    }
}

//! `berth login` / `berth logout` against a real Berth with htpasswd: the
//! login is checked, then kept in Docker's format, where podman and
//! skopeo find it; a refused one keeps nothing; other entries and keys of
//! the file stay; `REGISTRY_AUTH_FILE` is honoured.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::support::*;

/// `berth ARGS` with `stdin` as its standard input and `env` set.
fn run(args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Output {
    let mut c = berth();
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("REGISTRY_AUTH_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("berth");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn login_is_checked_kept_for_other_clients_and_forgotten() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = htpasswd_file(tmp.path(), &[("alice", "wonderland")]);
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0}}),
        &[],
    );
    let auth = tmp.path().join("auth.json");
    std::fs::write(
        &auth,
        r#"{"auths": {"quay.example": {"auth": "eDp5"}}, "detachKeys": "ctrl-q"}"#,
    )
    .expect("write");
    let authfile = auth.to_str().expect("utf-8");

    // A wrong password: refused, nothing kept, one line.
    let login = |password: &str| {
        run(
            &[
                "login",
                "-u",
                "alice",
                "--password-stdin",
                "--authfile",
                authfile,
                &b.addr,
            ],
            &format!("{password}\n"),
            &[],
        )
    };
    let out = login("wrong");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        !std::fs::read_to_string(&auth)
            .expect("read")
            .contains(&b.addr)
    );

    let out = login("wonderland");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Login Succeeded"));
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&auth).expect("read")).expect("json");
    assert_eq!(kept["auths"][&b.addr]["auth"], "YWxpY2U6d29uZGVybGFuZA==");
    assert_eq!(
        kept["auths"]["quay.example"]["auth"], "eDp5",
        "other entries stay"
    );
    assert_eq!(kept["detachKeys"], "ctrl-q", "other keys stay");

    // podman and skopeo use the login berth kept.
    let out = Command::new("podman")
        .args(["login", "--get-login", "--authfile", authfile, &b.addr])
        .output()
        .expect("podman is required (the README's test command installs it)");
    assert_eq!(text(&out.stdout).trim(), "alice", "{}", text(&out.stderr));
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(skopeo_policy(tmp.path()))
        .args(["copy", "--dest-tls-verify=false", "--authfile", authfile])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/team/app:v1", b.addr))
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Logout forgets it (only it); a second logout says there was none.
    let out = run(&["logout", "--authfile", authfile, &b.addr], "", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&auth).expect("read")).expect("json");
    assert!(kept["auths"].get(&b.addr).is_none());
    assert_eq!(kept["auths"]["quay.example"]["auth"], "eDp5");
    let out = run(&["logout", "--authfile", authfile, &b.addr], "", &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not logged in"));

    // Without --authfile: $REGISTRY_AUTH_FILE, written and then searched.
    let env_file = tmp.path().join("containers/auth.json");
    let out = run(
        &["login", "--username", "alice", "--password-stdin", &b.addr],
        "wonderland\n",
        &[("REGISTRY_AUTH_FILE", &env_file), ("HOME", tmp.path())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&env_file)
            .expect("read")
            .contains(&b.addr)
    );
    let out = run(
        &["logout", &b.addr],
        "",
        &[("REGISTRY_AUTH_FILE", &env_file), ("HOME", tmp.path())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

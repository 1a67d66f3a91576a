//! `http.auth.htpasswd`: anonymous callers are challenged, wrong passwords
//! refused, right ones let through; skopeo logs in; the file is re-read
//! when it changes.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn line(user: &str, password: &str) -> String {
    format!("{user}:{}\n", bcrypt::hash(password, 4).expect("bcrypt"))
}

fn status(
    client: &reqwest::blocking::Client,
    url: &str,
    creds: Option<(&str, &str)>,
) -> reqwest::blocking::Response {
    let mut req = client.get(url);
    if let Some((u, p)) = creds {
        req = req.basic_auth(u, Some(p));
    }
    req.send().expect("request")
}

#[test]
fn htpasswd_guards_every_v2_route_and_reloads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, line("alice", "wonderland")).expect("write");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"realm": "berth-test", "auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0}}),
        &[],
    );
    let client = reqwest::blocking::Client::new();
    let url = b.url("/v2/");

    let r = status(&client, &url, None);
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"berth-test\""
    );
    let body: serde_json::Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert_eq!(
        status(&client, &url, Some(("alice", "wrong"))).status(),
        401
    );
    assert_eq!(
        status(&client, &url, Some(("mallory", "wonderland"))).status(),
        401
    );
    assert_eq!(
        status(&client, &url, Some(("alice", "wonderland"))).status(),
        200
    );
    assert_eq!(status(&client, &b.url("/v2/_catalog"), None).status(), 401);
    assert_eq!(
        status(&client, &b.url("/v2/x/tags/list"), None).status(),
        401
    );
    assert_eq!(
        status(&client, &b.url("/livez"), None).status(),
        200,
        "health stays open"
    );

    // skopeo pushes with credentials, and is refused without.
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    let push = |creds: Option<&str>| {
        let mut c = Command::new("skopeo");
        c.arg("--policy")
            .arg(&policy)
            .args(["copy", "--dest-tls-verify=false"]);
        if let Some(creds) = creds {
            c.args(["--dest-creds", creds]);
        }
        c.arg(format!("oci:{}:v1", src.display()))
            .arg(format!("docker://{}/auth/app:v1", b.addr))
            .output()
            .expect("skopeo is required (the README's test command installs it)")
    };
    assert!(!push(None).status.success(), "anonymous push refused");
    let out = push(Some("alice:wonderland"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A user added to the file can log in within seconds, without a restart.
    std::fs::write(
        &htpasswd,
        format!("{}{}", line("alice", "wonderland"), line("bob", "builder")),
    )
    .expect("write");
    let mut ok = false;
    for _ in 0..100 {
        if status(&client, &url, Some(("bob", "builder"))).status() == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "bob was let in after the reload");
}

#[test]
fn refused_auth_settings_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            json!({"auth": {"ldap": {"address": "ldap.example"}}}),
            "http.auth.ldap: zot key not supported",
        ),
        (
            json!({"auth": {"htpasswd": {"path": "/nonexistent/htpasswd"}}}),
            "http.auth.htpasswd.path: cannot read",
        ),
        (
            json!({"accessControl": {"repositories": {}}}),
            "http.accessControl: zot key not supported",
        ),
    ];
    for (i, (http, want)) in cases.into_iter().enumerate() {
        let cfg = tmp.path().join(format!("c{i}.json"));
        let mut h = json!({"port": "0"});
        if let (Some(o), serde_json::Value::Object(extra)) = (h.as_object_mut(), http) {
            o.extend(extra);
        }
        std::fs::write(
            &cfg,
            json!({"storage": {"rootDirectory": tmp.path().join("root")}, "http": h}).to_string(),
        )
        .expect("write");
        let out = berth().arg("serve").arg(&cfg).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(want), "{err:?} should contain {want:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

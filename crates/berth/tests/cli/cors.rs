//! `http.allowOrigin`: preflights are answered before authentication, and
//! answers carry the CORS headers a browser needs to read the registry's.

use serde_json::json;

use crate::support::*;

#[test]
fn preflight_and_headers_for_the_allowed_origin() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("pw", 4).expect("bcrypt")),
    )
    .expect("write");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"allowOrigin": "https://ui.example.com", "auth": {"htpasswd": {"path": htpasswd}}}),
        &[],
    );
    let c = reqwest::blocking::Client::new();
    let pre = c
        .request(reqwest::Method::OPTIONS, b.url("/v2/app/manifests/v1"))
        .header("Origin", "https://ui.example.com")
        .header("Access-Control-Request-Method", "PUT")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .expect("preflight");
    assert_eq!(pre.status(), 200, "preflight needs no credentials");
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "https://ui.example.com");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .contains("PUT")
    );
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    assert_eq!(h["access-control-allow-credentials"], "true");

    let r = c
        .get(b.url("/v2/"))
        .header("Origin", "https://ui.example.com")
        .basic_auth("alice", Some("pw"))
        .send()
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(exposed.contains("docker-content-digest") && exposed.contains("location"));

    // Another origin is not allowed: the header names only the allowed
    // one, so the browser refuses the page on another.
    let r = c
        .get(b.url("/v2/"))
        .header("Origin", "https://evil.example")
        .basic_auth("alice", Some("pw"))
        .send()
        .expect("get");
    assert!(
        r.headers()
            .get("access-control-allow-origin")
            .is_none_or(|v| v == "https://ui.example.com")
    );
}

#[test]
fn a_bad_origin_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("cors.json");
    std::fs::write(
        &cfg,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
               "http": {"allowOrigin": "ui.example.com"}})
        .to_string(),
    )
    .expect("write");
    let out = berth().arg("verify").arg(&cfg).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.allowOrigin:"));
}

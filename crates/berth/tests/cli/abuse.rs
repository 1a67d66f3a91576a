//! Abuse: password guessing is slowed by `failDelay` and never lets anyone
//! in; names and paths that try to escape a repository or dodge its rule
//! are refused; headers that claim an identity are ignored; tokens with a
//! forged algorithm are refused.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

fn htpasswd(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("htpasswd");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    std::fs::write(&path, line("alice", "alice-pw") + &line("root", "root-pw")).expect("write");
    path
}

#[test]
fn guessing_is_slowed_and_never_succeeds() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd(tmp.path())}, "failDelay": 1}}),
        &[],
    );
    let url = b.url("/v2/");
    // Each wrong guess waits at least failDelay; sixteen at once all fail.
    let start = Instant::now();
    let guesses: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let began = Instant::now();
                let status = reqwest::blocking::Client::new()
                    .get(&url)
                    .basic_auth("alice", Some(format!("guess-{i}")))
                    .send()
                    .expect("get")
                    .status()
                    .as_u16();
                (status, began.elapsed())
            })
        })
        .collect();
    for g in guesses {
        let (status, took) = g.join().expect("thread");
        assert_eq!(status, 401);
        assert!(
            took >= Duration::from_millis(990),
            "answered after {took:?}"
        );
    }
    assert!(start.elapsed() >= Duration::from_secs(1));
    // The server still serves the right password and its health checks.
    let c = reqwest::blocking::Client::new();
    let ok = c
        .get(&url)
        .basic_auth("alice", Some("alice-pw"))
        .send()
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(c.get(b.url("/livez")).send().expect("livez").status(), 200);
}

#[test]
fn escapes_and_spoofing_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let access = json!({
        "repositories": {
            "public/**": {"anonymousPolicy": ["read"], "defaultPolicy": ["read"]},
            "secret/**": {"policies": [{"users": ["root"], "actions": ["read"]}]}
        },
        "adminPolicy": {"users": ["root"], "actions": ["read", "create", "update", "delete"]}
    });
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd(tmp.path())}}, "accessControl": access}),
        &[],
    );
    let c = reqwest::blocking::Client::new();
    // root pushes a secret blob.
    let data = b"top secret".to_vec();
    let d = berth_oci::Digest::sha256(&data);
    let r = c
        .post(b.url(&format!("/v2/secret/app/blobs/uploads/?digest={d}")))
        .basic_auth("root", Some("root-pw"))
        .body(data)
        .send()
        .expect("push");
    assert_eq!(r.status(), 201);

    // Paths that try to reach secret/app from public/** or escape the
    // storage root: never a 2xx, never the secret. (Sent raw, so neither
    // the client nor a URL library normalises them first.)
    let raw = |path: &str, extra: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&b.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}\r\n",
            b.addr
        )
        .expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let blob = format!("blobs/{d}");
    for path in [
        format!("/v2/public/../secret/app/{blob}"),
        format!("/v2/public/%2e%2e/secret/app/{blob}"),
        format!("/v2/public/..%2fsecret/app/{blob}"),
        format!("/v2/public%2f..%2fsecret%2fapp/{blob}"),
        format!("/v2/secret%2fapp/{blob}"),
        format!("/v2/public/./secret/app/{blob}"),
        format!("/v2/Secret/App/{blob}"),
        format!("/v2/public/app/../../secret/app/{blob}"),
        "/v2/../../../../etc/passwd".to_string(),
        "/v2/public/..%2f..%2f..%2fetc/tags/list".to_string(),
        "/v2/public/*/tags/list".to_string(),
        "/v2/public/app/manifests/..%2f..%2f..%2fetc%2fpasswd".to_string(),
    ] {
        let resp = raw(&path, "");
        let status = resp.split_whitespace().nth(1).unwrap_or("");
        assert!(
            !status.starts_with('2'),
            "{path}: {}",
            resp.lines().next().unwrap_or("")
        );
        assert!(!resp.contains("top secret"), "{path} leaked the blob");
        assert!(!resp.contains("root:"), "{path} leaked a file");
    }

    // Headers claiming an identity change nothing: without credentials the
    // caller is anonymous.
    for header in [
        "X-Forwarded-User: root",
        "X-Remote-User: root",
        "Remote-User: root",
        "X-Auth-Request-User: root",
        "X-ZOT-API-CLIENT: zot-ui",
        "X-Forwarded-For: 127.0.0.1",
    ] {
        let resp = raw(&format!("/v2/secret/app/{blob}"), &format!("{header}\r\n"));
        assert!(
            resp.starts_with("HTTP/1.1 401"),
            "{header}: {}",
            resp.lines().next().unwrap_or("")
        );
    }
    // Two Authorization headers, one good: refused, not guessed between.
    let basic = |u: &str, p: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    };
    let resp = raw(
        &format!("/v2/secret/app/{blob}"),
        &format!(
            "Authorization: Basic {}\r\nAuthorization: Basic {}\r\n",
            basic("alice", "wrong"),
            basic("root", "root-pw")
        ),
    );
    assert!(
        resp.starts_with("HTTP/1.1 401"),
        "{}",
        resp.lines().next().unwrap_or("")
    );
    // Odd Basic values.
    for value in [
        format!("Basic {}", basic("root", "")),
        // Empty credentials count as none: anonymous, who may not read.
        format!("Basic {}", basic("", "")),
        format!("Basic {}", basic("", "root-pw")),
        format!("Basic {}", basic("root:root-pw", "x")),
        "Basic".to_string(),
        "Basic !!!".to_string(),
        format!("Digest {}", basic("root", "root-pw")),
    ] {
        let resp = raw(
            &format!("/v2/secret/app/{blob}"),
            &format!("Authorization: {value}\r\n"),
        );
        assert!(
            resp.starts_with("HTTP/1.1 401"),
            "{value}: {}",
            resp.lines().next().unwrap_or("")
        );
    }
    // The real thing works.
    let r = c
        .get(b.url(&format!("/v2/secret/app/{blob}")))
        .basic_auth("root", Some("root-pw"))
        .send()
        .expect("get");
    assert_eq!(r.status(), 200);
}

#[test]
fn an_encoded_prefix_does_not_skip_authentication() {
    // htpasswd and no access rules: every authenticated user may do
    // everything, so a request that slipped past authentication would be
    // let in.
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd(tmp.path())}}}),
        &[],
    );
    let raw = |method: &str, path: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&b.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            b.addr
        )
        .expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.lines().next().unwrap_or("").to_string()
    };
    for (method, path) in [
        ("GET", "/%76%32/app/tags/list"),
        ("POST", "/%76%32/app/blobs/uploads/"),
        ("GET", "/%2Fv2/app/tags/list"),
        ("GET", "/v%32/"),
        ("GET", "//v2/app/tags/list"),
        ("GET", "/V2/app/tags/list"),
        ("POST", "/%7Aot/auth/apikey"),
        ("GET", "/livez/../v2/app/tags/list"),
        ("GET", "/v2"),
        ("OPTIONS", "/v2/app/tags/list"),
    ] {
        let status = raw(method, path);
        assert!(
            status.starts_with("HTTP/1.1 401"),
            "{method} {path}: {status}"
        );
    }
    assert!(raw("GET", "/livez").starts_with("HTTP/1.1 200"));
}

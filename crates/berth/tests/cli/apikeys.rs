//! `http.auth.apikey`: keys made over `/zot/auth/apikey` work as Basic
//! passwords for their owner only, within their scopes, until they expire
//! or are revoked, survive a restart, and are never stored in clear.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

fn htpasswd(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("htpasswd");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    std::fs::write(&path, line("alice", "alice-pw") + &line("bob", "bob-pw")).expect("write");
    path
}

fn start(root: &std::path::Path, htpasswd: &std::path::Path) -> Berth {
    Berth::start_full(
        root,
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}, "apikey": true}}),
        &[],
    )
}

#[test]
fn api_keys_lifecycle() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = htpasswd(tmp.path());
    let root = tmp.path().join("root");
    let b = start(&root, &htpasswd);
    let c = reqwest::blocking::Client::new();
    let keys_url = b.url("/zot/auth/apikey");
    let make = |auth: (&str, &str), body: Value| {
        let r = c
            .post(&keys_url)
            .basic_auth(auth.0, Some(auth.1))
            .json(&body)
            .send()
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let v2 = |user: &str, pw: &str, path: &str| {
        c.get(b.url(path))
            .basic_auth(user, Some(pw))
            .send()
            .expect("get")
            .status()
            .as_u16()
    };
    let upload = |user: &str, pw: &str, repo: &str| {
        c.post(b.url(&format!("/v2/{repo}/blobs/uploads/")))
            .basic_auth(user, Some(pw))
            .send()
            .expect("post")
            .status()
            .as_u16()
    };

    // Only a logged-in user makes keys.
    assert_eq!(
        c.post(&keys_url)
            .json(&json!({}))
            .send()
            .expect("post")
            .status(),
        401
    );
    assert_eq!(make(("alice", "wrong"), json!({})).0, 401);
    let (status, made) = make(
        ("alice", "alice-pw"),
        json!({"label": "ci", "scopes": ["ci/**"]}),
    );
    assert_eq!(status, 201, "{made}");
    let key = made["apiKey"].as_str().expect("apiKey").to_string();
    assert!(key.starts_with("zak_"), "{key}");
    assert_eq!(made["label"], "ci");
    assert_eq!(made["scopes"], json!(["ci/**"]));
    assert_eq!(made["isExpired"], false);
    let uuid = made["uuid"].as_str().expect("uuid").to_string();

    // The key is alice's password within its scope, and nobody else's.
    assert_eq!(v2("alice", &key, "/v2/"), 200);
    assert_eq!(upload("alice", &key, "ci/app"), 202);
    assert_eq!(upload("alice", &key, "other/app"), 403, "outside the scope");
    assert_eq!(
        upload("alice", "alice-pw", "other/app"),
        202,
        "the password is unscoped"
    );
    assert_eq!(v2("bob", &key, "/v2/"), 401, "another user's key");
    assert_eq!(v2("alice", &key[..key.len() - 1], "/v2/"), 401);

    // A key cannot manage keys (a scoped key must not mint a wider one).
    assert_eq!(make(("alice", &key), json!({"label": "wider"})).0, 403);

    // Bad requests.
    for body in [
        json!({"expirationDate": "yesterday"}),
        json!({"expirationDate": "2001-01-01T00:00:00Z"}),
        json!({"scopes": ["a/[z-a]"]}),
        json!({"unknown": 1}),
    ] {
        assert_eq!(make(("alice", "alice-pw"), body.clone()).0, 400, "{body}");
    }

    // Listing shows details, never the key.
    let list: Value = c
        .get(&keys_url)
        .basic_auth("alice", Some("alice-pw"))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(list["apiKeys"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["apiKeys"][0]["uuid"], uuid.as_str());
    assert!(list["apiKeys"][0].get("apiKey").is_none());
    assert_ne!(list["apiKeys"][0]["lastUsed"], "0001-01-01T00:00:00Z");
    let bobs: Value = c
        .get(&keys_url)
        .basic_auth("bob", Some("bob-pw"))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(bobs["apiKeys"], json!([]));

    // An expiring key works until its time.
    let soon = time_in(2);
    let (status, made) = make(
        ("alice", "alice-pw"),
        json!({"label": "short", "expirationDate": soon}),
    );
    assert_eq!(status, 201, "{made}");
    let short = made["apiKey"].as_str().expect("apiKey").to_string();
    assert_eq!(v2("alice", &short, "/v2/"), 200);
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(v2("alice", &short, "/v2/"), 401, "expired");

    // skopeo pushes with the key as its password.
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let out = skopeo_push(
        tmp.path(),
        &src,
        &format!("{}/ci/app:v1", b.addr),
        Some(&format!("alice:{key}")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Keys survive a restart, even an unclean one (the metadata store is
    // rebuilt then; keys are not part of it) ...
    let mut b = b;
    b.child.kill().expect("kill");
    let _ = b.child.wait();
    let b = start(&root, &htpasswd);
    let v2 = |user: &str, pw: &str| {
        c.get(b.url("/v2/"))
            .basic_auth(user, Some(pw))
            .send()
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(v2("alice", &key), 200);
    // ... are stored only as hashes ...
    let stored = std::fs::read(root.join(".berth/apikeys.redb")).expect("store");
    let secret = key.trim_start_matches("zak_");
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()));
    // ... and a revoked key stops working at once.
    let del = |id: Option<&str>, who: (&str, &str)| {
        let mut url = b.url("/zot/auth/apikey");
        if let Some(id) = id {
            url.push_str(&format!("?id={id}"));
        }
        c.delete(url)
            .basic_auth(who.0, Some(who.1))
            .send()
            .expect("delete")
            .status()
            .as_u16()
    };
    assert_eq!(del(None, ("alice", "alice-pw")), 400);
    assert_eq!(del(Some(&uuid), ("bob", "bob-pw")), 404, "not bob's key");
    assert_eq!(v2("alice", &key), 200);
    assert_eq!(del(Some(&uuid), ("alice", "alice-pw")), 200);
    assert_eq!(v2("alice", &key), 401, "revoked");

    // A key stops working when its owner leaves the htpasswd file.
    let (status, made) = {
        let r = c
            .post(b.url("/zot/auth/apikey"))
            .basic_auth("bob", Some("bob-pw"))
            .json(&json!({"label": "bob's"}))
            .send()
            .expect("post");
        (r.status().as_u16(), r.json::<Value>().expect("json"))
    };
    assert_eq!(status, 201);
    let bobs_key = made["apiKey"].as_str().expect("key").to_string();
    assert_eq!(v2("bob", &bobs_key), 200);
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    std::fs::write(&htpasswd, line("alice", "alice-pw")).expect("write");
    let mut gone = false;
    for _ in 0..100 {
        if v2("bob", &bobs_key) == 401 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "bob's key refused once bob is removed");
}

/// RFC 3339 for `secs` from now, in UTC.
fn time_in(secs: u64) -> String {
    let t = std::time::SystemTime::now() + Duration::from_secs(secs);
    let out = Command::new("date")
        .args(["-u", "-d"])
        .arg(format!(
            "@{}",
            t.duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs()
        ))
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .expect("date");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

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
    let push = |creds: Option<&str>| {
        skopeo_push(tmp.path(), &src, &format!("{}/auth/app:v1", b.addr), creds)
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

    // The config file names another htpasswd file: its users replace the
    // old ones without a restart.
    let other = tmp.path().join("htpasswd-2");
    std::fs::write(&other, line("carol", "singer")).expect("write");
    let config = tmp.path().join("root").with_extension("json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read")).expect("json");
    cfg["http"]["auth"]["htpasswd"]["path"] = json!(other);
    std::fs::write(&config, cfg.to_string()).expect("write");
    let mut switched = false;
    for _ in 0..100 {
        if status(&client, &url, Some(("carol", "singer"))).status() == 200 {
            switched = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(switched, "carol was let in after the config edit");
    assert_eq!(
        status(&client, &url, Some(("alice", "wonderland"))).status(),
        401,
        "the old file's users are gone"
    );
}

#[test]
fn refused_auth_settings_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            json!({"auth": {"ldap": {"address": "ldap.example"}}}),
            "http.auth.ldap: missing field `baseDN`",
        ),
        (
            json!({"auth": {"ldap": {"address": "l", "baseDN": "dc=x", "userAttribute": "uid",
                                     "credentialsFile": "/nonexistent.json"}}}),
            "http.auth.ldap.credentialsFile: cannot read /nonexistent.json",
        ),
        (
            json!({"auth": {"bearer": {"realm": "r", "service": "s", "oidc": [{"issuer": "i"}]}}}),
            "http.auth.bearer.oidc[0].audiences: at least one",
        ),
        (
            json!({"auth": {"bearer": {"realm": "r", "service": "s", "cert": "/nonexistent.pem"}}}),
            "http.auth.bearer.cert: /nonexistent.pem:",
        ),
        (
            json!({"auth": {"ldap": {"address": "l", "baseDN": "dc=x", "userAttribute": "uid",
                                     "insecure": true, "startTLS": true}}}),
            "http.auth.ldap.startTLS: contradicts insecure",
        ),
        (
            json!({"auth": {"mtls": {}}}),
            "http.auth.mtls: needs http.tls.cacert",
        ),
        (
            json!({"auth": {"apikey": true}}),
            "http.auth.apikey: needs htpasswd, ldap or openid",
        ),
        (
            json!({"tls": {"cert": "/c", "key": "/k", "cacert": "/ca"},
                   "auth": {"mtls": {"identityAttributes": ["Serial"]}}}),
            "http.auth.mtls.identityAttributes: \"Serial\" is not one of",
        ),
        (
            json!({"auth": {"htpasswd": {"path": "/nonexistent/htpasswd"}}}),
            "http.auth.htpasswd.path: cannot read",
        ),
        (
            json!({"auth": {"openid": {"providers": {"github": {"clientid": "x", "scopes": ["user:email"],
                                                               "authurl": "https://ghe.test/login/oauth/authorize"}}}}}),
            "http.auth.openid.providers.github.tokenurl: authurl and tokenurl go together",
        ),
        (
            json!({"auth": {"openid": {"providers": {"dex": {"clientid": "x"}}}}}),
            "http.auth.openid.providers.dex: unsupported provider",
        ),
        (
            json!({"auth": {"openid": {"providers": {"oidc": {"clientid": "x", "scopes": ["openid"]}}}}}),
            "http.auth.openid.providers.oidc.issuer: is required",
        ),
        (
            json!({"auth": {"openid": {"providers": {"oidc": {"issuer": "http://idp.test", "scopes": ["openid"]}}}}}),
            "http.auth.openid.providers.oidc.clientid: is required",
        ),
        (
            json!({"auth": {"openid": {"providers": {"oidc": {"issuer": "idp", "clientid": "x", "scopes": ["openid"]}}}}}),
            "http.auth.openid.providers.oidc.issuer: idp: not an absolute URL",
        ),
        (
            json!({"auth": {"openid": {"callbackAllowOrigins": ["http://ui.test/home"],
                   "providers": {"oidc": {"issuer": "http://idp.test", "clientid": "x", "scopes": ["openid"]}}}}}),
            "http.auth.openid.callbackAllowOrigins: http://ui.test/home: an origin",
        ),
        (
            json!({"externalUrl": "registry.test"}),
            "http.externalUrl: registry.test: not an absolute URL",
        ),
        (
            json!({"auth": {"htpasswd": {"path": "/nonexistent/htpasswd"}, "sessionKeysFile": "/nonexistent/keys.json"}}),
            "http.auth.sessionKeysFile: /nonexistent/keys.json",
        ),
        (
            json!({"auth": {"sessionDriver": {"name": "memcached"}}}),
            "http.auth.sessionDriver.name: memcached: local or redis",
        ),
        (
            json!({"accessControl": {"repositories": {"a/[z-a]": {}}}}),
            "http.accessControl.repositories.a/[z-a]: bad glob",
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
        // Bounded: a config wrongly accepted would otherwise serve forever.
        let out = Command::new("timeout")
            .arg("30")
            .arg(env!("CARGO_BIN_EXE_berth"))
            .arg("serve")
            .arg(&cfg)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(want), "{err:?} should contain {want:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

/// Pushes a small blob and a manifest naming it as `user`; returns the
/// manifest PUT's status (or the blob push's, if that failed).
fn push_as(
    client: &reqwest::blocking::Client,
    b: &Berth,
    who: Option<(&str, &str)>,
    repo: &str,
    tag: &str,
    salt: &str,
) -> u16 {
    let auth = |r: reqwest::blocking::RequestBuilder| match who {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    };
    let mut digests = Vec::new();
    for data in [b"{}".to_vec(), format!("layer {salt}").into_bytes()] {
        let d = berth_oci::Digest::sha256(&data);
        let r = auth(client.post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}"))))
            .body(data.clone())
            .send()
            .expect("push blob");
        if r.status() != 201 {
            return r.status().as_u16();
        }
        digests.push((d, data.len()));
    }
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0].0.to_string(), "size": digests[0].1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[1].0.to_string(), "size": digests[1].1}]});
    auth(client.put(b.url(&format!("/v2/{repo}/manifests/{tag}"))))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m.to_string())
        .send()
        .expect("put")
        .status()
        .as_u16()
}

#[test]
fn access_control_policy_matrix_and_live_reload() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!(
            "{}{}{}",
            line("alice", "a"),
            line("bob", "b"),
            line("carol", "c")
        ),
    )
    .expect("write");
    let rules = |bob_reads_team: bool| {
        let mut team = json!({"policies": [
            {"users": ["alice"], "actions": ["read", "create"]},
            {"groups": ["admins"], "actions": ["read", "create", "update", "delete"]}]});
        if bob_reads_team {
            team["policies"]
                .as_array_mut()
                .expect("p")
                .push(json!({"users": ["bob"], "actions": ["read"]}));
        }
        json!({
            "repositories": {
                "**": {"defaultPolicy": ["read"]},
                "public/**": {"defaultPolicy": ["read"], "anonymousPolicy": ["read"]},
                "team/**": team
            },
            "groups": {"admins": {"users": ["carol"]}}
        })
    };
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}}, "accessControl": rules(false)}),
        &[],
    );
    let c = reqwest::blocking::Client::new();
    let (alice, bob, carol) = (
        Some(("alice", "a")),
        Some(("bob", "b")),
        Some(("carol", "c")),
    );
    let get = |who: Option<(&str, &str)>, path: &str| {
        let mut r = c.get(b.url(path));
        if let Some((u, p)) = who {
            r = r.basic_auth(u, Some(p));
        }
        r.send().expect("get").status().as_u16()
    };

    // Create: alice and carol may, bob may not (403), anonymous must log in (401).
    assert_eq!(push_as(&c, &b, alice, "team/app", "v1", "1"), 201);
    assert_eq!(push_as(&c, &b, bob, "team/app", "v2", "2"), 403);
    assert_eq!(push_as(&c, &b, None, "team/app", "v3", "3"), 401);
    // Moving an existing tag is an update: carol (admins) may, alice not.
    assert_eq!(push_as(&c, &b, alice, "team/app", "v1", "4"), 403);
    assert_eq!(push_as(&c, &b, carol, "team/app", "v1", "5"), 201);
    assert_eq!(
        push_as(&c, &b, carol, "public/lib", "v1", "6"),
        403,
        "nobody may create under public/**"
    );

    // Read: the longest glob wins, team/** has no default read.
    assert_eq!(get(alice, "/v2/team/app/manifests/v1"), 200);
    assert_eq!(get(bob, "/v2/team/app/manifests/v1"), 403);
    assert_eq!(get(None, "/v2/team/app/manifests/v1"), 401);
    assert_eq!(
        get(None, "/v2/public/lib/tags/list"),
        404,
        "anonymous may read public/**: the repo just is not there"
    );
    assert_eq!(
        get(bob, "/v2/other/tags/list"),
        404,
        "defaultPolicy read on **"
    );

    // The catalog shows only what the caller may read.
    let catalog = |who: Option<(&str, &str)>| -> serde_json::Value {
        let mut r = c.get(b.url("/v2/_catalog"));
        if let Some((u, p)) = who {
            r = r.basic_auth(u, Some(p));
        }
        r.send()
            .expect("catalog")
            .json::<serde_json::Value>()
            .expect("json")["repositories"]
            .clone()
    };
    assert_eq!(catalog(alice), json!(["team/app"]));
    assert_eq!(catalog(bob), json!([]));

    // Delete: only admins.
    let del = |who: Option<(&str, &str)>| {
        let (u, p) = who.expect("user");
        c.delete(b.url("/v2/team/app/manifests/v1"))
            .basic_auth(u, Some(p))
            .send()
            .expect("delete")
            .status()
            .as_u16()
    };
    assert_eq!(del(alice), 403);

    // Rules edited in the config file take effect without a restart.
    let config = tmp.path().join("root").with_extension("json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read")).expect("json");
    cfg["http"]["accessControl"] = rules(true);
    std::fs::write(&config, cfg.to_string()).expect("write");
    let mut reloaded = false;
    for _ in 0..100 {
        if get(bob, "/v2/team/app/manifests/v1") == 200 {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reloaded, "bob reads team/** after the edit");
    // An invalid edit keeps the running rules.
    std::fs::write(&config, "{ not json").expect("write");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(get(bob, "/v2/team/app/manifests/v1"), 200);
    assert_eq!(del(carol), 202);
}

#[test]
fn audit_log_records_every_mutating_request() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, line("alice", "wonderland")).expect("write");
    let audit = tmp.path().join("audit.log");
    // The audit file is a `log` key: start_full writes `storage` and
    // `http`, so add `log` to its config and restart from it.
    let root = tmp.path().join("root");
    let b = Berth::start_full(
        &root,
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}}}),
        &[],
    );
    drop(b);
    let config = root.with_extension("json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read")).expect("json");
    cfg["log"] = json!({"audit": audit});
    std::fs::write(&config, cfg.to_string()).expect("write");
    let b = Berth::start_config(&config);

    let c = reqwest::blocking::Client::new();
    let r = c
        .post(b.url("/v2/team/app/blobs/uploads/"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .expect("post");
    assert_eq!(r.status(), 202);
    let r = c
        .delete(b.url("/v2/team/app/manifests/v9?x=1"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .expect("delete");
    assert_eq!(r.status(), 404);
    let r = c
        .post(b.url("/v2/team/app/blobs/uploads/"))
        .basic_auth("mallory", Some("guess"))
        .send()
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = c
        .get(b.url("/v2/team/app/tags/list"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .expect("get");
    assert!(r.status().is_success(), "a read, which is not audited");

    let text = std::fs::read_to_string(&audit).expect("audit log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    let want = [
        ("alice", "POST", "/v2/team/app/blobs/uploads/", 202),
        ("alice", "DELETE", "/v2/team/app/manifests/v9?x=1", 404),
        ("", "POST", "/v2/team/app/blobs/uploads/", 401),
    ];
    for (entry, (subject, action, object, status)) in lines.iter().zip(want) {
        assert_eq!(entry["subject"], subject, "{entry}");
        assert_eq!(entry["action"], action, "{entry}");
        assert_eq!(entry["object"], object, "{entry}");
        assert_eq!(entry["status"], status, "{entry}");
        assert!(
            entry["clientIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("127.0.0.1:")),
            "{entry}"
        );
        assert!(
            entry["time"].as_str().is_some_and(|t| t.len() >= 20),
            "{entry}"
        );
    }
}

#[test]
fn skopeo_logs_in_where_anonymous_callers_may_read() {
    // With anonymous read allowed, a client that pings /v2/ must still be
    // told to authenticate, or it would push without its credentials.
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, line("alice", "wonderland")).expect("write");
    let access = json!({"repositories": {"**": {
        "anonymousPolicy": ["read"],
        "policies": [{"users": ["alice"], "actions": ["read", "create", "update"]}]}}});
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}}, "accessControl": access}),
        &[],
    );
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let out = skopeo_push(
        tmp.path(),
        &src,
        &format!("{}/open/app:v1", b.addr),
        Some("alice:wonderland"),
    );
    assert!(
        out.status.success(),
        "push with credentials: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And an anonymous pull works.
    let back = tmp.path().join("back");
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(skopeo_policy(tmp.path()))
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/open/app:v1", b.addr))
        .arg(format!("oci:{}:v1", back.display()))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "anonymous pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

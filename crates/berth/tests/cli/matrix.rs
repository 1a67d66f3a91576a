//! The access-control matrix: callers (anonymous, users by name, by group,
//! an admin, a scoped API key, wrong password, expired and revoked keys)
//! × repositories (under different rules) × every route of the API, each
//! answer's status checked exactly against a model of the rules written
//! here, independently of the server's code.

use std::time::Duration;

use berth_oci::Digest;
use serde_json::{Value, json};

use crate::support::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Read,
    Create,
    Update,
    Delete,
}

/// A route to call: name, method, path, body, the action it needs, and
/// its status when allowed.
type Route = (
    &'static str,
    &'static str,
    String,
    Option<Vec<u8>>,
    Action,
    u16,
);

const REPOS: [&str; 4] = ["public/app", "team/app", "secret/app", "other/app"];

fn rules() -> Value {
    json!({
        "repositories": {
            "public/**": {"defaultPolicy": ["read"], "anonymousPolicy": ["read"]},
            "team/**": {"policies": [
                {"users": ["alice"], "actions": ["read", "create"]},
                {"groups": ["devs"], "actions": ["read", "create", "update", "delete"]}
            ]},
            "secret/**": {"policies": [{"users": ["alice"], "actions": ["read"]}]}
        },
        "adminPolicy": {"users": ["root"], "actions": ["read", "create", "update", "delete"]},
        "groups": {"devs": {"users": ["dana"]}}
    })
}

/// Who is calling, and the credentials they send.
#[derive(Clone)]
struct Caller {
    name: &'static str,
    creds: Option<(String, String)>,
    /// Refused at login whatever the route.
    bad_login: bool,
}

/// The model: what each caller may do, from the rules above.
fn allowed(caller: &str, repo: &str, action: Action) -> bool {
    let area = repo.split('/').next().unwrap_or("");
    match caller {
        "root" => true,
        "anonymous" | "eve" => area == "public" && action == Action::Read,
        "alice" => match area {
            "public" | "secret" => action == Action::Read,
            "team" => matches!(action, Action::Read | Action::Create),
            _ => false,
        },
        "dana" => match area {
            "public" => action == Action::Read,
            "team" => true,
            _ => false,
        },
        // Alice's rights, within the key's scope team/**.
        "alice-key" => area == "team" && allowed("alice", repo, action),
        _ => false,
    }
}

struct Fixture {
    manifest: Vec<u8>,
    manifest_digest: Digest,
    layer: Digest,
}

fn seed(c: &reqwest::blocking::Client, b: &Berth) -> Fixture {
    let config = b"{}".to_vec();
    let layer = b"matrix layer".to_vec();
    let (cd, ld) = (Digest::sha256(&config), Digest::sha256(&layer));
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}]})
    .to_string()
    .into_bytes();
    for repo in REPOS {
        for (d, data) in [(&cd, &config), (&ld, &layer)] {
            let r = c
                .post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
                .basic_auth("root", Some("root-pw"))
                .body(data.clone())
                .send()
                .expect("blob");
            assert_eq!(r.status(), 201, "seed blob in {repo}");
        }
        let r = c
            .put(b.url(&format!("/v2/{repo}/manifests/v1")))
            .basic_auth("root", Some("root-pw"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .expect("manifest");
        assert_eq!(r.status(), 201, "seed manifest in {repo}");
    }
    Fixture {
        manifest_digest: Digest::sha256(&manifest),
        manifest,
        layer: ld,
    }
}

fn make_key(c: &reqwest::blocking::Client, b: &Berth, body: Value) -> (String, String) {
    let r: Value = c
        .post(b.url("/zot/auth/apikey"))
        .basic_auth("alice", Some("alice-pw"))
        .json(&body)
        .send()
        .expect("key")
        .json()
        .expect("json");
    (
        r["apiKey"].as_str().expect("apiKey").to_string(),
        r["uuid"].as_str().expect("uuid").to_string(),
    )
}

#[test]
fn every_route_for_every_caller_and_repository() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = tmp.path().join("htpasswd");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    std::fs::write(
        &htpasswd,
        ["alice", "dana", "eve", "root"]
            .map(|u| line(u, &format!("{u}-pw")))
            .concat(),
    )
    .expect("htpasswd");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}, "apikey": true}, "accessControl": rules()}),
        &[],
    );
    let c = reqwest::blocking::Client::new();
    let fx = seed(&c, &b);

    let (scoped_key, _) = make_key(&c, &b, json!({"label": "ci", "scopes": ["team/**"]}));
    let (revoked_key, revoked_id) = make_key(&c, &b, json!({"label": "old"}));
    let r = c
        .delete(b.url(&format!("/zot/auth/apikey?id={revoked_id}")))
        .basic_auth("alice", Some("alice-pw"))
        .send()
        .expect("revoke");
    assert_eq!(r.status(), 200);
    let soon = {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", "+2 seconds", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .expect("date");
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    };
    let (expired_key, _) = make_key(&c, &b, json!({"label": "short", "expirationDate": soon}));
    std::thread::sleep(Duration::from_millis(3100));

    let user = |name: &'static str| Caller {
        name,
        creds: Some((name.to_string(), format!("{name}-pw"))),
        bad_login: false,
    };
    let callers = vec![
        Caller {
            name: "anonymous",
            creds: None,
            bad_login: false,
        },
        user("alice"),
        user("dana"),
        user("eve"),
        user("root"),
        Caller {
            name: "alice-key",
            creds: Some(("alice".into(), scoped_key)),
            bad_login: false,
        },
        Caller {
            name: "wrong-password",
            creds: Some(("alice".into(), "nope".into())),
            bad_login: true,
        },
        Caller {
            name: "expired-key",
            creds: Some(("alice".into(), expired_key)),
            bad_login: true,
        },
        Caller {
            name: "revoked-key",
            creds: Some(("alice".into(), revoked_key)),
            bad_login: true,
        },
    ];

    let zero = format!("sha256:{}", "0".repeat(64));
    let no_upload = "00000000-0000-4000-8000-000000000000";
    let mut checked = 0;
    let mut failures = Vec::new();
    for caller in &callers {
        for repo in REPOS {
            // (route, method, path, body, action needed, status when allowed)
            let routes: Vec<Route> = vec![
                (
                    "tags",
                    "GET",
                    format!("/v2/{repo}/tags/list"),
                    None,
                    Action::Read,
                    200,
                ),
                (
                    "manifest get",
                    "GET",
                    format!("/v2/{repo}/manifests/v1"),
                    None,
                    Action::Read,
                    200,
                ),
                (
                    "manifest head",
                    "HEAD",
                    format!("/v2/{repo}/manifests/v1"),
                    None,
                    Action::Read,
                    200,
                ),
                (
                    "manifest by digest",
                    "GET",
                    format!("/v2/{repo}/manifests/{}", fx.manifest_digest),
                    None,
                    Action::Read,
                    200,
                ),
                (
                    "blob get",
                    "GET",
                    format!("/v2/{repo}/blobs/{}", fx.layer),
                    None,
                    Action::Read,
                    200,
                ),
                (
                    "blob head",
                    "HEAD",
                    format!("/v2/{repo}/blobs/{}", fx.layer),
                    None,
                    Action::Read,
                    200,
                ),
                (
                    "referrers",
                    "GET",
                    format!("/v2/{repo}/referrers/{}", fx.manifest_digest),
                    None,
                    Action::Read,
                    200,
                ),
                (
                    "upload start",
                    "POST",
                    format!("/v2/{repo}/blobs/uploads/"),
                    None,
                    Action::Create,
                    202,
                ),
                (
                    "upload status",
                    "GET",
                    format!("/v2/{repo}/blobs/uploads/{no_upload}"),
                    None,
                    Action::Create,
                    404,
                ),
                (
                    "upload patch",
                    "PATCH",
                    format!("/v2/{repo}/blobs/uploads/{no_upload}"),
                    Some(b"x".to_vec()),
                    Action::Create,
                    404,
                ),
                (
                    "upload put",
                    "PUT",
                    format!("/v2/{repo}/blobs/uploads/{no_upload}?digest={zero}"),
                    None,
                    Action::Create,
                    404,
                ),
                (
                    "upload cancel",
                    "DELETE",
                    format!("/v2/{repo}/blobs/uploads/{no_upload}"),
                    None,
                    Action::Create,
                    404,
                ),
                (
                    "manifest put new tag",
                    "PUT",
                    format!("/v2/{repo}/manifests/new-{}", caller.name),
                    Some(fx.manifest.clone()),
                    Action::Create,
                    201,
                ),
                (
                    "manifest put existing tag",
                    "PUT",
                    format!("/v2/{repo}/manifests/v1"),
                    Some(fx.manifest.clone()),
                    Action::Update,
                    201,
                ),
                (
                    "manifest delete",
                    "DELETE",
                    format!("/v2/{repo}/manifests/{zero}"),
                    None,
                    Action::Delete,
                    404,
                ),
                (
                    "blob delete",
                    "DELETE",
                    format!("/v2/{repo}/blobs/{zero}"),
                    None,
                    Action::Delete,
                    404,
                ),
            ];
            for (route, method, path, body, action, ok) in routes {
                let want = if caller.bad_login {
                    401
                } else if allowed(caller.name, repo, action) {
                    ok
                } else if caller.creds.is_none() {
                    401
                } else {
                    403
                };
                let mut req = c.request(method.parse().expect("method"), b.url(&path));
                if let Some((u, p)) = &caller.creds {
                    req = req.basic_auth(u, Some(p));
                }
                if let Some(body) = body {
                    req = req
                        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                        .body(body);
                }
                let resp = req.send().expect("request");
                let got = resp.status().as_u16();
                if got == 401 && resp.headers().get("www-authenticate").is_none() {
                    failures.push(format!(
                        "{} {route} {repo}: 401 without a challenge",
                        caller.name
                    ));
                }
                if got != want {
                    failures.push(format!(
                        "{} {route} {repo}: got {got}, want {want}",
                        caller.name
                    ));
                }
                checked += 1;
            }

            // Mounting from secret/app also needs read there; without it the
            // client gets an upload session instead of the blob.
            let mut req = c.post(b.url(&format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from=secret/app",
                fx.layer
            )));
            if let Some((u, p)) = &caller.creds {
                req = req.basic_auth(u, Some(p));
            }
            let got = req.send().expect("mount").status().as_u16();
            let want = if caller.bad_login {
                401
            } else if !allowed(caller.name, repo, Action::Create) {
                if caller.creds.is_none() { 401 } else { 403 }
            } else if allowed(caller.name, "secret/app", Action::Read) {
                201
            } else {
                202
            };
            if got != want {
                failures.push(format!(
                    "{} mount {repo}: got {got}, want {want}",
                    caller.name
                ));
            }
            checked += 1;
        }

        // The base route challenges anyone without credentials, even where
        // anonymous reads are allowed: clients ping it to learn how to log in.
        let mut req = c.get(b.url("/v2/"));
        if let Some((u, p)) = &caller.creds {
            req = req.basic_auth(u, Some(p));
        }
        let got = req.send().expect("base").status().as_u16();
        let want = if caller.bad_login || caller.creds.is_none() {
            401
        } else {
            200
        };
        if got != want {
            failures.push(format!("{} base: got {got}, want {want}", caller.name));
        }

        // The catalog lists what the caller may read.
        let mut req = c.get(b.url("/v2/_catalog"));
        if let Some((u, p)) = &caller.creds {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().expect("catalog");
        if caller.bad_login {
            assert_eq!(resp.status(), 401, "{}", caller.name);
        } else {
            let got: Value = resp.json().expect("json");
            let want: Vec<&str> = REPOS
                .iter()
                .copied()
                .filter(|r| allowed(caller.name, r, Action::Read))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if got["repositories"] != json!(want) {
                failures.push(format!(
                    "{} catalog: got {}, want {want:?}",
                    caller.name, got["repositories"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, callers.len() * REPOS.len() * 17);
}

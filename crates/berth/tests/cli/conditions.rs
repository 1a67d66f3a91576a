//! Access-control `conditions` (CEL over the request) and `${username}`
//! namespaces, against the real binary over TLS: skopeo pushes a release
//! tag and is refused another with the rule's message; a group's read
//! needs TLS 1.3; each user owns their namespace; a bad expression is
//! refused by `berth verify`, naming its key.

use std::process::Command;

use serde_json::json;

use crate::support::*;
use crate::tls::make_pki;

/// `curl` over TLS with `args`: (HTTP code, body).
fn curl(pki: &std::path::Path, args: &[&str], url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "10", "--cacert"])
        .arg(pki.join("ca.crt"))
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

#[test]
fn conditions_and_user_namespaces_judge_real_requests() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    make_pki(&pki, "conditions");
    let p = |f: &str| pki.join(f).display().to_string();
    let htpasswd = htpasswd_file(tmp.path(), &[("alice", "a"), ("bob", "b")]);
    let access = json!({
        "repositories": {
            "apps/**": {"policies": [
                {"users": ["alice"], "actions": ["read", "create", "update"],
                 "conditions": [{"expression": "req.referenceType != 'tag' || req.tag.startsWith('v')",
                                 "message": "only release tags (v*) may be pushed"}]},
                {"groups": ["devs"], "actions": ["read"],
                 "conditions": [{"expression": "req.tls.enabled && req.tls.version == '1.3'",
                                 "message": "TLS 1.3 only"},
                                {"expression": "req.user.username == 'bob' && 'devs' in req.user.groups && req.repository.startsWith('apps/')",
                                 "message": "unreachable"}]}
            ]},
            "${username}/**": {"defaultPolicy": ["read", "create", "update", "delete"]}
        },
        "groups": {"devs": {"users": ["bob"]}}
    });
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"tls": {"cert": p("server.crt"), "key": p("server.key")},
               "auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0},
               "accessControl": access}),
        &[],
    );
    // skopeo's cert dir: the CA alone (a `.key` there would be taken for
    // a client key).
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(pki.join("ca.crt"), certs.join("ca.crt")).expect("copy");
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let push = |dest: &str, creds: &str| {
        Command::new("skopeo")
            .arg("--policy")
            .arg(skopeo_policy(tmp.path()))
            .args(["copy", "--dest-cert-dir"])
            .arg(&certs)
            .args(["--dest-creds", creds])
            .arg(format!("oci:{}:v1", src.display()))
            .arg(format!("docker://{}/{dest}", b.addr))
            .output()
            .expect("skopeo")
    };
    let out = push("apps/web:v1.0", "alice:a");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = push("apps/web:latest", "alice:a");
    assert!(!out.status.success(), "a non-release tag is refused");

    // The refusal carries the condition's message.
    let manifest_url = format!("https://{}/v2/apps/web/manifests/v1.0", b.addr);
    let (code, manifest) = curl(
        &pki,
        &[
            "-u",
            "alice:a",
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json",
        ],
        &manifest_url,
    );
    assert_eq!(code, "200");
    let (code, body) = curl(
        &pki,
        &[
            "-u",
            "alice:a",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
            &manifest,
        ],
        &format!("https://{}/v2/apps/web/manifests/latest", b.addr),
    );
    assert_eq!(code, "403", "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(err["errors"][0]["code"], "DENIED");
    assert_eq!(
        err["errors"][0]["detail"]["reason"],
        "only release tags (v*) may be pushed"
    );

    // bob reads through his group only over TLS 1.3.
    let tags = format!("https://{}/v2/apps/web/tags/list", b.addr);
    let (code, body) = curl(&pki, &["-u", "bob:b", "--tlsv1.3"], &tags);
    assert_eq!(code, "200", "{body}");
    let (code, body) = curl(&pki, &["-u", "bob:b", "--tls-max", "1.2"], &tags);
    assert_eq!(code, "403", "{body}");
    assert!(body.contains("TLS 1.3 only"), "{body}");
    let (code, _) = curl(&pki, &["-u", "bob:b", "-X", "DELETE"], &manifest_url);
    assert_eq!(code, "403", "the group entry grants read only");

    // Each user owns `<name>/**`; nobody else's.
    assert!(push("alice/tool:anything", "alice:a").status.success());
    assert!(!push("alice/tool:anything", "bob:b").status.success());
    assert!(push("bob/tool:x", "bob:b").status.success());
    let (code, _) = curl(
        &pki,
        &[],
        &format!("https://{}/v2/alice/tool/tags/list", b.addr),
    );
    assert_eq!(code, "401", "anonymous callers own no namespace");
}

#[test]
fn a_bad_condition_is_refused_naming_its_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = htpasswd_file(tmp.path(), &[("alice", "a")]);
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        json!({
            "storage": {"rootDirectory": tmp.path().join("root")},
            "http": {"address": "127.0.0.1", "port": "0",
                     "auth": {"htpasswd": {"path": htpasswd}},
                     "accessControl": {"repositories": {"**": {"policies": [
                         {"users": ["alice"], "actions": ["read"],
                          "conditions": [{"expression": "req.method ==", "message": "m"}]}]}}}}
        })
        .to_string(),
    )
    .expect("write");
    let out = berth().arg("verify").arg(&config).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http.accessControl.repositories.**.policies[0].conditions[0].expression"),
        "{err}"
    );
}

#[test]
fn detect_manifest_collision_stops_a_deletion_that_would_take_several_tags() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = htpasswd_file(tmp.path(), &[("ops", "o"), ("root", "r")]);
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0},
               "accessControl": {"repositories": {"**": {"policies": [
                   {"users": ["ops"], "actions": ["read", "create", "update", "delete", "detectManifestCollision"]},
                   {"users": ["root"], "actions": ["read", "create", "update", "delete"]}]}}}}),
        &[],
    );
    let (digest, _) = push_empty_image_as(&b, "app", "v1", Some(("ops", "o")));
    push_empty_image_as(&b, "app", "stable", Some(("ops", "o")));
    let c = reqwest::blocking::Client::new();
    let by_digest = b.url(&format!("/v2/app/manifests/{digest}"));
    let r = c
        .delete(&by_digest)
        .basic_auth("ops", Some("o"))
        .send()
        .expect("delete");
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID");
    assert_eq!(body["errors"][0]["detail"]["tags"], json!(["stable", "v1"]));
    // A user without the action deletes it, every tag with it (as zot).
    let r = c
        .delete(&by_digest)
        .basic_auth("root", Some("r"))
        .send()
        .expect("delete");
    assert_eq!(r.status(), 202);
}

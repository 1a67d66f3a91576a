//! `http.auth.bearer`: Docker token authentication against a token server
//! started by the test. Challenges carry the scope each route needs; the
//! token's `access` claim is all it grants; forged, expired and foreign
//! tokens are refused; skopeo completes the flow unaided.

use std::process::Command;

use serde_json::json;

use crate::support::*;
use crate::token_server::{SERVICE, Signer, TokenServer};

fn get(url: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut req = reqwest::blocking::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().expect("request")
}

#[test]
fn bearer_tokens_from_a_token_server() {
    let tmp = tempfile::tempdir().expect("tmp");
    let signer = Signer::new(tmp.path(), "issuer");
    let cert = signer.cert.clone();
    let tokens = TokenServer::start(signer);
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"bearer": {"realm": tokens.realm, "service": SERVICE, "cert": cert}}}),
        &[],
    );
    let realm_part = format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", tokens.realm);

    // No token: the base route asks for one without a scope, a repository
    // route with the scope it needs.
    let r = get(&b.url("/v2/"), None);
    assert_eq!(r.status(), 401);
    assert_eq!(www_authenticate(&r), realm_part);
    let r = get(&b.url("/v2/app/tags/list"), None);
    assert_eq!(r.status(), 401);
    assert_eq!(
        www_authenticate(&r),
        format!("{realm_part},scope=\"repository:app:pull\"")
    );
    let body: serde_json::Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let r = get(&b.url("/v2/_catalog"), None);
    assert_eq!(
        www_authenticate(&r),
        format!("{realm_part},scope=\"registry:catalog:*\"")
    );
    assert_eq!(get(&b.url("/livez"), None).status(), 200);

    // skopeo gets its tokens from the realm and pushes, then pulls back.
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let policy = skopeo_policy(tmp.path());
    let skopeo = |args: &[String]| {
        Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args(args)
            .output()
            .expect("skopeo is required (the README's test command installs it)")
    };
    let push = |creds: &str, repo: &str| {
        skopeo(&[
            "copy".into(),
            "--dest-tls-verify=false".into(),
            "--dest-creds".into(),
            creds.into(),
            format!("oci:{}:v1", src.display()),
            format!("docker://{}/{repo}:v1", b.addr),
        ])
    };
    let out = push("alice:wonderland", "team/app");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !push("alice:wrong", "team/app").status.success(),
        "the token server refuses a wrong password"
    );
    // The token server grants only pull under locked/: the push is refused.
    let out = push("alice:wonderland", "locked/app");
    assert!(!out.status.success(), "push under locked/ refused");
    let back = tmp.path().join("back");
    let out = skopeo(&[
        "copy".into(),
        "--src-tls-verify=false".into(),
        "--src-creds".into(),
        "alice:wonderland".into(),
        format!("docker://{}/team/app:v1", b.addr),
        format!("oci:{}:v1", back.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(layout_blobs(&back), layout_blobs(&src));

    // oras-py's token backend does the same flow.
    let out = Command::new(oras_python())
        .arg(workspace().join("tests/clients/oras_auth.py"))
        .arg(&b.addr)
        .args(["-", "alice", "wonderland", "token"])
        .output()
        .expect("run oras script");
    assert!(
        out.status.success(),
        "oras-py token flow failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_claims_are_checked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let signer = Signer::new(tmp.path(), "issuer");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"bearer": {"realm": "https://auth.example/token", "service": SERVICE,
                                   "cert": signer.cert}}}),
        &[],
    );
    let pull_app = json!([{"type": "repository", "name": "app", "actions": ["pull"]}]);
    let tags = b.url("/v2/app/tags/list");

    // A good token reaches the route (the repository does not exist).
    let good = signer.token("alice", SERVICE, pull_app.clone(), 300);
    assert_eq!(get(&tags, Some(&good)).status(), 404);
    assert_eq!(get(&b.url("/v2/"), Some(&good)).status(), 200);

    // It grants nothing else: another repository, or a push, is 403 with
    // a challenge naming the missing scope (RFC 6750 insufficient_scope).
    let r = get(&b.url("/v2/other/tags/list"), Some(&good));
    assert_eq!(r.status(), 403);
    assert!(
        www_authenticate(&r)
            .ends_with(",scope=\"repository:other:pull\",error=\"insufficient_scope\""),
        "{}",
        www_authenticate(&r)
    );
    let r = reqwest::blocking::Client::new()
        .post(b.url("/v2/app/blobs/uploads/"))
        .bearer_auth(&good)
        .send()
        .expect("post");
    assert_eq!(r.status(), 403);
    assert!(www_authenticate(&r).contains("scope=\"repository:app:pull,push\""));
    let r = get(&b.url("/v2/_catalog"), Some(&good));
    assert_eq!(r.status(), 200, "catalog without its scope is filtered");
    assert_eq!(
        r.json::<serde_json::Value>().expect("json")["repositories"],
        json!([])
    );

    // Refused: expired, for another service, signed by another key, forged
    // claims, not a JWT at all.
    let expired = signer.token("alice", SERVICE, pull_app.clone(), -120);
    let other_aud = signer.token("alice", "other-registry", pull_app.clone(), 300);
    let foreign = Signer::new(tmp.path(), "foreign").token("alice", SERVICE, pull_app.clone(), 300);
    let forged = {
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(&parts[1]).expect("b64")).expect("claims");
        claims["access"][0]["name"] = json!("other");
        parts[1] = b64.encode(claims.to_string());
        parts.join(".")
    };
    // Algorithm confusion: "none", and HS256 keyed with the public
    // certificate.
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let claims_part = good.split('.').nth(1).expect("claims").to_string();
    let alg_none = format!(
        "{}.{claims_part}.",
        b64(&json!({"alg": "none", "typ": "JWT"}))
    );
    let hs256 = {
        let pem = std::fs::read(&signer.cert).expect("cert");
        let claims: serde_json::Value = {
            use base64::Engine;
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&claims_part)
                    .expect("b64"),
            )
            .expect("claims")
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&pem).expect("secret"),
        )
        .expect("hs256")
    };
    // Each is sent to the repository its claims name, where a valid
    // token would get through (404: no such repository).
    for (what, token, repo) in [
        ("alg none", alg_none.as_str(), "app"),
        ("hs256 with the certificate", hs256.as_str(), "app"),
        ("expired", expired.as_str(), "app"),
        ("other audience", other_aud.as_str(), "app"),
        ("foreign key", foreign.as_str(), "app"),
        ("forged claims", forged.as_str(), "other"),
        ("garbage", "not-a-jwt", "app"),
    ] {
        let r = get(&b.url(&format!("/v2/{repo}/tags/list")), Some(token));
        assert_eq!(r.status(), 401, "{what}");
        assert!(www_authenticate(&r).starts_with("Bearer realm="), "{what}");
        assert!(
            !www_authenticate(&r).contains("insufficient_scope"),
            "{what}: refused as a token, not for its scope"
        );
    }

    // The signing key is rotated in place: within seconds, tokens of the
    // new key work and those of the old one do not, with no restart.
    let rotated = Signer::new(tmp.path(), "issuer");
    let fresh = rotated.token("alice", SERVICE, pull_app.clone(), 300);
    let mut switched = false;
    for _ in 0..100 {
        if get(&tags, Some(&fresh)).status() == 404 {
            switched = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(switched, "the new key is trusted after the rotation");
    assert_eq!(get(&tags, Some(&good)).status(), 401, "the old key is not");
}

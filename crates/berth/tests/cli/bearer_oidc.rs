//! `http.auth.bearer.oidc`: workload identity tokens from an OIDC issuer
//! started by the test (discovery and JWKS over HTTP, keys generated per
//! test). A token names a user through `claimMapping` (CEL) and the access
//! rules judge that user; every way a token can be wrong is 401; a rotated
//! key is picked up; skopeo pushes with the token; an issuer that cannot
//! be reached is 503; a bad expression is refused by `berth verify`.

use std::path::Path;
use std::process::Command;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::oidc_issuer::{Issuer, OidcProvider, SigningKey, now};
use crate::support::*;
use crate::token_server::{SERVICE, Signer};

/// `skopeo copy` of the layout `src` (tag v1) to `addr/repo:v1` over
/// plain HTTP with a bearer token (`--dest-registry-token`).
fn push_with_token(
    dir: &Path,
    src: &Path,
    addr: &str,
    token: &str,
    repo: &str,
) -> std::process::Output {
    Command::new("skopeo")
        .arg("--policy")
        .arg(skopeo_policy(dir))
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-registry-token",
            token,
        ])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{addr}/{repo}:v1"))
        .output()
        .expect("skopeo is required (the README's test command installs it)")
}

fn get(url: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut req = reqwest::blocking::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().expect("request")
}

/// zot's claim mapping of a CI system's tokens: the team from the
/// repository claim, only the main branch, the user `ci:<sub>`.
fn oidc_config(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "audiences": [" berth ", "other"],
        "claimMapping": {
            "variables": [
                {"name": "team", "expression": "claims.repository.split('/')[0]"},
                {"name": "user", "expression": "'ci:' + claims.sub"},
            ],
            "validations": [
                {"expression": "claims.ref == 'refs/heads/main'", "message": "only the main branch pushes"},
            ],
            "username": "vars.user",
            "groups": "[vars.team]",
        },
    })
}

fn access_rules() -> Value {
    json!({
        "repositories": {
            "acme/**": {"policies": [
                {"users": ["ci:builder"], "actions": ["read", "create", "update"]},
                {"groups": ["acme"], "actions": ["read"]},
            ]},
        },
    })
}

#[test]
fn oidc_tokens_name_users_the_access_rules_judge() {
    let tmp = tempfile::tempdir().expect("tmp");
    let issuer = Issuer::start(
        vec![
            SigningKey::new("r1", Algorithm::RS256),
            SigningKey::new("e1", Algorithm::ES256),
        ],
        &["RS256", "ES256"],
    );
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({
            "auth": {"bearer": {"oidc": [oidc_config(&issuer.url)]}},
            "accessControl": access_rules(),
        }),
        &[],
    );
    assert_eq!(issuer.jwks_fetches(), 0, "nothing is fetched at start-up");
    let main = json!({"repository": "acme/app", "ref": "refs/heads/main"});
    let builder = issuer
        .key("r1")
        .sign(&issuer.claims("builder", json!("berth"), main.clone()));

    // No token: challenged for one.
    let r = get(&b.url("/v2/"), None);
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");

    // ci:builder may read and push under acme/, nothing elsewhere.
    assert_eq!(get(&b.url("/v2/"), Some(&builder)).status(), 200);
    let r = get(&b.url("/v2/acme/app/tags/list"), Some(&builder));
    assert_eq!(r.status(), 404, "allowed, and not there yet");
    let r = get(&b.url("/v2/other/app/tags/list"), Some(&builder));
    assert_eq!(r.status(), 403);

    // skopeo pushes with the token (`--dest-registry-token`).
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let push = |token: &str, repo: &str| push_with_token(tmp.path(), &src, &b.addr, token, repo);
    let out = push(&builder, "acme/app");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get(&b.url("/v2/acme/app/manifests/v1"), Some(&builder)).status(),
        200
    );

    // Another user of the team, by its group (variables feed the groups):
    // reads, but may not push. An ES256 key of the same issuer.
    let reader =
        issuer
            .key("e1")
            .sign(&issuer.claims("reader", json!(["other", "x"]), main.clone()));
    assert_eq!(
        get(&b.url("/v2/acme/app/manifests/v1"), Some(&reader)).status(),
        200
    );
    assert!(
        !push(&reader, "acme/app").status.success(),
        "the group only reads"
    );

    // Every way a token can be wrong is 401.
    let r1 = issuer.key("r1");
    let mut expired = issuer.claims("builder", json!("berth"), main.clone());
    expired["exp"] = json!(now() - 60);
    let mut foreign = issuer.claims("builder", json!("berth"), main.clone());
    foreign["iss"] = json!("https://issuer.example");
    let mut later = issuer.claims("builder", json!("berth"), main.clone());
    later["nbf"] = json!(now() + 3600);
    let forger = SigningKey::new("r1", Algorithm::RS256);
    let dev = json!({"repository": "acme/app", "ref": "refs/heads/dev"});
    let bad = [
        ("wrong audience", r1.sign(&issuer.claims("builder", json!("registry"), main.clone()))),
        ("expired", r1.sign(&expired)),
        ("not valid yet", r1.sign(&later)),
        ("another issuer", r1.sign(&foreign)),
        ("unknown kid", r1.sign_as(&issuer.claims("builder", json!("berth"), main.clone()), Some("nope"))),
        ("bad signature", forger.sign(&issuer.claims("builder", json!("berth"), main.clone()))),
        ("validation false", r1.sign(&issuer.claims("builder", json!("berth"), dev))),
        ("no username claim", r1.sign(&json!({"iss": issuer.url, "aud": "berth", "exp": now() + 60, "ref": "refs/heads/main", "repository": "acme/app"}))),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (what, token) in &bad {
        let r = get(&b.url("/v2/acme/app/tags/list"), Some(token));
        assert_eq!(r.status(), 401, "{what}");
        let body: Value = r.json().expect("json");
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{what}");
    }
    // Two Authorization headers: refused whatever they hold.
    let r = reqwest::blocking::Client::new()
        .get(b.url("/v2/"))
        .header("authorization", format!("Bearer {builder}"))
        .header("authorization", format!("Bearer {builder}"))
        .send()
        .expect("request");
    assert_eq!(r.status(), 401);

    // A rotated key: the new kid makes the key set be fetched again, the
    // old key stops working once it is gone from the set.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fetches = issuer.jwks_fetches();
    issuer.rotate(vec![SigningKey::new("r2", Algorithm::RS256)]);
    let rotated = issuer
        .key("r2")
        .sign(&issuer.claims("builder", json!("other"), main.clone()));
    assert_eq!(
        get(&b.url("/v2/acme/app/tags/list"), Some(&rotated)).status(),
        200
    );
    assert_eq!(issuer.jwks_fetches(), fetches + 1);
    assert_eq!(
        get(&b.url("/v2/acme/app/tags/list"), Some(&builder)).status(),
        401
    );
    // Known keys are not fetched again per request.
    for _ in 0..3 {
        assert_eq!(get(&b.url("/v2/"), Some(&rotated)).status(), 200);
    }
    assert!(issuer.jwks_fetches() <= fetches + 2);
}

/// Only the algorithms the issuer declares are accepted; an issuer that
/// cannot be reached is 503 (the backend rule), not 401.
#[test]
fn oidc_algorithms_and_an_unreachable_issuer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let issuer = Issuer::start(
        vec![
            SigningKey::new("r1", Algorithm::RS256),
            SigningKey::new("e1", Algorithm::ES256),
        ],
        &["RS256"],
    );
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let mapping = json!({"username": "claims.sub"});
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"bearer": {"oidc": [
            {"issuer": issuer.url, "audiences": ["berth"], "claimMapping": mapping},
            {"issuer": dead, "audiences": ["berth"], "claimMapping": mapping},
        ]}}}),
        &[],
    );
    let claims = issuer.claims("svc", json!("berth"), json!({}));
    assert_eq!(
        get(&b.url("/v2/"), Some(&issuer.key("r1").sign(&claims))).status(),
        200
    );
    // Without access control every user may do everything (zot's rule).
    assert_eq!(
        get(
            &b.url("/v2/any/tags/list"),
            Some(&issuer.key("r1").sign(&claims))
        )
        .status(),
        404
    );
    // ES256 is not among the issuer's declared algorithms.
    assert_eq!(
        get(&b.url("/v2/"), Some(&issuer.key("e1").sign(&claims))).status(),
        401
    );

    let mut at_dead = claims.clone();
    at_dead["iss"] = json!(dead);
    let r = get(&b.url("/v2/"), Some(&issuer.key("r1").sign(&at_dead)));
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    // The reachable issuer is not held up by the other.
    assert_eq!(
        get(&b.url("/v2/"), Some(&issuer.key("r1").sign(&claims))).status(),
        200
    );
}

/// A claim mapping that does not compile is refused at load, naming its key.
#[test]
fn oidc_bad_cel_is_refused_by_verify() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (mapping, key) in [
        (
            json!({"username": "claims.sub +"}),
            "http.auth.bearer.oidc[0].claimMapping.username",
        ),
        (
            json!({"validations": [{"expression": "claims.(", "message": "m"}]}),
            "http.auth.bearer.oidc[0].claimMapping.validations[0].expression",
        ),
    ] {
        let config = tmp.path().join("c.json");
        std::fs::write(
            &config,
            json!({
                "storage": {"rootDirectory": tmp.path().join("root")},
                "http": {"port": "0", "auth": {"bearer": {"oidc": {
                    "issuer": "https://issuer.example", "audiences": ["berth"], "claimMapping": mapping,
                }}}},
            })
            .to_string(),
        )
        .expect("write");
        let out = berth().arg("verify").arg(&config).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(key), "{key}: {err}");
    }
}

/// A real OpenID provider (oidc-provider): its client credentials tokens
/// (JWT access tokens for a resource) name the client, whom the access
/// rules let push; skopeo pushes with the token.
#[test]
fn oidc_provider_tokens_push_with_skopeo() {
    let tmp = tempfile::tempdir().expect("tmp");
    let provider = OidcProvider::start();
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({
            "auth": {"bearer": {"oidc": [{
                "issuer": provider.url,
                "audiences": ["https://berth.test"],
                "claimMapping": {
                    "validations": [{"expression": "claims.scope.split(' ').exists(s, s == 'push')", "message": "needs the push scope"}],
                    "username": "claims.client_id",
                },
            }]}},
            "accessControl": {"repositories": {"ci/**": {"policies": [
                {"users": ["ci"], "actions": ["read", "create", "update"]},
            ]}}},
        }),
        &[],
    );
    let token = provider.token("https://berth.test");
    assert_eq!(get(&b.url("/v2/"), Some(&token)).status(), 200);
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let push = |token: &str, repo: &str| push_with_token(tmp.path(), &src, &b.addr, token, repo);
    let out = push(&token, "ci/app");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get(&b.url("/v2/ci/app/manifests/v1"), Some(&token)).status(),
        200
    );
    assert!(
        !push(&token, "other/app").status.success(),
        "no rule for other/"
    );
    // A token for another resource (audience): 401.
    let other = provider.token("https://other.test");
    assert_eq!(get(&b.url("/v2/"), Some(&other)).status(), 401);
}

/// OIDC beside classic tokens: a workload identity token is tried first
/// and judged by the access rules, its claims reaching their `conditions`
/// as `req.claims`; a classic token (its iss no configured issuer) still
/// carries its own grant; the challenge is the token server's.
#[test]
fn oidc_beside_classic_tokens() {
    let tmp = tempfile::tempdir().expect("tmp");
    let issuer = Issuer::start(vec![SigningKey::new("r1", Algorithm::RS256)], &["RS256"]);
    let signer = Signer::new(tmp.path(), "classic");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({
            "auth": {"bearer": {
                "realm": "http://127.0.0.1:9/token", "service": SERVICE, "cert": signer.cert,
                "oidc": [{"issuer": issuer.url, "audiences": ["berth"], "claimMapping": {"username": "claims.sub"}}],
            }},
            "accessControl": {"repositories": {"ci/**": {"policies": [
                {"users": ["builder"], "actions": ["read"]},
                // The token's claims reach the conditions as req.claims.
                {"users": ["builder"], "actions": ["create"], "conditions": [
                    {"expression": "req.claims.env == 'prod'", "message": "only prod tokens push"},
                ]},
            ]}}},
        }),
        &[],
    );
    let r = get(&b.url("/v2/ci/app/tags/list"), None);
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        format!("Bearer realm=\"http://127.0.0.1:9/token\",service=\"{SERVICE}\",scope=\"repository:ci/app:pull\"").as_str()
    );
    let oidc = issuer
        .key("r1")
        .sign(&issuer.claims("builder", json!("berth"), json!({})));
    assert_eq!(
        get(&b.url("/v2/ci/app/tags/list"), Some(&oidc)).status(),
        404
    );
    assert_eq!(
        get(&b.url("/v2/other/tags/list"), Some(&oidc)).status(),
        403
    );
    let classic = signer.token(
        "alice",
        SERVICE,
        json!([{"type": "repository", "name": "other", "actions": ["pull"]}]),
        300,
    );
    assert_eq!(
        get(&b.url("/v2/other/tags/list"), Some(&classic)).status(),
        404
    );
    assert_eq!(
        get(&b.url("/v2/ci/app/tags/list"), Some(&classic)).status(),
        403
    );
    // Pushes need the claim the condition asks for.
    let start_upload = |token: &str| {
        reqwest::blocking::Client::new()
            .post(b.url("/v2/ci/app/blobs/uploads/"))
            .bearer_auth(token)
            .send()
            .expect("request")
    };
    let key = issuer.key("r1");
    let prod = key.sign(&issuer.claims("builder", json!("berth"), json!({"env": "prod"})));
    let dev = key.sign(&issuer.claims("builder", json!("berth"), json!({"env": "dev"})));
    assert_eq!(start_upload(&prod).status(), 202);
    let r = start_upload(&dev);
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .unwrap_or_default()
            .contains("only prod tokens push")
    );
}

/// An issuer over HTTPS: with `certificateAuthority` (or the file) its CA
/// is the one root trusted for discovery and keys; without it the
/// system's roots do not know it, so the issuer is unreachable (503).
#[test]
fn oidc_issuer_over_https_with_its_own_ca() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    crate::tls::make_pki(&pki, "oidc");
    let issuer = Issuer::start_tls(
        vec![SigningKey::new("r1", Algorithm::RS256)],
        &["RS256"],
        &pki,
    );
    let ca = std::fs::read_to_string(pki.join("ca.crt")).expect("ca");
    let token = issuer
        .key("r1")
        .sign(&issuer.claims("svc", json!("berth"), json!({})));
    for (name, extra, want) in [
        ("inline", json!({"certificateAuthority": ca}), 200),
        (
            "file",
            json!({"certificateAuthorityFile": pki.join("ca.crt")}),
            200,
        ),
        ("system roots", json!({}), 503),
    ] {
        let mut provider = json!({"issuer": issuer.url, "audiences": ["berth"]});
        if let (Some(p), Value::Object(extra)) = (provider.as_object_mut(), extra) {
            p.extend(extra);
        }
        let b = Berth::start_full(
            &tmp.path().join(name.replace(' ', "-")),
            json!({}),
            json!({"auth": {"bearer": {"oidc": [provider]}}}),
            &[],
        );
        assert_eq!(get(&b.url("/v2/"), Some(&token)).status(), want, "{name}");
    }
}

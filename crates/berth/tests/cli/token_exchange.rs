//! zot's token endpoint, `/zot/auth/token`, as the realm of Berth's own
//! bearer challenge: API keys come back wrapped, workload identity tokens
//! from a real OpenID provider come back as they are, and everything else
//! goes to the upstream token service (`upstreamTokenEndpoint`, the test's
//! Docker token server) — skopeo completes each flow unaided.

use std::process::Command;

use serde_json::{Value, json};

use crate::oidc_issuer::OidcProvider;
use crate::support::*;
use crate::token_server::{SERVICE, Signer, TokenServer};

fn skopeo_copy(
    policy: &std::path::Path,
    creds: &str,
    from: String,
    to: String,
) -> std::process::Output {
    Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args([
            if from.starts_with("docker://") {
                "--src-creds"
            } else {
                "--dest-creds"
            },
            creds,
        ])
        .args([from, to])
        .output()
        .expect("skopeo is required (the README's test command installs it)")
}

#[test]
fn the_token_endpoint_exchanges_what_berth_owns_and_forwards_the_rest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let signer = Signer::new(tmp.path(), "upstream");
    let cert = signer.cert.clone();
    let upstream = TokenServer::start(signer);
    let provider = OidcProvider::start();
    let port = free_port();
    let realm = format!("http://127.0.0.1:{port}/zot/auth/token");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({
            "port": port.to_string(),
            "auth": {
                "htpasswd": {"path": htpasswd_file(tmp.path(), &[("bob", "builder")])},
                "apikey": true,
                "bearer": {
                    "realm": realm,
                    "service": SERVICE,
                    "cert": cert,
                    "oidc": [{"issuer": provider.url, "audiences": ["https://berth.test"],
                              "claimMapping": {"username": "claims.client_id"}}],
                    "upstreamTokenEndpoint": {"realm": upstream.realm, "service": SERVICE,
                                              "allowInsecureHttp": true},
                },
            },
        }),
        &[],
    );
    let http = reqwest::blocking::Client::new();
    let token_url = b.url("/zot/auth/token");

    // Clients are sent to Berth's own endpoint.
    let r = http.get(b.url("/v2/")).send().expect("ping");
    assert_eq!(r.status(), 401);
    assert!(
        www_authenticate(&r).starts_with(&format!("Bearer realm=\"{realm}\"")),
        "{}",
        www_authenticate(&r)
    );

    // bob makes an API key with his password.
    let r = http
        .post(b.url("/zot/auth/apikey"))
        .basic_auth("bob", Some("builder"))
        .json(&json!({"label": "ci"}))
        .send()
        .expect("create key");
    assert_eq!(r.status(), 201);
    let created: Value = r.json().expect("json");
    let key = created["apiKey"].as_str().expect("apiKey").to_string();
    let uuid = created["uuid"].as_str().expect("uuid").to_string();

    // The key comes back wrapped, and the wrapped credential is a bearer
    // token for the registry.
    let r = http
        .get(format!(
            "{token_url}?service={SERVICE}&scope=repository:team/app:pull,push"
        ))
        .basic_auth("bob", Some(&key))
        .send()
        .expect("token");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().expect("json");
    let wrapped = body["token"].as_str().expect("token").to_string();
    assert!(wrapped.starts_with("zot_cred_v1."), "{wrapped}");
    assert_eq!(body["access_token"], body["token"]);
    let ping = |token: &str| {
        http.get(b.url("/v2/"))
            .bearer_auth(token)
            .send()
            .expect("ping")
            .status()
    };
    assert_eq!(ping(&wrapped), 200);

    // skopeo does the flow with the key as its password, and with the
    // upstream's own user, whose request Berth forwards.
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let policy = skopeo_policy(tmp.path());
    let layout = format!("oci:{}:v1", src.display());
    let out = skopeo_copy(
        &policy,
        &format!("bob:{key}"),
        layout.clone(),
        format!("docker://{}/team/app:v1", b.addr),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = skopeo_copy(
        &policy,
        "alice:wonderland",
        layout.clone(),
        format!("docker://{}/alice/app:v1", b.addr),
    );
    assert!(
        out.status.success(),
        "forwarded: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = tmp.path().join("back");
    let out = skopeo_copy(
        &policy,
        "alice:wonderland",
        format!("docker://{}/team/app:v1", b.addr),
        format!("oci:{}:v1", back.display()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(layout_blobs(&back), layout_blobs(&src));
    // The upstream refuses a wrong password; its answer is passed back.
    let r = http
        .get(&token_url)
        .basic_auth("alice", Some("wrong"))
        .send()
        .expect("token");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().expect("json")["details"],
        "bad credentials"
    );

    // Berth's own credentials are judged here and never forwarded: a wrong
    // key, a key without its owner's name, a wrapped credential.
    for (user, secret) in [
        ("bob", "zak_wrong"),
        ("", key.as_str()),
        ("bob", wrapped.as_str()),
    ] {
        let r = http
            .get(&token_url)
            .basic_auth(user, Some(secret))
            .send()
            .expect("token");
        assert_eq!(r.status(), 401, "{user}:{secret}");
        assert!(
            www_authenticate(&r).starts_with("Basic realm="),
            "{}",
            www_authenticate(&r)
        );
        let body: Value = r.json().expect("json");
        assert_eq!(
            body["errors"][0]["code"], "UNAUTHORIZED",
            "not the upstream's answer"
        );
    }

    // A workload identity token from the OpenID provider comes back as it
    // is, from a form body too, with its remaining lifetime.
    let jwt = provider.token("https://berth.test");
    let r = http
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&service={SERVICE}&access_token={jwt}"
        ))
        .send()
        .expect("token");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().expect("json");
    assert_eq!(body["token"], jwt.as_str());
    let expires_in = body["expires_in"].as_i64().expect("expires_in");
    assert!(expires_in > 0, "{body}");
    assert_eq!(ping(&jwt), 200);
    // One for another audience is not Berth's: the upstream refuses it.
    let foreign = provider.token("https://elsewhere.test");
    let r = http
        .get(&token_url)
        .basic_auth("ci", Some(&foreign))
        .send()
        .expect("token");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().expect("json")["details"],
        "bad credentials"
    );

    // Revoking the key revokes its wrapped credential.
    let r = http
        .delete(b.url(&format!("/zot/auth/apikey?id={uuid}")))
        .basic_auth("bob", Some("builder"))
        .send()
        .expect("revoke");
    assert_eq!(r.status(), 200);
    assert_eq!(ping(&wrapped), 401);
    let r = http
        .get(&token_url)
        .basic_auth("bob", Some(&key))
        .send()
        .expect("token");
    assert_eq!(r.status(), 401);
}

/// A Berth with htpasswd, API keys and `bearer` as given.
fn with_bearer(dir: &std::path::Path, bearer: Value) -> Berth {
    Berth::start_full(
        &dir.join("root"),
        json!({}),
        json!({"auth": {
            "htpasswd": {"path": htpasswd_file(dir, &[("bob", "builder")])},
            "apikey": true,
            "bearer": bearer,
        }}),
        &[],
    )
}

#[test]
fn an_unreachable_upstream_token_service_is_a_bad_gateway() {
    let tmp = tempfile::tempdir().expect("tmp");
    let oidc = json!([{"issuer": "http://127.0.0.1:1", "audiences": ["a"]}]);
    let b = with_bearer(
        tmp.path(),
        json!({
            "realm": "http://127.0.0.1:1/zot/auth/token",
            "service": SERVICE,
            "oidc": oidc,
            "upstreamTokenEndpoint": {
                "realm": format!("http://127.0.0.1:{}/token", free_port()),
                "allowInsecureHttp": true,
            },
        }),
    );
    let r = reqwest::blocking::Client::new()
        .get(b.url("/zot/auth/token?service=x"))
        .basic_auth("someone", Some("else"))
        .send()
        .expect("token");
    assert_eq!(r.status(), 502);
    let body: Value = r.json().expect("json");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("upstream token service")),
        "{body}"
    );
    // Without an upstream, what is not Berth's is refused.
    let tmp2 = tempfile::tempdir().expect("tmp");
    let plain = with_bearer(tmp2.path(), json!({"oidc": oidc}));
    let r = reqwest::blocking::Client::new()
        .get(plain.url("/zot/auth/token"))
        .basic_auth("bob", Some("builder"))
        .send()
        .expect("token");
    assert_eq!(r.status(), 401);
}

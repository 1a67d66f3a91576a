//! zot's `oauth2` sync credential helper against a real OpenID provider
//! (`tests/oidc-provider`, panva's oidc-provider): its client `sync`
//! authenticates with a JWT signed by the test's key (`private_key_jwt`),
//! which the helper reads from `assertionFile` or signs itself from
//! `signingFile`; the provider's access token (a JWT) reaches the
//! upstream as the password of `<token>`: an upstream that records what
//! it is sent (`fake_http`), the token checked against the provider's
//! keys, and an upstream Berth trusting the provider, through its token
//! exchange (`/zot/auth/token`).

use std::path::Path;

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::fake_http::FakeHttp;
use crate::images::block_on;
use crate::oidc_issuer::{OidcProvider, now};
use crate::sync::{client_of, log_of};
use crate::sync_helpers::start_mirror_env;

const KID: &str = "sync-key-1";

/// The client's key: its PEM under `dir`, its public half as a JWKS file
/// for the provider.
struct ClientKey {
    pem: std::path::PathBuf,
    jwks: std::path::PathBuf,
    key: EncodingKey,
}

impl ClientKey {
    fn new(dir: &Path) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let pem = dir.join("sync-key.pem");
        std::fs::write(&pem, pair.serialize_pem()).expect("pem");
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("key");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some(KID.into());
        let jwks = dir.join("sync-jwks.json");
        std::fs::write(
            &jwks,
            serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("jwks"),
        )
        .expect("jwks file");
        Self { pem, jwks, key }
    }

    /// An assertion signed ahead, as a platform would issue it.
    fn assertion(&self, token_url: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.into());
        let claims = json!({"iss": "sync", "sub": "sync", "aud": token_url,
            "iat": now(), "exp": now() + 300, "jti": format!("pre-signed-{}", now())});
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }
}

/// An upstream that answers every request 404 and keeps what it is sent.
fn recording_upstream() -> FakeHttp {
    FakeHttp::start(|_| {
        (
            404,
            "application/json",
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.into(),
        )
    })
}

/// The passwords of `<token>` the upstream was sent.
fn tokens_sent(up: &FakeHttp) -> Vec<String> {
    let mut out = Vec::new();
    for r in up.requests() {
        let Some(basic) = r
            .header("authorization")
            .and_then(|a| a.strip_prefix("Basic "))
        else {
            continue;
        };
        let login = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .expect("base64");
        let login = String::from_utf8(login).expect("utf8");
        let (user, password) = login.split_once(':').expect("user:password");
        assert_eq!(user, "<token>");
        if !out.iter().any(|p| p == password) {
            out.push(password.to_string());
        }
    }
    out
}

/// `token`, verified with the provider's published keys: its claims.
fn verified(provider: &OidcProvider, token: &str) -> Value {
    let jwks: JwkSet = reqwest::blocking::get(format!("{}/jwks", provider.url))
        .expect("jwks")
        .json()
        .expect("jwks json");
    let header = jsonwebtoken::decode_header(token).expect("a JWT");
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.common.key_id == header.kid)
        .expect("the provider's key");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&["https://berth.test"]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("a token of the provider")
        .claims
}

#[test]
fn oauth2_tokens_from_a_real_provider_with_a_signing_file_and_an_assertion_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ClientKey::new(dir.path());
    let provider = OidcProvider::start_with(Some(&key.jwks));
    let token_url = format!("{}/token", provider.url);
    let up = recording_upstream();
    let signing = dir.path().join("signing.json");
    std::fs::write(
        &signing,
        json!({"privateKeyFile": key.pem, "algorithm": "ES256", "keyId": KID}).to_string(),
    )
    .expect("signing file");
    let assertion = dir.path().join("assertion.jwt");
    std::fs::write(&assertion, key.assertion(&token_url)).expect("assertion file");
    let mut seen = Vec::new();
    for (name, source) in [
        ("signing", json!({"signingFile": signing})),
        ("assertion", json!({"assertionFile": assertion})),
    ] {
        let mut helper = json!({"tokenURL": token_url, "clientID": "sync", "scopes": ["push"]});
        helper
            .as_object_mut()
            .expect("object")
            .extend(source.as_object().expect("object").clone());
        let mirror_dir = dir.path().join(name);
        std::fs::create_dir_all(&mirror_dir).expect("dir");
        let mirror = start_mirror_env(
            &mirror_dir,
            json!({"registries": [{"urls": [up.url()], "onDemand": true,
                "credentialHelper": "oauth2", "oauth2CredentialHelper": helper}]}),
            &[],
        );
        let missing = block_on(client_of(&mirror).get_manifest_raw("app", "v1"));
        assert!(
            matches!(missing, Ok(None)),
            "{missing:?}: {}",
            log_of(&mirror)
        );
        let tokens = tokens_sent(&up);
        let token = tokens
            .iter()
            .find(|t| !seen.contains(*t))
            .unwrap_or_else(|| panic!("{name}: no new token sent; {}", log_of(&mirror)))
            .clone();
        let claims = verified(&provider, &token);
        assert_eq!(claims["client_id"], "sync", "{claims}");
        assert_eq!(claims["scope"], "push", "{claims}");
        seen.push(token);
    }
}

#[test]
fn a_client_assertion_the_provider_refuses_is_logged_and_the_upstream_gets_no_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ClientKey::new(dir.path());
    // The provider knows another key.
    let provider_keys = dir.path().join("other");
    std::fs::create_dir_all(&provider_keys).expect("dir");
    let other = ClientKey::new(&provider_keys);
    let provider = OidcProvider::start_with(Some(&other.jwks));
    let up = recording_upstream();
    let signing = dir.path().join("signing.json");
    std::fs::write(
        &signing,
        json!({"privateKeyFile": key.pem, "algorithm": "ES256", "keyId": KID}).to_string(),
    )
    .expect("signing file");
    let mirror = start_mirror_env(
        dir.path(),
        json!({"registries": [{"urls": [up.url()], "onDemand": true,
            "credentialHelper": "oauth2", "oauth2CredentialHelper": {
                "tokenURL": format!("{}/token", provider.url), "clientID": "sync",
                "signingFile": signing}}]}),
        &[],
    );
    let missing = block_on(client_of(&mirror).get_manifest_raw("app", "v1"));
    assert!(matches!(missing, Ok(None)), "{missing:?}");
    assert!(tokens_sent(&up).is_empty());
    let log = log_of(&mirror);
    assert!(
        log.contains("oauth2 credential helper: no login for") && log.contains("invalid_client"),
        "{log}"
    );
}

/// The whole way: an upstream Berth trusting the provider
/// (`http.auth.bearer.oidc`) challenges with its own token endpoint,
/// `/zot/auth/token`, which takes `<token>:<jwt>` and hands the JWT back
/// as the bearer token; the mirror's helper gets the JWT from the
/// provider with its signed assertion, and pulls on demand.
#[test]
fn oauth2_tokens_reach_a_berth_upstream_through_its_token_exchange() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ClientKey::new(dir.path());
    let provider = OidcProvider::start_with(Some(&key.jwks));
    let port = crate::support::free_port();
    let realm = format!("http://127.0.0.1:{port}/zot/auth/token");
    let up = crate::support::Berth::start_full(
        &dir.path().join("upstream"),
        json!({}),
        json!({
            "port": port.to_string(),
            "auth": {"bearer": {
                "realm": realm,
                "service": "berth-upstream",
                "oidc": [{"issuer": provider.url, "audiences": ["https://berth.test"],
                          "claimMapping": {"username": "claims.client_id"}}],
            }},
            "accessControl": {"repositories": {"**": {"policies": [
                {"users": ["ci"], "actions": ["read", "create", "update"]},
                {"users": ["sync"], "actions": ["read"]},
            ]}}},
        }),
        &[],
    );
    let anonymous = reqwest::blocking::get(up.url("/v2/vendor/app/manifests/v1")).expect("get");
    assert_eq!(anonymous.status(), 401);
    // The image goes up through the same exchange, as the client `ci`.
    let ci = format!("<token>:{}", provider.token("https://berth.test"));
    let pusher = berth_client::Client::new(&up.addr, Some(&ci)).expect("client");
    let pushed = block_on(crate::images::push_image(
        &pusher,
        "vendor/app",
        "v1",
        &[b"layer"],
    ));
    let signing = dir.path().join("signing.json");
    std::fs::write(
        &signing,
        json!({"privateKeyFile": key.pem, "algorithm": "ES256", "keyId": KID}).to_string(),
    )
    .expect("signing file");
    let mirror = start_mirror_env(
        dir.path(),
        json!({"registries": [{"urls": [format!("http://{}", up.addr)], "onDemand": true,
            "credentialHelper": "oauth2", "oauth2CredentialHelper": {
                "tokenURL": format!("{}/token", provider.url), "clientID": "sync",
                "scopes": ["push"], "signingFile": signing}}]}),
        &[],
    );
    let local = client_of(&mirror);
    assert_eq!(
        crate::sync::digest_at(&local, "vendor/app", "v1"),
        Some(pushed.digest.to_string()),
        "{}",
        log_of(&mirror)
    );
}

//! `http.auth.bearer.awsSecretsManager`: the keys of classic bearer tokens
//! read from AWS Secrets Manager — moto's server mode (PyPI
//! `moto[server]`, which the README's test command installs into
//! `./.venv`), on a free loopback port, the secret created through its
//! API. A token names its key by `kid`; a rotated secret is picked up
//! after `refreshInterval`; an unreadable secret keeps the last good keys;
//! with none, a token is answered 503.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::oidc_issuer::now;
use crate::support::*;

const SERVICE: &str = "berth-test";
const SECRET: &str = "berth/bearer-keys";

/// `moto_server` beside the tests' Python.
fn moto_binary() -> PathBuf {
    let bin = oras_python().with_file_name("moto_server");
    assert!(
        bin.exists(),
        "{} is missing: the README's test command installs moto[server] into .venv",
        bin.display()
    );
    bin
}

struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, endpoint }
    }

    /// One Secrets Manager call (`CreateSecret`, `PutSecretValue`).
    fn call(&self, action: &str, body: Value) {
        let r = reqwest::blocking::Client::new()
            .post(&self.endpoint)
            .header("x-amz-target", format!("secretsmanager.{action}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .expect("moto");
        assert!(
            r.status().is_success(),
            "{action}: {}",
            r.text().unwrap_or_default()
        );
    }

    fn put_secret(&self, keys: &Value) {
        self.call(
            "PutSecretValue",
            json!({"SecretId": SECRET, "SecretString": keys.to_string()}),
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signing key and how the secret holds its public half.
struct Key {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
    public: String,
}

impl Key {
    /// ES256 published as a JWKS of one key.
    fn ecdsa_jwks(kid: &'static str) -> Self {
        let pair = rcgen::KeyPair::generate().expect("key");
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("key");
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
        let public = serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("jwks");
        Self {
            kid,
            alg: Algorithm::ES256,
            key,
            public,
        }
    }

    /// Ed25519 or RSA published as a PEM public key.
    fn pem(kid: &'static str, alg: Algorithm) -> Self {
        let (pair, key): (_, fn(&[u8]) -> _) = match alg {
            Algorithm::EdDSA => (
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
                EncodingKey::from_ed_pem,
            ),
            _ => (
                rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256),
                EncodingKey::from_rsa_pem,
            ),
        };
        let pair = pair.expect("key");
        let key = key(pair.serialize_pem().as_bytes()).expect("encoding key");
        Self {
            kid,
            alg,
            key,
            public: pair.public_key_pem(),
        }
    }

    /// A token granting pull and push on `app`, naming `kid`.
    fn token(&self, kid: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        let claims = json!({
            "iss": "token-server", "sub": "ci", "aud": SERVICE,
            "exp": now() + 300, "nbf": now() - 5,
            "access": [{"type": "repository", "name": "app", "actions": ["pull", "push"]}],
        });
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }

    fn signed(&self) -> String {
        self.token(Some(self.kid))
    }
}

fn secret(keys: &[&Key]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.kid.to_string(), json!(k.public)))
            .collect(),
    )
}

fn start_berth(root: &std::path::Path, moto: &str) -> Berth {
    let config = root.with_extension("json");
    std::fs::write(
        &config,
        json!({
            "storage": {"rootDirectory": root},
            "http": {"address": "127.0.0.1", "port": "0", "auth": {"bearer": {
                "realm": "http://127.0.0.1:9/token", "service": SERVICE,
                "awsSecretsManager": {"region": "us-east-1", "secretName": SECRET, "refreshInterval": "1s"},
            }}},
        })
        .to_string(),
    )
    .expect("config");
    let child = berth()
        .arg("serve")
        .arg(&config)
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", moto)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn berth");
    Berth::attach(child)
}

fn status(b: &Berth, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(b.url("/v2/app/tags/list"))
        .bearer_auth(token)
        .send()
        .expect("request")
        .status()
        .as_u16()
}

/// Waits out `refreshInterval` (1 s) until `token` gets `want`.
fn eventually(b: &Berth, token: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = status(b, token);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "got {got}, want {want}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bearer_keys_from_aws_secrets_manager() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut moto = Moto::start();
    let (es, ed, rsa) = (
        Key::ecdsa_jwks("es-1"),
        Key::pem("ed-1", Algorithm::EdDSA),
        Key::pem("rsa-1", Algorithm::RS256),
    );
    moto.call(
        "CreateSecret",
        json!({"Name": SECRET, "SecretString": secret(&[&es, &ed]).to_string()}),
    );
    let b = start_berth(&tmp.path().join("root"), &moto.endpoint);

    // 404: the token lets it read `app`, which is not there yet.
    assert_eq!(status(&b, &es.signed()), 404);
    assert_eq!(status(&b, &ed.signed()), 404);
    // A key the secret does not hold, or no kid at all: 401.
    assert_eq!(status(&b, &rsa.signed()), 401);
    assert_eq!(status(&b, &es.token(None)), 401);
    assert_eq!(
        status(&b, &es.token(Some("ed-1"))),
        401,
        "the wrong key for the kid"
    );
    let r = reqwest::blocking::Client::new()
        .get(b.url("/v2/"))
        .send()
        .expect("request");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        format!("Bearer realm=\"http://127.0.0.1:9/token\",service=\"{SERVICE}\"").as_str()
    );

    // The secret rotated: the new key works and the old ones stop within
    // the refresh interval.
    moto.put_secret(&secret(&[&rsa]));
    eventually(&b, &rsa.signed(), 404);
    assert_eq!(status(&b, &es.signed()), 401);

    // A broken rotation (a key that is none) keeps the last good keys.
    moto.put_secret(&json!({"rsa-1": rsa.public, "bad": "not a key"}));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&b, &rsa.signed()), 404);

    // Secrets Manager gone: the keys at hand go on serving (within their
    // grace); a server that never read them answers 503.
    moto.put_secret(&secret(&[&rsa]));
    std::thread::sleep(Duration::from_millis(1500));
    let endpoint = moto.endpoint.clone();
    let _ = moto.child.kill();
    let _ = moto.child.wait();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&b, &rsa.signed()), 404);
    let fresh = start_berth(&tmp.path().join("root2"), &endpoint);
    let r = reqwest::blocking::Client::new()
        .get(fresh.url("/v2/app/tags/list"))
        .bearer_auth(rsa.signed())
        .send()
        .expect("request");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("AWS Secrets Manager"),
        "{body}"
    );
    // A token that names no key is refused before any key is needed.
    assert_eq!(status(&fresh, &rsa.token(None)), 401);
}

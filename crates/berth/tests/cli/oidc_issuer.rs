//! A small OIDC issuer for the workload identity tests: its discovery
//! document (`/.well-known/openid-configuration`) and key set (`/jwks`)
//! over HTTP or HTTPS on a free loopback port, and tokens signed with its keys
//! (RSA and ECDSA, generated per test), as a CI system's issuer serves
//! them. Not a full OpenID provider: it has no login, it only publishes
//! keys and mints tokens, which is all a registry verifying tokens sees.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A signing key of the issuer.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// A fresh key: RS256 (RSA 2048) or ES256 (P-256).
    pub fn new(kid: &str, alg: Algorithm) -> Self {
        let pair = match alg {
            Algorithm::RS256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256),
            Algorithm::ES256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            other => panic!("no test key for {other:?}"),
        }
        .expect("generate key");
        let pem = pair.serialize_pem();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .expect("encoding key");
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_string());
        Self {
            kid: kid.to_string(),
            alg,
            key,
            jwk,
        }
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(claims, Some(&self.kid))
    }

    /// `claims` signed with this key, naming `kid` (or none).
    pub fn sign_as(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }
}

struct Published {
    keys: Vec<Arc<SigningKey>>,
    algorithms: Vec<&'static str>,
    /// What `/token` answers (a browser login's code exchange), as the
    /// test sets it: an ID token it made, valid or not.
    token_answer: Option<Value>,
}

/// A running issuer.
pub struct Issuer {
    pub url: String,
    published: Arc<Mutex<Published>>,
    jwks_fetches: Arc<AtomicUsize>,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

impl Issuer {
    /// An issuer publishing `keys`, declaring `algorithms` in discovery.
    pub fn start(keys: Vec<SigningKey>, algorithms: &[&'static str]) -> Self {
        Self::start_on(keys, algorithms, None)
    }

    /// The same over HTTPS, with the server certificate of the test PKI in
    /// `pki` (`crate::tls::make_pki`).
    pub fn start_tls(
        keys: Vec<SigningKey>,
        algorithms: &[&'static str],
        pki: &std::path::Path,
    ) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(pki.join("server.crt"))
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("cert");
        let key = PrivateKeyDer::from_pem_file(pki.join("server.key")).expect("key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        Self::start_on(keys, algorithms, Some(Arc::new(config)))
    }

    fn start_on(
        keys: Vec<SigningKey>,
        algorithms: &[&'static str],
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let published = Arc::new(Mutex::new(Published {
            keys: keys.into_iter().map(Arc::new).collect(),
            algorithms: algorithms.to_vec(),
            token_answer: None,
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (p, f, u) = (published.clone(), jwks_fetches.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (p, f, u, tls) = (p.clone(), f.clone(), u.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(conn, stream), &u, &p, &f)
                    }
                    None => serve(stream, &u, &p, &f),
                });
            }
        });
        Self {
            url,
            published,
            jwks_fetches,
        }
    }

    /// The published key `kid`.
    pub fn key(&self, kid: &str) -> Arc<SigningKey> {
        self.published
            .lock()
            .expect("lock")
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .cloned()
            .unwrap_or_else(|| panic!("no key {kid}"))
    }

    /// Publishes `keys` instead of the current ones (a rotation).
    pub fn rotate(&self, keys: Vec<SigningKey>) {
        self.published.lock().expect("lock").keys = keys.into_iter().map(Arc::new).collect();
    }

    /// Answers the next code exchanges (`POST /token`) with this ID token
    /// (and an access token).
    pub fn answer_tokens(&self, id_token: &str) {
        self.published.lock().expect("lock").token_answer = Some(json!({
            "access_token": "test-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }));
    }

    /// How many times the key set was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Claims for `sub` from this issuer for `aud`, valid for five minutes,
    /// with `extra` claims.
    pub fn claims(&self, sub: &str, aud: Value, extra: Value) -> Value {
        let mut claims = json!({
            "iss": self.url,
            "sub": sub,
            "aud": aud,
            "iat": now(),
            "nbf": now() - 5,
            "exp": now() + 300,
        });
        if let (Some(c), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            c.extend(extra);
        }
        claims
    }
}

fn serve<S: Read + Write>(
    stream: S,
    url: &str,
    published: &Mutex<Published>,
    fetches: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    // The body (a token request's form) is read, not used.
    let mut body = vec![0u8; length.min(1 << 16)];
    let _ = reader.read_exact(&mut body);
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match path {
        "/.well-known/openid-configuration" => {
            let p = published.lock().expect("lock");
            (
                "200 OK",
                json!({
                    "issuer": url,
                    "jwks_uri": format!("{url}/jwks"),
                    "authorization_endpoint": format!("{url}/authorize"),
                    "token_endpoint": format!("{url}/token"),
                    "id_token_signing_alg_values_supported": p.algorithms,
                    "response_types_supported": ["id_token", "code"],
                    "subject_types_supported": ["public"],
                })
                .to_string(),
            )
        }
        "/jwks" => {
            fetches.fetch_add(1, Ordering::SeqCst);
            let p = published.lock().expect("lock");
            let set = JwkSet {
                keys: p.keys.iter().map(|k| k.jwk.clone()).collect(),
            };
            ("200 OK", serde_json::to_string(&set).expect("jwks"))
        }
        "/token" => match &published.lock().expect("lock").token_answer {
            Some(answer) => ("200 OK", answer.to_string()),
            None => (
                "400 Bad Request",
                json!({"error": "invalid_grant"}).to_string(),
            ),
        },
        _ => ("404 Not Found", "{}".to_string()),
    };
    let stream = reader.get_mut();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// A real OpenID provider: panva's oidc-provider (npm, pinned in
/// `tests/oidc-provider/`, installed by the README's test command) on
/// Debian's Node.js, killed when dropped.
pub struct OidcProvider {
    child: std::process::Child,
    pub url: String,
}

impl OidcProvider {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// [`OidcProvider::start`] with a second client, `sync`, that
    /// authenticates with a JWT signed by a key of the JWKS file `jwks`.
    pub fn start_with(jwks: Option<&std::path::Path>) -> Self {
        let dir = crate::support::workspace().join("tests/oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "{} has no node_modules: the README's test command installs oidc-provider (npm ci)",
            dir.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = std::process::Command::new("node")
            .arg(dir.join("server.mjs"))
            .arg(port.to_string())
            .args(jwks)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("node is required (the README's test command installs nodejs)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.to_string();
                    }
                }
                _ => panic!("oidc-provider did not start"),
            }
        };
        Self { child, url }
    }

    /// An access token (JWT) of the client `ci` for `resource`, by the
    /// client credentials grant.
    pub fn token(&self, resource: &str) -> String {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/token", self.url))
            .basic_auth("ci", Some("ci-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&scope=push&resource={}",
                resource.replace(':', "%3A").replace('/', "%2F")
            ))
            .send()
            .expect("token request");
        let body: Value = r.json().expect("token json");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_string()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

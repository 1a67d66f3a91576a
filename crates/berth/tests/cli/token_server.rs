//! A small token server for bearer-token tests, following the Docker
//! registry token specification: `GET /token?service=…&scope=…` with Basic
//! credentials answers `{"token": JWT}` signed with an ECDSA key whose
//! certificate the registry is configured with.
//!
//! Its policy: `alice:wonderland` gets every scope she asks for, except
//! only `pull` on repositories under `locked/`; anyone else is refused.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

pub const SERVICE: &str = "berth-test";

/// A signing key and the certificate of its public half.
pub struct Signer {
    key: jsonwebtoken::EncodingKey,
    pub cert: PathBuf,
}

impl Signer {
    /// A fresh ECDSA P-256 key; its certificate is written under `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let key_pair = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![format!("{name}.test")])
            .expect("params")
            .self_signed(&key_pair)
            .expect("cert");
        let path = dir.join(format!("{name}.crt"));
        std::fs::write(&path, cert.pem()).expect("write cert");
        let key = jsonwebtoken::EncodingKey::from_ec_pem(key_pair.serialize_pem().as_bytes())
            .expect("encoding key");
        Self { key, cert: path }
    }

    /// A token for `sub` with `access`, valid from `nbf_offset` to
    /// `exp_offset` seconds from now, for audience `aud`.
    pub fn token(&self, sub: &str, aud: &str, access: Value, exp_offset: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let claims = json!({
            "iss": "berth-test-token-server",
            "sub": sub,
            "aud": aud,
            "exp": now + exp_offset,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{sub}"),
            "access": access,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &self.key,
        )
        .expect("sign")
    }
}

/// The `access` claim for a `scope` parameter, under the server's policy.
fn grant(scope: &str) -> Option<Value> {
    let mut parts = scope.splitn(3, ':');
    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
    let mut actions: Vec<&str> = actions.split(',').collect();
    if name.starts_with("locked/") {
        actions.retain(|a| *a == "pull");
    }
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

/// A running token server; its realm is [`TokenServer::realm`].
pub struct TokenServer {
    pub realm: String,
}

impl TokenServer {
    pub fn start(signer: Signer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let realm = format!("http://{}/token", listener.local_addr().expect("addr"));
        let signer = Arc::new(signer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let signer = signer.clone();
                std::thread::spawn(move || serve(stream, &signer));
            }
        });
        Self { realm }
    }
}

fn serve(mut stream: TcpStream, signer: &Signer) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut user = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
            && let Some(b64) = value.trim().strip_prefix("Basic ")
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim())
        {
            user = Some(String::from_utf8_lossy(&raw).into_owned());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .collect();
    let (status, body) = if user.as_deref() == Some("alice:wonderland") {
        let access: Vec<Value> = scopes
            .iter()
            .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter_map(|s| grant(&s))
            .collect();
        let token = signer.token("alice", SERVICE, Value::Array(access), 300);
        (
            "200 OK",
            json!({"token": token, "access_token": token, "expires_in": 300}).to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            json!({"details": "bad credentials"}).to_string(),
        )
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

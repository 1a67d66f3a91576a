//! The `oauth2` helper's JWT assertion: read from `assertionFile` (a token
//! another system issues and rotates), or signed here from `signingFile`,
//! zot's JSON file of a key and claims:
//!
//! ```json
//! {"privateKeyFile": "/keys/sync.pem", "algorithm": "RS256", "keyId": "k1",
//!  "issuer": "zot-sync", "subject": "zot-sync", "audience": "https://idp/token"}
//! ```
//!
//! `issuer` and `subject` default to `clientID`, `audience` to `tokenURL`.
//! Each assertion lives five minutes and carries a fresh `jti` (128 random
//! bits), so that the endpoint can refuse a replay. Both files are read
//! again at every refresh.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;

use super::HelperError;
use crate::config::OAuth2Helper;

/// How long a signed assertion is good for: the exchange and some clock
/// skew, no more (it is used once).
const LIFETIME: Duration = Duration::from_secs(300);

/// `signingFile` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SigningFile {
    #[serde(default)]
    private_key_file: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    audience: Option<String>,
}

/// What signs assertions: the key and the claims, from a signing file.
pub(super) struct Signer {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
    iss: String,
    sub: String,
    aud: String,
}

/// The signing file's keys as this module names them, whatever their
/// case: zot reads the file with Go's `encoding/json`, which matches
/// keys ignoring case (zot's own example writes `keyID`).
fn go_keys(raw: serde_json::Value) -> serde_json::Value {
    const KEYS: [&str; 6] = [
        "privateKeyFile",
        "algorithm",
        "keyId",
        "issuer",
        "subject",
        "audience",
    ];
    match raw {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| {
                let known = KEYS.iter().find(|n| n.eq_ignore_ascii_case(&k));
                (known.map_or(k, |n| (*n).to_string()), v)
            })
            .collect(),
        other => other,
    }
}

fn nonblank(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Reads a file, naming it in the error.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, HelperError> {
    std::fs::read(path).map_err(|source| HelperError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A file holding one value (an assertion, a secret), blanks trimmed;
/// an empty one is refused.
pub(super) fn read_value(path: &Path, what: &str) -> Result<String, HelperError> {
    let text = String::from_utf8(read(path)?).map_err(|_| HelperError::File {
        path: path.to_path_buf(),
        message: format!("{what} is not UTF-8 text"),
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(HelperError::File {
            path: path.to_path_buf(),
            message: format!("empty: no {what}"),
        });
    }
    Ok(value.to_string())
}

/// The algorithms a signing file may name, as JWT names them (zot's, but
/// ES512: the JWT library has none).
const ALGORITHMS: &str = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA";

impl Signer {
    /// Reads the signing file at `path` and the key it names.
    pub(super) fn load(path: &Path, helper: &OAuth2Helper) -> Result<Self, HelperError> {
        let bad = |message: String| HelperError::File {
            path: path.to_path_buf(),
            message,
        };
        let raw: serde_json::Value = serde_json::from_slice(&read(path)?)
            .map_err(|e| bad(format!("not a signing file: {e}")))?;
        let file: SigningFile = serde_json::from_value(go_keys(raw))
            .map_err(|e| bad(format!("not a signing file: {e}")))?;
        let name = nonblank(file.algorithm)
            .ok_or_else(|| bad(format!("algorithm: required ({ALGORITHMS})")))?;
        let alg = match name.as_str() {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            other => return Err(bad(format!("algorithm {other:?}: must be {ALGORITHMS}"))),
        };
        let key_file = nonblank(file.private_key_file)
            .ok_or_else(|| bad("privateKeyFile: required (a PEM private key)".into()))?;
        let key_path = Path::new(&key_file);
        let pem = read(key_path)?;
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .map_err(|e| HelperError::File {
            path: key_path.to_path_buf(),
            message: format!("no {name} private key (PEM, PKCS#8 or PKCS#1 for RSA): {e}"),
        })?;
        let client = helper.client_id.clone();
        let iss = nonblank(file.issuer).or_else(|| client.clone());
        let sub = nonblank(file.subject).or(client);
        let (Some(iss), Some(sub)) = (iss, sub) else {
            return Err(bad(
                "issuer and subject: required when oauth2CredentialHelper has no clientID (their default)".into(),
            ));
        };
        let aud = nonblank(file.audience).unwrap_or_else(|| helper.token_url.clone());
        let signer = Self {
            alg,
            key,
            kid: nonblank(file.key_id),
            iss,
            sub,
            aud,
        };
        // A key that cannot sign (of another family) fails now.
        signer
            .mint(SystemTime::now())
            .map_err(|e| HelperError::File {
                path: key_path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(signer)
    }

    /// A fresh assertion issued at `now`.
    pub(super) fn mint(&self, now: SystemTime) -> Result<String, HelperError> {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = serde_json::json!({
            "iss": self.iss,
            "sub": self.sub,
            "aud": self.aud,
            "iat": iat,
            "exp": iat + LIFETIME.as_secs(),
            "jti": uuid::Uuid::new_v4().simple().to_string(),
        });
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| HelperError::Fetch(format!("cannot sign the assertion: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Assertion, Grant};

    fn helper(client_id: Option<&str>) -> OAuth2Helper {
        OAuth2Helper {
            token_url: "https://idp.test/token".into(),
            assertion: Assertion::Signed("unused".into()),
            grant: Grant::ClientCredentials,
            client_id: client_id.map(str::to_string),
            client_secret_file: None,
            scopes: vec![],
            username: "<token>".into(),
        }
    }

    fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write");
        path
    }

    fn claims(token: &str, public_pem: &str, alg: Algorithm) -> (Header, serde_json::Value) {
        let key = match alg {
            Algorithm::ES256 => jsonwebtoken::DecodingKey::from_ec_pem(public_pem.as_bytes()),
            Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_pem(public_pem.as_bytes()),
            _ => jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()),
        }
        .expect("public key");
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_audience(&["https://idp.test/token", "https://aud.test"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).expect("verifies");
        (data.header, data.claims)
    }

    #[test]
    fn assertions_carry_zot_claims_and_a_fresh_jti() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (alg, name, rc) in [
            (Algorithm::RS256, "RS256", &rcgen::PKCS_RSA_SHA256),
            (Algorithm::ES256, "ES256", &rcgen::PKCS_ECDSA_P256_SHA256),
            (Algorithm::EdDSA, "EdDSA", &rcgen::PKCS_ED25519),
        ] {
            let pair = rcgen::KeyPair::generate_for(rc).expect("key");
            let key = write(dir.path(), "key.pem", &pair.serialize_pem());
            let signing = write(
                dir.path(),
                "signing.json",
                &serde_json::json!({"privateKeyFile": key, "algorithm": name, "keyID": "k1"})
                    .to_string(),
            );
            let signer = Signer::load(&signing, &helper(Some("zot-sync"))).expect("loads");
            let now = SystemTime::now();
            let a = signer.mint(now).expect("mint");
            let b = signer.mint(now).expect("mint");
            let (header, c) = claims(&a, &pair.public_key_pem(), alg);
            assert_eq!(header.kid.as_deref(), Some("k1"));
            assert_eq!(c["iss"], "zot-sync");
            assert_eq!(c["sub"], "zot-sync");
            assert_eq!(c["aud"], "https://idp.test/token");
            assert_eq!(c["exp"].as_u64(), c["iat"].as_u64().map(|i| i + 300));
            let (_, d) = claims(&b, &pair.public_key_pem(), alg);
            let jti = c["jti"].as_str().expect("jti");
            assert_eq!(jti.len(), 32, "128 bits in hex");
            assert_ne!(Some(jti), d["jti"].as_str(), "a fresh jti each time");
        }
        // Claims named in the file win over clientID and tokenURL.
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let key = write(dir.path(), "key.pem", &pair.serialize_pem());
        let signing = write(
            dir.path(),
            "signing.json",
            &serde_json::json!({"privateKeyFile": key, "algorithm": "ES256",
                "issuer": "i", "subject": "s", "audience": "https://aud.test"})
            .to_string(),
        );
        let signer = Signer::load(&signing, &helper(None)).expect("loads");
        let (header, c) = claims(
            &signer.mint(SystemTime::now()).expect("mint"),
            &pair.public_key_pem(),
            Algorithm::ES256,
        );
        assert_eq!(header.kid, None);
        assert_eq!(
            (&c["iss"], &c["sub"], &c["aud"]),
            (&"i".into(), &"s".into(), &"https://aud.test".into())
        );
    }

    #[test]
    fn bad_signing_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("key");
        let key = write(dir.path(), "key.pem", &rsa.serialize_pem());
        let cases = [
            (
                serde_json::json!({"privateKeyFile": key, "algorithm": "HS256"}),
                "algorithm \"HS256\": must be RS256",
            ),
            (
                serde_json::json!({"privateKeyFile": key, "algorithm": "ES512"}),
                "algorithm \"ES512\"",
            ),
            (
                serde_json::json!({"privateKeyFile": key}),
                "algorithm: required",
            ),
            (
                serde_json::json!({"algorithm": "RS256"}),
                "privateKeyFile: required",
            ),
            (
                serde_json::json!({"privateKeyFile": key, "algorithm": "RS256", "privateKey": "x"}),
                "not a signing file: unknown field `privateKey`",
            ),
            (
                serde_json::json!({"privateKeyFile": key, "algorithm": "ES256"}),
                "no ES256 private key",
            ),
            (
                serde_json::json!({"privateKeyFile": "/nonexistent/key.pem", "algorithm": "RS256"}),
                "cannot read /nonexistent/key.pem",
            ),
        ];
        for (file, want) in cases {
            let signing = write(dir.path(), "signing.json", &file.to_string());
            let e = Signer::load(&signing, &helper(Some("c")))
                .err()
                .expect("refused")
                .to_string();
            assert!(e.contains(want), "{file}: {e}");
        }
        let signing = write(
            dir.path(),
            "signing.json",
            &serde_json::json!({"privateKeyFile": key, "algorithm": "RS256"}).to_string(),
        );
        let e = Signer::load(&signing, &helper(None))
            .err()
            .expect("no issuer")
            .to_string();
        assert!(e.contains("issuer and subject: required"), "{e}");
    }
}

//! The `gcp` helper: a Google access token as the password of the user
//! `oauth2accesstoken` (what Artifact Registry expects), from the
//! application default credentials, looked for as Google's libraries do:
//!
//! 1. the JSON file `GOOGLE_APPLICATION_CREDENTIALS` names;
//! 2. gcloud's `application_default_credentials.json` (under
//!    `CLOUDSDK_CONFIG`, else `~/.config/gcloud`);
//! 3. the metadata server (GCE, GKE, Cloud Run): `GCE_METADATA_HOST`, else
//!    `metadata.google.internal`.
//!
//! A file is a `service_account` key (a JWT signed with its key is
//! exchanged at its `token_uri` by the jwt-bearer grant) or an
//! `authorized_user` (its refresh token, at its `token_uri`). Other kinds
//! (`external_account`, `impersonated_service_account`, …) are refused
//! with their name. The scope asked is `cloud-platform`. Files are read
//! at every refresh; a token is replaced a minute before it expires.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;

use super::assertion::read;
use super::oauth2::{request_token, with_causes};
use super::{HelperError, Login, Source};

/// The user name that goes with a Google access token.
const USER: &str = "oauth2accesstoken";
/// The scope a registry pull needs.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, when a file names none.
const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The time limit of one token request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A credentials file of the kinds read here.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CredentialsFile {
    ServiceAccount {
        client_email: String,
        private_key: String,
        #[serde(default)]
        private_key_id: Option<String>,
        #[serde(default)]
        token_uri: Option<String>,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        #[serde(default)]
        token_uri: Option<String>,
    },
}

/// Where the credentials come from.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    File(PathBuf),
    Metadata(String),
}

/// Looks for the credentials as the module documentation says.
fn find() -> Found {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if let Some(path) = env("GOOGLE_APPLICATION_CREDENTIALS") {
        return Found::File(path.into());
    }
    let gcloud = env("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config/gcloud")));
    if let Some(file) = gcloud.map(|d| d.join("application_default_credentials.json"))
        && file.is_file()
    {
        return Found::File(file);
    }
    Found::Metadata(env("GCE_METADATA_HOST").unwrap_or_else(|| "metadata.google.internal".into()))
}

/// Reads a credentials file, refusing the kinds not read here.
fn load(path: &Path) -> Result<CredentialsFile, HelperError> {
    let bytes = read(path)?;
    let bad = |message: String| HelperError::File {
        path: path.to_path_buf(),
        message,
    };
    let kind: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    match kind["type"].as_str() {
        Some("service_account" | "authorized_user") => serde_json::from_value(kind)
            .map_err(|e| bad(format!("not a Google credentials file: {e}"))),
        Some(other) => Err(bad(format!(
            "credentials of type {other:?} are not supported by berth's gcp helper: use a service_account key, authorized_user credentials or the metadata server"
        ))),
        None => Err(bad("not a Google credentials file: no \"type\"".into())),
    }
}

pub(super) struct Gcp {
    http: reqwest::Client,
}

impl Gcp {
    pub(super) fn new() -> Result<Self, HelperError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HelperError::Fetch(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http })
    }

    async fn token_from_file(
        &self,
        path: &Path,
    ) -> Result<(String, Option<Duration>), HelperError> {
        match load(path)? {
            CredentialsFile::ServiceAccount {
                client_email,
                private_key,
                private_key_id,
                token_uri,
            } => {
                let uri = token_uri.unwrap_or_else(|| TOKEN_URI.into());
                let assertion =
                    sign(&client_email, &private_key, private_key_id, &uri).map_err(|message| {
                        HelperError::File {
                            path: path.to_path_buf(),
                            message,
                        }
                    })?;
                let form = [
                    ("grant_type", crate::config::JWT_BEARER.to_string()),
                    ("assertion", assertion),
                ];
                request_token(&self.http, &uri, &form).await
            }
            CredentialsFile::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                let uri = token_uri.unwrap_or_else(|| TOKEN_URI.into());
                let form = [
                    ("grant_type", "refresh_token".to_string()),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("refresh_token", refresh_token),
                ];
                request_token(&self.http, &uri, &form).await
            }
        }
    }

    async fn token_from_metadata(
        &self,
        host: &str,
    ) -> Result<(String, Option<Duration>), HelperError> {
        let url = format!(
            "http://{host}/computeMetadata/v1/instance/service-accounts/default/token?scopes={SCOPE}"
        );
        let answer = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|e| {
                HelperError::Fetch(format!(
                    "no Google credentials file, and the metadata server {host}: {}",
                    with_causes(&e)
                ))
            })?;
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .map_err(|e| HelperError::Fetch(format!("{url}: {}", with_causes(&e))))?;
        super::oauth2::token_of(status, &body, &url)
    }
}

/// A service account's assertion for Google's token endpoint `aud`.
fn sign(email: &str, pem: &str, kid: Option<String>, aud: &str) -> Result<String, String> {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| format!("private_key: no RSA private key: {e}"))?;
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = serde_json::json!({
        "iss": email, "scope": SCOPE, "aud": aud, "iat": iat, "exp": iat + 3600,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.filter(|k| !k.is_empty());
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| format!("cannot sign: {e}"))
}

#[async_trait::async_trait]
impl Source for Gcp {
    async fn login(&self, _url: &str) -> Result<Login, HelperError> {
        let (token, lifetime) = match find() {
            Found::File(path) => self.token_from_file(&path).await?,
            Found::Metadata(host) => self.token_from_metadata(&host).await?,
        };
        Ok(Login {
            user: USER.into(),
            password: token,
            expires: lifetime.map(|l| SystemTime::now() + l),
        })
    }
}

/// Reads the credentials file the environment names, if any, so that an
/// unusable one stops the start.
pub(super) fn check_files() -> Result<(), HelperError> {
    match find() {
        Found::File(path) => load(&path).map(drop),
        Found::Metadata(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_other_kinds_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("creds.json");
        let cases = [
            (
                serde_json::json!({"type": "external_account", "audience": "x"}),
                "credentials of type \"external_account\" are not supported",
            ),
            (
                serde_json::json!({"type": "service_account", "client_email": "a@b"}),
                "not a Google credentials file: missing field `private_key`",
            ),
            (serde_json::json!({"client_email": "a@b"}), "no \"type\""),
        ];
        for (file, want) in cases {
            std::fs::write(&path, file.to_string()).expect("write");
            let e = load(&path).err().expect("refused").to_string();
            assert!(e.contains(want), "{file}: {e}");
        }
        std::fs::write(
            &path,
            serde_json::json!({"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}).to_string(),
        )
        .expect("write");
        assert!(load(&path).is_ok());
    }

    #[test]
    fn a_service_account_signs_for_google_token_endpoint() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("key");
        let jwt = sign(
            "sync@p.iam.gserviceaccount.com",
            &pair.serialize_pem(),
            Some("k1".into()),
            TOKEN_URI,
        )
        .expect("signs");
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(pair.public_key_pem().as_bytes())
            .expect("public");
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&[TOKEN_URI]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &v).expect("verifies");
        assert_eq!(data.header.kid.as_deref(), Some("k1"));
        assert_eq!(data.claims["iss"], "sync@p.iam.gserviceaccount.com");
        assert_eq!(data.claims["scope"], SCOPE);
        assert!(sign("a@b", "not a key", None, TOKEN_URI).is_err());
    }
}

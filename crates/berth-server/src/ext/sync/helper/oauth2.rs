//! The `oauth2` helper: a JWT assertion exchanged at `tokenURL` for an
//! access token, which becomes the registry password (the user is
//! `username`, default `<token>`), as zot does.
//!
//! The request is a form `POST` (`Accept: application/json`, 30 s time
//! limit) with `grant_type` and, by grant:
//! - `client_credentials`: `client_assertion_type` (RFC 7523's
//!   jwt-bearer) and `client_assertion`;
//! - jwt-bearer: `assertion`;
//! - token exchange (RFC 8693): `subject_token`, `subject_token_type`,
//!   `audience`, `requested_token_type`;
//!
//! then `client_id` and `client_secret` (from `clientSecretFile`) when
//! set, and `scope` (the `scopes`, space-separated) when there are any.
//! The answer's `access_token` is the password; `expires_in` its lifetime
//! (five minutes when absent).

use std::time::{Duration, SystemTime};

use super::assertion::{Signer, read_value};
use super::{HelperError, Login, Source};
use crate::config::{Assertion, Grant, OAuth2Helper};

/// `client_assertion_type` of the client credentials grant.
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The time limit of one token request.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a refusal's body goes into the error.
const MAX_ERROR_BODY: usize = 1024;

pub(super) struct OAuth2 {
    config: OAuth2Helper,
    http: reqwest::Client,
}

impl OAuth2 {
    pub(super) fn new(config: OAuth2Helper) -> Result<Self, HelperError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HelperError::Fetch(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { config, http })
    }

    /// The assertion to exchange: the file's, or a fresh one.
    fn assertion(&self) -> Result<String, HelperError> {
        match &self.config.assertion {
            Assertion::File(path) => read_value(path, "assertion"),
            Assertion::Signed(path) => Signer::load(path, &self.config)?.mint(SystemTime::now()),
        }
    }
}

/// The form of a token request.
pub(super) fn form(
    config: &OAuth2Helper,
    assertion: &str,
    secret: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut form = Vec::new();
    match &config.grant {
        Grant::ClientCredentials => {
            form.push(("grant_type", crate::config::CLIENT_CREDENTIALS.to_string()));
            form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.to_string()));
            form.push(("client_assertion", assertion.to_string()));
        }
        Grant::JwtBearer => {
            form.push(("grant_type", crate::config::JWT_BEARER.to_string()));
            form.push(("assertion", assertion.to_string()));
        }
        Grant::TokenExchange {
            audience,
            subject_token_type,
            requested_token_type,
        } => {
            form.push(("grant_type", crate::config::TOKEN_EXCHANGE.to_string()));
            form.push(("subject_token", assertion.to_string()));
            form.push(("subject_token_type", subject_token_type.clone()));
            form.push(("audience", audience.clone()));
            form.push(("requested_token_type", requested_token_type.clone()));
        }
    }
    if let Some(id) = &config.client_id {
        form.push(("client_id", id.clone()));
    }
    if let Some(secret) = secret {
        form.push(("client_secret", secret.to_string()));
    }
    if !config.scopes.is_empty() {
        form.push(("scope", config.scopes.join(" ")));
    }
    form
}

/// The access token of a token endpoint's answer and its lifetime, if
/// said (`token_key`: the field holding the token).
pub(super) fn token_of(
    status: reqwest::StatusCode,
    body: &[u8],
    endpoint: &str,
) -> Result<(String, Option<Duration>), HelperError> {
    if status != reqwest::StatusCode::OK {
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
        return Err(HelperError::Fetch(format!(
            "{endpoint} answered {status}: {}",
            text.trim()
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| HelperError::Fetch(format!("{endpoint}: an answer that is not JSON: {e}")))?;
    let token = json["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| HelperError::Fetch(format!("{endpoint}: an answer without access_token")))?;
    let expires_in = match &json["expires_in"] {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s > 0.0)
    .map(Duration::from_secs_f64);
    Ok((token.to_string(), expires_in))
}

/// Sends a token request and reads the answer.
pub(super) async fn request_token(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&'static str, String)],
) -> Result<(String, Option<Duration>), HelperError> {
    let answer = http
        .post(endpoint)
        .header(http::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| HelperError::Fetch(format!("{endpoint}: {}", with_causes(&e))))?;
    let status = answer.status();
    let body = answer
        .bytes()
        .await
        .map_err(|e| HelperError::Fetch(format!("{endpoint}: {}", with_causes(&e))))?;
    token_of(status, &body, endpoint)
}

/// An error and its causes on one line.
pub(super) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[async_trait::async_trait]
impl Source for OAuth2 {
    async fn login(&self, _url: &str) -> Result<Login, HelperError> {
        let assertion = self.assertion()?;
        let secret = match &self.config.client_secret_file {
            Some(path) => Some(read_value(path, "client secret")?),
            None => None,
        };
        let form = form(&self.config, &assertion, secret.as_deref());
        let (token, lifetime) = request_token(&self.http, &self.config.token_url, &form).await?;
        Ok(Login {
            user: self.config.username.clone(),
            password: token,
            expires: lifetime.map(|l| SystemTime::now() + l),
        })
    }
}

/// Reads the files `config` names; the error comes with its key.
pub(super) fn check_files(config: &OAuth2Helper) -> Result<(), (&'static str, HelperError)> {
    match &config.assertion {
        Assertion::File(path) => read_value(path, "assertion")
            .map(drop)
            .map_err(|e| ("assertionFile", e))?,
        Assertion::Signed(path) => Signer::load(path, config)
            .map(drop)
            .map_err(|e| ("signingFile", e))?,
    }
    if let Some(path) = &config.client_secret_file {
        read_value(path, "client secret").map_err(|e| ("clientSecretFile", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(grant: Grant) -> OAuth2Helper {
        OAuth2Helper {
            token_url: "https://idp.test/token".into(),
            assertion: Assertion::File("a.jwt".into()),
            grant,
            client_id: Some("zot-sync".into()),
            client_secret_file: None,
            scopes: vec!["repository:pull".into(), "other".into()],
            username: "<token>".into(),
        }
    }

    fn fields<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        form.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn each_grant_sends_the_assertion_as_its_rfc_says() {
        let cc = form(&config(Grant::ClientCredentials), "A", Some("s3cret"));
        assert_eq!(
            fields(&cc),
            [
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", "A"),
                ("client_id", "zot-sync"),
                ("client_secret", "s3cret"),
                ("scope", "repository:pull other"),
            ]
        );
        let mut bare = config(Grant::JwtBearer);
        bare.client_id = None;
        bare.scopes.clear();
        assert_eq!(
            fields(&form(&bare, "A", None)),
            [
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", "A"),
            ]
        );
        let exchange = form(
            &config(Grant::TokenExchange {
                audience: "//sts/pool".into(),
                subject_token_type: "urn:ietf:params:oauth:token-type:jwt".into(),
                requested_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
            }),
            "A",
            None,
        );
        assert_eq!(
            fields(&exchange)[..5],
            [
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange"
                ),
                ("subject_token", "A"),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("audience", "//sts/pool"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:access_token"
                ),
            ]
        );
    }

    #[test]
    fn answers_give_the_token_and_its_lifetime_or_say_why_not() {
        let ok = reqwest::StatusCode::OK;
        let e = "https://idp.test/token";
        assert_eq!(
            token_of(
                ok,
                br#"{"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}"#,
                e
            )
            .expect("token"),
            ("t".to_string(), Some(Duration::from_secs(3600)))
        );
        assert_eq!(
            token_of(ok, br#"{"access_token": "t", "expires_in": "60"}"#, e).expect("token"),
            ("t".to_string(), Some(Duration::from_secs(60)))
        );
        assert_eq!(
            token_of(ok, br#"{"access_token": "t", "expires_in": 0}"#, e).expect("token"),
            ("t".to_string(), None)
        );
        let refused = token_of(
            reqwest::StatusCode::BAD_REQUEST,
            &[b"{\"error\":\"invalid_client\"}".as_slice(), &[b'x'; 2000]].concat(),
            e,
        )
        .expect_err("refused")
        .to_string();
        assert!(
            refused.starts_with(
                "https://idp.test/token answered 400 Bad Request: {\"error\":\"invalid_client\"}xx"
            ),
            "{refused}"
        );
        assert!(refused.len() < 1200, "the body is cut");
        for body in [&br#"{"access_token": ""}"#[..], b"{}", b"<html>"] {
            assert!(token_of(ok, body, e).is_err());
        }
    }

    #[test]
    fn files_are_checked_under_their_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config(Grant::JwtBearer);
        c.assertion = Assertion::File(dir.path().join("missing.jwt"));
        assert_eq!(check_files(&c).expect_err("missing").0, "assertionFile");
        std::fs::write(dir.path().join("a.jwt"), "  \n").expect("write");
        c.assertion = Assertion::File(dir.path().join("a.jwt"));
        let (key, e) = check_files(&c).expect_err("empty");
        assert_eq!(key, "assertionFile");
        assert!(e.to_string().ends_with("a.jwt: empty: no assertion"), "{e}");
        std::fs::write(dir.path().join("a.jwt"), "eyJ.x.y\n").expect("write");
        check_files(&c).expect("fine");
        c.client_secret_file = Some(dir.path().join("secret"));
        assert_eq!(check_files(&c).expect_err("missing").0, "clientSecretFile");
        c.assertion = Assertion::Signed(dir.path().join("signing.json"));
        assert_eq!(check_files(&c).expect_err("missing").0, "signingFile");
    }
}

//! OpenID Connect login for people in browsers (`http.auth.openid`): zot's
//! `/zot/auth/login?provider=…&callback_ui=…` sends the browser to the
//! provider (the authorization code flow with PKCE, `state` and `nonce`);
//! `/zot/auth/callback/<provider>` takes the code back, verifies the ID
//! token (signature against the provider's keys from its discovery
//! document, issuer, audience, expiry, nonce), reads the user and their
//! groups from the mapped claims (of the ID token and the userinfo
//! answer), starts a session and sends the browser back.
//!
//! The protocol (discovery, PKCE, token exchange, ID token verification)
//! is the `openidconnect` crate's; this module holds the configuration,
//! the login records and the claim mapping. Discovery is lazy (nothing is
//! fetched at start), cached for ten minutes, and fetched again at once
//! when an ID token names a key the cached set lacks (the provider rotated
//! its keys).

mod claims;
mod flow;
mod github;
mod http_client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::ProviderMetadataWithLogout;

use super::AuthConfigError;
use super::browser::ProviderInfo;
use crate::config::HttpConfig;

pub use flow::{Callback, CallbackQuery, LoginStart};

/// How long a discovery document (and its keys) is used.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// Why a login failed, as the HTTP layer answers it.
#[derive(Debug, thiserror::Error)]
pub enum OpenIdError {
    /// `provider=` names no configured provider: 400.
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    /// `callback_ui` is not a local path nor an allowed origin's: 400.
    #[error(
        "callback_ui {0:?}: not a path of this registry nor an origin of http.auth.openid.callbackAllowOrigins"
    )]
    CallbackNotAllowed(String),
    /// The provider cannot be reached or answers nonsense: 502.
    #[error("the OpenID provider {provider} failed: {message}")]
    Provider { provider: String, message: String },
    /// The login is refused (a replayed or foreign `state`, an ID token
    /// that does not verify, no user name): 401.
    #[error("login refused: {0}")]
    Refused(String),
    /// Sessions cannot be kept: 503.
    #[error(transparent)]
    Session(#[from] super::session::SessionError),
}

/// One configured provider.
pub(crate) struct Provider {
    key: String,
    name: String,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    username_claim: String,
    groups_claim: String,
    /// GitHub's endpoints, for the `github` provider (plain OAuth2).
    github: Option<github::GitHub>,
    /// The discovery document (with the keys), and when it was fetched.
    metadata: tokio::sync::Mutex<Option<(Arc<ProviderMetadataWithLogout>, Instant)>>,
}

/// The OpenID login of a server.
pub struct OpenId {
    providers: Vec<Provider>,
    /// Origins `callback_ui` may name besides the registry's own.
    allow_origins: Vec<String>,
    /// `http.externalUrl`, without a trailing slash.
    external_url: Option<String>,
    /// Whether the server speaks HTTPS (for its own address).
    tls: bool,
    http: http_client::Http,
}

impl OpenId {
    /// The providers of `http.auth.openid`, `None` when there are none.
    /// Nothing is fetched yet.
    pub fn from_config(http: &HttpConfig) -> Result<Option<Self>, AuthConfigError> {
        let Some(cfg) = http.auth.as_ref().and_then(|a| a.openid.as_ref()) else {
            return Ok(None);
        };
        if cfg.providers.is_empty() {
            return Ok(None);
        }
        let invalid = |e: crate::config::ConfigError| AuthConfigError::Invalid {
            key: "http.auth.openid",
            message: e.to_string(),
        };
        let mut providers = Vec::new();
        for (key, p) in &cfg.providers {
            let (client_id, client_secret) = p.client(key).map_err(invalid)?;
            let github = (key == "github")
                .then(|| github::GitHub::new(p.authurl.as_deref(), p.tokenurl.as_deref()));
            let issuer = match &github {
                Some(_) => String::new(),
                None => p.issuer_for(key).ok_or_else(|| AuthConfigError::Invalid {
                    key: "http.auth.openid",
                    message: format!("providers.{key}.issuer is required"),
                })?,
            };
            let mut scopes = p.scopes.clone();
            if github.is_none() && !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".into());
            }
            let mapping = p.claim_mapping.clone().unwrap_or_default();
            providers.push(Provider {
                key: key.clone(),
                name: p
                    .name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| match key.as_str() {
                        "google" => "Google".into(),
                        "gitlab" => "GitLab".into(),
                        "github" => "GitHub".into(),
                        _ => "OpenID".into(),
                    }),
                issuer,
                client_id,
                client_secret,
                scopes,
                username_claim: mapping.username.unwrap_or_else(|| "email".into()),
                groups_claim: mapping.groups.unwrap_or_else(|| "groups".into()),
                github,
                metadata: tokio::sync::Mutex::new(None),
            });
        }
        let http_client = http_client::Http::new().map_err(|e| AuthConfigError::Invalid {
            key: "http.auth.openid",
            message: e.to_string(),
        })?;
        Ok(Some(Self {
            providers,
            allow_origins: cfg
                .callback_allow_origins
                .iter()
                .filter_map(|o| url::Url::parse(o).ok())
                .map(|u| u.origin().ascii_serialization())
                .collect(),
            external_url: http
                .external_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_string()),
            tls: http.tls.is_some(),
            http: http_client,
        }))
    }

    /// The providers, for the login page and zot's management route.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.providers
            .iter()
            .map(|p| ProviderInfo {
                key: p.key.clone(),
                name: p.name.clone(),
            })
            .collect()
    }

    fn provider(&self, key: &str) -> Result<&Provider, OpenIdError> {
        self.providers
            .iter()
            .find(|p| p.key == key)
            .ok_or_else(|| OpenIdError::UnknownProvider(key.to_string()))
    }

    /// The provider's discovery document: cached, or fetched when missing,
    /// older than [`METADATA_TTL`], or `refresh` (keys rotated).
    async fn metadata(
        &self,
        p: &Provider,
        refresh: bool,
    ) -> Result<Arc<ProviderMetadataWithLogout>, OpenIdError> {
        let mut slot = p.metadata.lock().await;
        if let Some((m, at)) = slot.as_ref()
            && !refresh
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let failed = |message: String| OpenIdError::Provider {
            provider: p.key.clone(),
            message,
        };
        let issuer = openidconnect::IssuerUrl::new(p.issuer.clone())
            .map_err(|e| failed(format!("issuer {}: {e}", p.issuer)))?;
        let m = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| failed(format!("discovery at {}: {}", p.issuer, error_chain(&e))))?;
        let m = Arc::new(m);
        *slot = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    /// This registry's origin as users reach it: `http.externalUrl`, else
    /// the request's `Host` (with the scheme the server speaks).
    fn own_origin(&self, headers: &http::HeaderMap) -> Option<String> {
        if let Some(u) = &self.external_url {
            return url::Url::parse(u)
                .ok()
                .map(|u| u.origin().ascii_serialization());
        }
        let host = headers.get(http::header::HOST)?.to_str().ok()?;
        let scheme = if self.tls { "https" } else { "http" };
        url::Url::parse(&format!("{scheme}://{host}"))
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }

    /// Where the provider sends the browser back.
    fn redirect_uri(&self, headers: &http::HeaderMap, key: &str) -> Option<String> {
        let base = match &self.external_url {
            Some(u) => u.clone(),
            None => self.own_origin(headers)?,
        };
        Some(format!("{base}/zot/auth/callback/{key}"))
    }

    /// `callback_ui` if it is safe to send the browser to: a path of this
    /// registry, or a URL of its own origin or an allowed one; never
    /// anything else (no open redirect).
    pub fn checked_callback(
        &self,
        headers: &http::HeaderMap,
        callback: Option<&str>,
    ) -> Result<String, OpenIdError> {
        let Some(c) = callback.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok("/".into());
        };
        let refuse = || OpenIdError::CallbackNotAllowed(c.to_string());
        if c.contains('\\')
            || c.to_ascii_lowercase().contains("%5c")
            || c.chars().any(char::is_control)
        {
            return Err(refuse());
        }
        if c.starts_with('/') {
            return if c.starts_with("//") {
                Err(refuse())
            } else {
                Ok(c.to_string())
            };
        }
        let url = url::Url::parse(c).map_err(|_| refuse())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse());
        }
        let origin = url.origin().ascii_serialization();
        let own = self.own_origin(headers);
        if own.as_deref() == Some(origin.as_str()) || self.allow_origins.contains(&origin) {
            Ok(url.to_string())
        } else {
            Err(refuse())
        }
    }
}

impl OpenId {
    /// The JSON answer of the provider `p` to `req` (userinfo, GitHub's
    /// API): any failure is the provider's, named by `what`.
    async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        p: &Provider,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, OpenIdError> {
        let failed = |message: String| OpenIdError::Provider {
            provider: p.key.clone(),
            message: format!("{what}: {message}"),
        };
        let (status, _, body) = self
            .http
            .send(req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !status.is_success() {
            return Err(failed(format!("answered {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| failed(format!("unexpected answer: {e}")))
    }
}

/// A failed code exchange: the provider's refusal of the code (used,
/// expired, not ours) is the login's refusal; anything else is the
/// provider failing.
fn token_error<RE, T>(provider: &str, e: oauth2::RequestTokenError<RE, T>) -> OpenIdError
where
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponse + 'static,
{
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            OpenIdError::Refused(format!("{provider} refused the code: {r}"))
        }
        other => OpenIdError::Provider {
            provider: provider.to_string(),
            message: format!("token request: {}", error_chain(&other)),
        },
    }
}

/// An error with its causes, for messages.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

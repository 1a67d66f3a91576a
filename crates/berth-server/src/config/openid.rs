//! `http.auth.openid`, `http.auth.sessionKeysFile`, `sessionDriver`,
//! `secureSession` and `http.externalUrl`: zot's browser login through
//! OpenID Connect providers, and the sessions that follow it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use super::drivers::CacheDriverConfig;

/// The provider keys zot knows: OpenID Connect's, and GitHub's OAuth2.
pub const OPENID_PROVIDERS: &[&str] = &["oidc", "google", "gitlab", "github"];

/// `http.auth.openid`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenIdConfig {
    /// zot's providers by key: `oidc` (any issuer), `google`, `gitlab`
    /// and `github` (plain OAuth2).
    #[serde(default)]
    pub providers: BTreeMap<String, OpenIdProviderConfig>,
    /// Origins (`scheme://host[:port]`) a login may send the browser back
    /// to (`callback_ui`), besides `http.externalUrl`'s and relative paths.
    #[serde(default)]
    pub callback_allow_origins: Vec<String>,
}

/// One provider of `http.auth.openid.providers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenIdProviderConfig {
    /// What the login button says (default: the provider's own name).
    #[serde(default)]
    pub name: Option<String>,
    /// A JSON file `{"clientid": "...", "clientsecret": "..."}`, which
    /// wins over the inline keys.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    #[serde(default)]
    pub clientid: Option<String>,
    /// Empty or absent: a public client (PKCE alone).
    #[serde(default)]
    pub clientsecret: Option<String>,
    /// zot's JWT-profile client signer: refused unless empty.
    #[serde(default)]
    pub keypath: Option<String>,
    /// The provider's issuer URL (`google`: `https://accounts.google.com`
    /// by default, `gitlab`: `https://gitlab.com`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// github's OAuth2 endpoints on GitHub Enterprise (both or neither;
    /// default github.com's); its API is then `<authurl's origin>/api/v3`.
    #[serde(default)]
    pub authurl: Option<String>,
    #[serde(default)]
    pub tokenurl: Option<String>,
    /// Scopes asked for; `openid` is put first when missing.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Which claims name the user and their groups.
    #[serde(default)]
    pub claim_mapping: Option<ClaimMapping>,
}

/// `claimMapping` of an OpenID provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    /// Default `email`.
    #[serde(default)]
    pub username: Option<String>,
    /// Default `groups`.
    #[serde(default)]
    pub groups: Option<String>,
}

/// `{"clientid", "clientsecret"}`: a provider's `credentialsFile`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentials {
    pub clientid: String,
    #[serde(default)]
    pub clientsecret: String,
}

/// `http.auth.sessionKeysFile`: `{"hashKey": "...", "encryptKey": "..."}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionKeys {
    pub hash_key: String,
    #[serde(default)]
    pub encrypt_key: Option<String>,
}

impl OpenIdProviderConfig {
    /// The issuer: configured, or the provider's well-known one.
    pub fn issuer_for(&self, key: &str) -> Option<String> {
        match (&self.issuer, key) {
            (Some(i), _) if !i.trim().is_empty() => Some(i.trim().to_string()),
            (_, "google") => Some("https://accounts.google.com".into()),
            (_, "gitlab") => Some("https://gitlab.com".into()),
            _ => None,
        }
    }

    /// The client id and secret, from `credentialsFile` when it is set.
    pub fn client(&self, key: &str) -> Result<(String, Option<String>), ConfigError> {
        let at = |f: &str| format!("http.auth.openid.providers.{key}.{f}");
        let (id, secret) = match &self.credentials_file {
            Some(path) if !path.as_os_str().is_empty() => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::key(at("credentialsFile"), format!("{}: {e}", path.display()))
                })?;
                let c: ClientCredentials = serde_json::from_str(&text).map_err(|e| {
                    ConfigError::key(
                        at("credentialsFile"),
                        format!(
                            "{}: not {{\"clientid\", \"clientsecret\"}}: {e}",
                            path.display()
                        ),
                    )
                })?;
                (c.clientid, Some(c.clientsecret))
            }
            _ => (
                self.clientid.clone().unwrap_or_default(),
                self.clientsecret.clone(),
            ),
        };
        if id.trim().is_empty() {
            return Err(ConfigError::key(at("clientid"), "is required"));
        }
        Ok((id, secret.filter(|s| !s.is_empty())))
    }
}

impl OpenIdConfig {
    fn check(&self, external_url: Option<&str>) -> Result<(), ConfigError> {
        for (key, p) in &self.providers {
            let at = |f: &str| format!("http.auth.openid.providers.{key}{f}");
            if !OPENID_PROVIDERS.contains(&key.as_str()) {
                return Err(ConfigError::key(
                    at(""),
                    "unsupported provider: oidc, google, gitlab or github",
                ));
            }
            if p.keypath.as_deref().is_some_and(|k| !k.is_empty()) {
                return Err(ConfigError::key(
                    at(".keypath"),
                    "JWT-profile client authentication is not supported by this version of berth",
                ));
            }
            let endpoints = [("authurl", &p.authurl), ("tokenurl", &p.tokenurl)];
            if key == "github" {
                match (&p.authurl, &p.tokenurl) {
                    (Some(_), None) | (None, Some(_)) => {
                        return Err(ConfigError::key(
                            at(".tokenurl"),
                            "authurl and tokenurl go together (GitHub Enterprise's endpoints)",
                        ));
                    }
                    _ => {}
                }
                for (f, v) in endpoints {
                    if let Some(v) = v {
                        check_url(&at(&format!(".{f}")), v)?;
                    }
                }
            } else {
                if endpoints.iter().any(|(_, v)| v.is_some()) {
                    return Err(ConfigError::key(
                        at(".authurl"),
                        "is github's; an OpenID provider's endpoints come from its issuer's discovery document",
                    ));
                }
                let issuer = p
                    .issuer_for(key)
                    .ok_or_else(|| ConfigError::key(at(".issuer"), "is required"))?;
                check_url(&at(".issuer"), &issuer)?;
            }
            if p.scopes.is_empty() {
                return Err(ConfigError::key(
                    at(".scopes"),
                    "is required (e.g. [\"openid\", \"profile\", \"email\", \"groups\"])",
                ));
            }
            p.client(key)?;
            if let Some(m) = &p.claim_mapping {
                for (f, v) in [("username", &m.username), ("groups", &m.groups)] {
                    if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                        return Err(ConfigError::key(
                            at(&format!(".claimMapping.{f}")),
                            "must name a claim",
                        ));
                    }
                }
            }
        }
        for o in &self.callback_allow_origins {
            let url = check_url("http.auth.openid.callbackAllowOrigins", o)?;
            if url.path() != "/" || url.query().is_some() {
                return Err(ConfigError::key(
                    "http.auth.openid.callbackAllowOrigins",
                    format!("{o}: an origin (scheme://host[:port]) has no path"),
                ));
            }
        }
        if !self.providers.is_empty() && external_url.is_none() {
            super::note(
                "http.externalUrl is not set: OpenID providers send users back to the address their browser used".into(),
            );
        }
        Ok(())
    }
}

fn check_url(key: &str, value: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| ConfigError::key(key, format!("{value}: not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::key(
            key,
            format!("{value}: not an http(s) URL"),
        ));
    }
    Ok(url)
}

impl super::AuthConfig {
    /// The OpenID providers configured, if any.
    pub fn openid_providers(&self) -> bool {
        self.openid
            .as_ref()
            .is_some_and(|o| !o.providers.is_empty())
    }

    pub(super) fn check_sessions(&self, external_url: Option<&str>) -> Result<(), ConfigError> {
        if let Some(o) = &self.openid {
            o.check(external_url)?;
        }
        if let Some(d) = &self.session_driver {
            match d.name.to_ascii_lowercase().as_str() {
                "local" => {}
                "redis" => {
                    d.check_redis_keys("http.auth.sessionDriver")?;
                }
                other => {
                    return Err(ConfigError::key(
                        "http.auth.sessionDriver.name",
                        format!("{other}: local or redis"),
                    ));
                }
            }
        }
        if let Some(path) = &self.session_keys_file {
            load_session_keys(path)?;
        }
        Ok(())
    }
}

/// Reads and checks `http.auth.sessionKeysFile`.
pub fn load_session_keys(path: &std::path::Path) -> Result<SessionKeys, ConfigError> {
    const KEY: &str = "http.auth.sessionKeysFile";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::key(KEY, format!("{}: {e}", path.display())))?;
    let keys: SessionKeys = serde_json::from_str(&text).map_err(|e| {
        ConfigError::key(
            KEY,
            format!(
                "{}: not {{\"hashKey\", \"encryptKey\"}}: {e}",
                path.display()
            ),
        )
    })?;
    if keys.hash_key.len() < 16 {
        return Err(ConfigError::key(
            KEY,
            "hashKey: at least 16 bytes (32 or 64 recommended)",
        ));
    }
    if let Some(e) = &keys.encrypt_key
        && !matches!(e.len(), 16 | 24 | 32)
    {
        return Err(ConfigError::key(
            KEY,
            "encryptKey: 16, 24 or 32 bytes (an AES key)",
        ));
    }
    Ok(keys)
}

/// `sessionDriver`: the cache driver's keys (zot's `local` or `redis`).
pub type SessionDriverConfig = CacheDriverConfig;

/// An external URL with no trailing slash.
pub fn external_origin(external_url: &str) -> Option<String> {
    let url = url::Url::parse(external_url).ok()?;
    Some(url.origin().ascii_serialization())
}

/// `http.externalUrl`: an absolute http(s) URL.
pub(super) fn check_external_url(value: &str) -> Result<(), ConfigError> {
    check_url("http.externalUrl", value).map(|_| ())
}

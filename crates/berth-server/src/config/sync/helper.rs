//! A sync registry's credential helper: zot's `credentialHelper` (`ecr`,
//! `gcp`, `oauth2`) and the `oauth2` helper's settings,
//! `oauth2CredentialHelper` (`credentialHelperConfig` in some of zot's
//! development builds, accepted under either name).
//!
//! The section is resolved here into a [`CredentialHelper`]; what is wrong
//! with it is kept as the key and why, reported by the config check like
//! every other refusal of `config/sync.rs`. The files it names (the
//! assertion, the signing file and its key, the client secret) are read at
//! start by `ext::sync::helper::check_files`.

use std::path::PathBuf;

use serde::Deserialize;

/// `grantType`'s default: the client credentials grant, authenticated by
/// the assertion (RFC 7523 §2.2).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// The assertion as the grant itself (RFC 7523 §2.1).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693's token exchange: the assertion is the subject token.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `subjectTokenType`'s default.
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// `requestedTokenType`'s default.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `username`'s default: what registries that take a token as the
/// password expect.
const TOKEN_USER: &str = "<token>";

/// Who logs in to a registry's URLs in place of `credentialsFile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialHelper {
    /// AWS ECR: `GetAuthorizationToken` (feature `ecr`).
    Ecr,
    /// Google: an access token from the application default credentials.
    Gcp,
    /// An access token from an OAuth2 token endpoint, for a JWT assertion
    /// (boxed: it is large beside the others).
    OAuth2(Box<OAuth2Helper>),
}

impl CredentialHelper {
    /// zot's name of the helper.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ecr => "ecr",
            Self::Gcp => "gcp",
            Self::OAuth2(_) => "oauth2",
        }
    }
}

/// `oauth2CredentialHelper`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Helper {
    /// The token endpoint (`tokenURL`), `http://` or `https://`.
    pub token_url: String,
    /// Where the assertion comes from.
    pub assertion: Assertion,
    /// What the request asks for (`grantType` and its settings).
    pub grant: Grant,
    /// `clientID`: sent as `client_id`; the default issuer and subject of
    /// minted assertions.
    pub client_id: Option<String>,
    /// `clientSecretFile`: a file holding `client_secret`, read at each
    /// refresh.
    pub client_secret_file: Option<PathBuf>,
    /// `scopes`, sent as one space-separated `scope`.
    pub scopes: Vec<String>,
    /// The registry user name that goes with the token (`username`,
    /// default `<token>`).
    pub username: String,
}

/// The source of the JWT assertion, read again at every refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assertion {
    /// `assertionFile`: a token another system issues and rotates.
    File(PathBuf),
    /// `signingFile`: a key and claims Berth signs a fresh assertion with
    /// (a new `jti` each time).
    Signed(PathBuf),
}

/// `grantType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `client_credentials`: the assertion authenticates the client
    /// (`client_assertion`).
    ClientCredentials,
    /// The jwt-bearer grant: the assertion is the grant (`assertion`).
    JwtBearer,
    /// RFC 8693: the assertion is `subject_token`.
    TokenExchange {
        audience: String,
        subject_token_type: String,
        requested_token_type: String,
    },
}

/// `oauth2CredentialHelper` as written (zot's field names; `tokenUrl`
/// and `clientId` are taken too, as zot reads names whatever their case).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuth2File {
    #[serde(default, rename = "tokenURL", alias = "tokenUrl")]
    token_url: Option<String>,
    #[serde(default, rename = "assertionFile")]
    assertion_file: Option<String>,
    #[serde(default, rename = "signingFile")]
    signing_file: Option<String>,
    #[serde(default, rename = "grantType")]
    grant_type: Option<String>,
    #[serde(default, rename = "clientID", alias = "clientId")]
    client_id: Option<String>,
    #[serde(default, rename = "clientSecretFile")]
    client_secret_file: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default, rename = "subjectTokenType")]
    subject_token_type: Option<String>,
    #[serde(default, rename = "requestedTokenType")]
    requested_token_type: Option<String>,
}

/// A refusal: the key (below the registry) and why.
pub(super) type Refusal = (String, String);

/// `Some(v)` when `v` holds more than blanks (zot reads blanks as unset).
fn value(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Resolves a registry's `credentialHelper` and the `oauth2` helper's
/// section (`settings`: the key it was written under and its value).
pub(super) fn resolve(
    name: Option<&str>,
    settings: Option<(&str, &serde_json::Value)>,
) -> Result<Option<CredentialHelper>, Refusal> {
    let refuse = |key: &str, why: &str| Err((key.to_string(), why.to_string()));
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    match (name, settings) {
        (None, None) => Ok(None),
        (Some("ecr"), None) => Ok(Some(CredentialHelper::Ecr)),
        (Some("gcp"), None) => Ok(Some(CredentialHelper::Gcp)),
        (Some("oauth2"), Some((key, v))) => {
            oauth2(key, v).map(|h| Some(CredentialHelper::OAuth2(Box::new(h))))
        }
        (Some("oauth2"), None) => refuse(
            "oauth2CredentialHelper",
            "required with credentialHelper: oauth2 (tokenURL, and assertionFile or signingFile)",
        ),
        (Some(other), _) if !matches!(other, "ecr" | "gcp") => refuse(
            "credentialHelper",
            &format!("{other:?} is no credential helper: \"ecr\", \"gcp\" or \"oauth2\""),
        ),
        (_, Some((key, _))) => refuse(key, "applies only with credentialHelper: oauth2"),
        (Some(_), None) => Ok(None),
    }
}

/// Checks the `oauth2` helper's section, written under `key`.
fn oauth2(key: &str, v: &serde_json::Value) -> Result<OAuth2Helper, Refusal> {
    let at = |k: &str| format!("{key}.{k}");
    let f: OAuth2File = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let k = if path == "." {
            key.to_string()
        } else {
            at(&path)
        };
        (k, e.into_inner().to_string())
    })?;
    let token_url = value(f.token_url).ok_or_else(|| {
        (
            at("tokenURL"),
            "required: the OAuth2 token endpoint".to_string(),
        )
    })?;
    check_url(&token_url).map_err(|m| (at("tokenURL"), m))?;
    let assertion = match (value(f.assertion_file), value(f.signing_file)) {
        (Some(file), None) => Assertion::File(file.into()),
        (None, Some(file)) => Assertion::Signed(file.into()),
        (Some(_), Some(_)) => {
            return Err((
                at("signingFile"),
                "set assertionFile or signingFile, not both".to_string(),
            ));
        }
        (None, None) => {
            return Err((
                at("assertionFile"),
                "required (or signingFile): the JWT assertion exchanged for a token".to_string(),
            ));
        }
    };
    let exchange_only = [
        ("audience", &f.audience),
        ("subjectTokenType", &f.subject_token_type),
        ("requestedTokenType", &f.requested_token_type),
    ];
    let grant_type = value(f.grant_type);
    let grant = match grant_type.as_deref().unwrap_or(CLIENT_CREDENTIALS) {
        CLIENT_CREDENTIALS => Grant::ClientCredentials,
        JWT_BEARER => Grant::JwtBearer,
        TOKEN_EXCHANGE => {
            let audience = value(f.audience.clone()).ok_or_else(|| {
                (
                    at("audience"),
                    format!("required with grantType {TOKEN_EXCHANGE}"),
                )
            })?;
            let token_type = |k: &str, v: &Option<String>, default: &str| {
                let t = value(v.clone()).unwrap_or_else(|| default.to_string());
                match t.split_once(':') {
                    Some((scheme, rest))
                        if !rest.is_empty()
                            && scheme
                                .chars()
                                .next()
                                .is_some_and(|c| c.is_ascii_alphabetic())
                            && scheme
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
                    {
                        Ok(t)
                    }
                    _ => Err((
                        at(k),
                        format!("{t:?}: must be an absolute URI (RFC 8693), such as {default}"),
                    )),
                }
            };
            Grant::TokenExchange {
                audience,
                subject_token_type: token_type(
                    "subjectTokenType",
                    &f.subject_token_type,
                    JWT_TOKEN_TYPE,
                )?,
                requested_token_type: token_type(
                    "requestedTokenType",
                    &f.requested_token_type,
                    ACCESS_TOKEN_TYPE,
                )?,
            }
        }
        other => {
            return Err((
                at("grantType"),
                format!(
                    "{other:?}: must be {CLIENT_CREDENTIALS} (the default), {JWT_BEARER} or {TOKEN_EXCHANGE}"
                ),
            ));
        }
    };
    if !matches!(grant, Grant::TokenExchange { .. })
        && let Some((k, _)) = exchange_only
            .iter()
            .find(|(_, v)| value((*v).clone()).is_some())
    {
        return Err((
            at(k),
            format!("applies only with grantType {TOKEN_EXCHANGE}"),
        ));
    }
    if f.scopes
        .iter()
        .any(|s| s.trim().is_empty() || s.contains(' '))
    {
        return Err((
            at("scopes"),
            "each scope is one word, none empty".to_string(),
        ));
    }
    Ok(OAuth2Helper {
        token_url,
        assertion,
        grant,
        client_id: value(f.client_id),
        client_secret_file: value(f.client_secret_file).map(PathBuf::from),
        scopes: f.scopes,
        username: value(f.username).unwrap_or_else(|| TOKEN_USER.to_string()),
    })
}

/// A token endpoint: an `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url:?} is no URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: must be an http:// or https:// URL"));
    }
    Ok(())
}

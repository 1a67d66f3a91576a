//! zot's token endpoint, `/zot/auth/token`: Berth as the realm of its own
//! bearer challenge, so Docker clients that only speak the token flow can
//! log in with what Berth itself trusts.
//!
//! A token request's credentials (Basic, or the form fields of a POST:
//! `password` with `username`/`account`, `id_token`, `access_token`,
//! `refresh_token`, `token`) are judged in order:
//! - an API key (`zak_…`, with its owner's name) that checks out is
//!   answered with a *wrapped* credential, `zot_cred_v1.<base64url JSON>`,
//!   which registry requests then present as `Bearer` and which is checked
//!   as the API key again each time (revoking the key revokes it);
//! - a JWT whose issuer and audience are a `bearer.oidc` issuer's is
//!   verified and handed back as the token (it is already a bearer token
//!   Berth accepts), with its remaining lifetime;
//! - a wrapped credential is refused: it is a token already.
//!
//! A credential of these kinds that does not check out is refused here and
//! never forwarded. A request carrying none of them belongs to the token
//! service named by `bearer.upstreamTokenEndpoint`, when there is one
//! (see `api::token`, which forwards it).

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Auth, AuthFailure, LoginMethod, apikeys};

/// What marks a wrapped credential.
pub const WRAPPED_PREFIX: &str = "zot_cred_v1.";
/// The largest form body read.
pub const MAX_FORM: usize = 64 * 1024;

const WRAPPED_VERSION: u32 = 1;
const WRAPPED_API_KEY: &str = "api-key";

/// A wrapped credential's content (zot's layout, so tokens from either
/// registry read alike).
#[derive(Serialize, Deserialize)]
struct Wrapped {
    v: u32,
    typ: String,
    username: String,
    secret: String,
}

/// A wrapped API key: the bearer token for `user`'s `key`.
pub fn wrap_api_key(user: &str, key: &str) -> String {
    let payload = serde_json::json!({
        "v": WRAPPED_VERSION,
        "typ": WRAPPED_API_KEY,
        "username": user,
        "secret": key,
    });
    format!(
        "{WRAPPED_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// The user and API key a wrapped credential carries: `None` when `token`
/// is not one, `Some(None)` when it is one but malformed.
pub fn unwrap_api_key(token: &str) -> Option<Option<(String, String)>> {
    let encoded = token.strip_prefix(WRAPPED_PREFIX)?;
    let parsed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|raw| serde_json::from_slice::<Wrapped>(&raw).ok())
        .filter(|w| {
            w.v == WRAPPED_VERSION
                && w.typ == WRAPPED_API_KEY
                && !w.username.is_empty()
                && !w.secret.is_empty()
        })
        .map(|w| (w.username, w.secret));
    Some(parsed)
}

/// One credential of a token request: a user (maybe empty) and a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub user: String,
    pub secret: String,
}

/// The credentials a token request carries, in the order they are tried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub offered: Vec<Offered>,
}

impl TokenRequest {
    /// From the Basic credentials of the request (if any) and its
    /// `application/x-www-form-urlencoded` body (if any).
    pub fn new(basic: Option<(String, String)>, form: Option<&[u8]>) -> Self {
        let mut req = Self::default();
        if let Some((user, password)) = basic {
            req.offer(&user, &password);
        }
        if let Some(form) = form {
            let fields: Vec<(String, String)> = url_decoded(form);
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let user = field("username")
                .filter(|u| !u.is_empty())
                .or_else(|| field("account"))
                .unwrap_or_default();
            for (k, v) in &fields {
                if k == "password" {
                    req.offer(&user, v);
                }
            }
            for name in ["id_token", "access_token", "refresh_token", "token"] {
                for (k, v) in &fields {
                    if k == name {
                        req.offer("", v);
                    }
                }
            }
        }
        req
    }

    fn offer(&mut self, user: &str, secret: &str) {
        let offered = Offered {
            user: user.trim().to_string(),
            secret: secret.trim().to_string(),
        };
        if !offered.secret.is_empty() && !self.offered.contains(&offered) {
            self.offered.push(offered);
        }
    }
}

/// The fields of a form body or a query (`+` is a space, `%XX` a byte).
pub fn url_decoded(form: &[u8]) -> Vec<(String, String)> {
    reqwest::Url::parse("http://form.invalid/")
        .map(|mut u| {
            u.set_query(Some(&String::from_utf8_lossy(form)));
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The answer to a token request, as Docker's token specification shapes
/// it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub token: String,
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    pub issued_at: String,
}

impl TokenResponse {
    fn new(token: String, expires_in: Option<i64>, issued_at: i64) -> Self {
        let issued_at = time::OffsetDateTime::from_unix_timestamp(issued_at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        Self {
            access_token: token.clone(),
            token,
            expires_in,
            issued_at,
        }
    }
}

/// What Berth makes of a token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// A token for this registry.
    Issued(TokenResponse),
    /// Credentials of Berth's own that did not check out: refused, never
    /// forwarded.
    Refused,
    /// None of Berth's: the upstream token service's, if there is one.
    NotOurs,
    /// What checks them cannot be reached (named).
    Unavailable(&'static str),
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Auth {
    /// Whether `/zot/auth/token` is served: bearer challenges are
    /// configured and Berth has something of its own to exchange (API keys
    /// or workload identity tokens), as zot decides.
    pub fn exchanges_tokens(&self) -> bool {
        self.bearer.is_some() && (self.apikeys.is_some() || self.oidc.is_some())
    }

    /// `bearer.upstreamTokenEndpoint`, as configured now.
    pub fn upstream_token_endpoint(&self) -> Option<crate::config::UpstreamTokenEndpoint> {
        self.bearer().and_then(|b| b.upstream().cloned())
    }

    /// Judges the credentials of a token request (see the module's
    /// documentation).
    pub async fn exchange(&self, request: &TokenRequest) -> Exchange {
        let mut ours = false;
        for offered in &request.offered {
            if offered.secret.starts_with(WRAPPED_PREFIX) {
                ours = true;
                continue;
            }
            if self.apikeys.is_some() && offered.secret.starts_with(apikeys::PREFIX) {
                ours = true;
                if offered.user.is_empty() {
                    continue;
                }
                match self.api_key_login(&offered.user, &offered.secret).await {
                    Some(Ok(login)) if login.method == LoginMethod::ApiKey => {
                        let token = wrap_api_key(&offered.user, &offered.secret);
                        return Exchange::Issued(TokenResponse::new(token, None, now()));
                    }
                    Some(Err(AuthFailure::Unavailable(what))) => {
                        return Exchange::Unavailable(what);
                    }
                    _ => continue,
                }
            }
            let Some(oidc) = &self.oidc else { continue };
            if !oidc.owns(&offered.secret) {
                continue;
            }
            ours = true;
            match oidc.authenticate(&offered.secret).await {
                Some(Ok(user)) => {
                    let claim = |name: &str| user.claims.get(name).and_then(|v| v.as_i64());
                    let now = now();
                    let expires_in = claim("exp").map(|exp| (exp - now).max(0));
                    let issued = claim("iat").unwrap_or(now);
                    return Exchange::Issued(TokenResponse::new(
                        offered.secret.clone(),
                        expires_in,
                        issued,
                    ));
                }
                Some(Err(super::TokenError::Unavailable { service, cause })) => {
                    tracing::warn!(error = %cause, "token exchange: {service} is unreachable");
                    return Exchange::Unavailable(service);
                }
                Some(Err(e)) => tracing::info!(error = %e, "token exchange: oidc token refused"),
                None => {}
            }
        }
        match ours {
            true => Exchange::Refused,
            false => Exchange::NotOurs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_credentials_round_trip() {
        let token = wrap_api_key("alice", "zak_secret");
        assert!(token.starts_with(WRAPPED_PREFIX));
        assert_eq!(
            unwrap_api_key(&token),
            Some(Some(("alice".into(), "zak_secret".into())))
        );
        assert_eq!(unwrap_api_key("eyJhbGciOi.x.y"), None, "not wrapped");
        for bad in ["zot_cred_v1.", "zot_cred_v1.!!!", "zot_cred_v1.e30"] {
            assert_eq!(unwrap_api_key(bad), Some(None), "{bad}");
        }
        let other_version = format!(
            "{WRAPPED_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"v":2,"typ":"api-key","username":"a","secret":"s"}"#)
        );
        assert_eq!(unwrap_api_key(&other_version), Some(None));
    }

    #[test]
    fn credentials_from_basic_and_form() {
        let req = TokenRequest::new(
            Some(("alice".into(), "zak_1".into())),
            Some(b"grant_type=password&service=x&username=bob&password=p%2Bw+d&access_token=jwt&token=jwt&password=zak_1"),
        );
        let offered: Vec<(&str, &str)> = req
            .offered
            .iter()
            .map(|o| (o.user.as_str(), o.secret.as_str()))
            .collect();
        assert_eq!(
            offered,
            [
                ("alice", "zak_1"),
                ("bob", "p+w d"),
                ("bob", "zak_1"),
                ("", "jwt")
            ]
        );
        let by_account = TokenRequest::new(None, Some(b"account=carol&password=s"));
        assert_eq!(by_account.offered[0].user, "carol");
        assert!(
            TokenRequest::new(Some(("u".into(), " ".into())), None)
                .offered
                .is_empty()
        );
    }

    #[test]
    fn responses_carry_both_names_of_the_token() {
        let r = TokenResponse::new("t".into(), Some(60), 0);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["token"], "t");
        assert_eq!(v["access_token"], "t");
        assert_eq!(v["expires_in"], 60);
        assert_eq!(v["issued_at"], "1970-01-01T00:00:00Z");
        let v = serde_json::to_value(TokenResponse::new("t".into(), None, 0)).expect("json");
        assert!(v.get("expires_in").is_none());
    }
}

//! Workload identity tokens (`http.auth.bearer.oidc`): JWTs from OIDC
//! issuers (a CI system, a cloud's workload identity, Kubernetes service
//! accounts), verified against the keys each issuer publishes, that name a
//! user through `claimMapping`. Unlike a classic bearer token, such a token
//! grants nothing itself: its user (name and groups) is judged by
//! `http.accessControl` like any other.
//!
//! A token's `iss`, read before anything is verified, picks the issuers
//! that may have made it (its own; any with `skipIssuerVerification`); they
//! are tried in the configured order and the first that verifies it wins.
//! A token no configured issuer could have made is left to classic bearer
//! verification.

mod claims;
mod provider;

pub use claims::{ClaimMapping, CompileError, MappedUser};

use jsonwebtoken::dangerous::insecure_decode;

use super::{AuthConfigError, TokenError};
use crate::config::OidcProviderConfig;
use provider::Provider;

/// The configured issuers.
pub struct Oidc {
    providers: Vec<Provider>,
}

/// The claims read before verification.
#[derive(serde::Deserialize)]
struct Unverified {
    #[serde(default)]
    iss: String,
    /// One audience or several.
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

impl Unverified {
    fn audiences(&self) -> Vec<&str> {
        match &self.aud {
            Some(serde_json::Value::String(a)) => vec![a.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

impl Oidc {
    /// The issuers of `configs`, `None` when there are none. Nothing is
    /// fetched here.
    pub fn load(configs: &[OidcProviderConfig]) -> Result<Option<Self>, AuthConfigError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let providers = configs
            .iter()
            .enumerate()
            .map(|(i, c)| Provider::load(c, i))
            .collect::<Result<Vec<_>, _>>()?;
        let issuers: Vec<&str> = providers.iter().map(|p| p.issuer.as_str()).collect();
        tracing::info!(?issuers, "oidc workload identity tokens accepted");
        Ok(Some(Self { providers }))
    }

    /// Whether `token` claims to be one of these issuers' for one of their
    /// audiences (read unverified): the token endpoint keeps such tokens
    /// to itself rather than forwarding them.
    pub fn owns(&self, token: &str) -> bool {
        let Ok(data) = insecure_decode::<Unverified>(token) else {
            return false;
        };
        let audiences = data.claims.audiences();
        self.providers
            .iter()
            .any(|p| p.issuer == data.claims.iss && audiences.iter().any(|a| p.has_audience(a)))
    }

    /// The user `token` names: `None` when no configured issuer could have
    /// made it (not a JWT, or another issuer's), else the verdict of the
    /// first issuer that verifies it (or why the last one did not; an
    /// unreachable issuer wins over a refusal, so the caller may retry).
    pub async fn authenticate(&self, token: &str) -> Option<Result<MappedUser, TokenError>> {
        let data = insecure_decode::<Unverified>(token).ok()?;
        let mut verdict = None;
        for p in self
            .providers
            .iter()
            .filter(|p| p.may_have_issued(&data.claims.iss))
        {
            match p.verify(token, &data.header).await {
                Ok(user) => return Some(Ok(user)),
                Err(e) => {
                    tracing::info!(issuer = %p.issuer, iss = %data.claims.iss, error = %e, "oidc token rejected");
                    let keep = matches!(verdict, Some(Err(TokenError::Unavailable { .. })));
                    if !keep {
                        verdict = Some(Err(e));
                    }
                }
            }
        }
        verdict
    }
}

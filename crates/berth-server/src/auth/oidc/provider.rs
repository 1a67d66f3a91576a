//! One OIDC issuer of `http.auth.bearer.oidc`: its discovery document and
//! signing keys, fetched lazily and kept fresh, and the verification of a
//! token against them.
//!
//! Nothing is fetched at start-up (an issuer that is down must not stop the
//! registry). The first token for the issuer fetches
//! `<issuer>/.well-known/openid-configuration` and the JWKS it names; both
//! are fetched again when older than [`REFRESH`] — while one request does
//! that, the others keep verifying with the keys at hand, and a refresh
//! that fails keeps them too (retried after [`RETRY`]), for at most
//! [`GRACE`]: then, with the issuer still unreachable, tokens are answered
//! 503 rather than checked against keys it may have withdrawn. A token
//! whose `kid` is not in the set makes the set be fetched again at once (a
//! rotated key; at most once per [`KID_REFETCH`]).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;

use super::claims::{ClaimMapping, MappedUser};
use crate::auth::{AuthConfigError, TokenError};
use crate::config::OidcProviderConfig;

/// How long discovery and keys are used before they are fetched again.
const REFRESH: Duration = Duration::from_secs(60);
/// How long past [`REFRESH`] keys serve while the issuer cannot be reached.
const GRACE: Duration = Duration::from_secs(600);
/// How long after a failed fetch the next one is tried.
const RETRY: Duration = Duration::from_secs(60);
/// The least time between two fetches of the keys for an unknown `kid`.
const KID_REFETCH: Duration = Duration::from_secs(1);
/// The time limit of each request to the issuer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest discovery document or key set read.
const MAX_BODY: usize = 1 << 20;
/// How far in the future a token's `nbf` may be (clock skew).
const NBF_LEEWAY_SECS: u64 = 300;

const SERVICE: &str = "the OIDC issuer";

/// Google's issuer, whose tokens may name it without the scheme.
const GOOGLE: &str = "https://accounts.google.com";
const GOOGLE_SHORT: &str = "accounts.google.com";

/// What the issuer publishes, as fetched.
struct Published {
    /// `id_token_signing_alg_values_supported` that Berth can verify
    /// (default RS256).
    algorithms: Vec<Algorithm>,
    jwks_uri: String,
    keys: JwkSet,
    fetched: Instant,
}

#[derive(Default)]
struct State {
    published: Option<Arc<Published>>,
    /// When the last fetch failed.
    failed: Option<Instant>,
    /// When the keys were last fetched for an unknown `kid`.
    kid_refetch: Option<Instant>,
}

/// The discovery document's fields Berth reads.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

/// One configured issuer.
pub(super) struct Provider {
    pub(super) issuer: String,
    pub(super) skip_issuer_verification: bool,
    audiences: Vec<String>,
    mapping: ClaimMapping,
    http: reqwest::Client,
    state: RwLock<State>,
    /// One fetch at a time; a std lock would be held across the fetch.
    fetching: tokio::sync::Mutex<()>,
}

impl Provider {
    /// Whether `aud` is one of this issuer's `audiences`.
    pub(super) fn has_audience(&self, aud: &str) -> bool {
        self.audiences.iter().any(|a| a == aud)
    }

    /// The issuer of `config`, the `i`th; errors name the key.
    pub(super) fn load(config: &OidcProviderConfig, i: usize) -> Result<Self, AuthConfigError> {
        const KEY: &str = "http.auth.bearer.oidc[].claimMapping";
        let mapping =
            ClaimMapping::compile(&config.claim_mapping).map_err(|e| AuthConfigError::Invalid {
                key: KEY,
                message: format!("oidc[{i}].claimMapping.{}: {}", e.key, e.message),
            })?;
        let mut http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3));
        let ca = match (
            &config.certificate_authority,
            &config.certificate_authority_file,
        ) {
            (Some(pem), _) => Some((
                "http.auth.bearer.oidc[].certificateAuthority",
                pem.as_bytes().to_vec(),
            )),
            (None, Some(path)) => {
                const KEY: &str = "http.auth.bearer.oidc[].certificateAuthorityFile";
                let pem =
                    std::fs::read(path).map_err(|e| AuthConfigError::unreadable(KEY, path, e))?;
                Some((KEY, pem))
            }
            (None, None) => None,
        };
        if let Some((key, pem)) = ca {
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| AuthConfigError::Invalid {
                    key,
                    message: format!("oidc[{i}]: no PEM certificate in it"),
                })?;
            // The CA is then the only root trusted for the issuer.
            http = http
                .tls_certs_only(certs)
                .tls_version_min(reqwest::tls::Version::TLS_1_2);
        }
        let http = http.build().map_err(|e| AuthConfigError::Invalid {
            key: "http.auth.bearer.oidc",
            message: format!("oidc[{i}]: the HTTP client: {e}"),
        })?;
        Ok(Self {
            issuer: config.issuer.clone(),
            skip_issuer_verification: config.skip_issuer_verification,
            audiences: config.trimmed_audiences(),
            mapping,
            http,
            state: RwLock::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether a token claiming `iss` may be this issuer's.
    pub(super) fn may_have_issued(&self, iss: &str) -> bool {
        self.skip_issuer_verification
            || iss == self.issuer
            // Google's tokens say either.
            || (self.issuer == GOOGLE && iss == GOOGLE_SHORT)
    }

    /// The user a token of this issuer names.
    pub(super) async fn verify(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<MappedUser, TokenError> {
        let published = self.published().await?;
        if !published.algorithms.contains(&header.alg) {
            return Err(TokenError::invalid(format!(
                "{:?} is not among the issuer's signing algorithms",
                header.alg
            )));
        }
        let claims = match &header.kid {
            Some(kid) => {
                let jwk = match published.keys.find(kid) {
                    Some(jwk) => jwk.clone(),
                    None => self
                        .refetch_for_kid()
                        .await?
                        .keys
                        .find(kid)
                        .cloned()
                        .ok_or_else(|| TokenError::invalid(format!("unknown key id {kid}")))?,
                };
                self.check_signature(token, header.alg, &jwk)?
            }
            // No `kid`: any of the issuer's keys of the token's kind.
            None => {
                let mut last = TokenError::invalid("no key of the issuer fits the token");
                let mut verified = None;
                for jwk in &published.keys.keys {
                    match self.check_signature(token, header.alg, jwk) {
                        Ok(claims) => {
                            verified = Some(claims);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                verified.ok_or(last)?
            }
        };
        self.check_claims(&claims)?;
        self.mapping.apply(claims)
    }

    /// The token's claims when `jwk` signed it and it has not expired (and
    /// names this issuer, unless that check is skipped).
    fn check_signature(
        &self,
        token: &str,
        alg: Algorithm,
        jwk: &Jwk,
    ) -> Result<serde_json::Value, TokenError> {
        // A shared secret in a public key set is never a verifying key.
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err(TokenError::invalid("a symmetric key cannot verify tokens"));
        }
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| TokenError::invalid(format!("the issuer's key: {e}")))?;
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        if self.skip_issuer_verification {
            validation.set_required_spec_claims(&["exp"]);
        } else {
            match self.issuer == GOOGLE {
                true => validation.set_issuer(&[GOOGLE, GOOGLE_SHORT]),
                false => validation.set_issuer(&[&self.issuer]),
            }
            validation.set_required_spec_claims(&["exp", "iss"]);
        }
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::invalid(format!("token: {e}")))
    }

    /// The audience and not-before checks.
    fn check_claims(&self, claims: &serde_json::Value) -> Result<(), TokenError> {
        let aud: Vec<&str> = match &claims["aud"] {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| self.audiences.iter().any(|b| b == a)) {
            return Err(TokenError::invalid(format!(
                "audience {aud:?} is none of {:?}",
                self.audiences
            )));
        }
        if let Some(nbf) = claims["nbf"].as_u64()
            && nbf > jsonwebtoken::get_current_timestamp() + NBF_LEEWAY_SECS
        {
            return Err(TokenError::invalid("token not valid yet (nbf)"));
        }
        Ok(())
    }

    /// The published keys, fetched when missing or stale.
    async fn published(&self) -> Result<Arc<Published>, TokenError> {
        let (current, due) = self.snapshot();
        match (current, due) {
            (Some(p), false) => Ok(p),
            (Some(p), true) => {
                // Someone else is fetching: verify with what is at hand.
                let Ok(_guard) = self.fetching.try_lock() else {
                    return Ok(p);
                };
                match self.fetch().await {
                    Ok(fresh) => Ok(fresh),
                    Err(e) => {
                        tracing::warn!(issuer = %self.issuer, error = %e, "oidc: refresh failed; keeping the keys at hand");
                        Ok(p)
                    }
                }
            }
            (None, due) => {
                let recently_failed = || TokenError::Unavailable {
                    service: SERVICE,
                    cause: format!("{}: the last discovery failed; retrying soon", self.issuer),
                };
                if !due {
                    return Err(recently_failed());
                }
                let _guard = self.fetching.lock().await;
                // Whoever held the lock may have fetched, or failed.
                match self.snapshot() {
                    (Some(p), _) => Ok(p),
                    (None, false) => Err(recently_failed()),
                    (None, true) => self.fetch().await,
                }
            }
        }
    }

    /// The keys still usable, and whether a fetch is due.
    fn snapshot(&self) -> (Option<Arc<Published>>, bool) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let retry_ok = state.failed.is_none_or(|t| t.elapsed() >= RETRY);
        let stale = state
            .published
            .as_ref()
            .is_none_or(|p| p.fetched.elapsed() >= REFRESH);
        let usable = state
            .published
            .clone()
            .filter(|p| p.fetched.elapsed() < REFRESH + GRACE);
        (usable, stale && retry_ok)
    }

    /// Fetches discovery and keys, and keeps them (or the failure).
    async fn fetch(&self) -> Result<Arc<Published>, TokenError> {
        let result = self.fetch_published().await;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(p) => {
                let p = Arc::new(p);
                state.published = Some(p.clone());
                state.failed = None;
                Ok(p)
            }
            Err(cause) => {
                state.failed = Some(Instant::now());
                tracing::warn!(issuer = %self.issuer, error = %cause, "oidc: discovery failed");
                Err(TokenError::Unavailable {
                    service: SERVICE,
                    cause: format!("{}: {cause}", self.issuer),
                })
            }
        }
    }

    async fn fetch_published(&self) -> Result<Published, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer != self.issuer {
            return Err(format!(
                "the discovery document names issuer {:?}, not {:?}",
                discovery.issuer, self.issuer
            ));
        }
        let algorithms = match discovery.id_token_signing_alg_values_supported.is_empty() {
            true => vec![Algorithm::RS256],
            false => discovery
                .id_token_signing_alg_values_supported
                .iter()
                .filter_map(|a| a.parse::<Algorithm>().ok())
                // Only public-key signatures.
                .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
                .collect(),
        };
        let keys = self.get_json(&discovery.jwks_uri).await?;
        Ok(Published {
            algorithms,
            jwks_uri: discovery.jwks_uri,
            keys,
            fetched: Instant::now(),
        })
    }

    /// The keys fetched again for a `kid` not among them (at most once per
    /// [`KID_REFETCH`]); discovery is kept.
    async fn refetch_for_kid(&self) -> Result<Arc<Published>, TokenError> {
        let _guard = self.fetching.lock().await;
        let current = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if state.kid_refetch.is_some_and(|t| t.elapsed() < KID_REFETCH) {
                return state
                    .published
                    .clone()
                    .ok_or_else(|| TokenError::invalid("no keys"));
            }
            state.published.clone()
        };
        let Some(current) = current else {
            return self.fetch().await;
        };
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .kid_refetch = Some(Instant::now());
        match self.get_json::<JwkSet>(&current.jwks_uri).await {
            Ok(keys) => {
                let fresh = Arc::new(Published {
                    algorithms: current.algorithms.clone(),
                    jwks_uri: current.jwks_uri.clone(),
                    keys,
                    fetched: current.fetched,
                });
                self.state
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .published = Some(fresh.clone());
                Ok(fresh)
            }
            Err(cause) => Err(TokenError::Unavailable {
                service: SERVICE,
                cause: format!("{}: {cause}", self.issuer),
            }),
        }
    }

    /// A JSON document of at most [`MAX_BODY`] bytes.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let mut resp = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("GET {url}: larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(config: serde_json::Value) -> Provider {
        Provider::load(&serde_json::from_value(config).expect("config"), 0).expect("loads")
    }

    #[test]
    fn which_tokens_an_issuer_may_have_made() {
        let p = provider(json!({"issuer": "https://i.example", "audiences": ["a"]}));
        assert!(p.may_have_issued("https://i.example"));
        assert!(!p.may_have_issued("https://i.example/"));
        assert!(!p.may_have_issued("https://other.example"));
        let any = provider(
            json!({"issuer": "https://i.example", "audiences": ["a"], "skipIssuerVerification": true}),
        );
        assert!(any.may_have_issued("https://other.example"));
        let google = provider(json!({"issuer": GOOGLE, "audiences": ["a"]}));
        assert!(google.may_have_issued(GOOGLE_SHORT));
        assert!(google.may_have_issued(GOOGLE));
    }

    #[test]
    fn audience_and_not_before() {
        let p = provider(json!({"issuer": "https://i.example", "audiences": [" a ", "b"]}));
        let now = jsonwebtoken::get_current_timestamp();
        for (claims, ok) in [
            (json!({"aud": "a"}), true),
            (json!({"aud": ["x", "b"]}), true),
            (json!({"aud": ["x"]}), false),
            (json!({"aud": " a "}), false),
            (json!({}), false),
            (json!({"aud": "a", "nbf": now + 60}), true),
            (json!({"aud": "a", "nbf": now + 3600}), false),
        ] {
            assert_eq!(p.check_claims(&claims).is_ok(), ok, "{claims}");
        }
    }

    #[test]
    fn a_bad_certificate_authority_is_refused() {
        let err = Provider::load(
            &serde_json::from_value(json!({
                "issuer": "https://i.example", "audiences": ["a"], "certificateAuthority": "not a pem",
            }))
            .expect("config"),
            0,
        )
        .err()
        .expect("refused");
        assert_eq!(err.key(), "http.auth.bearer.oidc[].certificateAuthority");
    }
}

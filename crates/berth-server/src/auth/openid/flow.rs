//! The two legs of a login: to the provider ([`OpenId::start_login`]) and
//! back ([`OpenId::finish_login`]); and where logging out sends a browser
//! ([`OpenId::end_session_url`]).

use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};

use super::{OpenId, OpenIdError, Provider, claims};
use crate::auth::session::{SessionMethod, Sessions};

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A login in progress, kept by its `state`.
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: String,
    pkce_verifier: String,
    nonce: String,
    callback: String,
    redirect_uri: String,
}

/// Where to send the browser to log in, and the cookie binding the login
/// to it.
pub struct LoginStart {
    pub location: String,
    pub cookie: Option<http::HeaderValue>,
}

/// A finished login: the cookies of the new session and where to go.
pub struct Callback {
    pub cookies: Vec<http::HeaderValue>,
    pub location: String,
    pub user: String,
}

/// The query of a callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl OpenId {
    fn client(
        &self,
        p: &Provider,
        metadata: &openidconnect::ProviderMetadataWithLogout,
        redirect_uri: &str,
    ) -> Result<Client, OpenIdError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| OpenIdError::Refused(format!("redirect URI {redirect_uri}: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(p.client_id.clone()),
            p.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a login with `provider`: a new `state`, `nonce` and PKCE
    /// verifier are kept for the callback; the browser goes to the
    /// provider's authorization endpoint.
    pub async fn start_login(
        &self,
        sessions: &Sessions,
        headers: &http::HeaderMap,
        provider: &str,
        callback_ui: Option<&str>,
    ) -> Result<LoginStart, OpenIdError> {
        let p = self.provider(provider)?;
        let callback = self.checked_callback(headers, callback_ui)?;
        let redirect_uri = self
            .redirect_uri(headers, &p.key)
            .ok_or_else(|| OpenIdError::Refused("no Host header and no http.externalUrl".into()))?;
        let (location, state, pkce_verifier, nonce) = match &p.github {
            Some(gh) => {
                let (url, state, verifier) = gh.authorize(p, &redirect_uri)?;
                (url, state, verifier, String::new())
            }
            None => self.authorize(p, &redirect_uri).await?,
        };
        let pending = Pending {
            provider: p.key.clone(),
            pkce_verifier,
            nonce,
            callback,
            redirect_uri,
        };
        let record =
            serde_json::to_string(&pending).map_err(crate::auth::session::SessionError::from)?;
        Ok(LoginStart {
            location,
            cookie: sessions.begin_login(&state, &record),
        })
    }

    /// An OpenID Connect provider's authorization URL, with a new `state`,
    /// PKCE verifier and `nonce`.
    async fn authorize(
        &self,
        p: &Provider,
        redirect_uri: &str,
    ) -> Result<(String, String, String, String), OpenIdError> {
        let metadata = self.metadata(p, false).await?;
        let client = self.client(p, &metadata, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in p.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok((
            url.to_string(),
            state.secret().clone(),
            verifier.secret().clone(),
            nonce.secret().clone(),
        ))
    }

    /// Finishes a login: the `state` must be one this browser started and
    /// not used before; the code is exchanged with the PKCE verifier; the
    /// ID token must verify (signature, issuer, audience, expiry, nonce);
    /// then the state is spent and a session starts for the mapped user
    /// and groups.
    pub async fn finish_login(
        &self,
        sessions: &Sessions,
        headers: &http::HeaderMap,
        provider: &str,
        query: &CallbackQuery,
    ) -> Result<Callback, OpenIdError> {
        let p = self.provider(provider)?;
        if let Some(e) = &query.error {
            return Err(OpenIdError::Refused(format!(
                "the provider answered {e}: {}",
                query.error_description.as_deref().unwrap_or("")
            )));
        }
        let (Some(code), Some(state)) = (&query.code, &query.state) else {
            return Err(OpenIdError::Refused("no code or state".into()));
        };
        let record = sessions
            .finish_login(headers, state)
            .await?
            .ok_or_else(|| OpenIdError::Refused("unknown, replayed or expired state".into()))?;
        let pending: Pending = serde_json::from_str(&record)
            .map_err(|e| OpenIdError::Refused(format!("login record: {e}")))?;
        if pending.provider != p.key {
            return Err(OpenIdError::Refused(
                "the state was for another provider".into(),
            ));
        }
        let (user, groups) = match &p.github {
            Some(gh) => {
                self.github_user(p, gh, &pending.redirect_uri, code, &pending.pkce_verifier)
                    .await?
            }
            None => self.oidc_user(p, &pending, code).await?,
        };
        // Only now, the login proven, is its state written down as spent.
        if !sessions.spend_login(state).await? {
            return Err(OpenIdError::Refused("replayed state".into()));
        }
        let (_, mut cookies) = sessions
            .start(
                &user,
                groups.clone(),
                SessionMethod::OpenId,
                Some(p.key.clone()),
            )
            .await?;
        cookies.extend(sessions.login_cleared());
        tracing::info!(provider = %p.key, user = %user, ?groups, "session started (openid)");
        Ok(Callback {
            cookies,
            location: pending.callback,
            user,
        })
    }

    /// The user and groups of an OpenID Connect login, from its code: the
    /// code exchanged with the PKCE verifier, the ID token verified, the
    /// claims of the token and of userinfo mapped.
    async fn oidc_user(
        &self,
        p: &Provider,
        pending: &Pending,
        code: &str,
    ) -> Result<(String, Vec<String>), OpenIdError> {
        let metadata = self.metadata(p, false).await?;
        let client = self.client(p, &metadata, &pending.redirect_uri)?;
        let failed = |message: String| OpenIdError::Provider {
            provider: p.key.clone(),
            message,
        };
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| failed(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| super::token_error(&p.key, e))?;
        let id_token = openidconnect::TokenResponse::id_token(&token)
            .ok_or_else(|| OpenIdError::Refused("the provider returned no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let verified = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.subject().to_string(),
            Err(first) => {
                // A key the cached set lacks: the provider rotated its keys.
                let fresh = self.metadata(p, true).await?;
                let client = self.client(p, &fresh, &pending.redirect_uri)?;
                match id_token.claims(&client.id_token_verifier(), &nonce) {
                    Ok(c) => c.subject().to_string(),
                    Err(e) => {
                        tracing::info!(provider = %p.key, error = %first, "openid login refused: the ID token does not verify");
                        return Err(OpenIdError::Refused(format!("ID token: {e}")));
                    }
                }
            }
        };
        let id_claims = claims::jwt_payload(&id_token.to_string())
            .ok_or_else(|| OpenIdError::Refused("ID token: unreadable payload".into()))?;
        let info = match metadata.userinfo_endpoint() {
            Some(endpoint) => Some(
                self.userinfo(
                    p,
                    endpoint.url().as_str(),
                    token.access_token().secret(),
                    &verified,
                )
                .await?,
            ),
            None => None,
        };
        let sets: Vec<&serde_json::Map<String, serde_json::Value>> =
            info.iter().chain(std::iter::once(&id_claims)).collect();
        let user = claims::username(&p.username_claim, &sets).ok_or_else(|| {
            OpenIdError::Refused(format!("no {:?} claim names the user", p.username_claim))
        })?;
        let groups = claims::groups(&p.groups_claim, &sets);
        Ok((user, groups))
    }

    /// The userinfo answer, whose `sub` must be the ID token's.
    async fn userinfo(
        &self,
        p: &Provider,
        endpoint: &str,
        access_token: &str,
        subject: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, OpenIdError> {
        let req = self.http.client().get(endpoint).bearer_auth(access_token);
        let info: serde_json::Map<String, serde_json::Value> =
            self.fetch_json(p, "userinfo", req).await?;
        if info.get("sub").and_then(|s| s.as_str()) != Some(subject) {
            return Err(OpenIdError::Refused(
                "userinfo is about another subject".into(),
            ));
        }
        Ok(info)
    }

    /// Where a browser logging out of a session of `provider` goes next:
    /// the provider's end-session endpoint (RP-initiated logout) when its
    /// discovery document names one, returning to `back`, a path of this
    /// registry (zot's web UI: `/login`; Berth's: `/`).
    pub async fn end_session_url(
        &self,
        provider: &str,
        headers: &http::HeaderMap,
        back: &str,
    ) -> Option<String> {
        let p = self
            .provider(provider)
            .ok()
            .filter(|p| p.github.is_none())?;
        let metadata = self.metadata(p, false).await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let back = format!("{}{back}", self.own_origin(headers)?);
        let url = openidconnect::LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(p.client_id.clone()))
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(back).ok()?)
            .http_get_url();
        Some(url.to_string())
    }
}

//! GitHub's login (zot's `github` provider): plain OAuth2, no ID token.
//! The authorization code flow with PKCE and `state` (the `oauth2`
//! crate), then GitHub's API with the user's token: the user is their
//! primary, verified email (`/user/emails`), their groups the logins of
//! their organizations (`/user/orgs`) and, with the `read:org` scope,
//! `<org>/<team-slug>` of their teams (`/user/teams`), as zot has them.
//! On github.com the API is `https://api.github.com`; with GitHub
//! Enterprise's `authurl` and `tokenurl`, `<authurl's origin>/api/v3`.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::{OpenId, OpenIdError, Provider};

const GITHUB_AUTH: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN: &str = "https://github.com/login/oauth/access_token";
const GITHUB_API: &str = "https://api.github.com";

/// GitHub's endpoints.
pub(super) struct GitHub {
    auth_url: String,
    token_url: String,
    api: String,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

impl GitHub {
    pub(super) fn new(auth_url: Option<&str>, token_url: Option<&str>) -> Self {
        match (auth_url, token_url) {
            (Some(a), Some(t)) => {
                let api = url::Url::parse(a)
                    .map(|u| format!("{}/api/v3", u.origin().ascii_serialization()))
                    .unwrap_or_else(|_| GITHUB_API.to_string());
                Self {
                    auth_url: a.to_string(),
                    token_url: t.to_string(),
                    api,
                }
            }
            _ => Self {
                auth_url: GITHUB_AUTH.into(),
                token_url: GITHUB_TOKEN.into(),
                api: GITHUB_API.into(),
            },
        }
    }

    fn client(&self, p: &Provider, redirect_uri: &str) -> Result<Client, OpenIdError> {
        let bad = |what: &str, e: url::ParseError| OpenIdError::Provider {
            provider: p.key.clone(),
            message: format!("{what}: {e}"),
        };
        let mut c = BasicClient::new(ClientId::new(p.client_id.clone()))
            .set_auth_uri(AuthUrl::new(self.auth_url.clone()).map_err(|e| bad("authurl", e))?)
            .set_token_uri(TokenUrl::new(self.token_url.clone()).map_err(|e| bad("tokenurl", e))?)
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_string()).map_err(|e| bad("redirect", e))?,
            );
        if let Some(s) = &p.client_secret {
            c = c.set_client_secret(ClientSecret::new(s.clone()));
        }
        Ok(c)
    }

    /// The authorization URL, its `state` and the PKCE verifier.
    pub(super) fn authorize(
        &self,
        p: &Provider,
        redirect_uri: &str,
    ) -> Result<(String, String, String), OpenIdError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client(p, redirect_uri)?;
        let mut req = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        for s in p.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state) = req.url();
        Ok((
            url.to_string(),
            state.secret().clone(),
            verifier.secret().clone(),
        ))
    }
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

impl OpenId {
    /// The user and groups of a GitHub login, from its code.
    pub(super) async fn github_user(
        &self,
        p: &Provider,
        gh: &GitHub,
        redirect_uri: &str,
        code: &str,
        verifier: &str,
    ) -> Result<(String, Vec<String>), OpenIdError> {
        let client = gh.client(p, redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| super::token_error(&p.key, e))?;
        let token = token.access_token().secret().clone();
        let emails: Vec<Email> = self.github_get(p, gh, "/user/emails", &token).await?;
        let user = emails
            .into_iter()
            .find(|e| e.primary && e.verified)
            .map(|e| e.email)
            .ok_or_else(|| {
                OpenIdError::Refused("the GitHub user has no verified primary email".into())
            })?;
        let orgs: Vec<Org> = self.github_get(p, gh, "/user/orgs", &token).await?;
        let mut groups: Vec<String> = orgs.into_iter().map(|o| o.login).collect();
        if p.scopes.iter().any(|s| s == "read:org") {
            let teams: Vec<Team> = self.github_get(p, gh, "/user/teams", &token).await?;
            groups.extend(
                teams
                    .into_iter()
                    .map(|t| format!("{}/{}", t.organization.login, t.slug)),
            );
        }
        groups.sort();
        groups.dedup();
        Ok((user, groups))
    }

    async fn github_get<T: serde::de::DeserializeOwned>(
        &self,
        p: &Provider,
        gh: &GitHub,
        path: &str,
        token: &str,
    ) -> Result<T, OpenIdError> {
        let req = self
            .http
            .client()
            .get(format!("{}{path}?per_page=100", gh.api))
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", concat!("berth/", env!("CARGO_PKG_VERSION")));
        self.fetch_json(p, &format!("GitHub API {path}"), req).await
    }
}

//! Authentication (`http.auth`). With it configured, every `/v2` request
//! must carry credentials that check out; the caller's [`Identity`] is
//! attached to the request for what comes after (access control, audit).
//! Without `http.accessControl`, as in zot, every authenticated user may do
//! everything and anonymous callers nothing.
//!
//! Basic credentials are tried against htpasswd, then LDAP (a password
//! that looks like an API key is tried as one first, sparing a bcrypt or a
//! directory round trip); a `Bearer` token is tried as a workload identity
//! token ([`oidc::Oidc`], whose user the access rules judge), then as a
//! classic token ([`bearer::Bearer`], which carries its own grant).

pub mod access;
pub mod apikeys;
pub mod bearer;
mod browser;
pub mod conditions;
mod credentials;
mod error;
pub mod htpasswd;
pub mod ldap;
pub mod mtls;
pub mod oidc;
#[cfg(feature = "openid")]
pub mod openid;
#[cfg(feature = "secretsmanager")]
pub mod secrets;
pub mod session;
pub mod token_exchange;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::HeaderMap;

use crate::config::HttpConfig;
use credentials::Credentials;

pub use browser::ProviderInfo;
pub use error::{AuthConfigError, TokenError};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    /// A user who logged in; `groups` are those the directory reported
    /// (LDAP), added to those `accessControl.groups` gives.
    User {
        name: String,
        groups: Vec<String>,
    },
    /// The holder of a bearer token: the token's grant is all it may do.
    Token(bearer::Grant),
}

impl Identity {
    /// A user with no directory groups.
    pub fn user(name: impl Into<String>) -> Self {
        Self::User {
            name: name.into(),
            groups: Vec::new(),
        }
    }

    /// The name to log and audit ("" for anonymous callers).
    pub fn name(&self) -> &str {
        match self {
            Self::Anonymous => "",
            Self::User { name, .. } => name,
            Self::Token(g) => &g.subject,
        }
    }
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub identity: Identity,
    /// For an API key with scopes: the repository globs it is limited to.
    pub scopes: Vec<String>,
    pub method: LoginMethod,
    /// A workload identity token's claims, for access-control
    /// `conditions` (`req.claims`).
    pub claims: Option<Arc<serde_json::Value>>,
    /// The browser session the request came with (its cookie).
    pub session: Option<session::Shared>,
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// Not at all.
    None,
    /// A password checked by htpasswd or LDAP: the only login that may
    /// manage API keys (a scoped or expiring key must not mint a wider
    /// one, and a certificate or token names no user who can own keys).
    Password,
    ApiKey,
    Certificate,
    Token,
    /// An OpenID provider's login in a browser (a session): may manage
    /// API keys, as a password login may.
    OpenId,
}

impl From<Identity> for Login {
    fn from(identity: Identity) -> Self {
        Self {
            method: match identity {
                Identity::Anonymous => LoginMethod::None,
                Identity::User { .. } => LoginMethod::Password,
                Identity::Token(_) => LoginMethod::Token,
            },
            identity,
            scopes: Vec::new(),
            claims: None,
            session: None,
        }
    }
}

/// Why a request is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials: answer with the challenge at once.
    Missing,
    /// Wrong or malformed credentials: answer after `failDelay`.
    Rejected,
    /// What checks the credentials cannot be reached (named): 503.
    Unavailable(&'static str),
}

/// The configured authentication.
pub struct Auth {
    htpasswd: Option<Arc<htpasswd::Htpasswd>>,
    /// Swapped when the config file's `ldap` section changes.
    ldap: RwLock<Option<Arc<ldap::Ldap>>>,
    /// Present or not from the start; its signer certificate and settings
    /// are swapped when the config file or the certificate changes.
    bearer: Option<RwLock<Arc<bearer::Bearer>>>,
    /// Workload identity token issuers (`bearer.oidc`); changes take a
    /// restart.
    oidc: Option<Arc<oidc::Oidc>>,
    apikeys: Option<Arc<apikeys::ApiKeys>>,
    /// Browser sessions, once opened (`Server::build`): whenever users can
    /// log in with a password or an OpenID provider.
    sessions: std::sync::OnceLock<Arc<session::Sessions>>,
    /// Whether sessions are wanted (a password or OpenID login exists).
    session_logins: bool,
    /// OpenID Connect login (`http.auth.openid`).
    #[cfg(feature = "openid")]
    openid: Option<Arc<openid::OpenId>>,
    /// With `http.tls.cacert`: the identity in client certificates.
    mtls: Option<mtls::MtlsIdentity>,
    fail_delay: Duration,
    realm: String,
    /// The settings a reload cannot change, to warn when an edit would.
    restart_only: String,
}

/// The `http` settings whose change takes a restart.
fn restart_only(http: &HttpConfig) -> String {
    let auth = http.auth.clone().unwrap_or_default();
    format!(
        "{:?}",
        (
            auth.apikey,
            auth.mtls,
            auth.bearer.as_ref().map(|b| &b.oidc),
            auth.fail_delay,
            http.tls.as_ref().map(|t| &t.cacert),
            &http.realm
        )
    )
}

impl Auth {
    /// The authentication the config asks for, `None` when it asks for
    /// none; API keys are kept under `root`. Errors name the key.
    pub fn from_config(
        http: &HttpConfig,
        root: &std::path::Path,
    ) -> Result<Option<Arc<Self>>, AuthConfigError> {
        let mtls = match (
            &http.tls.as_ref().and_then(|t| t.cacert.as_ref()),
            &http.auth,
        ) {
            (Some(_), auth) => Some(mtls::MtlsIdentity::new(
                &auth
                    .as_ref()
                    .and_then(|a| a.mtls.clone())
                    .unwrap_or_default(),
            )?),
            (None, Some(a)) if a.mtls.is_some() => {
                return Err(AuthConfigError::Needs {
                    key: "http.auth.mtls",
                    needs: "http.tls.cacert, the CA of client certificates",
                });
            }
            (None, _) => None,
        };
        let default_auth = crate::config::AuthConfig::default();
        let auth = match &http.auth {
            Some(a) => a,
            None if mtls.is_some() => &default_auth,
            None => return Ok(None),
        };
        let htpasswd = match &auth.htpasswd {
            Some(h) => Some(Arc::new(htpasswd::Htpasswd::load(&h.path)?)),
            None => None,
        };
        let bearer = match &auth.bearer {
            Some(b) => Some(bearer::Bearer::load(b)?),
            None => None,
        };
        let oidc = match &auth.bearer {
            Some(b) => oidc::Oidc::load(&b.oidc)?.map(Arc::new),
            None => None,
        };
        let ldap = Self::ldap_from(http)?;
        #[cfg(feature = "openid")]
        let openid = openid::OpenId::from_config(http)?.map(Arc::new);
        #[cfg(feature = "openid")]
        let has_openid = openid.is_some();
        #[cfg(not(feature = "openid"))]
        let has_openid = false;
        if auth.apikey && htpasswd.is_none() && ldap.is_none() && !has_openid {
            return Err(AuthConfigError::Needs {
                key: "http.auth.apikey",
                needs: "htpasswd, ldap or openid, for users to log in and make keys",
            });
        }
        // API keys are on whenever OpenID is, as in zot: a browser login
        // is how such users get credentials for their tools.
        let apikeys = match auth.apikey || has_openid {
            true => Some(Arc::new(apikeys::ApiKeys::open(root)?)),
            false => None,
        };
        if htpasswd.is_none() && bearer.is_none() && ldap.is_none() && mtls.is_none() && !has_openid
        {
            return Ok(None);
        }
        let session_logins = htpasswd.is_some() || ldap.is_some() || has_openid;
        Ok(Some(Arc::new(Self {
            htpasswd,
            ldap: RwLock::new(ldap),
            bearer: bearer.map(|b| RwLock::new(Arc::new(b))),
            oidc,
            apikeys,
            sessions: std::sync::OnceLock::new(),
            session_logins,
            #[cfg(feature = "openid")]
            openid,
            mtls,
            fail_delay: Duration::from_secs(auth.fail_delay),
            realm: http.realm.clone(),
            restart_only: restart_only(http),
        })))
    }

    fn ldap_from(http: &HttpConfig) -> Result<Option<Arc<ldap::Ldap>>, AuthConfigError> {
        match http.auth.as_ref().and_then(|a| a.ldap.as_ref()) {
            Some(l) => Ok(Some(Arc::new(ldap::Ldap::load(l)?))),
            None => Ok(None),
        }
    }

    /// Puts a changed config file's `htpasswd.path`, `ldap` and `bearer`
    /// sections in force (a bearer signer certificate is re-read too);
    /// nothing changes if one is unusable. Adding or removing an
    /// authentication method, or changing API key or mTLS settings, takes
    /// a restart (logged).
    pub fn reload(&self, http: &HttpConfig) -> Result<(), AuthConfigError> {
        let ldap = Self::ldap_from(http)?;
        let bearer = match http.auth.as_ref().and_then(|a| a.bearer.as_ref()) {
            Some(b) => Some(bearer::Bearer::load(b)?),
            None => None,
        };
        let htpasswd_path = http
            .auth
            .as_ref()
            .and_then(|a| a.htpasswd.as_ref())
            .map(|h| h.path.clone());
        match (&self.htpasswd, &htpasswd_path) {
            (Some(h), Some(path)) => h.switch_to(path)?,
            (None, None) => {}
            _ => tracing::warn!(
                "http.auth.htpasswd: adding or removing it takes effect at the next restart"
            ),
        }
        if restart_only(http) != self.restart_only {
            tracing::warn!(
                "http.auth: apikey, mtls, bearer.oidc, failDelay, tls.cacert or realm changed; they take effect at the next restart"
            );
        }
        match (&self.bearer, bearer) {
            (Some(slot), Some(b)) => *slot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(b),
            (None, None) => {}
            _ => tracing::warn!(
                "http.auth.bearer: adding or removing it takes effect at the next restart"
            ),
        }
        let had_ldap = self.ldap().is_some();
        if had_ldap != ldap.is_some() && self.htpasswd.is_none() && self.bearer.is_none() {
            tracing::warn!("http.auth.ldap: the only login method; kept as it was until restart");
            return Ok(());
        }
        *self.ldap.write().unwrap_or_else(|p| p.into_inner()) = ldap;
        Ok(())
    }

    fn bearer(&self) -> Option<Arc<bearer::Bearer>> {
        self.bearer
            .as_ref()
            .map(|b| b.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The bearer signer's certificate file, watched for a rotated key.
    pub fn bearer_cert(&self) -> Option<std::path::PathBuf> {
        self.bearer()
            .and_then(|b| b.cert_path().map(std::path::Path::to_path_buf))
    }

    fn ldap(&self) -> Option<Arc<ldap::Ldap>> {
        self.ldap.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The API key store, when `apikey` is on.
    pub fn apikeys(&self) -> Option<&Arc<apikeys::ApiKeys>> {
        self.apikeys.as_ref()
    }

    /// The htpasswd file, for its reload task.
    pub fn htpasswd(&self) -> Option<Arc<htpasswd::Htpasswd>> {
        self.htpasswd.clone()
    }

    /// Whether clients log in with bearer tokens (then a request without
    /// credentials is judged per route, to challenge it with its scope).
    pub fn uses_bearer(&self) -> bool {
        self.bearer.is_some()
    }

    /// The `WWW-Authenticate` value of a 401: Bearer with the scope the
    /// request needs when tokens are configured, Basic otherwise.
    pub fn challenge(&self, scope: Option<&str>, insufficient: bool) -> String {
        match self.bearer() {
            Some(b) => b.challenge(scope, insufficient, &self.realm),
            None => self.basic_challenge(),
        }
    }

    /// The `WWW-Authenticate` value of the token endpoint's 401.
    pub fn basic_challenge(&self) -> String {
        format!("Basic realm=\"{}\"", self.realm.replace('"', ""))
    }

    pub fn fail_delay(&self) -> Duration {
        self.fail_delay
    }

    /// Checks a request's credentials: its `Authorization` header, or
    /// without one (or with nothing configured to check it) the client
    /// certificate, `peer_cert` (DER), under mTLS.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer_cert: Option<&[u8]>,
    ) -> Result<Login, AuthFailure> {
        // Two credentials at once: which one would an intermediary have
        // checked? Refuse rather than guess.
        if headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .nth(1)
            .is_some()
        {
            return Err(AuthFailure::Rejected);
        }
        let header_methods = self.htpasswd.is_some()
            || self.bearer.is_some()
            || self.ldap().is_some()
            || self.apikeys.is_some();
        let credentials = match headers.contains_key(http::header::AUTHORIZATION) && header_methods
        {
            true => Some(Credentials::parse(headers).ok_or(AuthFailure::Rejected)?),
            false => None,
        };
        let Some(credentials) = credentials.filter(|c| !c.is_empty()) else {
            return match (&self.mtls, peer_cert) {
                (Some(m), Some(der)) => m
                    .identity(der)
                    .map(|name| Login {
                        identity: Identity::user(name),
                        scopes: Vec::new(),
                        method: LoginMethod::Certificate,
                        claims: None,
                        session: None,
                    })
                    .ok_or(AuthFailure::Rejected),
                _ => Err(AuthFailure::Missing),
            };
        };
        let (user, password) = match credentials {
            Credentials::Bearer(token) => return self.bearer_login(&token).await,
            Credentials::Basic { user, password } => (user, password),
        };
        if password.starts_with(apikeys::PREFIX)
            && let Some(verdict) = self.api_key_login(&user, &password).await
        {
            return verdict;
        }
        self.password_login(&user, &password).await
    }

    /// Checks a user name and password against htpasswd, then LDAP (never
    /// as an API key): the login form's and Basic credentials' check.
    pub async fn password_login(&self, user: &str, password: &str) -> Result<Login, AuthFailure> {
        let ldap = self.ldap();
        if let Some(h) = &self.htpasswd
            // With LDAP to ask, a name htpasswd does not know is not worth a
            // bcrypt (its timing would tell nothing: LDAP is asked next).
            && (ldap.is_none() || h.knows(user))
            && h.verify(user, password).await
        {
            return Ok(Identity::user(user).into());
        }
        if let Some(l) = ldap
            && let Some(found) = l.verify(user, password).await
        {
            return Ok(Identity::User {
                name: found.name,
                groups: found.groups,
            }
            .into());
        }
        Err(AuthFailure::Rejected)
    }

    /// `user`'s API key `key`: `None` when it is no key of theirs (or the
    /// store failed, logged), so other methods may be tried.
    async fn api_key_login(&self, user: &str, key: &str) -> Option<Result<Login, AuthFailure>> {
        let keys = self.apikeys.as_ref()?;
        let check = {
            let (keys, user, key) = (keys.clone(), user.to_string(), key.to_string());
            tokio::task::spawn_blocking(move || keys.verify(&user, &key))
                .await
                .map_err(apikeys::StoreError::from)
                .and_then(|r| r)
        };
        match check {
            Ok(apikeys::KeyCheck::Valid(key)) => {
                // The owner must still be a user, with the groups they
                // have now; an OpenID user (whom no directory here knows)
                // has the groups they had when they made the key.
                let current = match &key.openid_groups {
                    Some(groups) => Some((key.user.clone(), groups.clone())),
                    None => self.current_user(user).await,
                };
                let Some((name, groups)) = current else {
                    tracing::info!(user, uuid = %key.uuid, "api key refused: its owner is no longer a user");
                    return Some(Err(AuthFailure::Rejected));
                };
                Some(Ok(Login {
                    identity: Identity::User { name, groups },
                    scopes: key.scopes,
                    method: LoginMethod::ApiKey,
                    claims: None,
                    session: None,
                }))
            }
            Ok(apikeys::KeyCheck::Expired) => Some(Err(AuthFailure::Rejected)),
            Ok(apikeys::KeyCheck::Unknown) => None,
            Err(e) => {
                tracing::error!(error = %e, "api key check failed");
                None
            }
        }
    }

    /// A bearer token: an API key wrapped by the token endpoint, a workload
    /// identity token (its user, judged by the access rules), else a
    /// classic one (its grant).
    async fn bearer_login(&self, token: &str) -> Result<Login, AuthFailure> {
        if let Some(wrapped) = token_exchange::unwrap_api_key(token) {
            return match (wrapped, &self.apikeys) {
                (Some((user, key)), Some(_)) => self
                    .api_key_login(&user, &key)
                    .await
                    .unwrap_or(Err(AuthFailure::Rejected)),
                _ => Err(AuthFailure::Rejected),
            };
        }
        let mut oidc_verdict = None;
        if let Some(oidc) = &self.oidc {
            match oidc.authenticate(token).await {
                Some(Ok(user)) => {
                    return Ok(Login {
                        identity: Identity::User {
                            name: user.name,
                            groups: user.groups,
                        },
                        scopes: Vec::new(),
                        method: LoginMethod::Token,
                        claims: Some(user.claims),
                        session: None,
                    });
                }
                Some(Err(e)) => oidc_verdict = Some(e),
                None => {}
            }
        }
        let classic = self.bearer().filter(|b| b.classic());
        let verdict = match (classic, oidc_verdict) {
            (Some(b), oidc_verdict) => match b.verify(token).await {
                Ok(grant) => return Ok(Identity::Token(grant).into()),
                // The token was for an issuer that cannot be reached.
                Err(TokenError::Invalid(_))
                    if matches!(oidc_verdict, Some(TokenError::Unavailable { .. })) =>
                {
                    oidc_verdict.unwrap_or_else(|| TokenError::invalid("unreachable"))
                }
                Err(e) => e,
            },
            (None, Some(e)) => e,
            (None, None) => TokenError::invalid("no configured issuer made this token"),
        };
        Err(match verdict {
            TokenError::Invalid(reason) => {
                tracing::info!(error = %reason, "bearer token rejected");
                AuthFailure::Rejected
            }
            TokenError::Unavailable { service, cause } => {
                tracing::warn!(error = %cause, "bearer token not checked: {service} is unreachable");
                AuthFailure::Unavailable(service)
            }
        })
    }

    /// The name and directory groups of `user` if a password method still
    /// knows them.
    async fn current_user(&self, user: &str) -> Option<(String, Vec<String>)> {
        if self.htpasswd.as_ref().is_some_and(|h| h.knows(user)) {
            return Some((user.to_string(), Vec::new()));
        }
        let found = self.ldap()?.lookup(user).await?;
        // A key belongs to the name it was made under.
        (found.name == user).then_some((found.name, found.groups))
    }
}

//! What [`Auth`] does for browsers: sessions started after a password or
//! OpenID login, requests authenticated by their session cookie, logout.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use super::session::{Resolved, SessionError, SessionMethod, Sessions};
use super::{Auth, AuthFailure, Identity, Login, LoginMethod};

/// An OpenID provider the login page offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// zot's key: `oidc`, `google`, `gitlab`.
    pub key: String,
    /// What the button says (`name`, or the provider's own name).
    pub name: String,
}

impl Auth {
    /// Puts the sessions in force (once, when the server is built).
    pub fn attach_sessions(&self, sessions: Arc<Sessions>) {
        let _ = self.sessions.set(sessions);
    }

    /// Whether sessions are wanted: someone can log in with a password or
    /// an OpenID provider.
    pub fn wants_sessions(&self) -> bool {
        self.session_logins
    }

    /// The sessions, when opened.
    pub fn sessions(&self) -> Option<&Arc<Sessions>> {
        self.sessions.get()
    }

    /// Whether browser sessions can be started.
    pub fn sessions_enabled(&self) -> bool {
        self.sessions.get().is_some()
    }

    /// Starts a session for `login`, a password login (an OpenID login's
    /// session is started by its callback); returns the `Set-Cookie`
    /// values to send.
    pub async fn start_session(&self, login: &Login) -> Result<Vec<HeaderValue>, SessionError> {
        let sessions = self.sessions().ok_or(SessionError::Off)?;
        let (Identity::User { name, groups }, LoginMethod::Password) =
            (&login.identity, login.method)
        else {
            return Err(SessionError::NotAPasswordLogin);
        };
        let (_, cookies) = sessions
            .start(name, groups.clone(), SessionMethod::Password, None)
            .await?;
        tracing::info!(user = %name, "session started (password)");
        Ok(cookies)
    }

    /// Ends the session `login` came with (if any); returns the
    /// `Set-Cookie` values that clear the cookies.
    pub async fn end_session(&self, login: &Login) -> Vec<HeaderValue> {
        let Some(sessions) = self.sessions() else {
            return Vec::new();
        };
        if let Some(s) = &login.session {
            match sessions.end(&s.id).await {
                Ok(()) => tracing::info!(user = %login.identity.name(), "session ended (logout)"),
                Err(e) => tracing::error!(error = %e, "ending a session failed"),
            }
        }
        sessions.cleared()
    }

    /// The login a request's session cookie gives: `None` without a
    /// cookie, `Err(Rejected)` for one that is forged, of other keys, or
    /// whose session ended or whose user is gone.
    pub async fn session_login(&self, headers: &HeaderMap) -> Option<Result<Login, AuthFailure>> {
        let sessions = self.sessions()?;
        let (record, session) = match sessions.resolve(headers).await {
            Ok(Resolved::None) => return None,
            Ok(Resolved::Invalid) => return Some(Err(AuthFailure::Rejected)),
            Ok(Resolved::Valid(record, session)) => (record, session),
            Err(e) => {
                tracing::error!(error = %e, "session not checked");
                return Some(Err(AuthFailure::Unavailable("the session store")));
            }
        };
        // A user removed from htpasswd loses their sessions at once (LDAP
        // is not asked on every request; its sessions end within 2 hours).
        if record.method == SessionMethod::Password
            && self.ldap().is_none()
            && !self
                .htpasswd
                .as_ref()
                .is_some_and(|h| h.knows(&record.user))
        {
            tracing::info!(user = %record.user, "session refused: its user is no longer in htpasswd");
            return Some(Err(AuthFailure::Rejected));
        }
        Some(Ok(Login {
            identity: Identity::User {
                name: record.user,
                groups: record.groups,
            },
            scopes: Vec::new(),
            method: match record.method {
                SessionMethod::Password => LoginMethod::Password,
                SessionMethod::OpenId => LoginMethod::OpenId,
            },
            claims: None,
            session: Some(Arc::new(session)),
        }))
    }

    /// The OpenID providers configured, for the login page; a provider's
    /// login starts at `/zot/auth/login?provider=<key>&callback_ui=<path>`.
    pub fn openid_providers(&self) -> Vec<ProviderInfo> {
        #[cfg(feature = "openid")]
        if let Some(o) = &self.openid {
            return o.providers();
        }
        Vec::new()
    }

    /// OpenID Connect login, when configured.
    #[cfg(feature = "openid")]
    pub fn openid(&self) -> Option<&Arc<super::openid::OpenId>> {
        self.openid.as_ref()
    }
}

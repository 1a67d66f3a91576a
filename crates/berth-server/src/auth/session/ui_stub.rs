//! STUB (branch `ui` only): the session API the UI calls. The real one is
//! written on main with these signatures; this file is deleted at merge.

use super::super::{Auth, AuthFailure, Login};

/// An OpenID provider the login page offers.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    /// zot's key: `oidc`, `google`, `gitlab`, `github`.
    pub key: String,
    /// What the button says (`name`, or the provider's own name).
    pub name: String,
}

/// Why a session could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("sessions are not configured")]
    Off,
}

impl Auth {
    /// Whether browser sessions can be started (any login method is).
    pub fn sessions_enabled(&self) -> bool {
        false
    }

    /// Checks a user name and password (htpasswd, then LDAP), as Basic
    /// credentials are checked; never an API key.
    pub async fn password_login(&self, _user: &str, _password: &str) -> Result<Login, AuthFailure> {
        Err(AuthFailure::Rejected)
    }

    /// Starts a session for `login`; returns the `Set-Cookie` values to
    /// send (the `session` cookie and zot's `user` cookie).
    pub async fn start_session(&self, _login: &Login) -> Result<Vec<http::HeaderValue>, SessionError> {
        Err(SessionError::Off)
    }

    /// Ends the session `login` came with (if any); returns the
    /// `Set-Cookie` values that clear the cookies.
    pub async fn end_session(&self, _login: &Login) -> Vec<http::HeaderValue> {
        Vec::new()
    }

    /// The OpenID providers configured, for the login page; a provider's
    /// login starts at `/zot/auth/login?provider=<key>&callback_ui=<path>`.
    pub fn openid_providers(&self) -> Vec<ProviderInfo> {
        Vec::new()
    }
}

//! Browser sessions (`http.auth.sessionKeysFile`, `sessionDriver`,
//! `secureSession`): a user who logged in through the web UI (a password
//! form, or an OpenID provider) gets a session cookie, and later requests
//! carrying it are that user.
//!
//! The cookie holds a random session id, signed with the session keys
//! (HMAC-SHA256, the `cookie` crate); the session itself (user, groups,
//! how they logged in, expiry, CSRF secret) is kept by a
//! [`store::SessionStore`]: files under the main root (`local`, zot's
//! `_sessions/`) or Redis (`redis`, shared by several instances).
//! Logging out deletes it; rotating the keys voids every cookie.

use std::sync::Arc;

/// The session a request came with, left on its [`super::Login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    /// The session's id (what the cookie carries, signed).
    pub id: String,
    /// The token a form of the session must send back (`csrf`), or a
    /// script in the header `X-CSRF-Token`.
    pub csrf: String,
}

/// Whether `token` is the CSRF token of the session `login` came with
/// (constant time). A login without a session has nothing to forge.
pub fn csrf_matches(login: &super::Login, token: &str) -> bool {
    match &login.session {
        Some(s) => {
            use subtle::ConstantTimeEq;
            s.csrf.as_bytes().ct_eq(token.as_bytes()).into()
        }
        None => true,
    }
}

mod ui_stub;
pub use ui_stub::{ProviderInfo, SessionError};

/// A session, shared.
pub type Shared = Arc<SessionRef>;

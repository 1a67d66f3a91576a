//! Authentication (`http.auth`). With it configured, every `/v2` request
//! must carry credentials that check out; the caller's [`Identity`] is
//! attached to the request for what comes after (access control, audit).
//! Without `http.accessControl`, as in zot, every authenticated user may do
//! everything and anonymous callers nothing.
//!
//! Authenticators are small: [`htpasswd::Htpasswd`] today; LDAP, bearer
//! tokens and API keys plug in beside it.

pub mod access;
pub mod htpasswd;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::HeaderMap;

use crate::config::HttpConfig;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User(String),
}

/// Why a request is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials: answer with the challenge at once.
    Missing,
    /// Wrong or malformed credentials: answer after `failDelay`.
    Rejected,
}

/// The configured authentication.
pub struct Auth {
    htpasswd: Option<Arc<htpasswd::Htpasswd>>,
    fail_delay: Duration,
    realm: String,
}

impl Auth {
    /// The authentication the config asks for, `None` when it asks for
    /// none. Errors name the key.
    pub fn from_config(http: &HttpConfig) -> Result<Option<Arc<Self>>, String> {
        let Some(auth) = &http.auth else {
            return Ok(None);
        };
        let htpasswd = match &auth.htpasswd {
            Some(h) => Some(Arc::new(htpasswd::Htpasswd::load(&h.path)?)),
            None => None,
        };
        if htpasswd.is_none() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self {
            htpasswd,
            fail_delay: Duration::from_secs(auth.fail_delay),
            realm: http.realm.clone(),
        })))
    }

    /// The htpasswd file, for its reload task.
    pub fn htpasswd(&self) -> Option<Arc<htpasswd::Htpasswd>> {
        self.htpasswd.clone()
    }

    /// The `WWW-Authenticate` value of a 401.
    pub fn challenge(&self) -> String {
        format!("Basic realm=\"{}\"", self.realm.replace('"', ""))
    }

    pub fn fail_delay(&self) -> Duration {
        self.fail_delay
    }

    /// Checks a request's credentials.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthFailure> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(AuthFailure::Missing);
        };
        let (user, password) =
            basic_credentials(value.to_str().map_err(|_| AuthFailure::Rejected)?)
                .ok_or(AuthFailure::Rejected)?;
        match &self.htpasswd {
            Some(h) if h.verify(&user, &password).await => Ok(Identity::User(user)),
            _ => Err(AuthFailure::Rejected),
        }
    }
}

/// The user and password of a `Basic` authorization header.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            basic_credentials(&format!("Basic {}", enc("alice:s3:cret"))),
            Some(("alice".into(), "s3:cret".into()))
        );
        assert_eq!(
            basic_credentials(&format!("basic {}", enc("bob:"))),
            Some(("bob".into(), String::new()))
        );
        for bad in [
            "",
            "Basic",
            "Bearer abc",
            "Basic !!!",
            &format!("Basic {}", enc("nocolon")),
        ] {
            assert_eq!(basic_credentials(bad), None, "{bad:?}");
        }
    }
}

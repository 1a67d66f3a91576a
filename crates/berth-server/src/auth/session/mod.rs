//! Browser sessions (`http.auth.sessionKeysFile`, `sessionDriver`,
//! `secureSession`): a user who logged in through the web UI (a password
//! form, zot's web UI sending `X-ZOT-API-CLIENT: zot-ui` with Basic
//! credentials, or an OpenID provider) gets a session cookie, and later
//! requests carrying it are that user.
//!
//! - The `session` cookie (zot's name) holds a random id, signed with the
//!   session keys (HMAC-SHA256 by the `cookie` crate; with `encryptKey`,
//!   encrypted and authenticated with AES-256-GCM instead). It is
//!   `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` under TLS or with
//!   `secureSession`, and lasts 2 hours (zot's).
//! - zot's `user` cookie names the user for zot's web UI (readable by
//!   scripts; it grants nothing).
//! - The session itself (user, groups, how they logged in, its CSRF
//!   token) is a record in a [`store::SessionStore`]: files under the main
//!   root (`local`, zot's `_sessions/`), this process's memory (`local`
//!   with the main root in a bucket), or Redis (`redis`). Logging out
//!   deletes it; a cookie signed with other keys (the keys rotated) is
//!   refused.
//! - Without `sessionKeysFile` the keys are random at each start (every
//!   session ends at a restart), or with Redis made once and kept there, so
//!   that every instance sharing it signs alike.
//! - An OpenID login in progress travels in the `berth_login` cookie
//!   (encrypted and authenticated with the session keys, 10 minutes),
//!   which binds it to the browser that started it; nothing is stored
//!   until its code is exchanged and its token verified, when its `state`
//!   is claimed in the store so that it is never used twice.

pub mod conformance;
#[cfg(feature = "redis")]
pub mod redis;
pub mod store;

use std::sync::Arc;

use base64::Engine;
use cookie::{Cookie, CookieJar, SameSite};
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

pub use super::browser::ProviderInfo;
pub use store::{RecordKind, SessionStore, StoreError};

/// zot's session cookie.
pub const SESSION_COOKIE: &str = "session";
/// zot's cookie naming the user for its web UI.
pub const USER_COOKIE: &str = "user";
/// The cookie binding an OpenID login in progress to its browser.
pub const LOGIN_COOKIE: &str = "berth_login";
/// How long a session lasts (zot's `cookiesMaxAge`).
pub const SESSION_SECONDS: i64 = 7200;
/// How long an OpenID login may take at the provider.
pub const LOGIN_SECONDS: i64 = 600;
/// The header zot's web UI sends, and with which a session cookie
/// authenticates API requests (a page cannot send it to another origin
/// without the server's CORS consent, so a forged cross-site request
/// never carries it).
pub const UI_CLIENT_HEADER: &str = "x-zot-api-client";

/// The session a request came with, left on its [`super::Login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    /// The session's id (what the cookie carries, signed).
    pub id: String,
    /// The token a form of the session must send back (`csrf`), or a
    /// script in the header `X-CSRF-Token`.
    pub csrf: String,
    /// The OpenID provider the user logged in with, if any.
    pub provider: Option<String>,
}

/// A session, shared.
pub type Shared = Arc<SessionRef>;

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

/// How the user of a session logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMethod {
    /// htpasswd or LDAP.
    Password,
    /// An OpenID provider.
    OpenId,
}

/// What a session records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: String,
    /// The groups the login gave (LDAP's, or the provider's claim).
    pub groups: Vec<String>,
    pub method: SessionMethod,
    /// The OpenID provider's key, for its logout.
    #[serde(default)]
    pub provider: Option<String>,
    pub csrf: String,
    pub created: i64,
}

/// Why sessions failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("session record: {0}")]
    Record(#[from] serde_json::Error),
    #[error("http.auth.sessionKeysFile: {0}")]
    Keys(String),
    #[error("sessions are not configured")]
    Off,
    #[error("only a user who logged in with a password or an OpenID provider gets a session")]
    NotAPasswordLogin,
}

/// A random token of 32 bytes (256 bits), base64url.
pub fn random_token() -> String {
    let key = cookie::Key::generate();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key.master()[..32])
}

/// What the cookies of a request say of its session.
pub enum Resolved {
    /// No session cookie.
    None,
    /// A cookie that is forged, of other keys, or whose session ended or
    /// expired.
    Invalid,
    Valid(SessionRecord, SessionRef),
}

/// The sessions of a server.
pub struct Sessions {
    key: cookie::Key,
    /// `encryptKey`: private (encrypted) cookies rather than signed ones.
    encrypt: bool,
    store: Arc<dyn SessionStore>,
    secure: bool,
}

impl Sessions {
    /// Sessions kept in `store`, signed with the keys of `keys_file` (or
    /// the store's shared secret, or random ones); `secure`: `Secure`
    /// cookies.
    pub async fn new(
        store: Arc<dyn SessionStore>,
        keys_file: Option<&std::path::Path>,
        secure: bool,
    ) -> Result<Self, SessionError> {
        let (key, encrypt) = match keys_file {
            Some(path) => {
                let keys = crate::config::openid::load_session_keys(path)
                    .map_err(|e| SessionError::Keys(e.to_string()))?;
                let mut h = Sha512::new();
                h.update(keys.hash_key.as_bytes());
                h.update([0]);
                h.update(keys.encrypt_key.as_deref().unwrap_or("").as_bytes());
                (
                    cookie::Key::from(h.finalize().as_slice()),
                    keys.encrypt_key.is_some(),
                )
            }
            None => match store.shared_secret().await? {
                Some(secret) => (cookie::Key::from(Sha512::digest(&secret).as_slice()), false),
                None => (cookie::Key::generate(), false),
            },
        };
        Ok(Self {
            key,
            encrypt,
            store,
            secure,
        })
    }

    /// The store, for its purge task.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// `value` signed, or encrypted with `encryptKey` or when `private`.
    fn seal(&self, name: &'static str, value: String, private: bool) -> String {
        let mut jar = CookieJar::new();
        if self.encrypt || private {
            jar.private_mut(&self.key).add(Cookie::new(name, value));
        } else {
            jar.signed_mut(&self.key).add(Cookie::new(name, value));
        }
        jar.get(name)
            .map(|c| c.value().to_string())
            .unwrap_or_default()
    }

    fn unseal(&self, name: &'static str, sealed: &str, private: bool) -> Option<String> {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(name, sealed.to_string()));
        let c = if self.encrypt || private {
            jar.private(&self.key).get(name)
        } else {
            jar.signed(&self.key).get(name)
        };
        c.map(|c| c.value().to_string())
    }

    fn set_cookie(&self, c: cookie::CookieBuilder<'static>) -> Option<HeaderValue> {
        HeaderValue::from_str(&c.secure(self.secure).build().to_string()).ok()
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        path: &'static str,
        seconds: i64,
        http_only: bool,
    ) -> Option<HeaderValue> {
        self.set_cookie(
            Cookie::build((name, value))
                .http_only(http_only)
                .same_site(SameSite::Lax)
                .path(path)
                .max_age(cookie::time::Duration::seconds(seconds)),
        )
    }

    /// Starts a session for `user`: its reference and the `Set-Cookie`
    /// values to send.
    pub async fn start(
        &self,
        user: &str,
        groups: Vec<String>,
        method: SessionMethod,
        provider: Option<String>,
    ) -> Result<(SessionRef, Vec<HeaderValue>), SessionError> {
        let id = random_token();
        let now = store::now();
        let record = SessionRecord {
            user: user.to_string(),
            groups,
            method,
            provider,
            csrf: random_token(),
            created: now,
        };
        self.store
            .put(
                RecordKind::Session,
                &id,
                &serde_json::to_vec(&record)?,
                now + SESSION_SECONDS,
            )
            .await?;
        let sealed = self.seal(SESSION_COOKIE, id.clone(), false);
        let cookies = [
            self.cookie(SESSION_COOKIE, sealed, "/", SESSION_SECONDS, true),
            // zot's web UI reads who is logged in from it.
            self.cookie(
                USER_COOKIE,
                user.replace(|c: char| c.is_ascii_control() || c == ';', ""),
                "/",
                SESSION_SECONDS,
                false,
            ),
        ];
        Ok((
            SessionRef {
                id,
                csrf: record.csrf,
                provider: record.provider,
            },
            cookies.into_iter().flatten().collect(),
        ))
    }

    /// The session the request's cookie names, if any.
    pub async fn resolve(&self, headers: &HeaderMap) -> Result<Resolved, SessionError> {
        let Some(sealed) = request_cookie(headers, SESSION_COOKIE) else {
            return Ok(Resolved::None);
        };
        let Some(id) = self.unseal(SESSION_COOKIE, &sealed, false) else {
            tracing::info!("session cookie refused: not signed with this server's session keys");
            return Ok(Resolved::Invalid);
        };
        let Some(bytes) = self.store.get(RecordKind::Session, &id).await? else {
            tracing::info!("session cookie refused: its session ended or expired");
            return Ok(Resolved::Invalid);
        };
        let record: SessionRecord = serde_json::from_slice(&bytes)?;
        let session = SessionRef {
            id,
            csrf: record.csrf.clone(),
            provider: record.provider.clone(),
        };
        Ok(Resolved::Valid(record, session))
    }

    /// Ends the session `id` (logout).
    pub async fn end(&self, id: &str) -> Result<(), SessionError> {
        Ok(self.store.delete(RecordKind::Session, id).await?)
    }

    /// The `Set-Cookie` values that remove the session's cookies.
    pub fn cleared(&self) -> Vec<HeaderValue> {
        [SESSION_COOKIE, USER_COOKIE]
            .into_iter()
            .filter_map(|name| self.cookie(name, String::new(), "/", 0, name == SESSION_COOKIE))
            .collect()
    }

    /// The `Set-Cookie` carrying an OpenID login in progress (`state` and
    /// its `record`: the PKCE verifier, nonce, where to go back),
    /// encrypted and authenticated with the session keys, for 10 minutes.
    /// Nothing is stored: starting a login, which anyone may, writes
    /// nothing on the server.
    pub fn begin_login(&self, state: &str, record: &str) -> Option<HeaderValue> {
        let expires = store::now() + LOGIN_SECONDS;
        let sealed = self.seal(LOGIN_COOKIE, format!("{expires}\n{state}\n{record}"), true);
        self.cookie(
            LOGIN_COOKIE,
            sealed,
            "/zot/auth/callback",
            LOGIN_SECONDS,
            true,
        )
    }

    /// The record of the OpenID login `state` names, when this browser
    /// started it (its `berth_login` cookie, which this server sealed,
    /// names the same state), less than 10 minutes ago, and it was not
    /// spent yet ([`Sessions::spend_login`]).
    pub async fn finish_login(
        &self,
        headers: &HeaderMap,
        state: &str,
    ) -> Result<Option<String>, SessionError> {
        let opened = request_cookie(headers, LOGIN_COOKIE)
            .and_then(|sealed| self.unseal(LOGIN_COOKIE, &sealed, true));
        let Some(opened) = opened else {
            tracing::info!("openid callback refused: this browser started no login");
            return Ok(None);
        };
        let mut parts = opened.splitn(3, '\n');
        let (expires, bound, record) = (parts.next(), parts.next(), parts.next());
        if bound != Some(state) {
            tracing::info!(
                "openid callback refused: its state is not the one this browser started"
            );
            return Ok(None);
        }
        if expires
            .and_then(|e| e.parse::<i64>().ok())
            .is_none_or(|e| e <= store::now())
        {
            tracing::info!("openid callback refused: the login took longer than 10 minutes");
            return Ok(None);
        }
        if self.store.get(RecordKind::Login, state).await?.is_some() {
            tracing::info!("openid callback refused: its state was used already");
            return Ok(None);
        }
        Ok(record.map(str::to_string))
    }

    /// Marks the login `state` spent, once its code was exchanged and its
    /// ID token verified (so only real logins write): whether this call
    /// did (of two callbacks with one state, one wins).
    pub async fn spend_login(&self, state: &str) -> Result<bool, SessionError> {
        Ok(self
            .store
            .claim(RecordKind::Login, state, store::now() + LOGIN_SECONDS)
            .await?)
    }

    /// The `Set-Cookie` that removes the login cookie.
    pub fn login_cleared(&self) -> Option<HeaderValue> {
        self.cookie(LOGIN_COOKIE, String::new(), "/zot/auth/callback", 0, true)
    }

    /// Deletes expired records every ten minutes.
    pub fn spawn_purge(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                match store.purge().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "expired sessions removed"),
                    Err(e) => tracing::warn!(error = %e, "removing expired sessions failed"),
                }
            }
        })
    }
}

/// The value of the request cookie `name` (the first, if several).
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Opens the sessions `auth` asks for: `root` is the main root's
/// directory, `local_root` whether it is on this host's disk, `tls`
/// whether the server speaks HTTPS.
pub async fn open(
    auth: &crate::config::AuthConfig,
    root: &std::path::Path,
    local_root: bool,
    tls: bool,
) -> Result<Sessions, SessionError> {
    let redis_driver = auth
        .session_driver
        .as_ref()
        .filter(|d| d.name.eq_ignore_ascii_case("redis"));
    let store: Arc<dyn SessionStore> = match redis_driver {
        #[cfg(feature = "redis")]
        Some(d) => Arc::new(redis::RedisStore::connect(d).await?),
        // Refused when the config is checked.
        #[cfg(not(feature = "redis"))]
        Some(_) => Arc::new(store::MemoryStore::default()),
        None if local_root => Arc::new(store::FileStore::open(root.join("_sessions"))?),
        None => Arc::new(store::MemoryStore::default()),
    };
    Sessions::new(
        store,
        auth.session_keys_file.as_deref(),
        tls || auth.secure_session,
    )
    .await
}

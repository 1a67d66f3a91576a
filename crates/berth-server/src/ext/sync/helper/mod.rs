//! zot's credential helpers (`credentialHelper`): a registry's logins
//! fetched, and fetched again before they expire, in place of
//! `credentialsFile`.
//!
//! - `ecr`: AWS ECR's `GetAuthorizationToken` (feature `ecr`).
//! - `oauth2`: an access token from an OAuth2 token endpoint, for a JWT
//!   assertion read from a file or signed here (`assertion`).
//! - `gcp`: a Google access token from the application default
//!   credentials.
//!
//! `Helper` keeps, per URL, when its login must be fetched again: a
//! window before it expires (ECR: one hour, others: one minute, as zot),
//! but never sooner than ten seconds after the last fetch (a login that
//! comes already expiring is used a while rather than fetched for every
//! request). Every upstream call asks first (`Helper::refresh`); one
//! fetch per URL at a time, the others wait for it. A failed fetch is
//! logged and tried again five seconds later; meanwhile the last login
//! (or none) goes on being used. A `401` from the upstream makes the next
//! call fetch a new login.

mod assertion;
#[cfg(feature = "ecr")]
mod ecr;
mod gcp;
mod oauth2;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use berth_client::Client;

use crate::config::{ConfigError, CredentialHelper, SyncConfig};

/// The shortest time a fetched login is used before the next fetch.
pub(super) const MIN_REUSE: Duration = Duration::from_secs(10);
/// The wait after a failed fetch.
pub(super) const RETRY: Duration = Duration::from_secs(5);
/// The longest one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a login whose source gives no expiry is taken to live (zot's
/// default for OAuth2 tokens without `expires_in`).
pub(super) const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Why a helper could not give a login.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file that cannot be used (the message names what is wrong).
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// The service asked for the login refused, or could not be reached.
    #[error("{0}")]
    Fetch(String),
}

/// A login for a registry and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Login {
    pub user: String,
    pub password: String,
    /// `None`: the source did not say ([`DEFAULT_LIFETIME`] is assumed).
    pub expires: Option<SystemTime>,
}

/// Where a helper's logins come from.
#[async_trait::async_trait]
pub(super) trait Source: Send + Sync {
    /// A fresh login for the registry at `url` (as configured).
    async fn login(&self, url: &str) -> Result<Login, HelperError>;

    /// How long before it expires a login is replaced.
    fn window(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// The state of one URL's login.
#[derive(Default)]
struct Slot {
    /// When to fetch a login; `None`: at the next call.
    next: Option<Instant>,
    /// When the login in use was fetched.
    fetched: Option<Instant>,
}

/// A registry's credential helper and the state of each URL's login.
pub(super) struct Helper {
    name: &'static str,
    source: Box<dyn Source>,
    /// One per URL, in the config's order; a tokio lock, held across the
    /// fetch so that one call fetches while the others wait.
    slots: Vec<tokio::sync::Mutex<Slot>>,
}

impl Helper {
    /// The helper `config` names, for `urls` URLs; nothing is fetched yet.
    pub(super) fn new(config: &CredentialHelper, urls: usize) -> Result<Self, HelperError> {
        let source: Box<dyn Source> = match config {
            #[cfg(feature = "ecr")]
            CredentialHelper::Ecr => Box::new(ecr::Ecr::new()),
            #[cfg(not(feature = "ecr"))]
            CredentialHelper::Ecr => {
                return Err(HelperError::Fetch(
                    "this berth was built without the \"ecr\" feature".into(),
                ));
            }
            CredentialHelper::Gcp => Box::new(gcp::Gcp::new()?),
            CredentialHelper::OAuth2(o) => Box::new(oauth2::OAuth2::new((**o).clone())?),
        };
        Ok(Self {
            name: config.name(),
            source,
            slots: (0..urls).map(|_| tokio::sync::Mutex::default()).collect(),
        })
    }

    /// Makes sure `client` (URL number `index`) holds a login that is not
    /// about to expire, fetching one when it is due. A failure is logged;
    /// the client keeps what it has.
    pub(super) async fn refresh(&self, index: usize, client: &Client) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if slot.next.is_some_and(|next| now < next) {
            return;
        }
        let url = client.base();
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.source.login(url)).await;
        match fetched {
            Ok(Ok(login)) => {
                let wait = reuse_for(login.expires, SystemTime::now(), self.source.window());
                client.set_credentials(&login.user, &login.password);
                slot.fetched = Some(now);
                slot.next = Some(now + wait);
                tracing::info!(target: "berth::sync", upstream = %url, "{} credential helper: a login for {url}, fetched again in {}", self.name, humantime::format_duration(wait));
            }
            Ok(Err(e)) => {
                slot.next = Some(now + RETRY);
                tracing::warn!(target: "berth::sync", upstream = %url, "{} credential helper: no login for {url} (tried again in {RETRY:?}): {e}", self.name);
            }
            Err(_) => {
                slot.next = Some(now + RETRY);
                tracing::warn!(target: "berth::sync", upstream = %url, "{} credential helper: no login for {url} within {FETCH_TIMEOUT:?} (tried again in {RETRY:?})", self.name);
            }
        }
    }

    /// The upstream refused URL number `index`'s login: the next call
    /// fetches another (once [`MIN_REUSE`] has passed since the last).
    pub(super) fn refused(&self, index: usize) {
        if let Some(Ok(mut slot)) = self.slots.get(index).map(|s| s.try_lock()) {
            slot.next = slot.fetched.map(|at| at + MIN_REUSE);
        }
    }
}

/// How long a login expiring at `expires` is used, at `now`: until
/// `window` before it expires, at least [`MIN_REUSE`].
fn reuse_for(expires: Option<SystemTime>, now: SystemTime, window: Duration) -> Duration {
    let left = match expires {
        Some(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        None => DEFAULT_LIFETIME,
    };
    left.saturating_sub(window).max(MIN_REUSE)
}

/// Reads the files each registry's helper names, so that a missing or
/// unusable one stops the start with its key named.
pub fn check_files(config: &SyncConfig) -> Result<(), ConfigError> {
    for (i, reg) in config.registries.iter().enumerate() {
        let at = |k: &str| format!("extensions.sync.registries[{i}].{k}");
        match &reg.credential_helper {
            Some(CredentialHelper::OAuth2(o)) => oauth2::check_files(o).map_err(|(key, e)| {
                ConfigError::key(at(&format!("oauth2CredentialHelper.{key}")), e.to_string())
            })?,
            Some(CredentialHelper::Gcp) => gcp::check_files()
                .map_err(|e| ConfigError::key(at("credentialHelper"), e.to_string()))?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_reused_until_the_window_before_they_expire() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let minute = Duration::from_secs(60);
        assert_eq!(reuse_for(Some(now + 12 * hour), now, hour), 11 * hour);
        assert_eq!(reuse_for(Some(now + 5 * minute), now, minute), 4 * minute);
        assert_eq!(reuse_for(None, now, minute), 4 * minute);
        // Already expiring, or expired (moto's ECR tokens say 2015).
        assert_eq!(reuse_for(Some(now + minute / 2), now, minute), MIN_REUSE);
        assert_eq!(
            reuse_for(Some(SystemTime::UNIX_EPOCH), now, hour),
            MIN_REUSE
        );
    }

    /// A source counting its fetches, failing when told to.
    struct Counting {
        fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        fail: bool,
        lifetime: Duration,
    }

    #[async_trait::async_trait]
    impl Source for Counting {
        async fn login(&self, _url: &str) -> Result<Login, HelperError> {
            let n = self
                .fetches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.fail {
                return Err(HelperError::Fetch("refused".into()));
            }
            Ok(Login {
                user: "u".into(),
                password: format!("p{n}"),
                expires: Some(SystemTime::now() + self.lifetime),
            })
        }
    }

    fn helper(
        fail: bool,
        lifetime: Duration,
    ) -> (Helper, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let fetches = std::sync::Arc::default();
        let source = Counting {
            fetches: std::sync::Arc::clone(&fetches),
            fail,
            lifetime,
        };
        let helper = Helper {
            name: "test",
            source: Box::new(source),
            slots: vec![tokio::sync::Mutex::default()],
        };
        (helper, fetches)
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_is_fetched_once_then_again_when_due_or_refused() {
        use std::sync::atomic::Ordering::SeqCst;
        let client = Client::new("http://registry.test", None).expect("client");
        let (h, fetches) = helper(false, Duration::from_secs(3600));
        h.refresh(0, &client).await;
        h.refresh(0, &client).await;
        assert_eq!(fetches.load(SeqCst), 1);
        assert_eq!(client.credentials(), Some(("u".into(), "p0".into())));
        // Refused by the upstream: fetched again once MIN_REUSE has passed.
        h.refused(0);
        h.refresh(0, &client).await;
        assert_eq!(fetches.load(SeqCst), 1);
        tokio::time::advance(MIN_REUSE).await;
        h.refresh(0, &client).await;
        assert_eq!(fetches.load(SeqCst), 2);
        assert_eq!(client.credentials(), Some(("u".into(), "p1".into())));
        // Due a minute before it expires.
        tokio::time::advance(Duration::from_secs(3600 - 61)).await;
        h.refresh(0, &client).await;
        assert_eq!(fetches.load(SeqCst), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        h.refresh(0, &client).await;
        assert_eq!(fetches.load(SeqCst), 3);
        // An index with no URL does nothing.
        h.refresh(7, &client).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_keeps_the_client_as_it_was_and_is_tried_again_later() {
        use std::sync::atomic::Ordering::SeqCst;
        let client = Client::new("http://registry.test", Some("old:login")).expect("client");
        let (h, fetches) = helper(true, Duration::ZERO);
        h.refresh(0, &client).await;
        h.refresh(0, &client).await;
        assert_eq!(fetches.load(SeqCst), 1);
        assert_eq!(client.credentials(), Some(("old".into(), "login".into())));
        tokio::time::advance(RETRY).await;
        h.refresh(0, &client).await;
        assert_eq!(fetches.load(SeqCst), 2);
    }
}

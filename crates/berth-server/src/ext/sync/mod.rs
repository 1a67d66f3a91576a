//! zot's sync extension (`extensions.sync`): mirroring upstream
//! registries, periodically and on demand.
//!
//! - `content`: which upstream repositories and tags a registry's rules
//!   take, under which local name, which platforms (pure).
//! - `upstream_files`: `credentialsFile` and `certDir`.
//! - `helper`: the credential helpers (`credentialHelper`: `ecr`, `gcp`,
//!   `oauth2`), their logins fetched and renewed before they expire.
//! - `upstream`: one configured registry, its `berth-client` per URL
//!   (tried in order), credentials, certificates, retries and bound.
//! - `fetch`: one upstream fetch per blob, streamed to every waiting
//!   client from a staging file while it arrives.
//! - `copy`: one image, its children, blobs, referrers and signature
//!   tags; tagged only when everything is stored.
//! - `periodic`: every `pollInterval`, the upstream's repositories and
//!   tags walked and what changed copied.
//! - `on_demand`: the [`crate::registry::Mirror`] the API asks on a miss.
//!
//! Every copy is announced as a [`RegistryEvent::Synced`] (logged,
//! counted by the metrics, sent by the events extension).

pub mod content;
mod copy;
mod fetch;
pub mod helper;
mod on_demand;
mod periodic;
mod upstream;
pub mod upstream_files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use berth_client::ClientError;
use berth_oci::RepoName;

use crate::config::SyncConfig;
use crate::registry::events::RegistryEvent;
use crate::registry::{Registry, RegistryError};
use crate::storage::StorageError;
use upstream::Upstream;

/// Where staging files go when `downloadDir` is not set, under the main
/// root.
pub const STAGING_DIR: &str = ".berth/sync";

/// Why a sync step failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The upstream could not be reached, or refused.
    #[error("{url}: {source}")]
    Upstream {
        url: String,
        #[source]
        source: ClientError,
    },
    /// Storing what was fetched failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The upstream sent something that cannot be stored.
    #[error("{0}")]
    Invalid(String),
    /// A blob fetch failed (its reason).
    #[error("{0}")]
    Fetch(String),
    /// The staging file could not be written.
    #[error("staging file {0}: {1}")]
    Staging(PathBuf, #[source] std::io::Error),
    /// The config cannot be put in force.
    #[error("extensions.sync.{0}")]
    Setup(String),
    /// `syncTimeout` passed.
    #[error("gave up after {0:?} (syncTimeout)")]
    Timeout(Duration),
}

impl SyncError {
    pub(super) fn upstream(url: &str, source: ClientError) -> Self {
        Self::Upstream {
            url: url.to_string(),
            source,
        }
    }

    /// What a client asking for the content gets: a storage fault stays
    /// one; anything of the upstream's is `503 UNAVAILABLE` naming it.
    fn into_registry(self, upstream: &str) -> RegistryError {
        match self {
            Self::Registry(e) => e,
            other => RegistryError::Storage(StorageError::Unavailable {
                service: format!("upstream registry {upstream}"),
                message: other.to_string(),
            }),
        }
    }
}

/// The sync extension of a running server.
pub struct Sync {
    inner: Arc<Inner>,
    /// The periodic tasks of the config in force.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What the tasks and the API share.
pub(super) struct Inner {
    registry: Arc<Registry>,
    /// The registries of the config in force (swapped on reload).
    upstreams: RwLock<Arc<Vec<Arc<Upstream>>>>,
    fetches: fetch::BlobFetches,
    flights: on_demand::Flights,
    /// When each mirrored tag was last checked upstream
    /// (`manifestCheckInterval`).
    checked: Mutex<HashMap<(RepoName, String), Instant>>,
}

impl Sync {
    /// Starts sync as `config` says; `root` is the main storage root
    /// (staging files go under it unless `downloadDir` is set).
    pub async fn start(
        config: &SyncConfig,
        registry: Arc<Registry>,
        root: &Path,
    ) -> Result<Arc<Self>, SyncError> {
        let staging = config
            .download_dir
            .clone()
            .unwrap_or_else(|| root.join(STAGING_DIR));
        fetch::BlobFetches::clear_leftovers(&staging).await;
        let upstreams = build_upstreams(config)?;
        let inner = Arc::new(Inner {
            fetches: fetch::BlobFetches::new(registry.clone(), staging),
            registry,
            upstreams: RwLock::new(Arc::new(upstreams)),
            flights: on_demand::Flights::default(),
            checked: Mutex::default(),
        });
        let sync = Arc::new(Self {
            inner,
            tasks: Mutex::default(),
        });
        sync.spawn_periodic();
        Ok(sync)
    }

    /// Puts an edited config in force: the registries, their rules and
    /// credentials are replaced and the periodic runs restarted (a run
    /// under way stops where it is: nothing half-copied is tagged, and
    /// blob downloads already started finish in their own tasks; on-demand
    /// copies under way finish). An invalid config leaves the running one.
    pub fn reload(&self, config: &SyncConfig) -> Result<(), SyncError> {
        let upstreams = build_upstreams(config)?;
        *self
            .inner
            .upstreams
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(upstreams);
        for t in self.lock_tasks().drain(..) {
            t.abort();
        }
        self.spawn_periodic();
        Ok(())
    }

    /// The on-demand mirror the API asks on a miss (it answers `None` for
    /// repositories no `onDemand` registry covers).
    pub fn mirror(self: &Arc<Self>) -> Arc<dyn crate::registry::Mirror> {
        Arc::new(on_demand::OnDemand(self.inner.clone()))
    }

    fn spawn_periodic(&self) {
        let mut tasks = self.lock_tasks();
        for up in self.inner.upstreams().iter() {
            if let Some(interval) = up.config.poll_interval {
                tasks.push(tokio::spawn(periodic::run(
                    self.inner.clone(),
                    up.clone(),
                    interval,
                )));
            }
        }
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Sync {
    fn drop(&mut self) {
        for t in self.lock_tasks().drain(..) {
            t.abort();
        }
    }
}

impl Inner {
    fn upstreams(&self) -> Arc<Vec<Arc<Upstream>>> {
        self.upstreams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Announces what became of one image (logged by the caller).
    fn announce(
        &self,
        up: &Upstream,
        repo: &str,
        reference: &str,
        outcome: SyncOutcome,
        message: Option<String>,
    ) {
        self.registry.emit(RegistryEvent::Synced {
            upstream: up.name().to_string(),
            repo: repo.to_string(),
            reference: reference.to_string(),
            outcome,
            message,
        });
    }
}

pub use crate::registry::events::SyncOutcome;

/// The registries of `config`, with their credentials.
fn build_upstreams(config: &SyncConfig) -> Result<Vec<Arc<Upstream>>, SyncError> {
    if !config.enable {
        return Ok(Vec::new());
    }
    let credentials = match &config.credentials_file {
        Some(path) => Some(
            upstream_files::load_credentials(path)
                .map_err(|e| SyncError::Setup(format!("credentialsFile: {e}")))?,
        ),
        None => None,
    };
    config
        .registries
        .iter()
        .enumerate()
        .map(|(i, r)| Upstream::new(i, r, credentials.as_ref()).map(Arc::new))
        .collect()
}

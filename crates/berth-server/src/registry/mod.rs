//! The registry domain: upload sessions, blobs, manifests, tags and
//! referrers, on top of [`crate::storage`].
//!
//! This layer knows the distribution spec's rules (a manifest's blobs must
//! exist, a digest must match its bytes, chunks arrive in order) but nothing
//! of HTTP: the API layer turns its [`RegistryError`] into OCI error bodies.

mod blobs;
mod body_hasher;
mod error;
pub mod events;
mod gc;
mod image_config;
mod manifests;
mod meta_sync;
mod mirror;
mod policy;
mod pull_gate;
mod push_batch;
mod retention;
mod uploads;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use berth_oci::{Digest, RepoName};

pub use error::RegistryError;
pub use gc::GcReport;
pub use manifests::{ManifestContent, PutManifest};
pub use mirror::{Mirror, MirroredBlob, PARTIAL_INDEX_ANNOTATION};
#[cfg(feature = "search")]
pub(crate) use policy::referenced;
pub use policy::{Policies, Quota, QuotaUsage};
pub use pull_gate::{PullGate, PullRefusal};
pub use uploads::{UploadId, Uploads};

use crate::meta::MetaStore;
use crate::storage::{Roots, Store};

pub type RegistryResult<T> = Result<T, RegistryError>;

/// Background jobs at once when `scheduler.numWorkers` is not set and the
/// registry was built without a config.
const DEFAULT_WORKERS: usize = 8;

/// The registry: storage plus the live upload sessions. Shared by all
/// requests behind an `Arc`.
pub struct Registry {
    roots: Roots,
    /// What is known of repositories, tags and manifests, derived from
    /// storage (see `meta_sync`).
    meta: Arc<dyn MetaStore>,
    uploads: Uploads,
    /// Manifest pushes waiting to be recorded (see `push_batch`).
    pushes: push_batch::PushQueue,
    /// Writes a request started and does not wait for (pull statistics):
    /// [`Registry::settle`] waits for them, so a shutdown loses none and
    /// the store is let go when the registry is.
    background: tokio_util::task::TaskTracker,
    /// Pulls counted and not yet written: (repository, manifest) → (how
    /// many, when the last was, seconds). A pull only counts itself here;
    /// a task writes what gathered a moment later, one store write per
    /// manifest, so a busy manifest costs one write, not one per pull.
    pending_pulls: Arc<Mutex<manifests::PendingPulls>>,
    /// Blobs a client asked about lately (`HEAD`, mount), which GC leaves
    /// alone for `gcDelay`: a push that found one may be about to use it.
    /// A map of our own rather than a `moka` cache: an entry must live as
    /// long as the `gcDelay` of the root GC runs on next (each root has its
    /// own), and a cache that evicted one early to keep a size bound would
    /// let GC delete a blob a push is about to name. GC prunes what is
    /// older than its delay after each pass of a root.
    recent: Mutex<HashMap<(RepoName, Digest), Instant>>,
    /// What happened, for listeners (see `events`).
    events: tokio::sync::broadcast::Sender<events::RegistryEvent>,
    /// Quotas, the repository cap and immutable tags (see `policy`).
    policies: RwLock<Arc<Policies>>,
    /// Uploads into repositories under a quota that no manifest
    /// references yet.
    unreferenced: policy::Unreferenced,
    /// zot's `scheduler.numWorkers`: places for background work (GC of a
    /// repository, a scrub pass, an image scan, a sync copy).
    workers: Arc<tokio::sync::Semaphore>,
}

impl Registry {
    pub fn new(roots: Roots, meta: Arc<dyn MetaStore>) -> Self {
        Self {
            roots,
            meta,
            uploads: Uploads::default(),
            pushes: push_batch::PushQueue::default(),
            background: tokio_util::task::TaskTracker::new(),
            pending_pulls: Arc::default(),
            recent: Mutex::new(HashMap::new()),
            events: tokio::sync::broadcast::channel(events::CAPACITY).0,
            policies: RwLock::default(),
            unreferenced: policy::Unreferenced::default(),
            workers: Arc::new(tokio::sync::Semaphore::new(DEFAULT_WORKERS)),
        }
    }

    /// Sets how many background jobs run at once (before the registry is
    /// shared).
    pub fn set_background_workers(&mut self, n: usize) {
        self.workers = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
    }

    /// Waits for a place among the background workers, held while the
    /// returned permit lives.
    pub async fn background_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        loop {
            // The semaphore is never closed; if it were, wait for none.
            if let Ok(p) = self.workers.clone().acquire_owned().await {
                return p;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Listens to what the registry does from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<events::RegistryEvent> {
        self.events.subscribe()
    }

    /// Announces `event` (nobody listening is fine).
    pub fn emit(&self, event: events::RegistryEvent) {
        let _ = self.events.send(event);
    }

    /// Upload sessions open now.
    pub fn uploads_in_progress(&self) -> usize {
        self.uploads.count()
    }

    /// The store holding `repo` (its sub-path root, or the main one).
    pub fn store(&self, repo: &RepoName) -> &Store {
        self.roots.store(repo)
    }

    /// The metadata store (read-only use outside the registry: a write that
    /// bypasses `meta_sync` would go unnoticed until the next derive; users'
    /// stars and bookmarks, which are no derived data, are the exception).
    pub fn meta(&self) -> &dyn MetaStore {
        self.meta.as_ref()
    }

    /// The metadata store, shared (for readers that outlive a request,
    /// such as the search index; the same rule as [`Registry::meta`]).
    pub fn meta_shared(&self) -> Arc<dyn MetaStore> {
        self.meta.clone()
    }

    /// Every storage root.
    pub fn roots(&self) -> &Roots {
        &self.roots
    }
}

//! The metadata store: what the registry knows about repositories, tags
//! and manifests, indexed so catalog, tag lists, manifest lookups and
//! referrers do not walk directories or parse `index.json`.
//!
//! It is derived from storage, never the truth: each repository's row
//! carries the [`Fingerprint`] of the `index.json` it was derived from, and
//! a reader that finds the file changed (a crash between the two writes, an
//! edit by another tool, GC) re-derives that repository first. So writes
//! may be non-durable: a lost write is a stale fingerprint, found and
//! mended on the next read. Only a repository's creation is made durable,
//! since the catalog has no file to compare with.
//!
//! [`MetaStore`] is the seam; [`RedbMetaStore`] the embedded backend;
//! [`conformance::run`] the one suite every backend must pass.

pub mod conformance;
#[cfg(feature = "redis")]
mod offload;
mod redb_store;
#[cfg(feature = "redis")]
mod redis_locks;
#[cfg(feature = "redis")]
mod redis_store;
mod shared_lock;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(feature = "redis")]
pub use offload::Offloaded;
pub use redb_store::RedbMetaStore;
#[cfg(feature = "redis")]
pub use redis_locks::RedisLocks;
#[cfg(feature = "redis")]
pub use redis_store::{RedisMetaStore, RedisOptions};
pub use shared_lock::{SharedGuard, SharedLock};

/// A metadata store failure.
#[derive(Debug, thiserror::Error)]
#[error("metadata store: {0}")]
pub struct MetaError(pub String);

pub type MetaResult<T> = Result<T, MetaError>;

/// Identifies one version of a repository's `index.json`: every write
/// renames a new file into place, so the inode changes with the content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub inode: u64,
    pub len: u64,
    pub mtime_ns: u128,
}

impl Fingerprint {
    /// The fingerprint of the file at `path`, `None` if it is missing.
    pub fn of(path: &std::path::Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        let mtime_ns = m
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        Some(Self {
            inode,
            len: m.len(),
            mtime_ns,
        })
    }
}

/// What the registry records of one manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestMeta {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub config: Option<String>,
    pub layers: Vec<String>,
    /// An index's manifests.
    pub children: Vec<String>,
    /// `os/architecture[/variant]` when a descriptor named it.
    pub platform: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub subject: Option<String>,
    /// Seconds since the epoch.
    pub pushed_at: u64,
    pub pushed_by: Option<String>,
}

impl ManifestMeta {
    /// The distinct blobs this manifest needs (config, layers, children).
    pub fn references(&self) -> std::collections::BTreeSet<&String> {
        self.config
            .iter()
            .chain(self.layers.iter())
            .chain(self.children.iter())
            .collect()
    }
}

/// Pull statistics of one manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullStats {
    pub last_pulled: Option<u64>,
    pub count: u64,
}

/// One atomic change to a repository's metadata.
#[derive(Debug, Clone, Default)]
pub struct RepoChange {
    pub put_manifests: Vec<ManifestMeta>,
    pub remove_manifests: Vec<String>,
    pub set_tags: Vec<(String, String)>,
    pub remove_tags: Vec<String>,
    /// The fingerprint of `index.json` once this change is in it.
    pub fingerprint: Fingerprint,
    /// Drop everything known of the repository first (a full re-derive).
    pub replace: bool,
}

/// The metadata seam.
pub trait MetaStore: Send + Sync {
    /// Every repository, sorted.
    fn repos(&self) -> MetaResult<Vec<String>>;
    /// The fingerprint the repository's rows were derived from.
    fn fingerprint(&self, repo: &str) -> MetaResult<Option<Fingerprint>>;
    /// Applies a change atomically, creating the repository if needed.
    /// `durable` asks for the change to survive a crash.
    fn apply(&self, repo: &str, change: &RepoChange, durable: bool) -> MetaResult<()>;
    /// Forgets a repository.
    fn remove_repo(&self, repo: &str) -> MetaResult<()>;
    /// Tags and their digests, sorted by tag.
    fn tags(&self, repo: &str) -> MetaResult<Vec<(String, String)>>;
    fn tag(&self, repo: &str, tag: &str) -> MetaResult<Option<String>>;
    fn manifest(&self, repo: &str, digest: &str) -> MetaResult<Option<ManifestMeta>>;
    fn manifests(&self, repo: &str) -> MetaResult<Vec<ManifestMeta>>;
    /// Manifests whose `subject` is `digest`, sorted by digest.
    fn referrers(&self, repo: &str, digest: &str) -> MetaResult<Vec<ManifestMeta>>;
    /// How many recorded manifests of the repository reference `blob`.
    fn blob_refs(&self, repo: &str, blob: &str) -> MetaResult<u64>;
    fn record_pull(&self, repo: &str, digest: &str, at: u64) -> MetaResult<()>;
    fn pull_stats(&self, repo: &str, digest: &str) -> MetaResult<PullStats>;
    /// A setting of the store itself (such as what it was derived from).
    fn setting(&self, name: &str) -> MetaResult<Option<String>>;
    /// Sets a setting, durably.
    fn set_setting(&self, name: &str, value: &str) -> MetaResult<()>;
    /// Makes every write so far durable.
    fn flush(&self) -> MetaResult<()>;
}

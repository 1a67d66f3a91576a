//! The metadata store: what the registry knows about repositories, tags
//! and manifests, indexed so catalog, tag lists, manifest lookups and
//! referrers do not walk directories or parse `index.json`.
//!
//! It is derived from storage, never the truth: each repository's row
//! carries the [`IndexVersion`] of the `index.json` it was derived from, and
//! a reader that finds the file changed (a crash between the two writes, an
//! edit by another tool, GC) re-derives that repository first. So writes
//! may be non-durable: a lost write is a stale version, found and
//! mended on the next read. Only a repository's creation is made durable,
//! since the catalog has no file to compare with, and users' stars and
//! bookmarks, which no file gives back.
//!
//! For search it also keeps what storage does not say cheaply: each
//! manifest's layer and config sizes and what its config says of the
//! image ([`ImageConfigMeta`], read by the registry when it records the
//! manifest), when each tag was set ([`MetaStore::tag_times`]), users'
//! stars and bookmarks ([`UserList`]), and what a search index compares to
//! know whether its copy is current: a [`RepoStamp`] per repository and
//! one store-wide [`MetaStore::generation`] that every write search sees
//! changes.
//!
//! [`MetaStore`] is the seam, async; [`RedbMetaStore`] the embedded
//! backend (synchronous inside: reads inline, durable writes on the
//! blocking pool); `RedisMetaStore` the networked one (feature `redis`,
//! over one async connection it shares with `RedisLocks`, the
//! [`SharedLock`] of several instances); `DynamoMetaStore` the same in
//! DynamoDB (feature `dynamodb`, with `DynamoLocks`); [`conformance::run`]
//! the one suite every backend must pass.

pub mod conformance;
#[cfg(feature = "dynamodb")]
mod dynamo;
#[cfg(any(feature = "redis", feature = "dynamodb"))]
mod lease_locks;
mod redb_store;
#[cfg(feature = "redis")]
mod redis_conn;
#[cfg(feature = "redis")]
mod redis_locks;
#[cfg(feature = "redis")]
mod redis_store;
mod shared_lock;

use std::collections::BTreeMap;

use berth_oci::{Digest, RepoName, Tag};
use serde::{Deserialize, Serialize};

pub use crate::storage::IndexVersion;

#[cfg(feature = "dynamodb")]
pub use dynamo::{DynamoLocks, DynamoMetaStore, DynamoOptions, DynamoTables};
pub use redb_store::RedbMetaStore;
#[cfg(feature = "redis")]
pub(crate) use redis_conn::Redis;
#[cfg(feature = "redis")]
pub use redis_conn::RedisOptions;
#[cfg(feature = "redis")]
pub use redis_locks::RedisLocks;
#[cfg(feature = "redis")]
pub use redis_store::RedisMetaStore;
pub use shared_lock::{SharedGuard, SharedLock};

/// A metadata store failure, saying what happened so that it is answered
/// right: an unreachable store is a 503 to retry, not a corrupt one.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The store could not be reached or did not answer in time (a Redis
    /// server down, a connection timed out).
    #[error("{service} is unavailable: {message}")]
    Unavailable { service: String, message: String },
    /// What the store holds cannot be read back as written.
    #[error("{location} is corrupt: {message}")]
    Corrupt { location: String, message: String },
    /// The store's engine failed on an operation (a local I/O error, a
    /// full disk, a command the server refused).
    #[error("{location}: {message}")]
    Failed { location: String, message: String },
    /// Writers raced on the same rows for longer than the store retries.
    #[error("{0}")]
    Contended(String),
    /// The store's settings are invalid (an address, a URL).
    #[error("{0}")]
    InvalidConfig(String),
}

pub type MetaResult<T> = Result<T, MetaError>;

impl MetaError {
    /// Whether retrying later may succeed (the service is down or busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Contended(_))
    }

    /// The same error again (for each push of a batch one failure ended).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Unavailable { service, message } => Self::Unavailable {
                service: service.clone(),
                message: message.clone(),
            },
            Self::Corrupt { location, message } => Self::Corrupt {
                location: location.clone(),
                message: message.clone(),
            },
            Self::Failed { location, message } => Self::Failed {
                location: location.clone(),
                message: message.clone(),
            },
            Self::Contended(s) => Self::Contended(s.clone()),
            Self::InvalidConfig(s) => Self::InvalidConfig(s.clone()),
        }
    }
}

/// Now, in seconds since the epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The setting that says the store keeps [`RepoStamp::pulls`]: a store
/// opened without it adds up the pulls its manifests counted before.
const PULL_TOTALS: &str = "pull-totals";

/// What the registry records of one manifest.
///
/// Fields added after the first release are `#[serde(default)]`, so rows
/// an older Berth wrote still read (with those fields empty).
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
    /// The authenticated user who pushed it (`None`: anonymous, no
    /// authentication configured, or found on disk).
    pub pushed_by: Option<String>,
    /// The sizes of `layers`, in the same order (as their descriptors
    /// give them).
    #[serde(default)]
    pub layer_sizes: Vec<u64>,
    /// The config's size (0 without a config).
    #[serde(default)]
    pub config_size: u64,
    /// The config's media type. Always set with `config` by this version,
    /// so a row with a config and none was written by an older one.
    #[serde(default)]
    pub config_media_type: Option<String>,
    /// What the config blob says of the image (an OCI or Docker image
    /// config, or a Helm chart's), read when the manifest was recorded;
    /// `None` for other configs, configs over 4 MiB and configs that do
    /// not parse.
    #[serde(default)]
    pub image: Option<ImageConfigMeta>,
    /// On a signature's row (cosign or notation), what verifying it
    /// found, kept by the trust extension; `None` until it was checked.
    /// A row derived again from storage has none: it is checked anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustRecord>,
}

/// What verifying one signature manifest found: one verdict per
/// signature it holds (a cosign `.sig` image holds one per layer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// The trust material it was checked against (a fingerprint of the
    /// keys and certificates): another means it must be checked again.
    pub material: String,
    pub verdicts: Vec<SignatureVerdict>,
    /// When a trusted verdict lapses (a certificate or the signature
    /// expires), seconds since the epoch: it is checked again then.
    #[serde(default)]
    pub recheck_at: Option<u64>,
}

/// One signature's verdict, as zot's `SignatureSummary` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureVerdict {
    /// `cosign` or `notation`.
    pub tool: String,
    pub trusted: bool,
    /// zot's author: the key (cosign) or the certificate's subject
    /// (notation); empty when nothing identifies the signer.
    pub author: String,
}

/// What an image's config blob says, for search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfigMeta {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
    /// RFC 3339, as the config writes it (not reformatted).
    pub created: Option<String>,
    pub author: Option<String>,
    #[serde(default)]
    pub history: Vec<HistoryMeta>,
    /// The image's `config.Labels`; for a Helm chart, the chart's fields
    /// under the OCI annotation keys (`org.opencontainers.image.title`…).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One entry of an image config's `history`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMeta {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub author: Option<String>,
    pub comment: Option<String>,
    /// The step made no layer (so it has no entry in `layers`).
    #[serde(default)]
    pub empty_layer: bool,
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

/// The part of a [`ManifestMeta`] row a manifest pull needs (decoded from
/// the same row; the other fields are skipped, not built).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ManifestHead {
    pub media_type: String,
    pub size: u64,
}

/// Pull statistics of one manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullStats {
    pub last_pulled: Option<u64>,
    pub count: u64,
}

/// What a search index compares to know whether its copy of a
/// repository is current: any change to the repository's tags or
/// manifests gives a new `version`, a pull counted a new `pulls`, a star
/// a new `stars`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoStamp {
    /// The `index.json` version the rows were derived from.
    pub version: IndexVersion,
    /// Every pull ever counted for the repository (not lowered when a
    /// manifest, and its own statistics, is deleted).
    pub pulls: u64,
    /// How many users starred it.
    pub stars: u64,
    /// How many changes were applied to its rows (any `apply`, also one
    /// that keeps the `index.json` version, such as a row an extension
    /// noted something on).
    pub revision: u64,
}

/// A user's list of repositories (zot's user preferences).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserList {
    /// Starred: each repository counts how many users starred it.
    Starred,
    /// Bookmarked: for the user alone.
    Bookmarked,
}

impl UserList {
    /// The list's name in a store's keys.
    fn key(self) -> &'static str {
        match self {
            Self::Starred => "starred",
            Self::Bookmarked => "bookmarked",
        }
    }
}

/// One atomic change to a repository's metadata.
#[derive(Debug, Clone, Default)]
pub struct RepoChange {
    pub put_manifests: Vec<ManifestMeta>,
    pub remove_manifests: Vec<String>,
    pub set_tags: Vec<(String, String)>,
    pub remove_tags: Vec<String>,
    /// The version of `index.json` once this change is in it (opaque:
    /// storage makes it, the store keeps it verbatim).
    pub version: IndexVersion,
    /// Drop everything known of the repository first (a full re-derive).
    pub replace: bool,
}

/// The metadata seam. Async, so that a networked backend waits for its
/// server without holding an async worker; an embedded backend answers
/// reads inline and sends what waits for the disk to the blocking pool
/// itself (see [`RedbMetaStore`]).
///
/// Repositories are [`RepoName`]s and manifests and blobs [`Digest`]s: a
/// string that is neither cannot reach the store. What the store returns
/// stays as it is stored (strings), since a row written by another tool
/// or an older version need not parse.
#[async_trait::async_trait]
pub trait MetaStore: Send + Sync {
    /// Every repository, sorted, as recorded.
    async fn repos(&self) -> MetaResult<Vec<String>>;
    /// Every repository with its [`RepoStamp`], sorted by name, in one
    /// read (a bounded number of round trips, whatever the count).
    async fn repo_stamps(&self) -> MetaResult<Vec<(String, RepoStamp)>>;
    /// The `index.json` version the repository's rows were derived from.
    async fn version(&self, repo: &RepoName) -> MetaResult<Option<IndexVersion>>;
    /// Applies a change atomically, creating the repository if needed.
    /// `durable` asks for the change to survive a crash.
    async fn apply(&self, repo: &RepoName, change: &RepoChange, durable: bool) -> MetaResult<()>;
    /// Forgets a repository, and its star count (users' lists keep the
    /// name). Takes the name as recorded ([`MetaStore::repos`]), since a
    /// recorded name that no longer parses must be forgettable too.
    async fn remove_repo(&self, repo: &str) -> MetaResult<()>;
    /// Tags and their digests, sorted by tag.
    async fn tags(&self, repo: &RepoName) -> MetaResult<Vec<(String, String)>>;
    /// When each tag was set to the digest it points at (seconds since the
    /// epoch). A tag is timed whenever a change sets it; a `replace` keeps
    /// the time of a tag that still points at the same digest. A tag with
    /// no time recorded (set by an older Berth) is absent.
    async fn tag_times(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, u64>>;
    /// The digest `tag` points at.
    async fn tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<Option<String>>;
    /// What is recorded of one manifest.
    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Option<ManifestMeta>>;
    /// What a pull needs of one manifest's row, without decoding the rest
    /// (its config's history and labels, which only search reads).
    async fn manifest_head(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<ManifestHead>>;
    /// Every manifest of the repository, sorted by digest.
    async fn manifests(&self, repo: &RepoName) -> MetaResult<Vec<ManifestMeta>>;
    /// Manifests whose `subject` is `digest`, sorted by digest.
    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<ManifestMeta>>;
    /// How many recorded manifests of the repository reference `blob`.
    async fn blob_refs(&self, repo: &RepoName, blob: &Digest) -> MetaResult<u64>;
    /// Counts `count` pulls of a manifest, the last at `at` (seconds since
    /// the epoch), and as many in the repository's [`RepoStamp::pulls`],
    /// in one write. The registry gathers pulls and writes them in
    /// batches.
    async fn record_pulls(
        &self,
        repo: &RepoName,
        digest: &Digest,
        count: u64,
        at: u64,
    ) -> MetaResult<()>;
    /// How often and when a manifest was last pulled.
    async fn pull_stats(&self, repo: &RepoName, digest: &Digest) -> MetaResult<PullStats>;
    /// Every pulled manifest's statistics of a repository, by digest, in
    /// one read (a manifest never pulled is absent).
    async fn pull_stats_all(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, PullStats>>;
    /// A counter that changes with every write that changes what search
    /// shows (`apply`, `remove_repo`, `record_pulls`, a star or bookmark
    /// toggled), by this instance or any other sharing the store; one
    /// cheap read, for a search index to know whether it is current.
    async fn generation(&self) -> MetaResult<u64>;
    /// Adds `repo` to the user's `list` if it is not in it, else removes
    /// it; returns whether it is in the list now. For
    /// [`UserList::Starred`] the repository's star count changes in the
    /// same atomic write. Durable (it is no derived data: storage cannot
    /// give it back).
    async fn toggle_user_repo(
        &self,
        user: &str,
        list: UserList,
        repo: &RepoName,
    ) -> MetaResult<bool>;
    /// The repositories in the user's `list`, sorted (as recorded: a
    /// repository removed since may still be named).
    async fn user_repos(&self, user: &str, list: UserList) -> MetaResult<Vec<String>>;
    /// A setting of the store itself (such as what it was derived from).
    async fn setting(&self, name: &str) -> MetaResult<Option<String>>;
    /// Sets a setting, durably.
    async fn set_setting(&self, name: &str, value: &str) -> MetaResult<()>;
    /// The vulnerability scan report kept for a manifest (made by the
    /// scanning extension, opaque here), by digest: the same image in two
    /// repositories shares it.
    async fn scan_report(&self, digest: &Digest) -> MetaResult<Option<String>>;
    /// Keeps (`Some`) or forgets (`None`) a manifest's scan report, and
    /// changes the generation (answers that showed the old one are stale).
    /// Not durable: a lost report is made again.
    async fn set_scan_report(&self, digest: &Digest, report: Option<&str>) -> MetaResult<()>;
    /// Makes every write so far durable.
    async fn flush(&self) -> MetaResult<()>;
    /// Reaches the store and checks that it still holds what was written
    /// to it. A networked store that lost its data (a Redis server
    /// restarted empty, or flushed) answers [`StoreCheck::Lost`] once —
    /// the first caller to see it marks the store again — so that the
    /// registry rebuilds it from storage; an embedded store keeps its file
    /// open and so never loses it under a running server.
    async fn check(&self) -> MetaResult<StoreCheck>;
}

/// What [`MetaStore::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCheck {
    /// Reachable, with its data.
    Kept,
    /// Reachable, but what was written to it is gone.
    Lost,
}

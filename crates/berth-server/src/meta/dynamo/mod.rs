//! [`DynamoMetaStore`]: the metadata store in DynamoDB (feature
//! `dynamodb`, zot's `storage.cacheDriver.name: dynamodb`), shared by
//! every Berth instance pointed at the same tables, and [`DynamoLocks`],
//! the [`SharedLock`](super::SharedLock) those instances coordinate with.
//!
//! # Tables and items
//!
//! Berth uses the table names zot's keys give (`cacheTablename`,
//! `repoMetaTablename`, …; defaults as zot's, optionally after
//! `tablenamePrefix`) and makes each that is missing at start, billed per
//! request, with a string partition key `pk` and a string sort key `sk`.
//! A table that exists with other keys (zot's have a single `TableKey`) is
//! refused by name: Berth does not read zot's items (it derives its
//! metadata from storage), so point it at new names or delete zot's tables.
//! Partition keys that are not repository names start with `#`, which no
//! repository name can, so all the names may even be one table.
//!
//! | table (zot's key) | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | `repoMetaTablename` | `#repos` | repository | `v` the [`IndexVersion`](super::IndexVersion), `rev` its [`RepoStamp::revision`](super::RepoStamp::revision), `pend`/`pend_at` a large change under way (see below) |
//! | `repoMetaTablename` | repository | `t#{tag}` | `d` the digest, `at` when it was set (seconds) |
//! | `repoMetaTablename` | repository | `r#{subject}#{digest}` | a referrer link |
//! | `repoMetaTablename` | `#pulls` / `#stars` | repository | `n` every pull counted / how many users starred it |
//! | `imageMetaTablename` | repository | `m#{digest}` | `j` the [`ManifestMeta`](super::ManifestMeta) as JSON |
//! | `imageMetaTablename` | repository | `p#{digest}` | `c` pull count, `l` last pull |
//! | `repoBlobsInfoTablename` | repository | blob digest | `n` how many manifests reference it |
//! | `userDataTablename` | `#starred:{user}` / `#bookmarked:{user}` | repository | (the list) |
//! | `versionTablename` | `#setting` | name | `v` |
//! | `versionTablename` | `#generation` / `#epoch` | `#` | `n` (as Redis's `generation` and `epoch`) |
//! | `cacheTablename` | `#scan` | manifest digest | `v` the scan report |
//! | `cacheTablename` | `#lock` | lock name | `tok` the holder's token, `exp` when its lease ends (ms since the epoch) |
//!
//! `apiKeyTablename` is accepted only while API keys are off: Berth keeps
//! API keys in each instance's own redb file, not in DynamoDB.
//!
//! # Atomic changes
//!
//! [`MetaStore::apply`](super::MetaStore::apply) reads what the change
//! touches (the repository's `#repos` item first, for its `rev`), works out
//! every item to put or delete, and writes them in one `TransactWriteItems`
//! whose put of the `#repos` item is conditional on `rev` being still the
//! one read (and no large change under way): a writer that raced another
//! finds the condition failed and starts again from its reads (optimistic
//! concurrency, as a `WATCH` would be), so no count is lost and no change
//! is half-seen.
//!
//! A transaction holds at most 100 items (and 4 MB): a larger change (a
//! `replace` of a big repository) is written in chunks under a commit
//! marker. The `#repos` item is first claimed, conditionally on `rev`, with
//! a token (`pend`), its time, and an empty version, which matches no
//! `index.json`; each chunk is a transaction that checks the token; the
//! last write sets the real version, bumps `rev` and drops the token. So a
//! writer that dies part-way leaves a repository whose version matches no
//! `index.json`, which the registry derives again from storage on its next
//! read (as it does after a crash between storage and store in every
//! backend), and a claim older than [`PENDING_LEASE`] is taken over. A
//! reader during a large change may see part of it, as it may see a
//! store that lags storage: its version says the rows are not current.
//! Chunking was chosen over a version per item (multi-version rows) because
//! every read then stays one query with no filtering, and large changes
//! are rare (a full derive).
//!
//! Pulls counted and a star or bookmark toggled are small transactions too
//! (the manifest's statistics, the repository's total and the generation;
//! the user's list, the star count and the generation).
//!
//! # Durability
//!
//! DynamoDB acknowledges a write once it is durable: `durable` changes
//! nothing and [`MetaStore::flush`](super::MetaStore::flush) has nothing
//! to do. Reads are strongly consistent, so what one instance wrote the
//! next read of any other sees.

mod apply;
mod client;
mod items;
mod locks;
mod store;

use std::fmt;
use std::time::Duration;

pub use locks::DynamoLocks;
pub use store::DynamoMetaStore;

/// How long a large change's claim on a repository lasts without being
/// finished before another writer takes it over.
pub(super) const PENDING_LEASE: Duration = Duration::from_secs(60);

/// The tables, by zot's keys (`storage.cacheDriver.*Tablename`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTables {
    /// `cacheTablename`: shared locks and scan reports.
    pub cache: String,
    /// `repoMetaTablename`: repositories, tags, referrer links, totals.
    pub repo_meta: String,
    /// `imageMetaTablename`: manifests and their pull statistics.
    pub image_meta: String,
    /// `repoBlobsInfoTablename`: how many manifests reference each blob.
    pub repo_blobs: String,
    /// `userDataTablename`: users' stars and bookmarks.
    pub user_data: String,
    /// `versionTablename`: the store's settings, generation and epoch.
    pub version: String,
}

impl DynamoTables {
    /// zot's default names, each after `prefix` (zot's `tablenamePrefix`).
    pub fn with_prefix(prefix: &str) -> Self {
        let t = |suffix: &str| format!("{prefix}{suffix}");
        Self {
            cache: t("BlobTable"),
            repo_meta: t("RepoMetadataTable"),
            image_meta: t("ImageMetaTable"),
            repo_blobs: t("RepoBlobsInfoTable"),
            user_data: t("UserDataTable"),
            version: t("VersionTable"),
        }
    }

    /// Each name once.
    fn distinct(&self) -> Vec<&str> {
        let mut all = vec![
            self.cache.as_str(),
            &self.repo_meta,
            &self.image_meta,
            &self.repo_blobs,
            &self.user_data,
            &self.version,
        ];
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Default for DynamoTables {
    fn default() -> Self {
        Self::with_prefix("")
    }
}

/// Where the DynamoDB metadata store lives: zot's `storage.cacheDriver`
/// keys for its `dynamodb` driver, and credentials (none: AWS's chain, as
/// zot's SDK finds them: the environment, profile files, web identity, ECS
/// and instance roles).
#[derive(Clone)]
pub struct DynamoOptions {
    /// A DynamoDB-compatible endpoint URL (`http://host:port`); `None`:
    /// AWS's endpoint for `region`.
    pub endpoint: Option<String>,
    pub region: String,
    pub tables: DynamoTables,
    /// Static credentials (with `secret_key`); `None`: AWS's chain.
    pub access_key: Option<String>,
    /// Never logged.
    pub secret_key: Option<String>,
    /// Never logged.
    pub session_token: Option<String>,
    /// How long one call may take, retries included, before it fails as
    /// unavailable (Berth's `commandTimeout`).
    pub command_timeout: Duration,
}

impl DynamoOptions {
    /// `endpoint`, `region` and `tables`, with AWS's credential chain and a
    /// command timeout of 1 s.
    pub fn new(endpoint: Option<String>, region: String, tables: DynamoTables) -> Self {
        Self {
            endpoint,
            region,
            tables,
            access_key: None,
            secret_key: None,
            session_token: None,
            command_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for DynamoOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("DynamoOptions")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("tables", &self.tables)
            .field("access_key", &self.access_key)
            .field("secret_key", &hidden(&self.secret_key))
            .field("session_token", &hidden(&self.session_token))
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

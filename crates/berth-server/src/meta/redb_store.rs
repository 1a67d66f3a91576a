//! [`RedbMetaStore`]: the metadata store in one redb file.
//!
//! The engine is synchronous. Reads run inline on the calling task: they
//! are reads of a memory-mapped file that take microseconds, less than a
//! hop to the blocking pool would cost the manifest `GET` that makes them.
//! A write that waits for the disk (a durable commit: [`MetaStore::apply`]
//! with `durable`, [`MetaStore::remove_repo`], [`MetaStore::set_setting`],
//! [`MetaStore::toggle_user_repo`], [`MetaStore::flush`]) or that may wait
//! behind one for redb's single writer without anyone waiting for it
//! ([`MetaStore::record_pulls`]) runs
//! on the blocking pool; a non-durable `apply`, which a push awaits under
//! its repository's lock right after writing `index.json`, runs inline as
//! it always has.
//!
//! Keys are `repo \0 rest` strings, so one repository's rows are a range
//! (`repo\0` up to `repo\x01`; names never hold control characters); a
//! user's list is the range of `list \0 user`. Every write search sees
//! bumps the generation counter in its own transaction.
//!
//! A file that is not a redb database or is damaged is moved aside
//! (`meta.redb.damaged-<seconds>`, kept for the stars and bookmarks it may
//! hold) and a new store is made, which the server derives from storage:
//! the store is derived data, so a damaged one must not keep the registry
//! from starting. A file another process holds is never moved.
//! [`MetaStore::check`] notices the file replaced or truncated under the
//! running server, which goes on with the file it opened (what it writes
//! is then lost at the next start): it fails the check, so `/readyz` says
//! so until a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use berth_oci::{Digest, RepoName, Tag};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    IndexVersion, ManifestHead, ManifestMeta, MetaError, MetaResult, MetaStore, PULL_TOTALS,
    PullStats, RepoChange, RepoStamp, StoreCheck, UserList,
};

/// repo → the `index.json` version (opaque, as storage spells it).
const REPOS: TableDefinition<&str, &str> = TableDefinition::new("repos");
/// repo\0tag → digest.
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
/// repo\0digest → manifest (JSON).
const MANIFESTS: TableDefinition<&str, &str> = TableDefinition::new("manifests");
/// repo\0tag → when the tag was set to its digest, seconds since the
/// epoch (a table of its own, so a database from before it opens as is:
/// its tags simply have no time).
const TAG_TIMES: TableDefinition<&str, u64> = TableDefinition::new("tag_times");
/// repo\0subject\0digest → "".
const REFERRERS: TableDefinition<&str, &str> = TableDefinition::new("referrers");
/// repo\0blob → number of manifests referencing it.
const BLOB_REFS: TableDefinition<&str, u64> = TableDefinition::new("blob_refs");
/// repo\0digest → pull statistics (JSON).
const PULLS: TableDefinition<&str, &str> = TableDefinition::new("pulls");
/// list\0user\0repo → "": users' starred and bookmarked repositories
/// ([`UserList`]; user names never hold NUL).
const USER_REPOS: TableDefinition<&str, &str> = TableDefinition::new("user_repos");
/// repo → every pull counted ([`RepoStamp::pulls`]).
const REPO_PULLS: TableDefinition<&str, u64> = TableDefinition::new("repo_pulls");
/// repo → how many users starred it (absent when none).
const STARS: TableDefinition<&str, u64> = TableDefinition::new("stars");
/// manifest digest → its scan report ([`MetaStore::scan_report`]).
const SCANS: TableDefinition<&str, &str> = TableDefinition::new("scans");
/// repo → how many changes were applied to its rows
/// ([`RepoStamp::revision`]).
const REVISIONS: TableDefinition<&str, u64> = TableDefinition::new("revisions");
/// name → value: counters of the whole store ([`GENERATION`]).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// The row of [`COUNTERS`] every write search sees bumps
/// ([`MetaStore::generation`]).
const GENERATION: &str = "generation";
/// name → value: settings of the store itself.
const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

/// Where the store is, for messages.
const LOCATION: &str = "the metadata store (meta.redb)";

/// An engine or file-system failure.
fn err(e: impl std::fmt::Display) -> MetaError {
    MetaError::Failed {
        location: LOCATION.into(),
        message: e.to_string(),
    }
}

/// A row that does not read back as written.
fn corrupt(e: serde_json::Error) -> MetaError {
    MetaError::Corrupt {
        location: LOCATION.into(),
        message: e.to_string(),
    }
}

fn key(repo: impl std::fmt::Display, rest: impl std::fmt::Display) -> String {
    format!("{repo}\0{rest}")
}

/// The key range of one repository's rows (or of a sub-prefix of them).
fn prefix(p: &str) -> (String, String) {
    (format!("{p}\0"), format!("{p}\u{1}"))
}

/// The metadata store in redb. The database is shared with the blocking
/// pool's threads, which run its durable writes.
pub struct RedbMetaStore {
    db: Arc<Database>,
    /// The file, and its identity (device, inode) when opened.
    path: std::path::PathBuf,
    opened_as: Option<(u64, u64)>,
}

impl RedbMetaStore {
    /// A manifest's row, decoded as `T` (the whole row or a part of it).
    fn manifest_row<T: serde::de::DeserializeOwned>(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<T>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(MANIFESTS).map_err(err)?;
        match t.get(key(repo, digest).as_str()).map_err(err)? {
            Some(v) => serde_json::from_str(v.value()).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }
}

/// The most memory redb keeps pages of the store in.
const CACHE_BYTES: usize = 32 << 20;

impl RedbMetaStore {
    /// Opens (creating) the store at `path`. Returns whether the file is
    /// new, in which case the caller derives it from storage.
    pub fn open(path: &Path) -> MetaResult<(Self, bool)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let created = !path.exists();
        // A damaged file is moved aside and made anew: derived from
        // storage again, as a new store is.
        let (db, set_aside) = crate::redb_file::open(path, CACHE_BYTES).map_err(err)?;
        let created = created || set_aside.is_some();
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(REPOS).map_err(err)?;
        txn.open_table(TAGS).map_err(err)?;
        txn.open_table(TAG_TIMES).map_err(err)?;
        txn.open_table(MANIFESTS).map_err(err)?;
        txn.open_table(REFERRERS).map_err(err)?;
        txn.open_table(BLOB_REFS).map_err(err)?;
        txn.open_table(PULLS).map_err(err)?;
        txn.open_table(SETTINGS).map_err(err)?;
        txn.open_table(COUNTERS).map_err(err)?;
        txn.open_table(USER_REPOS).map_err(err)?;
        txn.open_table(STARS).map_err(err)?;
        txn.open_table(REPO_PULLS).map_err(err)?;
        txn.open_table(REVISIONS).map_err(err)?;
        txn.open_table(SCANS).map_err(err)?;
        add_pull_totals(&txn)?;
        txn.commit().map_err(err)?;
        let store = Self {
            db: Arc::new(db),
            path: path.to_path_buf(),
            opened_as: file_identity(path),
        };
        Ok((store, created))
    }

    /// Runs `f` on the blocking pool: a commit that waits for the disk
    /// must not hold an async worker meanwhile.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> MetaResult<T> + Send + 'static,
    ) -> MetaResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(err)?
    }
}

/// The (device, inode) of a file, if it can be read.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| crate::os::file_id(&m))
}

/// Adds up, once, the pulls each repository's manifests counted before
/// the store kept a total per repository (a row that does not decode
/// counts nothing).
fn add_pull_totals(txn: &redb::WriteTransaction) -> MetaResult<()> {
    let mut settings = txn.open_table(SETTINGS).map_err(err)?;
    if settings.get(PULL_TOTALS).map_err(err)?.is_some() {
        return Ok(());
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for row in txn.open_table(PULLS).map_err(err)?.iter().map_err(err)? {
        let (k, v) = row.map_err(err)?;
        let repo = k.value().split('\0').next().unwrap_or_default();
        let count = serde_json::from_str::<PullStats>(v.value()).map_or(0, |s| s.count);
        *totals.entry(repo.to_string()).or_default() += count;
    }
    let mut t = txn.open_table(REPO_PULLS).map_err(err)?;
    for (repo, n) in totals {
        let now = t.get(repo.as_str()).map_err(err)?.map_or(0, |v| v.value());
        t.insert(repo.as_str(), now + n).map_err(err)?;
    }
    settings.insert(PULL_TOTALS, "1").map_err(err)?;
    Ok(())
}

/// Counts one more write that changes what search shows, in `txn`.
fn bump_generation(txn: &redb::WriteTransaction) -> MetaResult<()> {
    let mut t = txn.open_table(COUNTERS).map_err(err)?;
    let now = t.get(GENERATION).map_err(err)?.map_or(0, |v| v.value());
    t.insert(GENERATION, now.wrapping_add(1)).map_err(err)?;
    Ok(())
}

fn adjust_refs(
    refs: &mut redb::Table<&str, u64>,
    repo: &str,
    m: &ManifestMeta,
    delta: i64,
) -> MetaResult<()> {
    for blob in m.references() {
        let k = key(repo, blob);
        let now = refs.get(k.as_str()).map_err(err)?.map_or(0, |v| v.value());
        let next = (now as i64 + delta).max(0) as u64;
        if next == 0 {
            refs.remove(k.as_str()).map_err(err)?;
        } else {
            refs.insert(k.as_str(), next).map_err(err)?;
        }
    }
    Ok(())
}

fn apply_txn(db: &Database, repo: &str, change: &RepoChange, durable: bool) -> MetaResult<()> {
    let now = super::unix_now();
    let mut txn = db.begin_write().map_err(err)?;
    if !durable {
        txn.set_durability(Durability::None).map_err(err)?;
    }
    {
        let mut tags = txn.open_table(TAGS).map_err(err)?;
        let mut tag_times = txn.open_table(TAG_TIMES).map_err(err)?;
        let mut manifests = txn.open_table(MANIFESTS).map_err(err)?;
        let mut referrers = txn.open_table(REFERRERS).map_err(err)?;
        let mut refs = txn.open_table(BLOB_REFS).map_err(err)?;
        let mut repos = txn.open_table(REPOS).map_err(err)?;
        let mut pulls = txn.open_table(PULLS).map_err(err)?;
        let (lo, hi) = prefix(repo);
        // A replace keeps the time of a tag still on the same digest: the
        // tags and their times before it.
        let mut before: HashMap<String, (String, Option<u64>)> = HashMap::new();
        if change.replace {
            for row in tags.range(lo.as_str()..hi.as_str()).map_err(err)? {
                let (k, v) = row.map_err(err)?;
                let tag = &k.value()[lo.len()..];
                let time = tag_times.get(k.value()).map_err(err)?.map(|t| t.value());
                before.insert(tag.to_string(), (v.value().to_string(), time));
            }
            tags.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
            tag_times
                .retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
            manifests
                .retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
            referrers
                .retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
            refs.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
        }
        for digest in &change.remove_manifests {
            let old = manifests.remove(key(repo, digest).as_str()).map_err(err)?;
            if let Some(old) = old {
                let old: ManifestMeta = serde_json::from_str(old.value()).map_err(corrupt)?;
                adjust_refs(&mut refs, repo, &old, -1)?;
                if let Some(s) = &old.subject {
                    referrers
                        .remove(key(repo, format_args!("{s}\0{digest}")).as_str())
                        .map_err(err)?;
                }
            }
            // A manifest deleted takes its pull history and its tags along.
            pulls.remove(key(repo, digest).as_str()).map_err(err)?;
            let mut tagged = Vec::new();
            for row in tags.range(lo.as_str()..hi.as_str()).map_err(err)? {
                let (k, d) = row.map_err(err)?;
                if d.value() == digest.as_str() {
                    tagged.push(k.value().to_string());
                }
            }
            for k in tagged {
                tags.remove(k.as_str()).map_err(err)?;
                tag_times.remove(k.as_str()).map_err(err)?;
            }
        }
        for m in &change.put_manifests {
            let k = key(repo, &m.digest);
            let old = manifests
                .get(k.as_str())
                .map_err(err)?
                .map(|v| v.value().to_string());
            if let Some(old) = old {
                let old: ManifestMeta = serde_json::from_str(&old).map_err(corrupt)?;
                adjust_refs(&mut refs, repo, &old, -1)?;
                if let Some(s) = &old.subject {
                    referrers
                        .remove(key(repo, format_args!("{s}\0{}", m.digest)).as_str())
                        .map_err(err)?;
                }
            }
            let json = serde_json::to_string(m).map_err(err)?;
            manifests.insert(k.as_str(), json.as_str()).map_err(err)?;
            adjust_refs(&mut refs, repo, m, 1)?;
            if let Some(s) = &m.subject {
                referrers
                    .insert(key(repo, format_args!("{s}\0{}", m.digest)).as_str(), "")
                    .map_err(err)?;
            }
        }
        for t in &change.remove_tags {
            tags.remove(key(repo, t).as_str()).map_err(err)?;
            tag_times.remove(key(repo, t).as_str()).map_err(err)?;
        }
        for (t, d) in &change.set_tags {
            let k = key(repo, t);
            tags.insert(k.as_str(), d.as_str()).map_err(err)?;
            let time = match before.get(t) {
                Some((was, time)) if was == d => *time,
                _ => Some(now),
            };
            match time {
                Some(time) => tag_times.insert(k.as_str(), time).map_err(err)?,
                None => tag_times.remove(k.as_str()).map_err(err)?,
            };
        }
        repos.insert(repo, change.version.as_str()).map_err(err)?;
        let mut revisions = txn.open_table(REVISIONS).map_err(err)?;
        let revision = revisions.get(repo).map_err(err)?.map_or(0, |v| v.value());
        revisions.insert(repo, revision + 1).map_err(err)?;
    }
    bump_generation(&txn)?;
    txn.commit().map_err(err)
}

fn remove_repo_txn(db: &Database, repo: &str) -> MetaResult<()> {
    let txn = db.begin_write().map_err(err)?;
    {
        let (lo, hi) = prefix(repo);
        for def in [TAGS, MANIFESTS, REFERRERS, PULLS] {
            let mut t = txn.open_table(def).map_err(err)?;
            t.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
        }
        for def in [BLOB_REFS, TAG_TIMES] {
            let mut t = txn.open_table(def).map_err(err)?;
            t.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
        }
        txn.open_table(REPOS)
            .map_err(err)?
            .remove(repo)
            .map_err(err)?;
        for def in [STARS, REPO_PULLS, REVISIONS] {
            txn.open_table(def)
                .map_err(err)?
                .remove(repo)
                .map_err(err)?;
        }
    }
    bump_generation(&txn)?;
    txn.commit().map_err(err)
}

fn record_pull_txn(db: &Database, repo: &str, digest: &str, count: u64, at: u64) -> MetaResult<()> {
    let mut txn = db.begin_write().map_err(err)?;
    txn.set_durability(Durability::None).map_err(err)?;
    {
        let mut t = txn.open_table(PULLS).map_err(err)?;
        let k = key(repo, digest);
        let mut stats: PullStats = match t.get(k.as_str()).map_err(err)? {
            Some(v) => serde_json::from_str(v.value()).map_err(corrupt)?,
            None => PullStats::default(),
        };
        stats.count += count;
        stats.last_pulled = Some(at);
        let json = serde_json::to_string(&stats).map_err(err)?;
        t.insert(k.as_str(), json.as_str()).map_err(err)?;
        let mut totals = txn.open_table(REPO_PULLS).map_err(err)?;
        let total = totals.get(repo).map_err(err)?.map_or(0, |v| v.value());
        totals.insert(repo, total + count).map_err(err)?;
    }
    bump_generation(&txn)?;
    txn.commit().map_err(err)
}

/// The key prefix of a user's list.
fn list_of(user: &str, list: UserList) -> String {
    key(list.key(), user)
}

fn toggle_txn(db: &Database, user: &str, list: UserList, repo: &str) -> MetaResult<bool> {
    let txn = db.begin_write().map_err(err)?;
    let listed = {
        let mut lists = txn.open_table(USER_REPOS).map_err(err)?;
        let k = key(list_of(user, list), repo);
        let was = lists.remove(k.as_str()).map_err(err)?.is_some();
        if !was {
            lists.insert(k.as_str(), "").map_err(err)?;
        }
        !was
    };
    if list == UserList::Starred {
        let mut stars = txn.open_table(STARS).map_err(err)?;
        let n = stars.get(repo).map_err(err)?.map_or(0, |v| v.value());
        match if listed { n + 1 } else { n.saturating_sub(1) } {
            0 => stars.remove(repo).map_err(err)?,
            n => stars.insert(repo, n).map_err(err)?,
        };
    }
    bump_generation(&txn)?;
    txn.commit().map_err(err)?;
    Ok(listed)
}

#[async_trait::async_trait]
impl MetaStore for RedbMetaStore {
    async fn repos(&self) -> MetaResult<Vec<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(REPOS).map_err(err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(err)? {
            let (k, _) = row.map_err(err)?;
            out.push(k.value().to_string());
        }
        Ok(out)
    }

    async fn repo_stamps(&self) -> MetaResult<Vec<(String, RepoStamp)>> {
        let txn = self.db.begin_read().map_err(err)?;
        let repos = txn.open_table(REPOS).map_err(err)?;
        let pulls = txn.open_table(REPO_PULLS).map_err(err)?;
        let stars = txn.open_table(STARS).map_err(err)?;
        let revisions = txn.open_table(REVISIONS).map_err(err)?;
        let mut out = Vec::new();
        for row in repos.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let count = |t: &redb::ReadOnlyTable<&str, u64>| -> MetaResult<u64> {
                Ok(t.get(k.value()).map_err(err)?.map_or(0, |v| v.value()))
            };
            let stamp = RepoStamp {
                version: IndexVersion::new(v.value()),
                pulls: count(&pulls)?,
                stars: count(&stars)?,
                revision: count(&revisions)?,
            };
            out.push((k.value().to_string(), stamp));
        }
        Ok(out)
    }

    async fn apply(&self, repo: &RepoName, change: &RepoChange, durable: bool) -> MetaResult<()> {
        if !durable {
            return apply_txn(&self.db, repo.as_str(), change, false);
        }
        let (repo, change) = (repo.to_string(), change.clone());
        self.blocking(move |db| apply_txn(db, &repo, &change, true))
            .await
    }

    async fn remove_repo(&self, repo: &str) -> MetaResult<()> {
        let repo = repo.to_string();
        self.blocking(move |db| remove_repo_txn(db, &repo)).await
    }

    async fn record_pulls(
        &self,
        repo: &RepoName,
        digest: &Digest,
        count: u64,
        at: u64,
    ) -> MetaResult<()> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.blocking(move |db| record_pull_txn(db, &repo, &digest, count, at))
            .await
    }

    async fn version(&self, repo: &RepoName) -> MetaResult<Option<IndexVersion>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(REPOS).map_err(err)?;
        Ok(t.get(repo.as_str())
            .map_err(err)?
            .map(|v| IndexVersion::new(v.value())))
    }

    async fn tags(&self, repo: &RepoName) -> MetaResult<Vec<(String, String)>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(TAGS).map_err(err)?;
        let (lo, hi) = prefix(repo.as_str());
        let mut out = Vec::new();
        for row in t.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            out.push((k.value()[lo.len()..].to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    async fn tag_times(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, u64>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(TAG_TIMES).map_err(err)?;
        let (lo, hi) = prefix(repo.as_str());
        let mut out = BTreeMap::new();
        for row in t.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            out.insert(k.value()[lo.len()..].to_string(), v.value());
        }
        Ok(out)
    }

    async fn tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<Option<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(TAGS).map_err(err)?;
        Ok(t.get(key(repo, tag).as_str())
            .map_err(err)?
            .map(|v| v.value().to_string()))
    }

    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Option<ManifestMeta>> {
        self.manifest_row(repo, digest)
    }

    async fn manifest_head(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<ManifestHead>> {
        self.manifest_row(repo, digest)
    }

    async fn manifests(&self, repo: &RepoName) -> MetaResult<Vec<ManifestMeta>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(MANIFESTS).map_err(err)?;
        let (lo, hi) = prefix(repo.as_str());
        let mut out = Vec::new();
        for row in t.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (_, v) = row.map_err(err)?;
            out.push(serde_json::from_str(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<ManifestMeta>> {
        let txn = self.db.begin_read().map_err(err)?;
        let r = txn.open_table(REFERRERS).map_err(err)?;
        let m = txn.open_table(MANIFESTS).map_err(err)?;
        let (lo, hi) = prefix(&key(repo, digest));
        let mut out = Vec::new();
        for row in r.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (k, _) = row.map_err(err)?;
            let referrer = &k.value()[lo.len()..];
            if let Some(v) = m.get(key(repo, referrer).as_str()).map_err(err)? {
                out.push(serde_json::from_str(v.value()).map_err(corrupt)?);
            }
        }
        Ok(out)
    }

    async fn blob_refs(&self, repo: &RepoName, blob: &Digest) -> MetaResult<u64> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(BLOB_REFS).map_err(err)?;
        Ok(t.get(key(repo, blob).as_str())
            .map_err(err)?
            .map_or(0, |v| v.value()))
    }

    async fn pull_stats(&self, repo: &RepoName, digest: &Digest) -> MetaResult<PullStats> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(PULLS).map_err(err)?;
        match t.get(key(repo, digest).as_str()).map_err(err)? {
            Some(v) => serde_json::from_str(v.value()).map_err(corrupt),
            None => Ok(PullStats::default()),
        }
    }

    async fn pull_stats_all(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, PullStats>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(PULLS).map_err(err)?;
        let (lo, hi) = prefix(repo.as_str());
        let mut out = BTreeMap::new();
        for row in t.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let stats = serde_json::from_str(v.value()).map_err(corrupt)?;
            out.insert(k.value()[lo.len()..].to_string(), stats);
        }
        Ok(out)
    }

    async fn generation(&self) -> MetaResult<u64> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(COUNTERS).map_err(err)?;
        Ok(t.get(GENERATION).map_err(err)?.map_or(0, |v| v.value()))
    }

    async fn toggle_user_repo(
        &self,
        user: &str,
        list: UserList,
        repo: &RepoName,
    ) -> MetaResult<bool> {
        let (user, repo) = (user.to_string(), repo.to_string());
        self.blocking(move |db| toggle_txn(db, &user, list, &repo))
            .await
    }

    async fn user_repos(&self, user: &str, list: UserList) -> MetaResult<Vec<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(USER_REPOS).map_err(err)?;
        let (lo, hi) = prefix(&list_of(user, list));
        let mut out = Vec::new();
        for row in t.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (k, _) = row.map_err(err)?;
            out.push(k.value()[lo.len()..].to_string());
        }
        Ok(out)
    }

    async fn setting(&self, name: &str) -> MetaResult<Option<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(SETTINGS).map_err(err)?;
        Ok(t.get(name).map_err(err)?.map(|v| v.value().to_string()))
    }

    async fn set_setting(&self, name: &str, value: &str) -> MetaResult<()> {
        let (name, value) = (name.to_string(), value.to_string());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(err)?;
            txn.open_table(SETTINGS)
                .map_err(err)?
                .insert(name.as_str(), value.as_str())
                .map_err(err)?;
            txn.commit().map_err(err)
        })
        .await
    }

    async fn scan_report(&self, digest: &Digest) -> MetaResult<Option<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(SCANS).map_err(err)?;
        Ok(t.get(digest.to_string().as_str())
            .map_err(err)?
            .map(|v| v.value().to_string()))
    }

    async fn set_scan_report(&self, digest: &Digest, report: Option<&str>) -> MetaResult<()> {
        let (digest, report) = (digest.to_string(), report.map(str::to_string));
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(err)?;
            txn.set_durability(Durability::None).map_err(err)?;
            {
                let mut t = txn.open_table(SCANS).map_err(err)?;
                match &report {
                    Some(r) => {
                        t.insert(digest.as_str(), r.as_str()).map_err(err)?;
                    }
                    None => {
                        t.remove(digest.as_str()).map_err(err)?;
                    }
                }
            }
            bump_generation(&txn)?;
            txn.commit().map_err(err)
        })
        .await
    }

    async fn flush(&self) -> MetaResult<()> {
        self.blocking(|db| db.begin_write().map_err(err)?.commit().map_err(err))
            .await
    }

    /// A read of the settings (the file is held open, so what was written
    /// stays), and a look at the file: one replaced (another inode) or
    /// truncated to nothing under the running server fails the check.
    async fn check(&self) -> MetaResult<StoreCheck> {
        self.setting("roots").await?;
        let now = std::fs::metadata(&self.path).ok();
        let replaced = file_identity(&self.path) != self.opened_as;
        if replaced || now.is_none_or(|m| m.len() == 0) {
            return Err(MetaError::Corrupt {
                location: format!("the metadata store ({})", self.path.display()),
                message: "its file was replaced, removed or truncated under the running server; restart berth to rebuild it".into(),
            });
        }
        Ok(StoreCheck::Kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, created) = RedbMetaStore::open(&dir.path().join("meta.redb")).expect("open");
        assert!(created);
        crate::meta::conformance::run(&store).await;
        drop(store);
        let (_, created) = RedbMetaStore::open(&dir.path().join("meta.redb")).expect("reopen");
        assert!(!created);
    }

    /// A file that is not a redb database is moved aside and a new store
    /// made (to be derived from storage); a file held by another open
    /// store is refused, never moved.
    #[tokio::test]
    async fn a_damaged_file_is_moved_aside_and_made_anew() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("meta.redb");
        std::fs::write(&path, b"not a database at all, but long enough to be read").expect("write");
        let (store, created) = RedbMetaStore::open(&path).expect("open");
        assert!(created, "a new store, so it is derived from storage");
        assert_eq!(store.repos().await.expect("repos"), Vec::<String>::new());
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("meta.redb.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let held = RedbMetaStore::open(&path);
        assert!(held.is_err(), "the file is held by the open store");
        assert!(path.exists());
        assert_eq!(store.check().await.expect("check"), StoreCheck::Kept);
    }

    /// The file replaced or truncated under the open store fails the
    /// check (the store goes on with the file it opened).
    #[tokio::test]
    async fn a_file_replaced_or_truncated_under_the_store_fails_the_check() {
        for how in ["replaced", "truncated", "removed"] {
            let dir = tempfile::tempdir().expect("tmp");
            let path = dir.path().join("meta.redb");
            let (store, _) = RedbMetaStore::open(&path).expect("open");
            assert_eq!(store.check().await.expect("check"), StoreCheck::Kept);
            match how {
                "replaced" => {
                    let other = dir.path().join("restored");
                    std::fs::copy(&path, &other).expect("copy");
                    std::fs::rename(&other, &path).expect("rename");
                }
                "truncated" => {
                    std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .expect("open file")
                        .set_len(0)
                        .expect("truncate");
                }
                _ => std::fs::remove_file(&path).expect("remove"),
            }
            let e = store.check().await.expect_err(how);
            assert!(e.to_string().contains("restart berth"), "{how}: {e}");
        }
    }

    /// The pulls of each repository, as its stamp counts them.
    async fn pulls(store: &RedbMetaStore) -> Vec<(String, u64)> {
        let stamps = store.repo_stamps().await.expect("stamps");
        stamps.into_iter().map(|(n, s)| (n, s.pulls)).collect()
    }

    #[tokio::test]
    async fn a_store_from_before_pull_totals_adds_them_up_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("meta.redb");
        let (store, _) = RedbMetaStore::open(&path).expect("open");
        let app: RepoName = "old/app".parse().expect("name");
        let change = RepoChange {
            version: IndexVersion::new("v1"),
            ..Default::default()
        };
        store.apply(&app, &change, true).await.expect("apply");
        for (m, n) in [("m1", 3), ("m2", 2)] {
            let d = Digest::sha256(m.as_bytes());
            store.record_pulls(&app, &d, n, 10).await.expect("pulls");
        }
        // As an older Berth left it: no totals, and no setting saying so.
        let txn = store.db.begin_write().expect("txn");
        txn.open_table(REPO_PULLS)
            .expect("table")
            .retain(|_, _| false)
            .expect("clear");
        txn.open_table(SETTINGS)
            .expect("table")
            .remove(PULL_TOTALS)
            .expect("remove");
        txn.commit().expect("commit");
        drop(store);

        let (store, _) = RedbMetaStore::open(&path).expect("reopen");
        assert_eq!(pulls(&store).await, vec![("old/app".to_string(), 5)]);
        let d = Digest::sha256(b"m1");
        store.record_pulls(&app, &d, 1, 20).await.expect("pulls");
        store.flush().await.expect("flush");
        drop(store);
        let (store, _) = RedbMetaStore::open(&path).expect("reopen");
        assert_eq!(
            pulls(&store).await,
            vec![("old/app".to_string(), 6)],
            "added up once"
        );
    }
}

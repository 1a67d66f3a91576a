//! [`RedbMetaStore`]: the metadata store in one redb file.
//!
//! Keys are `repo \0 rest` strings, so one repository's rows are a range
//! (`repo\0` up to `repo\x01`; names never hold control characters).

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{IndexVersion, ManifestMeta, MetaError, MetaResult, MetaStore, PullStats, RepoChange};

/// repo → the `index.json` version (opaque, as storage spells it).
const REPOS: TableDefinition<&str, &str> = TableDefinition::new("repos");
/// repo\0tag → digest.
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
/// repo\0digest → manifest (JSON).
const MANIFESTS: TableDefinition<&str, &str> = TableDefinition::new("manifests");
/// repo\0subject\0digest → "".
const REFERRERS: TableDefinition<&str, &str> = TableDefinition::new("referrers");
/// repo\0blob → number of manifests referencing it.
const BLOB_REFS: TableDefinition<&str, u64> = TableDefinition::new("blob_refs");
/// repo\0digest → pull statistics (JSON).
const PULLS: TableDefinition<&str, &str> = TableDefinition::new("pulls");
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

fn key(repo: &str, rest: &str) -> String {
    format!("{repo}\0{rest}")
}

/// The key range of one repository's rows (or of a sub-prefix of them).
fn prefix(p: &str) -> (String, String) {
    (format!("{p}\0"), format!("{p}\u{1}"))
}

pub struct RedbMetaStore {
    db: Database,
}

impl RedbMetaStore {
    /// Opens (creating) the store at `path`. Returns whether the file is
    /// new, in which case the caller derives it from storage.
    pub fn open(path: &Path) -> MetaResult<(Self, bool)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let created = !path.exists();
        let db = Database::create(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(REPOS).map_err(err)?;
        txn.open_table(TAGS).map_err(err)?;
        txn.open_table(MANIFESTS).map_err(err)?;
        txn.open_table(REFERRERS).map_err(err)?;
        txn.open_table(BLOB_REFS).map_err(err)?;
        txn.open_table(PULLS).map_err(err)?;
        txn.open_table(SETTINGS).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok((Self { db }, created))
    }
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

impl MetaStore for RedbMetaStore {
    fn repos(&self) -> MetaResult<Vec<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(REPOS).map_err(err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(err)? {
            let (k, _) = row.map_err(err)?;
            out.push(k.value().to_string());
        }
        Ok(out)
    }

    fn version(&self, repo: &str) -> MetaResult<Option<IndexVersion>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(REPOS).map_err(err)?;
        Ok(t.get(repo)
            .map_err(err)?
            .map(|v| IndexVersion::new(v.value())))
    }

    fn apply(&self, repo: &str, change: &RepoChange, durable: bool) -> MetaResult<()> {
        let mut txn = self.db.begin_write().map_err(err)?;
        if !durable {
            txn.set_durability(Durability::None).map_err(err)?;
        }
        {
            let mut tags = txn.open_table(TAGS).map_err(err)?;
            let mut manifests = txn.open_table(MANIFESTS).map_err(err)?;
            let mut referrers = txn.open_table(REFERRERS).map_err(err)?;
            let mut refs = txn.open_table(BLOB_REFS).map_err(err)?;
            let mut repos = txn.open_table(REPOS).map_err(err)?;
            let mut pulls = txn.open_table(PULLS).map_err(err)?;
            let (lo, hi) = prefix(repo);
            if change.replace {
                tags.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
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
                            .remove(key(repo, &format!("{s}\0{digest}")).as_str())
                            .map_err(err)?;
                    }
                }
                // A manifest deleted takes its pull history and its tags along.
                pulls.remove(key(repo, digest).as_str()).map_err(err)?;
                tags.retain_in(lo.as_str()..hi.as_str(), |_, d| d != digest.as_str())
                    .map_err(err)?;
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
                            .remove(key(repo, &format!("{s}\0{}", m.digest)).as_str())
                            .map_err(err)?;
                    }
                }
                let json = serde_json::to_string(m).map_err(err)?;
                manifests.insert(k.as_str(), json.as_str()).map_err(err)?;
                adjust_refs(&mut refs, repo, m, 1)?;
                if let Some(s) = &m.subject {
                    referrers
                        .insert(key(repo, &format!("{s}\0{}", m.digest)).as_str(), "")
                        .map_err(err)?;
                }
            }
            for t in &change.remove_tags {
                tags.remove(key(repo, t).as_str()).map_err(err)?;
            }
            for (t, d) in &change.set_tags {
                tags.insert(key(repo, t).as_str(), d.as_str())
                    .map_err(err)?;
            }
            repos.insert(repo, change.version.as_str()).map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn remove_repo(&self, repo: &str) -> MetaResult<()> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let (lo, hi) = prefix(repo);
            for def in [TAGS, MANIFESTS, REFERRERS, PULLS] {
                let mut t = txn.open_table(def).map_err(err)?;
                t.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                    .map_err(err)?;
            }
            let mut refs = txn.open_table(BLOB_REFS).map_err(err)?;
            refs.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(err)?;
            txn.open_table(REPOS)
                .map_err(err)?
                .remove(repo)
                .map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn tags(&self, repo: &str) -> MetaResult<Vec<(String, String)>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(TAGS).map_err(err)?;
        let (lo, hi) = prefix(repo);
        let mut out = Vec::new();
        for row in t.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            out.push((k.value()[lo.len()..].to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    fn tag(&self, repo: &str, tag: &str) -> MetaResult<Option<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(TAGS).map_err(err)?;
        Ok(t.get(key(repo, tag).as_str())
            .map_err(err)?
            .map(|v| v.value().to_string()))
    }

    fn manifest(&self, repo: &str, digest: &str) -> MetaResult<Option<ManifestMeta>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(MANIFESTS).map_err(err)?;
        match t.get(key(repo, digest).as_str()).map_err(err)? {
            Some(v) => serde_json::from_str(v.value()).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    fn manifests(&self, repo: &str) -> MetaResult<Vec<ManifestMeta>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(MANIFESTS).map_err(err)?;
        let (lo, hi) = prefix(repo);
        let mut out = Vec::new();
        for row in t.range(lo.as_str()..hi.as_str()).map_err(err)? {
            let (_, v) = row.map_err(err)?;
            out.push(serde_json::from_str(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }

    fn referrers(&self, repo: &str, digest: &str) -> MetaResult<Vec<ManifestMeta>> {
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

    fn blob_refs(&self, repo: &str, blob: &str) -> MetaResult<u64> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(BLOB_REFS).map_err(err)?;
        Ok(t.get(key(repo, blob).as_str())
            .map_err(err)?
            .map_or(0, |v| v.value()))
    }

    fn record_pull(&self, repo: &str, digest: &str, at: u64) -> MetaResult<()> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(Durability::None).map_err(err)?;
        {
            let mut t = txn.open_table(PULLS).map_err(err)?;
            let k = key(repo, digest);
            let mut stats: PullStats = match t.get(k.as_str()).map_err(err)? {
                Some(v) => serde_json::from_str(v.value()).map_err(corrupt)?,
                None => PullStats::default(),
            };
            stats.count += 1;
            stats.last_pulled = Some(at);
            let json = serde_json::to_string(&stats).map_err(err)?;
            t.insert(k.as_str(), json.as_str()).map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn pull_stats(&self, repo: &str, digest: &str) -> MetaResult<PullStats> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(PULLS).map_err(err)?;
        match t.get(key(repo, digest).as_str()).map_err(err)? {
            Some(v) => serde_json::from_str(v.value()).map_err(corrupt),
            None => Ok(PullStats::default()),
        }
    }

    fn setting(&self, name: &str) -> MetaResult<Option<String>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(SETTINGS).map_err(err)?;
        Ok(t.get(name).map_err(err)?.map(|v| v.value().to_string()))
    }

    fn set_setting(&self, name: &str, value: &str) -> MetaResult<()> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(SETTINGS)
            .map_err(err)?
            .insert(name, value)
            .map_err(err)?;
        txn.commit().map_err(err)
    }

    fn flush(&self) -> MetaResult<()> {
        self.db.begin_write().map_err(err)?.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, created) = RedbMetaStore::open(&dir.path().join("meta.redb")).expect("open");
        assert!(created);
        crate::meta::conformance::run(&store);
        drop(store);
        let (_, created) = RedbMetaStore::open(&dir.path().join("meta.redb")).expect("reopen");
        assert!(!created);
    }
}

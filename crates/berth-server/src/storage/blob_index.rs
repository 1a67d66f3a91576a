//! The dedupe index: for each blob digest, one repository known to hold it
//! under this root, so a later copy can be a hard link to it.
//!
//! It is a hint, never the truth: an entry whose file is gone (deleted, or
//! collected) is simply a miss, and the blob is stored in full and the entry
//! rewritten. So writes use redb's non-durable commits, made durable every
//! [`DURABLE_EVERY`] writes and by [`BlobIndex::flush`]; losing the tail on a
//! crash only costs some future links.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use super::{StorageError, StorageResult};

/// digest (`sha256:…`) → repository name.
const LOCATIONS: TableDefinition<&str, &str> = TableDefinition::new("blob_locations");
/// Flags about the root, such as whether a full dedupe pass has completed.
const FLAGS: TableDefinition<&str, bool> = TableDefinition::new("flags");
/// Every this many writes, one is made durable.
const DURABLE_EVERY: u64 = 64;

/// The file, under the root's `.berth/` (a directory no repository name can
/// take, and unlike zot's `cache.db`, so a zot root can be served as is).
pub(crate) const INDEX_FILE: &str = ".berth/blobs.redb";

pub(crate) struct BlobIndex {
    db: Database,
    writes: AtomicU64,
}

fn db_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        path: INDEX_FILE.into(),
        message: e.to_string(),
    }
}

impl BlobIndex {
    pub(crate) fn open(root: &Path) -> StorageResult<Self> {
        let path = root.join(INDEX_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::create(&path).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(LOCATIONS).map_err(db_err)?;
        txn.open_table(FLAGS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Self {
            db,
            writes: AtomicU64::new(0),
        })
    }

    /// The repository recorded for `digest`.
    pub(crate) fn get(&self, digest: &str) -> StorageResult<Option<String>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(LOCATIONS).map_err(db_err)?;
        Ok(table
            .get(digest)
            .map_err(db_err)?
            .map(|v| v.value().to_string()))
    }

    /// Records `repo` as holding `digest`.
    pub(crate) fn put(&self, digest: &str, repo: &str) -> StorageResult<()> {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let mut txn = self.db.begin_write().map_err(db_err)?;
        if !(n + 1).is_multiple_of(DURABLE_EVERY) {
            txn.set_durability(Durability::None).map_err(db_err)?;
        }
        {
            let mut table = txn.open_table(LOCATIONS).map_err(db_err)?;
            table.insert(digest, repo).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    pub(crate) fn flag(&self, name: &str) -> StorageResult<bool> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(FLAGS).map_err(db_err)?;
        Ok(table.get(name).map_err(db_err)?.is_some_and(|v| v.value()))
    }

    /// Sets a flag durably.
    pub(crate) fn set_flag(&self, name: &str, value: bool) -> StorageResult<()> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(FLAGS).map_err(db_err)?;
            table.insert(name, value).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Makes every write so far durable.
    pub(crate) fn flush(&self) -> StorageResult<()> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.commit().map_err(db_err)
    }
}

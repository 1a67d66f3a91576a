//! The dedupe index: for each blob digest, one repository known to hold it
//! under this root, so a later copy can be a hard link to it.
//!
//! It is a hint, never the truth: an entry whose file is gone (deleted, or
//! collected) is simply a miss, and the blob is stored in full and the entry
//! rewritten. So new entries wait in memory (where lookups see them); once
//! [`WRITE_EVERY`] wait, all that wait are written in one durable commit
//! on a blocking thread that no request waits for, and [`BlobIndex::flush`]
//! (also run when the index is dropped) writes the rest: recording an
//! upload's location never writes the database nor waits for a disk sync,
//! so it can run on an async worker. Writes are made one at a time, each
//! of everything then waiting, and an entry leaves memory only once it is
//! written; after a write fails the next background one waits
//! [`RETRY_AFTER`]. An entry lost in a crash only costs a future link.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};

use super::{StorageError, StorageResult};

/// digest (`sha256:…`) → repository name.
const LOCATIONS: TableDefinition<&str, &str> = TableDefinition::new("blob_locations");
/// Flags about the root, such as whether a full dedupe pass has completed.
const FLAGS: TableDefinition<&str, bool> = TableDefinition::new("flags");
/// New entries written to the database together.
const WRITE_EVERY: usize = 64;
/// Entries kept in memory at most when writes keep failing; past it they
/// are dropped (each is only a hint).
const PENDING_MAX: usize = 100_000;
/// After a failed write, the next background write waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The file, under the root's `.berth/` (a directory no repository name can
/// take, and unlike zot's `cache.db`, so a zot root can be served as is).
pub(crate) const INDEX_FILE: &str = ".berth/blobs.redb";

pub(crate) struct BlobIndex {
    db: Database,
    /// Entries not yet written: digest → repository.
    pending: Mutex<HashMap<String, String>>,
    /// Held while writing: one write at a time, in order.
    writer: Mutex<()>,
    /// A background write is queued or running.
    writing: AtomicBool,
    /// No background write before this (set when one failed).
    retry_at: Mutex<Option<Instant>>,
}

/// A background write: clears [`BlobIndex::writing`] however it ends
/// (done, panicked, or dropped before it ran).
struct WriteJob(Arc<BlobIndex>);

impl Drop for WriteJob {
    fn drop(&mut self) {
        self.0.writing.store(false, Ordering::Release);
    }
}

impl WriteJob {
    /// Writes until fewer than a batch wait (more may arrive meanwhile);
    /// after a failure, waits for the retry time.
    fn run(self) {
        loop {
            if let Err(e) = self.0.write_pending() {
                *self.0.retry_at() = Some(Instant::now() + RETRY_AFTER);
                tracing::warn!(target: "berth::dedupe", "dedupe index write failed (next try in {}s): {e}", RETRY_AFTER.as_secs());
                return;
            }
            if self.0.pending().len() < WRITE_EVERY {
                return;
            }
        }
    }
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
        // redb caches up to 1 GiB by default; an index of every blob's
        // location needs far less to answer from memory.
        let (db, _) = crate::redb_file::open(&path, 16 << 20).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(LOCATIONS).map_err(db_err)?;
        txn.open_table(FLAGS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Self {
            db,
            pending: Mutex::new(HashMap::new()),
            writer: Mutex::new(()),
            writing: AtomicBool::new(false),
            retry_at: Mutex::new(None),
        })
    }

    /// The repository recorded for `digest`.
    pub(crate) fn get(&self, digest: &str) -> StorageResult<Option<String>> {
        if let Some(repo) = self.pending().get(digest) {
            return Ok(Some(repo.clone()));
        }
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(LOCATIONS).map_err(db_err)?;
        Ok(table
            .get(digest)
            .map_err(db_err)?
            .map(|v| v.value().to_string()))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `repo` as holding `digest`: in memory at once, in the
    /// database with the next batch. Never waits for the disk when called
    /// on a Tokio runtime (the batch is written on a blocking thread).
    pub(crate) fn put(self: &Arc<Self>, digest: &str, repo: &str) {
        {
            let mut pending = self.pending();
            if pending.len() >= PENDING_MAX {
                tracing::warn!(target: "berth::dedupe", "dedupe index: {} entries not written yet, dropped", pending.len());
                pending.clear();
            }
            pending.insert(digest.to_string(), repo.to_string());
            if pending.len() < WRITE_EVERY {
                return;
            }
        }
        if (*self.retry_at()).is_some_and(|at| Instant::now() < at) {
            return;
        }
        if self.writing.swap(true, Ordering::AcqRel) {
            return;
        }
        let job = WriteJob(Arc::clone(self));
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || job.run())),
            Err(_) => job.run(),
        }
    }

    fn retry_at(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.retry_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes every entry waiting in one durable commit, after any write
    /// already under way. An entry leaves memory once written, unless it
    /// was changed meanwhile (then the newer value waits for the next).
    fn write_pending(&self) -> StorageResult<()> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let batch: Vec<(String, String)> = self
            .pending()
            .iter()
            .map(|(d, r)| (d.clone(), r.clone()))
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(LOCATIONS).map_err(db_err)?;
            for (digest, repo) in &batch {
                table
                    .insert(digest.as_str(), repo.as_str())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        let mut pending = self.pending();
        for (digest, repo) in batch {
            if pending.get(&digest) == Some(&repo) {
                pending.remove(&digest);
            }
        }
        Ok(())
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

    /// Writes, durably, every entry recorded so far.
    pub(crate) fn flush(&self) -> StorageResult<()> {
        self.write_pending()
    }
}

impl Drop for BlobIndex {
    fn drop(&mut self) {
        if let Err(e) = self.write_pending() {
            tracing::warn!(target: "berth::dedupe", "dedupe index: unwritten entries lost on close: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: usize) -> String {
        format!("sha256:{i:064x}")
    }

    /// Entries are seen at once, written a batch at a time, and all of
    /// them by `flush`: what a reopened index finds.
    #[test]
    fn entries_are_seen_at_once_and_written_in_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Arc::new(BlobIndex::open(dir.path()).expect("open"));
        let n = WRITE_EVERY + 10;
        for i in 0..n {
            index.put(&digest(i), &format!("repo{i}"));
        }
        for i in 0..n {
            assert_eq!(
                index.get(&digest(i)).expect("get"),
                Some(format!("repo{i}"))
            );
        }
        // Outside a runtime the put that filled a batch wrote it itself.
        assert_eq!(index.pending().len(), n - WRITE_EVERY);
        // A later entry for a digest wins.
        index.put(&digest(0), "moved");
        assert_eq!(index.get(&digest(0)).expect("get"), Some("moved".into()));
        index.flush().expect("flush");
        assert!(index.pending().is_empty());
        drop(index);
        let reopened = BlobIndex::open(dir.path()).expect("reopen");
        assert_eq!(reopened.get(&digest(0)).expect("get"), Some("moved".into()));
        for i in 1..n {
            assert_eq!(
                reopened.get(&digest(i)).expect("get"),
                Some(format!("repo{i}"))
            );
        }
    }

    fn in_database(index: &BlobIndex, digest: &str) -> Option<String> {
        let txn = index.db.begin_read().expect("read");
        let table = txn.open_table(LOCATIONS).expect("table");
        table
            .get(digest)
            .expect("get")
            .map(|v| v.value().to_string())
    }

    /// On a runtime, the put that fills a batch returns without writing
    /// it (the writer is held here, so a write on the worker would hang);
    /// the entries are found meanwhile, and a blocking thread writes them
    /// once the writer is free. A batch filled while a write runs is
    /// written too, with no flush.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_written_off_the_async_workers_and_seen_meanwhile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Arc::new(BlobIndex::open(dir.path()).expect("open"));
        let held = index.writer.lock().expect("writer");
        for i in 0..WRITE_EVERY {
            index.put(&digest(i), "r");
        }
        assert_eq!(index.pending().len(), WRITE_EVERY);
        assert_eq!(in_database(&index, &digest(0)), None);
        assert_eq!(index.get(&digest(0)).expect("get"), Some("r".into()));
        assert!(index.writing.load(Ordering::Acquire), "a write is queued");
        // More than a batch arrives while that write waits.
        for i in 0..WRITE_EVERY {
            index.put(&digest(1000 + i), "s");
        }
        drop(held);
        wait_until_written(&index).await;
        for i in 0..WRITE_EVERY {
            assert_eq!(in_database(&index, &digest(i)), Some("r".into()));
            assert_eq!(in_database(&index, &digest(1000 + i)), Some("s".into()));
        }
        // And the next batch starts a write of its own.
        for i in 0..WRITE_EVERY {
            index.put(&digest(2000 + i), "t");
        }
        wait_until_written(&index).await;
        assert_eq!(in_database(&index, &digest(2000)), Some("t".into()));
    }

    async fn wait_until_written(index: &BlobIndex) {
        for _ in 0..500 {
            if index.pending().is_empty() && !index.writing.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the entries never left memory");
    }

    /// A write that panics does not leave the index thinking one is
    /// still under way.
    #[test]
    fn a_job_that_ends_any_way_lets_the_next_write_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Arc::new(BlobIndex::open(dir.path()).expect("open"));
        index.writing.store(true, Ordering::Release);
        let job = WriteJob(Arc::clone(&index));
        let ended = std::thread::spawn(move || {
            let _job = job;
            panic!("a write that blows up");
        })
        .join();
        assert!(ended.is_err());
        assert!(!index.writing.load(Ordering::Acquire));
    }

    /// What is still in memory when the index is dropped is written.
    #[test]
    fn dropping_the_index_writes_what_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Arc::new(BlobIndex::open(dir.path()).expect("open"));
        index.put(&digest(7), "kept");
        drop(index);
        let reopened = BlobIndex::open(dir.path()).expect("reopen");
        assert_eq!(in_database(&reopened, &digest(7)), Some("kept".into()));
    }
}

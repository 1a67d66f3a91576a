//! Per-repository locks, created on demand and dropped when unused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Proof that the holder has a repository's lock: required by every
/// read-modify-write of `index.json`, so an unlocked one does not compile.
pub struct RepoGuard(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

/// A map from repository name to its lock. The std mutex guards only the
/// map and is never held across an await; the per-repository lock is a
/// tokio mutex because it is held across file I/O.
#[derive(Default)]
pub(crate) struct RepoLocks {
    map: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl RepoLocks {
    /// Waits for and takes the lock of `repo`.
    pub(crate) async fn lock(&self, repo: &str) -> RepoGuard {
        RepoGuard(self.get(repo).lock_owned().await)
    }

    /// Takes the lock of `repo` if nobody holds it.
    pub(crate) fn try_lock(&self, repo: &str) -> Option<RepoGuard> {
        self.get(repo).try_lock_owned().ok().map(RepoGuard)
    }

    /// The lock of `repo`, shared with every other holder of it.
    fn get(&self, repo: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = map.get(repo).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(repo.to_string(), Arc::downgrade(&lock));
        lock
    }
}

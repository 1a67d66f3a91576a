//! Per-repository locks, created on demand and dropped when unused; with a
//! shared lock configured (several instances on one store), each also takes
//! the lock of the same name in the shared service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_oci::{Digest, RepoName};

use super::{StorageError, StorageResult};
use crate::meta::{SharedGuard, SharedLock};

/// How long a request waits for another instance's hold on a lock before
/// it fails (a GC of a large repository can take this long; a push takes
/// milliseconds).
const SHARED_WAIT: Duration = Duration::from_secs(120);

/// Proof that the holder has a repository's lock, and of which: every
/// change of `index.json` takes the repository from the guard, so an
/// unlocked update, or one under another repository's lock, does not
/// compile. On release both parts are let go at once (the shared one's
/// release is a round trip its backend sends from a task of its own): a
/// local waiter may get the local part first and then waits for the
/// shared one.
pub struct RepoGuard {
    repo: RepoName,
    held: Arc<Held>,
}

/// Proof that the holder has an upload session's lock (its chunks are
/// applied one at a time, on whichever instance they arrive), and of
/// which.
pub struct UploadGuard {
    id: String,
    _held: Arc<Held>,
}

impl UploadGuard {
    /// The upload session whose lock this is.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Proof that the holder has a shared blob's lock (S3 dedupe: a digest's
/// pointer and links change under it), and of which.
pub struct BlobGuard {
    digest: Digest,
    _held: Arc<Held>,
}

impl BlobGuard {
    /// The blob whose lock this is.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

/// The lock itself, released when the last of the guard and the
/// [`HeldLock`]s taken from it is gone (dropping the shared part does not
/// block: its backend sends the release from a task).
struct Held {
    _shared: Option<SharedGuard>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// Keeps a lock held while it lives, past its [`RepoGuard`]: given to
/// work on a blocking thread, which runs on when the request that started
/// it is dropped, so that no other holder can start on the same files
/// before it is done.
pub struct HeldLock {
    _held: Arc<Held>,
}

impl RepoGuard {
    /// The repository whose lock this is.
    pub fn repo(&self) -> &RepoName {
        &self.repo
    }

    /// The lock, kept for as long as the returned value lives.
    pub fn keep(&self) -> HeldLock {
        HeldLock {
            _held: self.held.clone(),
        }
    }
}

/// A map from lock name to its lock. The std mutex guards only the map and
/// is never held across an await; the per-name lock is a tokio mutex
/// because it is held across I/O.
#[derive(Default)]
pub struct RepoLocks {
    map: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    shared: Option<Arc<dyn SharedLock>>,
}

impl RepoLocks {
    /// Locks that are also taken in `shared`.
    pub fn with_shared(shared: Arc<dyn SharedLock>) -> Self {
        Self {
            map: Mutex::default(),
            shared: Some(shared),
        }
    }

    /// Whether other instances share the store (through a shared lock).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Waits for and takes the repository's lock.
    pub async fn lock_repo(&self, repo: &RepoName) -> StorageResult<RepoGuard> {
        let held = self.lock(&format!("repo:{repo}")).await?;
        Ok(RepoGuard {
            repo: repo.clone(),
            held,
        })
    }

    /// Takes the repository's lock if nobody holds it.
    pub async fn try_lock_repo(&self, repo: &RepoName) -> StorageResult<Option<RepoGuard>> {
        Ok(self
            .try_lock(&format!("repo:{repo}"))
            .await?
            .map(|held| RepoGuard {
                repo: repo.clone(),
                held,
            }))
    }

    /// Waits for and takes an upload session's lock.
    pub async fn lock_upload(&self, id: &str) -> StorageResult<UploadGuard> {
        let held = self.lock(&format!("upload:{id}")).await?;
        Ok(UploadGuard {
            id: id.to_string(),
            _held: held,
        })
    }

    /// Takes an upload session's lock if nobody holds it.
    pub async fn try_lock_upload(&self, id: &str) -> StorageResult<Option<UploadGuard>> {
        Ok(self
            .try_lock(&format!("upload:{id}"))
            .await?
            .map(|held| UploadGuard {
                id: id.to_string(),
                _held: held,
            }))
    }

    /// Waits for and takes a shared blob's lock.
    pub async fn lock_blob(&self, digest: &Digest) -> StorageResult<BlobGuard> {
        let held = self.lock(&format!("blob:{digest}")).await?;
        Ok(BlobGuard {
            digest: digest.clone(),
            _held: held,
        })
    }

    /// Waits for and takes a lock of the registry's own (`name` must not
    /// start with `repo:`, `upload:` or `blob:`).
    pub async fn lock_named(&self, name: &str) -> StorageResult<HeldLock> {
        Ok(HeldLock {
            _held: self.lock(&format!("registry:{name}")).await?,
        })
    }

    /// Waits for and takes the lock `name`.
    async fn lock(&self, name: &str) -> StorageResult<Arc<Held>> {
        let local = self.get(name).lock_owned().await;
        let shared = self.take_shared(name, SHARED_WAIT).await?;
        Ok(Arc::new(Held {
            _shared: shared,
            _local: local,
        }))
    }

    /// Takes the lock `name` if nobody holds it.
    async fn try_lock(&self, name: &str) -> StorageResult<Option<Arc<Held>>> {
        let Ok(local) = self.get(name).try_lock_owned() else {
            return Ok(None);
        };
        let shared = match &self.shared {
            None => None,
            Some(_) => match self.take_shared(name, Duration::ZERO).await? {
                Some(g) => Some(g),
                None => return Ok(None),
            },
        };
        Ok(Some(Arc::new(Held {
            _shared: shared,
            _local: local,
        })))
    }

    /// The shared lock `name`, waiting up to `wait`; `None` without a
    /// shared service. Fails if another instance holds it past `wait`,
    /// unless `wait` is zero (a try).
    async fn take_shared(&self, name: &str, wait: Duration) -> StorageResult<Option<SharedGuard>> {
        let Some(shared) = self.shared.clone() else {
            return Ok(None);
        };
        let key = name.to_string();
        // A task of its own: should this request go away while the lock is
        // being taken, the task still ends, and drops (so releases) what
        // it took, instead of leaving it held until its lease lapses.
        let got = tokio::spawn(async move { shared.acquire(&key, wait).await })
            .await
            .map_err(|e| StorageError::Backend {
                location: "the shared lock service".into(),
                message: e.to_string(),
            })??;
        match got {
            Some(g) => Ok(Some(g)),
            None if wait.is_zero() => Ok(None),
            None => Err(StorageError::LockBusy {
                name: name.to_string(),
                waited_secs: wait.as_secs(),
            }),
        }
    }

    /// The local lock `name`, shared with every other holder of it.
    fn get(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = map.get(name).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(name.to_string(), Arc::downgrade(&lock));
        lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a blocking write holds keeps the lock after the guard (the
    /// request) is gone, and lets it go when it ends.
    #[tokio::test]
    async fn a_kept_lock_outlives_its_guard() {
        let locks = RepoLocks::default();
        let (a, b): (RepoName, RepoName) = ("a".parse().expect("a"), "b".parse().expect("b"));
        let guard = locks.lock_repo(&a).await.expect("lock");
        assert_eq!(guard.repo(), &a, "a guard carries its repository");
        let kept = guard.keep();
        drop(guard);
        assert!(
            locks.try_lock_repo(&a).await.expect("try").is_none(),
            "still held by what was kept"
        );
        assert!(
            locks.try_lock_repo(&b).await.expect("try").is_some(),
            "other names are free"
        );
        assert!(
            locks.try_lock_upload("a").await.expect("try").is_some(),
            "an upload's lock is not a repository's"
        );
        drop(kept);
        assert!(locks.try_lock_repo(&a).await.expect("try").is_some());
    }
}

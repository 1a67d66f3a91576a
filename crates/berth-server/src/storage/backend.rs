//! The storage seams, three small traits along what a backend does:
//! [`Layout`] (repositories and their `index.json`), [`Blobs`] (content by
//! digest) and [`Uploads`] (upload sessions). The local filesystem
//! ([`super::FsStore`]) and a bucket (`super::BucketStore`: S3, GCS,
//! Azure) implement all three, each in the file that holds its logic; [`Store`] bundles one root's three
//! handles with its locks, and `tests/it/storage_conformance.rs` runs one
//! suite per seam against both backends.
//!
//! Rules every backend keeps:
//! - a blob or `index.json` becomes visible whole or not at all (an atomic
//!   rename, an S3 PUT or multipart completion), never partially;
//! - `index.json` is changed only under the repository's lock: the methods
//!   that change it take a [`RepoGuard`] and the repository from it, so an
//!   unlocked update, or one under another repository's lock, does not
//!   compile;
//! - upload sessions live in the backend, with enough state (size, hash
//!   state, the backend's own bookkeeping) that any instance, after any
//!   restart, can take the next chunk.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_oci::{Digest, RepoName};
use bytes::Bytes;
use futures_util::stream::BoxStream;

use super::{
    IndexVersion, OciIndex, RepoGuard, RepoLocks, StorageError, StorageResult, UploadGuard,
};

/// A blob's bytes as they are read.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Chunks of an upload on their way to the backend. Bounded, so a slow
/// backend slows the client instead of filling memory.
pub type ChunkReceiver = tokio::sync::mpsc::Receiver<Bytes>;

/// What a backend keeps of one upload session between requests.
#[derive(Debug, Clone, Default)]
pub struct UploadState {
    /// Bytes received so far.
    pub size: u64,
    /// The saved SHA-256 state, valid for exactly `size` bytes; `None` when
    /// none was saved (the data is then re-hashed).
    pub hash_state: Option<Vec<u8>>,
    /// Whether data and hash state are known to have survived a crash
    /// together (a local store without `commit` cannot promise that).
    pub trusted: bool,
    /// The backend's own bookkeeping (S3: the multipart upload, its parts
    /// and the bytes not yet in a part). Opaque to the registry.
    pub backend: Vec<u8>,
}

/// A leftover of an upload (a session, its state, a temporary file), for
/// GC of abandoned uploads.
#[derive(Debug, Clone)]
pub struct UploadEntry {
    /// The name to hand back to [`Uploads::remove_upload_entry`].
    pub name: String,
    /// The upload session it belongs to, when it belongs to one.
    pub session: Option<String>,
    /// When it was last written to (for a hard-linked temporary file, when
    /// it was linked).
    pub modified: SystemTime,
}

/// Repositories and their `index.json`. Not-found is not an error:
/// lookups return `Option` or `false`.
#[async_trait::async_trait]
pub trait Layout: Send + Sync {
    /// Whether the repository exists (has an `index.json`).
    async fn repo_exists(&self, repo: &RepoName) -> StorageResult<bool>;
    /// Creates the guard's repository's layout if it is missing.
    async fn create_repo(&self, guard: &RepoGuard) -> StorageResult<()>;
    /// Every repository, sorted by name.
    async fn list_repos(&self) -> StorageResult<Vec<RepoName>>;
    /// The repository's `index.json`, `None` if the repository is missing.
    async fn read_index(&self, repo: &RepoName) -> StorageResult<Option<OciIndex>>;
    /// The current version of `index.json` (see [`IndexVersion`]).
    async fn index_version(&self, repo: &RepoName) -> StorageResult<Option<IndexVersion>>;
    /// The guard's repository's `index.json`, to be modified and written
    /// back under the lock (may come from a cache keyed by the version).
    async fn index_for_update(&self, guard: &RepoGuard) -> StorageResult<OciIndex>;
    /// Replaces the guard's repository's `index.json`.
    async fn write_index(&self, guard: &RepoGuard, index: OciIndex) -> StorageResult<()>;
    /// Reaches the root itself, for the health checks: quickly and once
    /// (no retries), an unreachable backend as [`StorageError::Unavailable`]
    /// and a root that is gone or refuses access as the error it is.
    async fn reachable(&self) -> StorageResult<()>;
}

/// Content by digest, per repository.
#[async_trait::async_trait]
pub trait Blobs: Send + Sync {
    /// A blob's size, `None` if the repository does not have it.
    async fn blob_len(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<u64>>;
    /// When the blob was last stored, linked or pushed again (GC's delay).
    async fn blob_modified(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<Option<SystemTime>>;
    /// `count` bytes of a blob from `start`.
    async fn read_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        start: u64,
        count: u64,
    ) -> StorageResult<Option<ByteStream>>;
    /// A whole blob (manifests, which are small).
    async fn read_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<Vec<u8>>>;
    /// A small blob (an image config), read whole if it has at most `max`
    /// bytes; a longer one gives its first `max + 1` bytes, so the caller
    /// can tell. A store may do it in one step (the disk store: one hop to
    /// the blocking pool, where a stream takes several).
    async fn read_small_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        max: u64,
    ) -> StorageResult<Option<Vec<u8>>> {
        use futures_util::StreamExt as _;
        let Some(mut stream) = self.read_blob_range(repo, digest, 0, max + 1).await? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StorageError::Io {
                path: format!("{repo}/blobs/{digest}").into(),
                source,
            })?;
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }
    /// Stores a small blob whose digest the caller has checked.
    async fn put_blob_bytes(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> StorageResult<()>;
    /// [`Blobs::put_blob_bytes`] (a manifest) if the repository has every
    /// blob in `needed`; else stores nothing and returns the first one
    /// missing. A store may do it all in one round trip.
    async fn put_blob_needing(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
        needed: &[Digest],
    ) -> StorageResult<Option<Digest>> {
        for d in needed {
            if self.blob_len(repo, d).await?.is_none() {
                return Ok(Some(d.clone()));
            }
        }
        self.put_blob_bytes(repo, digest, bytes).await?;
        Ok(None)
    }
    /// Removes a blob from one repository; whether it had it.
    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<bool>;
    /// Makes `from`'s blob available in `to` (the caller has created `to`);
    /// false if `from` lacks it.
    async fn link_blob(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> StorageResult<bool>;
    /// Every blob the repository holds.
    async fn list_blobs(&self, repo: &RepoName) -> StorageResult<Vec<Digest>>;
    /// Removes content shared between repositories that none uses any
    /// more and that is older than `delay` (run after GC of every
    /// repository of the store); how many blobs went. Nothing to do for a
    /// store whose repositories own their blobs.
    async fn sweep(&self, _delay: Duration) -> StorageResult<usize> {
        Ok(0)
    }
    /// Repositories of this store known to hold `digest`, found without
    /// a walk (the dedupe index on disk, the links of a deduplicated
    /// bucket; a hint, checked where cheap): what a mount without `from`
    /// may mount from. Empty where the store keeps no such record
    /// (dedupe off).
    async fn holders(&self, digest: &Digest) -> StorageResult<Vec<RepoName>>;
    /// A URL the client may fetch the blob from directly
    /// (`storage.redirectBlobURL`), `None` where the backend has none.
    async fn blob_url(&self, _repo: &RepoName, _digest: &Digest) -> StorageResult<Option<String>> {
        Ok(None)
    }
}

/// Upload sessions, which any instance can resume after any restart.
#[async_trait::async_trait]
pub trait Uploads: Send + Sync {
    /// Starts an empty upload session.
    async fn upload_create(&self, repo: &RepoName, id: &str) -> StorageResult<UploadState>;
    /// A session's saved state, `None` if there is no such session.
    async fn upload_load(&self, repo: &RepoName, id: &str) -> StorageResult<Option<UploadState>>;
    /// Appends everything `data` delivers. `state.size` is the size before
    /// the chunk; the registry counts and hashes what it sends.
    async fn upload_append(
        &self,
        repo: &RepoName,
        id: &str,
        state: &mut UploadState,
        data: ChunkReceiver,
    ) -> StorageResult<()>;
    /// Saves `state` (with its size and hash state) so another request,
    /// on any instance, can resume the session.
    async fn upload_save(
        &self,
        repo: &RepoName,
        id: &str,
        state: &UploadState,
    ) -> StorageResult<()>;
    /// The data received so far (to re-hash it).
    async fn upload_read(
        &self,
        repo: &RepoName,
        id: &str,
        state: &mut UploadState,
    ) -> StorageResult<ByteStream>;
    /// Moves a complete, verified upload into place as the blob `digest`
    /// and ends the session.
    async fn upload_commit(
        &self,
        repo: &RepoName,
        id: &str,
        state: UploadState,
        digest: &Digest,
    ) -> StorageResult<()>;
    /// Ends a session and removes its data; whether it existed.
    async fn upload_remove(&self, repo: &RepoName, id: &str) -> StorageResult<bool>;
    /// Every leftover of uploads in the repository.
    async fn list_uploads(&self, repo: &RepoName) -> StorageResult<Vec<UploadEntry>>;
    /// Removes one leftover listed by [`Uploads::list_uploads`].
    async fn remove_upload_entry(&self, repo: &RepoName, name: &str) -> StorageResult<bool>;
}

/// One storage root's backend: its three seams (and its root-level
/// files, [`super::RootFiles`]), its locks and, for a
/// local root, the directory store itself for what only works on a file
/// system (dedupe reconciliation and its index flush, the storage-size
/// walk). Cheap to clone.
///
/// `index.json` changes only under its repository's lock, and the
/// repository is the guard's:
///
/// ```no_run
/// # async fn f(store: &berth_server::storage::Store, index: berth_server::storage::OciIndex)
/// # -> Result<(), berth_server::storage::StorageError> {
/// let guard = store.lock_repo(&"team/app".parse().expect("name")).await?;
/// store.layout.write_index(&guard, index).await
/// # }
/// ```
///
/// Without a guard it does not compile:
///
/// ```compile_fail
/// # async fn f(store: &berth_server::storage::Store, index: berth_server::storage::OciIndex)
/// # -> Result<(), berth_server::storage::StorageError> {
/// store.layout.write_index(index).await
/// # }
/// ```
///
/// nor under an upload's lock:
///
/// ```compile_fail
/// # async fn f(store: &berth_server::storage::Store, index: berth_server::storage::OciIndex)
/// # -> Result<(), berth_server::storage::StorageError> {
/// let guard = store.lock_upload("0b7c").await?;
/// store.layout.write_index(&guard, index).await
/// # }
/// ```
#[derive(Clone)]
pub struct Store {
    pub layout: Arc<dyn Layout>,
    pub blobs: Arc<dyn Blobs>,
    pub uploads: Arc<dyn Uploads>,
    /// Files under the root itself, outside every repository.
    pub files: Arc<dyn super::RootFiles>,
    /// The local store behind the seams; `None` for a bucket.
    pub local: Option<Arc<super::FsStore>>,
    locks: Arc<RepoLocks>,
    /// Where the store keeps its data, for logs and errors.
    location: String,
}

impl Store {
    /// A store whose three seams are one backend value.
    pub fn new<B: Layout + Blobs + Uploads + super::RootFiles + 'static>(
        backend: Arc<B>,
        locks: Arc<RepoLocks>,
        location: String,
    ) -> Self {
        Self {
            layout: backend.clone(),
            blobs: backend.clone(),
            uploads: backend.clone(),
            files: backend,
            local: None,
            locks,
            location,
        }
    }

    /// A local directory store.
    pub fn local(fs: super::FsStore) -> Self {
        let fs = Arc::new(fs);
        let location = fs.root().display().to_string();
        let locks = fs.locks().clone();
        let mut store = Self::new(fs.clone(), locks, location);
        store.local = Some(fs);
        store
    }

    /// Where the store keeps its data, for logs and errors.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The store's locks (in-process, plus the shared service when several
    /// instances use the store).
    pub fn locks(&self) -> &RepoLocks {
        &self.locks
    }

    /// Whether other instances share this store.
    pub fn is_shared(&self) -> bool {
        self.locks.is_shared()
    }

    /// Takes the repository's lock. Hold it across a check and the change
    /// that depends on it (e.g. "the blobs exist" then "record the
    /// manifest").
    pub async fn lock_repo(&self, repo: &RepoName) -> StorageResult<RepoGuard> {
        self.locks.lock_repo(repo).await
    }

    /// Takes a lock of the registry's own, by name (see
    /// [`RepoLocks::lock_named`]).
    pub async fn lock_named(&self, name: &str) -> StorageResult<super::HeldLock> {
        self.locks.lock_named(name).await
    }

    /// Takes the repository's lock if it is free.
    pub async fn try_lock_repo(&self, repo: &RepoName) -> StorageResult<Option<RepoGuard>> {
        self.locks.try_lock_repo(repo).await
    }

    /// Takes an upload session's lock, so its chunks are applied one at a
    /// time on whichever instance they arrive.
    pub async fn lock_upload(&self, id: &str) -> StorageResult<UploadGuard> {
        self.locks.lock_upload(id).await
    }

    /// Read-modify-writes the guard's repository's `index.json`. `f`
    /// returns whether it changed anything (the file is rewritten only
    /// then) and a value handed back to the caller.
    pub async fn update_index<R>(
        &self,
        guard: &RepoGuard,
        f: impl FnOnce(&mut OciIndex) -> (bool, R),
    ) -> StorageResult<R> {
        let mut index = self.layout.index_for_update(guard).await?;
        let (changed, out) = f(&mut index);
        if changed {
            self.layout.write_index(guard, index).await?;
        }
        Ok(out)
    }
}

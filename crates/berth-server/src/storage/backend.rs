//! [`BlobStore`]: the storage seam. The registry sees repositories, blobs,
//! each repository's `index.json` and upload sessions through it; the local
//! filesystem ([`super::FsStore`]) and S3 (`super::S3Store`) implement it,
//! and `tests/it/storage_conformance.rs` runs one suite against both.
//!
//! Rules every backend keeps:
//! - a blob or `index.json` becomes visible whole or not at all (an atomic
//!   rename, an S3 PUT or multipart completion), never partially;
//! - `write_index` is called only under the repository's lock (a
//!   [`RepoGuard`]), which the registry takes, across instances too when
//!   a shared lock is configured;
//! - upload sessions live in the backend, with enough state (size, hash
//!   state, the backend's own bookkeeping) that any instance, after any
//!   restart, can take the next chunk.

use std::time::SystemTime;

use berth_oci::{Digest, RepoName};
use bytes::Bytes;
use futures_util::stream::BoxStream;

use super::{IndexVersion, OciIndex, RepoGuard, RepoLocks, StorageResult};

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
    /// The name to hand back to [`BlobStore::remove_upload_entry`].
    pub name: String,
    /// The upload session it belongs to, when it belongs to one.
    pub session: Option<String>,
    /// When it was last written to (for a hard-linked temporary file, when
    /// it was linked).
    pub modified: SystemTime,
}

/// The storage seam. Not-found is not an error: lookups return `Option`
/// or `false`.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// Where the store keeps its data, for logs and errors.
    fn location(&self) -> String;

    /// The local store behind this one, for the tools that only work on a
    /// filesystem (dedupe reconciliation, the storage-size walk).
    fn as_fs(&self) -> Option<&super::FsStore> {
        None
    }

    /// The store's locks (in-process, plus the shared service when several
    /// instances use the store).
    fn locks(&self) -> &RepoLocks;

    /// Whether the repository exists (has an `index.json`).
    async fn repo_exists(&self, repo: &RepoName) -> StorageResult<bool>;
    /// Creates the repository's layout if it is missing; the caller holds
    /// its lock.
    async fn create_repo(&self, guard: &RepoGuard, repo: &RepoName) -> StorageResult<()>;
    /// Every repository, sorted by name.
    async fn list_repos(&self) -> StorageResult<Vec<RepoName>>;

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
    /// Stores a small blob whose digest the caller has checked.
    async fn put_blob_bytes(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> StorageResult<()>;
    /// [`BlobStore::put_blob_bytes`] (a manifest) if the repository has
    /// every blob in `needed`; else stores nothing and returns the first
    /// one missing. A store may do it all in one round trip.
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
    async fn sweep(&self, _delay: std::time::Duration) -> StorageResult<usize> {
        Ok(0)
    }
    /// A URL the client may fetch the blob from directly
    /// (`storage.redirectBlobURL`), `None` where the backend has none.
    async fn blob_url(&self, _repo: &RepoName, _digest: &Digest) -> StorageResult<Option<String>> {
        Ok(None)
    }

    /// The repository's `index.json`, `None` if the repository is missing.
    async fn read_index(&self, repo: &RepoName) -> StorageResult<Option<OciIndex>>;
    /// Identifies the current version of `index.json` (see [`IndexVersion`]).
    async fn index_version(&self, repo: &RepoName) -> StorageResult<Option<IndexVersion>>;
    /// `index.json` to be modified and written back under the lock (may
    /// come from a cache keyed by the file's version).
    async fn index_for_update(&self, guard: &RepoGuard, repo: &RepoName)
    -> StorageResult<OciIndex>;
    /// Replaces `index.json`; the caller holds the repository's lock.
    async fn write_index(
        &self,
        guard: &RepoGuard,
        repo: &RepoName,
        index: OciIndex,
    ) -> StorageResult<()>;

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
    /// Removes one leftover listed by [`BlobStore::list_uploads`].
    async fn remove_upload_entry(&self, repo: &RepoName, name: &str) -> StorageResult<bool>;
}

impl dyn BlobStore + '_ {
    /// Takes the repository's lock. Hold it across a check and the change
    /// that depends on it (e.g. "the blobs exist" then "record the
    /// manifest").
    pub async fn lock_repo(&self, repo: &RepoName) -> StorageResult<RepoGuard> {
        self.locks().lock(&format!("repo:{repo}")).await
    }

    /// Takes the repository's lock if it is free.
    pub async fn try_lock_repo(&self, repo: &RepoName) -> StorageResult<Option<RepoGuard>> {
        self.locks().try_lock(&format!("repo:{repo}")).await
    }

    /// Takes an upload session's lock, so its chunks are applied one at a
    /// time on whichever instance they arrive.
    pub async fn lock_upload(&self, id: &str) -> StorageResult<RepoGuard> {
        self.locks().lock(&format!("upload:{id}")).await
    }

    /// Whether other instances share this store.
    pub fn is_shared(&self) -> bool {
        self.locks().is_shared()
    }

    /// Read-modify-writes `index.json` under the lock. `f` returns whether
    /// it changed anything (the file is rewritten only then) and a value
    /// handed back to the caller.
    pub async fn update_index<R>(
        &self,
        guard: &RepoGuard,
        repo: &RepoName,
        f: impl FnOnce(&mut OciIndex) -> (bool, R),
    ) -> StorageResult<R> {
        let mut index = self.index_for_update(guard, repo).await?;
        let (changed, out) = f(&mut index);
        if changed {
            self.write_index(guard, repo, index).await?;
        }
        Ok(out)
    }
}

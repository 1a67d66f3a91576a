//! [`FsStore`]: OCI image layouts on the local filesystem.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use berth_oci::{Digest, RepoName};

use super::backend::{Blobs, ByteStream};
use super::blob_index::BlobIndex;
use super::fs_index::IndexCache;
use super::locks::RepoLocks;
use super::{IoContext, StorageError, StorageResult};

pub(crate) const INDEX_JSON: &str = "index.json";
pub(crate) const OCI_LAYOUT: &str = "oci-layout";
pub(crate) const UPLOADS_DIR: &str = ".uploads";
pub(crate) const BLOBS_DIR: &str = "blobs";

/// The local-filesystem store. Cheap to share behind an `Arc`.
pub struct FsStore {
    root: PathBuf,
    /// fsync files and their directories before a write is acknowledged.
    commit: bool,
    /// Shared with the [`super::Store`] built on it.
    pub(super) locks: Arc<RepoLocks>,
    /// The dedupe index, when the store was opened by the server (offline
    /// tools leave the root untouched and open none).
    pub(super) index: Option<std::sync::Arc<BlobIndex>>,
    /// `storage.dedupe`: store a blob already under this root as a hard
    /// link to the existing copy.
    pub(super) dedupe: bool,
    /// Parsed `index.json` files: an update whose file still has the
    /// stamp it was read or written with skips reading and parsing.
    pub(super) index_cache: IndexCache,
}

/// Read size when streaming a blob: large enough to keep the pull rate at
/// loopback's limit (measured: no slower than 1 MiB), small enough that
/// many pulls at once stay within a few tens of MiB.
const READ_CHUNK: usize = 256 << 10;

/// Writes `bytes` to `tmp` and renames it onto `dest`, all on the calling
/// thread: one go (`small_io`) instead of a trip per call.
/// With `commit`, the file and its directory (and any directory created up
/// to `root`) are synced.
pub(super) fn write_atomic_sync(
    root: &Path,
    commit: bool,
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
) -> StorageResult<()> {
    use std::io::Write as _;
    let result = (|| {
        let mut f = create_new_in_dir(tmp)?;
        f.write_all(bytes).at(tmp)?;
        if commit {
            f.sync_all().at(tmp)?;
        }
        drop(f);
        rename_into_sync(root, commit, tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Runs `f` on a blocking thread; `path` names what it works on, should
/// the thread fail.
pub(super) async fn on_blocking<T: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io {
            path,
            source: std::io::Error::other(e.to_string()),
        })?
}

/// Runs `f` — a few calls on small files or directory entries — right
/// here on the async worker, unless the caller says it is `heavy` (it
/// syncs, writes more than [`INLINE_BYTES`], or looks at more than
/// [`INLINE_STATS`] files), which goes to a blocking thread.
///
/// A trip to the blocking pool costs two thread wake-ups, several times
/// the CPU of a stat, a link, a rename or a small write served from the
/// page cache; on a push those trips were a third of the server's CPU. A
/// disk that stalls stalls this worker for the call (the other workers go
/// on and take over its queued tasks), as it would stall a goroutine's
/// thread in zot. What syncs, moves data of unbounded size or walks
/// directories goes through [`on_blocking`] instead.
pub(super) async fn small_io<T: Send + 'static>(
    heavy: bool,
    path: PathBuf,
    f: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    if heavy {
        on_blocking(path, f).await
    } else {
        f()
    }
}

/// The most a write run on the async worker (`small_io`) may carry
/// (the body of a PUT is held to 64 KiB in `fs_uploads.rs`).
pub(super) const INLINE_BYTES: usize = 256 << 10;
/// The most files one such call may look at.
const INLINE_STATS: usize = 256;

/// [`FsStore::rename_into`] on the calling thread.
fn rename_into_sync(root: &Path, commit: bool, src: &Path, dest: &Path) -> StorageResult<()> {
    let parent = dest.parent().unwrap_or(root);
    let created = std::fs::metadata(parent).is_err();
    if created {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    if let Err(e) = std::fs::rename(src, dest) {
        // A directory where the file belongs (left by an older Berth that
        // let a repository nest inside another's blobs): moved aside,
        // kept, logged, and the write goes on.
        if !std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
            return Err(e).at(dest);
        }
        let aside = root
            .join(".berth/foreign")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(root.join(".berth/foreign")).at(&aside)?;
        std::fs::rename(dest, &aside).at(&aside)?;
        tracing::warn!(
            "a directory stood where {} belongs: moved to {}",
            dest.display(),
            aside.display()
        );
        std::fs::rename(src, dest).at(dest)?;
    }
    if commit {
        sync_dirs(root, parent, created)?;
    }
    Ok(())
}

/// Syncs `dir`, and with `created` its ancestors up to `root` (the
/// directories a write had to create).
pub(super) fn sync_dirs(root: &Path, dir: &Path, created: bool) -> StorageResult<()> {
    for d in dir.ancestors() {
        std::fs::File::open(d).and_then(|f| f.sync_all()).at(d)?;
        if !created || d == root {
            break;
        }
    }
    Ok(())
}

/// Creates the fresh file `path` (see `new_file`), creating its directory
/// only when it is missing: a `mkdir` of an existing directory still takes
/// the parent's lock.
pub(super) fn create_new_in_dir(path: &Path) -> StorageResult<std::fs::File> {
    match super::new_file::create_new(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).at(dir)?;
            }
            super::new_file::create_new(path).at(path)
        }
        other => other.at(path),
    }
}

/// Sets a file's mtime to now (on a hard link: the shared inode's).
pub(super) fn touch(path: &Path) -> StorageResult<()> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .at(path)
}

/// [`touch`] if a regular file is there; whether it was.
fn touch_if_present(path: &Path) -> StorageResult<bool> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(false),
        Err(e) if not_found(&e) => return Ok(false),
        Err(e) => return Err(e).at(path),
    }
    // Deleted since the look: as good as not there.
    let file = match std::fs::File::options().write(true).open(path) {
        Ok(f) => f,
        Err(e) if not_found(&e) => return Ok(false),
        Err(e) => return Err(e).at(path),
    };
    file.set_modified(std::time::SystemTime::now()).at(path)?;
    Ok(true)
}

pub(super) fn not_found(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

impl FsStore {
    /// Opens (creating if needed) a store rooted at `root`.
    /// Opens a store without the dedupe index: every blob is a file of its
    /// own, and nothing outside the repositories is created.
    pub async fn open(root: PathBuf, commit: bool) -> StorageResult<Self> {
        tokio::fs::create_dir_all(&root).await.at(&root)?;
        Ok(Self {
            root,
            commit,
            locks: Arc::default(),
            index: None,
            dedupe: false,
            index_cache: IndexCache::default(),
        })
    }

    /// Opens a store with its dedupe index (`<root>/.berth/blobs.redb`).
    /// With `dedupe`, new blobs already held by another repository become
    /// hard links; [`FsStore::reconcile_dedupe`] brings existing content in
    /// line with the setting.
    pub async fn open_with_dedupe(
        root: PathBuf,
        commit: bool,
        dedupe: bool,
    ) -> StorageResult<Self> {
        let mut store = Self::open(root, commit).await?;
        let root = store.root.clone();
        let index = tokio::task::spawn_blocking(move || BlobIndex::open(&root))
            .await
            .map_err(|e| StorageError::Io {
                path: store.root.clone(),
                source: std::io::Error::other(e),
            })?;
        // The index is a hint: without it blobs are stored in full.
        match index {
            Ok(index) => store.index = Some(std::sync::Arc::new(index)),
            Err(e) => {
                tracing::warn!(target: "berth::dedupe", root = %store.root.display(), "dedupe index unusable, storing blobs in full: {e}")
            }
        }
        store.dedupe = dedupe;
        Ok(store)
    }

    /// Replaces the store's locks (to take them across instances too).
    pub fn set_locks(&mut self, locks: RepoLocks) {
        self.locks = Arc::new(locks);
    }

    /// The store's locks.
    pub fn locks(&self) -> &Arc<RepoLocks> {
        &self.locks
    }

    /// Whether writes are fsynced before they are acknowledged.
    pub fn commit(&self) -> bool {
        self.commit
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a repository. Safe: a [`RepoName`] has no `..`.
    pub fn repo_dir(&self, repo: &RepoName) -> PathBuf {
        self.root.join(repo.as_str())
    }

    /// The path of a blob in a repository.
    pub fn blob_path(&self, repo: &RepoName, digest: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join(BLOBS_DIR)
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// The directory of upload sessions and temporary files.
    pub fn uploads_dir(&self, repo: &RepoName) -> PathBuf {
        self.repo_dir(repo).join(UPLOADS_DIR)
    }

    /// Moves a complete, verified upload file of `size` bytes into place
    /// as a blob (a hard link to another repository's copy with dedupe),
    /// and removes the session's `state` file. In the common case one go
    /// (`small_io`).
    pub(super) async fn commit_upload(
        &self,
        repo: &RepoName,
        upload: &Path,
        state: &Path,
        size: u64,
        digest: &Digest,
    ) -> StorageResult<()> {
        // Links only to a blob of the same size as the upload file, and a
        // blob of this digest has `size` bytes: a short or long upload
        // file is never linked, and is refused below.
        if self.link_existing(repo, digest, upload).await {
            tokio::fs::remove_file(upload).await.at(upload)?;
            let _ = tokio::fs::remove_file(state).await;
            return Ok(());
        }
        let (root, commit) = (self.root.clone(), self.commit);
        let (upload, state, dest) = (
            upload.to_path_buf(),
            state.to_path_buf(),
            self.blob_path(repo, digest),
        );
        let locations = self.dedupe.then(|| self.index.clone()).flatten();
        let (key, holder) = (digest.to_string(), repo.to_string());
        small_io(commit, dest.clone(), move || {
            let held = std::fs::metadata(&upload).at(&upload)?.len();
            if held != size {
                return Err(StorageError::Corrupt {
                    path: upload,
                    message: format!("the upload holds {held} bytes but {size} were received"),
                });
            }
            if commit {
                std::fs::File::open(&upload)
                    .and_then(|f| f.sync_all())
                    .at(&upload)?;
            }
            rename_into_sync(&root, commit, &upload, &dest)?;
            // The upload file's mtime is its last chunk's; the blob is as
            // young as its completion, for GC's delay.
            touch(&dest)?;
            let _ = std::fs::remove_file(&state);
            if let Some(index) = locations {
                index.put(&key, &holder);
            }
            Ok(())
        })
        .await
    }

    /// A fresh temporary path in the repository's `.uploads/`.
    pub fn temp_path(&self, repo: &RepoName) -> PathBuf {
        self.uploads_dir(repo)
            .join(format!("tmp-{}", uuid::Uuid::new_v4().simple()))
    }

    /// Writes `bytes` to a temporary file and renames it onto `dest`.
    pub(super) async fn write_atomic(
        &self,
        repo: &RepoName,
        dest: &Path,
        bytes: &[u8],
    ) -> StorageResult<()> {
        let (root, commit, tmp, dest_owned, bytes) = (
            self.root.clone(),
            self.commit,
            self.temp_path(repo),
            dest.to_path_buf(),
            bytes.to_vec(),
        );
        let heavy = commit || bytes.len() > INLINE_BYTES;
        small_io(heavy, dest.to_path_buf(), move || {
            write_atomic_sync(&root, commit, &tmp, &dest_owned, &bytes)
        })
        .await
    }

    /// Renames `src` onto `dest`, creating `dest`'s directory if needed.
    /// With `commit`, the directory entry is synced too, and so is every
    /// directory up to the root if this call had to create any.
    pub(super) async fn rename_into(&self, src: &Path, dest: &Path) -> StorageResult<()> {
        let (root, commit) = (self.root.clone(), self.commit);
        let (src, dest) = (src.to_path_buf(), dest.to_path_buf());
        small_io(commit, dest.clone(), move || {
            rename_into_sync(&root, commit, &src, &dest)
        })
        .await
    }
}

#[async_trait::async_trait]
impl Blobs for FsStore {
    /// The dedupe index's holder, if it still holds the blob.
    async fn holders(&self, digest: &Digest) -> StorageResult<Vec<RepoName>> {
        let (Some(index), true) = (&self.index, self.dedupe) else {
            return Ok(Vec::new());
        };
        let Some(holder) = index
            .get(&digest.to_string())?
            .and_then(|h| h.parse::<RepoName>().ok())
        else {
            return Ok(Vec::new());
        };
        Ok(if self.blob_len(&holder, digest).await?.is_some() {
            vec![holder]
        } else {
            Vec::new()
        })
    }

    async fn blob_len(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<u64>> {
        let p = self.blob_path(repo, digest);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e).at(&p),
        }
    }

    async fn blob_modified(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<Option<SystemTime>> {
        let p = self.blob_path(repo, digest);
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.modified().ok()),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e).at(&p),
        }
    }

    async fn read_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        start: u64,
        count: u64,
    ) -> StorageResult<Option<ByteStream>> {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let p = self.blob_path(repo, digest);
        let mut file = match tokio::fs::File::open(&p).await {
            Ok(f) => f,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e).at(&p),
        };
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start)).await.at(&p)?;
        }
        Ok(Some(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            file.take(count),
            READ_CHUNK,
        ))))
    }

    async fn read_small_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        max: u64,
    ) -> StorageResult<Option<Vec<u8>>> {
        use std::io::Read as _;
        let p = self.blob_path(repo, digest);
        on_blocking(p.clone(), move || {
            let file = match std::fs::File::open(&p) {
                Ok(f) => f,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(e).at(&p),
            };
            let mut out = Vec::new();
            file.take(max + 1).read_to_end(&mut out).at(&p)?;
            Ok(Some(out))
        })
        .await
    }

    async fn read_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<Vec<u8>>> {
        let p = self.blob_path(repo, digest);
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e).at(&p),
        }
    }

    async fn put_blob_bytes(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> StorageResult<()> {
        self.put_blob_needing(repo, digest, bytes, &[])
            .await
            .map(drop)
    }

    /// The checks and the write in one go (`small_io`).
    async fn put_blob_needing(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
        needed: &[Digest],
    ) -> StorageResult<Option<Digest>> {
        let (root, commit, tmp, dest) = (
            self.root.clone(),
            self.commit,
            self.temp_path(repo),
            self.blob_path(repo, digest),
        );
        let needed: Vec<(Digest, PathBuf)> = needed
            .iter()
            .map(|d| (d.clone(), self.blob_path(repo, d)))
            .collect();
        let heavy = commit || bytes.len() > INLINE_BYTES || needed.len() > INLINE_STATS;
        small_io(heavy, dest.clone(), move || {
            for (d, p) in needed {
                match std::fs::metadata(&p) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => return Ok(Some(d)),
                    Err(e) if not_found(&e) => return Ok(Some(d)),
                    Err(e) => return Err(e).at(&p),
                }
            }
            // Pushed again: it is as young as the push, for GC's delay. A
            // delete may take it between the look and the touch.
            if !touch_if_present(&dest)? {
                write_atomic_sync(&root, commit, &tmp, &dest, &bytes)?;
            }
            Ok(None)
        })
        .await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<bool> {
        let p = self.blob_path(repo, digest);
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).at(&p),
        }
    }

    /// A hard link where the filesystem allows and dedupe is on, else a
    /// copy.
    async fn link_blob(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        let src = self.blob_path(from, digest);
        if self.blob_len(to, digest).await?.is_some() {
            return Ok(true);
        }
        if self.blob_len(from, digest).await?.is_none() {
            return Ok(false);
        }
        let tmp = self.temp_path(to);
        if let Some(dir) = tmp.parent() {
            tokio::fs::create_dir_all(dir).await.at(dir)?;
        }
        // With dedupe off, every repository keeps a copy of its own.
        let linked = self.dedupe
            && match tokio::fs::hard_link(&src, &tmp).await {
                Ok(()) => true,
                Err(e) if not_found(&e) => return Ok(false),
                Err(_) => false,
            };
        if !linked {
            match tokio::fs::copy(&src, &tmp).await {
                Ok(_) => {}
                Err(e) if not_found(&e) => return Ok(false),
                Err(e) => return Err(e).at(&src),
            }
            if self.commit {
                let f = tokio::fs::File::open(&tmp).await.at(&tmp)?;
                f.sync_all().await.at(&tmp)?;
            }
        }
        // A mounted blob is as young as the mount, for GC's delay.
        touch(&tmp)?;
        self.rename_into(&tmp, &self.blob_path(to, digest)).await?;
        Ok(true)
    }

    async fn list_blobs(&self, repo: &RepoName) -> StorageResult<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in ["sha256", "sha512"] {
            let dir = self.repo_dir(repo).join(BLOBS_DIR).join(alg);
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(e).at(&dir),
            };
            while let Some(e) = entries.next_entry().await.at(&dir)? {
                let Some(d) = e
                    .file_name()
                    .to_str()
                    .and_then(|n| format!("{alg}:{n}").parse::<Digest>().ok())
                else {
                    continue;
                };
                // Only files are blobs: anything else at a blob's name
                // (a directory an older Berth let a repository put there)
                // is no blob to serve or collect.
                if e.file_type().await.is_ok_and(|t| t.is_file()) {
                    out.push(d);
                } else {
                    tracing::warn!(%repo, digest = %d, "not a file where a blob belongs: skipped");
                }
            }
        }
        Ok(out)
    }
}

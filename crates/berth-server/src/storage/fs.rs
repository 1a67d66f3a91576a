//! [`FsStore`]: OCI image layouts on the local filesystem.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_oci::media::OCI_LAYOUT_VERSION;
use berth_oci::{Digest, RepoName};

use super::blob_index::BlobIndex;
use super::index::OciIndex;
use super::locks::{RepoGuard, RepoLocks};
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
    locks: RepoLocks,
    /// The dedupe index, when the store was opened by the server (offline
    /// tools leave the root untouched and open none).
    pub(super) index: Option<BlobIndex>,
    /// `storage.dedupe`: store a blob already under this root as a hard
    /// link to the existing copy.
    pub(super) dedupe: bool,
    /// Parsed `index.json` files by repository, with the stamp (inode,
    /// size, mtime) of the file they were read from or written to: an
    /// update whose file still has that stamp skips reading and parsing.
    index_cache: std::sync::Mutex<HashMap<String, (IndexStamp, Arc<OciIndex>)>>,
}

/// What identifies one version of a file: inode, size, mtime (ns).
type IndexStamp = (u64, u64, i128);

/// Entries the index cache holds before it starts over.
const INDEX_CACHE_MAX: usize = 4096;

fn stamp_of(meta: &std::fs::Metadata) -> IndexStamp {
    use std::os::unix::fs::MetadataExt;
    (
        meta.ino(),
        meta.size(),
        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    )
}

/// Writes `bytes` to `tmp` and renames it onto `dest`, all on the calling
/// (blocking) thread: one hop from async code instead of one per call.
/// With `commit`, the file and its directory (and any directory created up
/// to `root`) are synced.
fn write_atomic_sync(
    root: &Path,
    commit: bool,
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
) -> StorageResult<()> {
    use std::io::Write as _;
    let result = (|| {
        if let Some(dir) = tmp.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut f = std::fs::File::create(tmp).at(tmp)?;
        f.write_all(bytes).at(tmp)?;
        if commit {
            f.sync_all().at(tmp)?;
        }
        drop(f);
        let parent = dest.parent().unwrap_or(root);
        let created = std::fs::metadata(parent).is_err();
        if created {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        std::fs::rename(tmp, dest).at(dest)?;
        if commit {
            for dir in parent.ancestors() {
                std::fs::File::open(dir)
                    .and_then(|f| f.sync_all())
                    .at(dir)?;
                if !created || dir == root {
                    break;
                }
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Sets a file's mtime to now (on a hard link: the shared inode's).
pub(super) fn touch(path: &Path) -> StorageResult<()> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .at(path)
}

fn not_found(e: &std::io::Error) -> bool {
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
            locks: RepoLocks::default(),
            index: None,
            dedupe: false,
            index_cache: std::sync::Mutex::new(HashMap::new()),
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
            Ok(index) => store.index = Some(index),
            Err(e) => {
                tracing::warn!(target: "berth::dedupe", root = %store.root.display(), "dedupe index unusable, storing blobs in full: {e}")
            }
        }
        store.dedupe = dedupe;
        Ok(store)
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

    /// Whether the repository exists (has an `index.json`).
    pub async fn repo_exists(&self, repo: &RepoName) -> StorageResult<bool> {
        let p = self.repo_dir(repo).join(INDEX_JSON);
        match tokio::fs::metadata(&p).await {
            Ok(m) => Ok(m.is_file()),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).at(&p),
        }
    }

    /// Creates the repository's layout if it is missing.
    /// Also creates `.uploads/`, which a layout made by another tool lacks.
    /// Refuses a new repository whose directory would lie in another
    /// repository's `blobs/` (`a/blobs` when `a` exists) or hold one.
    pub async fn ensure_repo(&self, repo: &RepoName) -> StorageResult<()> {
        let dir = self.repo_dir(repo);
        if !self.repo_exists(repo).await? {
            self.check_nesting(repo).await?;
        }
        let uploads = dir.join(UPLOADS_DIR);
        tokio::fs::create_dir_all(&uploads).await.at(&uploads)?;
        if self.repo_exists(repo).await? {
            return Ok(());
        }
        let _guard = self.lock_repo(repo).await;
        let layout = dir.join(OCI_LAYOUT);
        if tokio::fs::metadata(&layout).await.is_err() {
            let body = format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}");
            self.write_atomic(repo, &layout, body.as_bytes()).await?;
        }
        if !self.repo_exists(repo).await? {
            self.write_index(repo, OciIndex::default()).await?;
        }
        Ok(())
    }

    async fn check_nesting(&self, repo: &RepoName) -> StorageResult<()> {
        let parts: Vec<&str> = repo.components().collect();
        let mut prefix = self.root.clone();
        for (i, part) in parts.iter().enumerate() {
            if *part == BLOBS_DIR
                && i > 0
                && tokio::fs::metadata(prefix.join(INDEX_JSON)).await.is_ok()
            {
                return Err(StorageError::Conflict(format!(
                    "{repo} would lie inside the blobs of repository {}",
                    parts[..i].join("/")
                )));
            }
            prefix.push(part);
        }
        if tokio::fs::metadata(prefix.join(BLOBS_DIR).join(INDEX_JSON))
            .await
            .is_ok()
        {
            return Err(StorageError::Conflict(format!(
                "{repo}/blobs is a repository, so {repo} cannot be one"
            )));
        }
        Ok(())
    }

    /// The size of a blob, `None` if the repository does not have it.
    pub async fn blob_len(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<u64>> {
        let p = self.blob_path(repo, digest);
        match tokio::fs::metadata(&p).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e).at(&p),
        }
    }

    /// Opens a blob for reading, with its size.
    pub async fn open_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<Option<(tokio::fs::File, u64)>> {
        let p = self.blob_path(repo, digest);
        let file = match tokio::fs::File::open(&p).await {
            Ok(f) => f,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e).at(&p),
        };
        let len = file.metadata().await.at(&p)?.len();
        Ok(Some((file, len)))
    }

    /// Reads a whole blob (for manifests, which are small).
    pub async fn read_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<Option<Vec<u8>>> {
        let p = self.blob_path(repo, digest);
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e).at(&p),
        }
    }

    /// Removes a blob; returns whether it existed.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<bool> {
        let p = self.blob_path(repo, digest);
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).at(&p),
        }
    }

    /// Writes a small blob whose digest the caller has computed.
    pub async fn put_blob_bytes(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: &[u8],
    ) -> StorageResult<()> {
        let p = self.blob_path(repo, digest);
        if self.blob_len(repo, digest).await?.is_some() {
            // Pushed again: it is as young as the push, for GC's delay.
            return touch(&p);
        }
        self.write_atomic(repo, &p, bytes).await
    }

    /// Moves a complete, verified upload file into place as a blob.
    pub async fn commit_upload(
        &self,
        repo: &RepoName,
        upload: &Path,
        digest: &Digest,
    ) -> StorageResult<()> {
        let dest = self.blob_path(repo, digest);
        if self.link_existing(repo, digest, upload).await {
            tokio::fs::remove_file(upload).await.at(upload)?;
            return Ok(());
        }
        if self.commit {
            let f = tokio::fs::File::open(upload).await.at(upload)?;
            f.sync_all().await.at(upload)?;
        }
        self.rename_into(upload, &dest).await?;
        // The upload file's mtime is its last chunk's; the blob is as young
        // as its completion, for GC's delay.
        touch(&dest)?;
        self.record_location(repo, digest).await;
        Ok(())
    }

    /// Makes `digest` from repository `from` available in `to`: a hard link
    /// where the filesystem allows, else a copy. Returns false if `from`
    /// lacks the blob.
    pub async fn link_blob(
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
        self.ensure_repo(to).await?;
        let tmp = self.temp_path(to);
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

    /// The repository's `index.json`, `None` if the repository is missing.
    pub async fn read_index(&self, repo: &RepoName) -> StorageResult<Option<OciIndex>> {
        let p = self.repo_dir(repo).join(INDEX_JSON);
        let bytes = match tokio::fs::read(&p).await {
            Ok(b) => b,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e).at(&p),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                path: p,
                message: e.to_string(),
            })
    }

    /// Takes the repository's lock. Hold it across a check and the change
    /// that depends on it (e.g. "the blobs exist" then "record the
    /// manifest").
    pub async fn lock_repo(&self, repo: &RepoName) -> RepoGuard {
        self.locks.lock(repo.as_str()).await
    }

    /// Takes the repository's lock if it is free.
    pub fn try_lock_repo(&self, repo: &RepoName) -> Option<RepoGuard> {
        self.locks.try_lock(repo.as_str())
    }

    /// Read-modify-writes `index.json`; the caller holds the repository's
    /// lock. `f` returns whether it changed anything (the file is rewritten
    /// only then) and a value handed back to the caller.
    pub async fn update_index<R>(
        &self,
        _guard: &RepoGuard,
        repo: &RepoName,
        f: impl FnOnce(&mut OciIndex) -> (bool, R),
    ) -> StorageResult<R> {
        let p = self.repo_dir(repo).join(INDEX_JSON);
        let stamp = match tokio::fs::metadata(&p).await {
            Ok(m) => Some(stamp_of(&m)),
            Err(e) if not_found(&e) => None,
            Err(e) => return Err(e).at(&p),
        };
        let cached = stamp.and_then(|st| {
            let cache = self.index_cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(repo.as_str())
                .filter(|(s, _)| *s == st)
                .map(|(_, i)| i.clone())
        });
        let mut index = match cached {
            Some(i) => (*i).clone(),
            None => {
                let path = p.clone();
                tokio::task::spawn_blocking(move || read_index_sync(&path))
                    .await
                    .map_err(|e| StorageError::Io {
                        path: p.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })??
                    .unwrap_or_default()
            }
        };
        let (changed, out) = f(&mut index);
        if changed {
            self.write_index(repo, index).await?;
        }
        Ok(out)
    }

    /// Writes `index.json` (serialized, written and renamed in one hop to
    /// a blocking thread) and remembers it parsed.
    async fn write_index(&self, repo: &RepoName, index: OciIndex) -> StorageResult<()> {
        let p = self.repo_dir(repo).join(INDEX_JSON);
        let (root, commit, tmp, dest) = (
            self.root.clone(),
            self.commit,
            self.temp_path(repo),
            p.clone(),
        );
        let (index, stamp) = tokio::task::spawn_blocking(move || {
            let bytes = serde_json::to_vec(&index).map_err(|e| StorageError::Corrupt {
                path: dest.clone(),
                message: e.to_string(),
            })?;
            write_atomic_sync(&root, commit, &tmp, &dest, &bytes)?;
            let stamp = std::fs::metadata(&dest).ok().map(|m| stamp_of(&m));
            Ok::<_, StorageError>((index, stamp))
        })
        .await
        .map_err(|e| StorageError::Io {
            path: p.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
        let mut cache = self.index_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= INDEX_CACHE_MAX {
            cache.clear();
        }
        match stamp {
            Some(st) => {
                cache.insert(repo.to_string(), (st, Arc::new(index)));
            }
            None => {
                cache.remove(repo.as_str());
            }
        }
        Ok(())
    }

    /// A fresh temporary path in the repository's `.uploads/`.
    pub fn temp_path(&self, repo: &RepoName) -> PathBuf {
        self.uploads_dir(repo)
            .join(format!("tmp-{}", uuid::Uuid::new_v4().simple()))
    }

    /// Writes `bytes` to a temporary file and renames it onto `dest`.
    async fn write_atomic(&self, repo: &RepoName, dest: &Path, bytes: &[u8]) -> StorageResult<()> {
        let (root, commit, tmp, dest_owned, bytes) = (
            self.root.clone(),
            self.commit,
            self.temp_path(repo),
            dest.to_path_buf(),
            bytes.to_vec(),
        );
        tokio::task::spawn_blocking(move || {
            write_atomic_sync(&root, commit, &tmp, &dest_owned, &bytes)
        })
        .await
        .map_err(|e| StorageError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Renames `src` onto `dest`, creating `dest`'s directory if needed.
    /// With `commit`, the directory entry is synced too, and so is every
    /// directory up to the root if this call had to create any.
    pub(super) async fn rename_into(&self, src: &Path, dest: &Path) -> StorageResult<()> {
        let parent = dest.parent().unwrap_or(&self.root);
        let created = tokio::fs::metadata(parent).await.is_err();
        if created {
            tokio::fs::create_dir_all(parent).await.at(parent)?;
        }
        tokio::fs::rename(src, dest).await.at(dest)?;
        if self.commit {
            for dir in parent.ancestors() {
                let f = tokio::fs::File::open(dir).await.at(dir)?;
                f.sync_all().await.at(dir)?;
                if !created || dir == self.root {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Every repository under the root, sorted by name.
    pub async fn list_repos(&self) -> StorageResult<Vec<RepoName>> {
        let root = self.root.clone();
        let found = tokio::task::spawn_blocking(move || walk_repos(&root))
            .await
            .map_err(|e| StorageError::Io {
                path: self.root.clone(),
                source: std::io::Error::other(e),
            })??;
        let mut names: Vec<RepoName> = found.iter().filter_map(|n| n.parse().ok()).collect();
        names.sort();
        Ok(names)
    }
}

/// Depth-first walk collecting the relative paths of directories holding an
/// `index.json`. Directories whose name cannot be a name component (such as
/// `.uploads`, `_trivy`) and a repository's own `blobs` are skipped.
fn walk_repos(root: &Path) -> StorageResult<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, name)) = stack.pop() {
        let is_repo = !name.is_empty() && dir.join(INDEX_JSON).is_file();
        if is_repo {
            out.push(name.clone());
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if not_found(&e) => continue,
            Err(e) => return Err(e).at(&dir),
        };
        for entry in entries {
            let entry = entry.at(&dir)?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            if (is_repo && file_name == BLOBS_DIR)
                || !entry.file_type().at(&dir)?.is_dir()
                || !file_name
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                continue;
            }
            let child = if name.is_empty() {
                file_name
            } else {
                format!("{name}/{file_name}")
            };
            stack.push((entry.path(), child));
        }
    }
    Ok(out)
}

/// Reads and parses an `index.json`; `None` if it is missing.
fn read_index_sync(p: &Path) -> StorageResult<Option<OciIndex>> {
    let bytes = match std::fs::read(p) {
        Ok(b) => b,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e).at(p),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StorageError::Corrupt {
            path: p.to_path_buf(),
            message: e.to_string(),
        })
}

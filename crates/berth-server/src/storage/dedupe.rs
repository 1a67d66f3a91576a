//! Dedupe by hard links (`storage.dedupe`), zot's way: a blob already held
//! by another repository on the same root is stored as a hard link to that
//! file, so each repository stays a complete OCI layout on its own and
//! deleting one repository's copy never touches another's.
//!
//! New blobs are linked as they are committed ([`FsStore::link_existing`]).
//! Existing content is brought in line with the setting in the background by
//! [`FsStore::reconcile_dedupe`]: turning dedupe on links identical blobs,
//! turning it off gives linked blobs separate copies again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_oci::{Digest, RepoName};

use super::blob_index::BlobIndex;
use super::fs::{BLOBS_DIR, FsStore, on_blocking, touch};
use super::{IoContext, Layout, StorageResult};

/// The index flag saying the root's existing content has been deduped.
const DEDUPED: &str = "deduped";

/// What a reconcile pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Blobs replaced by a link to an identical one.
    pub linked: usize,
    /// Linked blobs given a copy of their own.
    pub copied: usize,
}

impl FsStore {
    /// With dedupe on, links the copy of `digest` another repository holds
    /// into `repo`, in place of the verified `upload`. Returns false (store
    /// the upload in full) when there is none, it is gone, its size differs
    /// from the upload's, the index cannot be read, or the filesystem cannot
    /// link: the index is a hint, never a reason to fail a push.
    pub(super) async fn link_existing(
        &self,
        repo: &RepoName,
        digest: &Digest,
        upload: &Path,
    ) -> bool {
        let (Some(index), true) = (&self.index, self.dedupe) else {
            return false;
        };
        let holder = match index.get(&digest.to_string()) {
            Ok(Some(h)) => h,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(target: "berth::dedupe", "dedupe index read failed, storing in full: {e}");
                return false;
            }
        };
        let Ok(holder) = holder.parse::<RepoName>() else {
            return false;
        };
        if holder == *repo {
            return false;
        }
        let src = self.blob_path(&holder, digest);
        let sizes = (
            tokio::fs::metadata(&src).await,
            tokio::fs::metadata(upload).await,
        );
        match sizes {
            (Ok(a), Ok(b)) if a.len() == b.len() => {}
            _ => return false,
        }
        let tmp = self.temp_path(repo);
        if tokio::fs::hard_link(&src, &tmp).await.is_err() {
            return false;
        }
        // The inode is shared: make it as young as this push, so GC's delay
        // protects the new copy until a manifest names it.
        let linked = match touch(&tmp) {
            Ok(()) => self
                .rename_into(&tmp, &self.blob_path(repo, digest))
                .await
                .is_ok(),
            Err(_) => false,
        };
        if !linked {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        linked
    }

    /// Writes the dedupe index's entries still in memory (at shutdown).
    pub fn flush_dedupe_index(&self) -> StorageResult<()> {
        match &self.index {
            Some(index) => index.flush(),
            None => Ok(()),
        }
    }

    /// Brings existing blobs in line with `dedupe`, one repository at a
    /// time under its lock (so GC and manifest pushes of that repository
    /// wait; pulls never do). Does nothing when the root is already in
    /// line, as remembered in the index.
    pub async fn reconcile_dedupe(&self) -> StorageResult<ReconcileReport> {
        let mut report = ReconcileReport::default();
        let Some(index) = &self.index else {
            return Ok(report);
        };
        if !cfg!(unix) || index.flag(DEDUPED)? == self.dedupe {
            return Ok(report);
        }
        let mut first: HashMap<Digest, PathBuf> = HashMap::new();
        for repo in Layout::list_repos(self).await? {
            let _guard = self.locks.lock_repo(&repo).await?;
            let uploads = self.uploads_dir(&repo);
            tokio::fs::create_dir_all(&uploads).await.at(&uploads)?;
            for path in blob_files(&self.repo_dir(&repo).join(BLOBS_DIR)).await? {
                let Some(digest) = digest_of(&path) else {
                    continue;
                };
                match self
                    .reconcile_blob(&repo, &digest, &path, &mut first, index)
                    .await
                {
                    Ok(Some(true)) if self.dedupe => report.linked += 1,
                    Ok(Some(true)) => report.copied += 1,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(target: "berth::dedupe", path = %path.display(), "left alone: {e}")
                    }
                }
            }
        }
        // Both wait for the disk (and for a write under way): off the
        // async workers.
        let (done, dedupe) = (std::sync::Arc::clone(index), self.dedupe);
        on_blocking(self.root().join(super::blob_index::INDEX_FILE), move || {
            done.flush()?;
            done.set_flag(DEDUPED, dedupe)
        })
        .await?;
        tracing::info!(target: "berth::dedupe", linked = report.linked, copied = report.copied, dedupe = self.dedupe, "storage reconciled with storage.dedupe");
        Ok(report)
    }

    /// One blob of the pass: with dedupe on, the first verified copy of a
    /// digest is recorded and later verified copies become links to it;
    /// with it off, a linked blob gets a copy of its own. A copy whose bytes
    /// do not hash to its name is left alone (scrub reports it).
    async fn reconcile_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        path: &Path,
        first: &mut HashMap<Digest, PathBuf>,
        index: &std::sync::Arc<BlobIndex>,
    ) -> StorageResult<Option<bool>> {
        if !self.dedupe {
            return self.copy_over(path, repo).await.map(Some);
        }
        if let Some(original) = first.get(digest)
            && let (Ok(a), Ok(b)) = (
                tokio::fs::metadata(original).await,
                tokio::fs::metadata(path).await,
            )
            && same_file(&a, &b)
        {
            return Ok(Some(false));
        }
        if !hashes_to(path, digest).await? {
            tracing::warn!(target: "berth::dedupe", path = %path.display(), "content does not match its digest: not linked (run berth scrub)");
            return Ok(None);
        }
        match first.get(digest) {
            Some(original) => self.link_over(original, path, repo).await.map(Some),
            None => {
                index.put(&digest.to_string(), repo.as_str());
                first.insert(digest.clone(), path.to_path_buf());
                Ok(Some(false))
            }
        }
    }

    /// Replaces `path` by a hard link to `original` when they are distinct
    /// files of the same size.
    async fn link_over(
        &self,
        original: &Path,
        path: &Path,
        repo: &RepoName,
    ) -> StorageResult<bool> {
        let (a, b) = (
            tokio::fs::metadata(original).await.at(original)?,
            tokio::fs::metadata(path).await.at(path)?,
        );
        if same_file(&a, &b) {
            return Ok(false);
        }
        if a.len() != b.len() {
            tracing::warn!(target: "berth::dedupe", original = %original.display(), copy = %path.display(), "same digest, different sizes: left alone (run berth scrub)");
            return Ok(false);
        }
        let tmp = self.temp_path(repo);
        tokio::fs::hard_link(original, &tmp).await.at(&tmp)?;
        // Young for GC, as a copy just linked in.
        touch(&tmp)?;
        self.rename_into(&tmp, path).await?;
        Ok(true)
    }

    /// Gives a linked blob a file of its own.
    async fn copy_over(&self, path: &Path, repo: &RepoName) -> StorageResult<bool> {
        let meta = tokio::fs::metadata(path).await.at(path)?;
        if link_count(&meta) <= 1 {
            return Ok(false);
        }
        let tmp = self.temp_path(repo);
        tokio::fs::copy(path, &tmp).await.at(&tmp)?;
        if self.commit() {
            let f = tokio::fs::File::open(&tmp).await.at(&tmp)?;
            f.sync_all().await.at(&tmp)?;
        }
        self.rename_into(&tmp, path).await?;
        Ok(true)
    }
}

/// Whether the file's bytes hash to `digest`.
async fn hashes_to(path: &Path, digest: &Digest) -> StorageResult<bool> {
    let p = path.to_path_buf();
    let algorithm = digest.algorithm();
    let actual = tokio::task::spawn_blocking(move || -> std::io::Result<Digest> {
        use std::io::Read;
        let mut f = std::fs::File::open(&p)?;
        let mut h = berth_oci::DigestHasher::new(algorithm);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finish());
            }
            h.update(&buf[..n]);
        }
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .at(path)?;
    Ok(actual == *digest)
}

/// The blob files of a repository's `blobs/`, every algorithm.
async fn blob_files(blobs: &Path) -> StorageResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    for alg in ["sha256", "sha512"] {
        let dir = blobs.join(alg);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).at(&dir),
        };
        while let Some(e) = entries.next_entry().await.at(&dir)? {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// The digest a blob path names (`.../<alg>/<hex>`).
fn digest_of(path: &Path) -> Option<Digest> {
    let hex = path.file_name()?.to_str()?;
    let alg = path.parent()?.file_name()?.to_str()?;
    format!("{alg}:{hex}").parse().ok()
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    match (crate::os::file_id(a), crate::os::file_id(b)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

#[cfg(unix)]
fn link_count(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.nlink()
}

#[cfg(not(unix))]
fn link_count(_: &std::fs::Metadata) -> u64 {
    1
}

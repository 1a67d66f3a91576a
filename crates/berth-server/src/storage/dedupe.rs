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
use std::time::SystemTime;

use berth_oci::{Digest, RepoName};

use super::fs::{BLOBS_DIR, FsStore};
use super::{IoContext, StorageResult};

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
    /// into `repo`. Returns false (store the blob in full) when there is
    /// none, or it is gone, or the filesystem cannot link.
    pub(super) async fn link_existing(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        let (Some(index), true) = (&self.index, self.dedupe) else {
            return Ok(false);
        };
        let Some(holder) = index.get(&digest.to_string())? else {
            return Ok(false);
        };
        let Ok(holder) = holder.parse::<RepoName>() else {
            return Ok(false);
        };
        if holder == *repo {
            return Ok(false);
        }
        let tmp = self.temp_path(repo);
        if tokio::fs::hard_link(self.blob_path(&holder, digest), &tmp)
            .await
            .is_err()
        {
            return Ok(false);
        }
        // The inode is shared: make it as young as this push, so GC's delay
        // protects the new copy until a manifest names it.
        let touched = std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(SystemTime::now()));
        if let Err(e) = touched {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e).at(&tmp);
        }
        self.rename_into(&tmp, &self.blob_path(repo, digest))
            .await?;
        Ok(true)
    }

    /// Records that `repo` holds `digest`, for later links.
    pub(super) async fn record_location(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<()> {
        if let (Some(index), true) = (&self.index, self.dedupe) {
            index.put(&digest.to_string(), repo.as_str())?;
        }
        Ok(())
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
        for repo in self.list_repos().await? {
            let _guard = self.lock_repo(&repo).await;
            for path in blob_files(&self.repo_dir(&repo).join(BLOBS_DIR)).await? {
                let Some(digest) = digest_of(&path) else {
                    continue;
                };
                if self.dedupe {
                    match first.get(&digest) {
                        Some(original) => {
                            if self.link_over(original, &path, &repo).await? {
                                report.linked += 1;
                            }
                        }
                        None => {
                            index.put(&digest.to_string(), repo.as_str())?;
                            first.insert(digest, path);
                        }
                    }
                } else if self.copy_over(&path, &repo).await? {
                    report.copied += 1;
                }
            }
        }
        index.flush()?;
        index.set_flag(DEDUPED, self.dedupe)?;
        tracing::info!(target: "berth::dedupe", linked = report.linked, copied = report.copied, dedupe = self.dedupe, "storage reconciled with storage.dedupe");
        Ok(report)
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
        self.rename_into(&tmp, path).await?;
        Ok(true)
    }
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

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
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

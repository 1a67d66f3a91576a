//! Blob reads, deletes and cross-repository mounts.

use berth_oci::{Digest, RepoName};

use super::{Registry, RegistryError, RegistryResult};
use crate::storage::ByteStream;

impl Registry {
    /// A blob's size.
    pub async fn blob_len(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<u64> {
        self.store(repo)
            .blobs
            .blob_len(repo, digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// `count` bytes of a blob from `start`.
    pub async fn read_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        start: u64,
        count: u64,
    ) -> RegistryResult<ByteStream> {
        self.store(repo)
            .blobs
            .read_blob_range(repo, digest, start, count)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// Where the client may fetch the blob directly, when the backend
    /// offers one (`storage.redirectBlobURL`).
    pub async fn blob_url(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<Option<String>> {
        Ok(self.store(repo).blobs.blob_url(repo, digest).await?)
    }

    /// Deletes a blob from one repository. A manifest's blob is refused:
    /// it is deleted through the manifest route, which also untags it.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<()> {
        let guard = self.store(repo).lock_repo(repo).await?;
        // What references the blob is read from the metadata store, in
        // step with `index.json` first (under the lock a push takes too,
        // so no manifest can come to reference it meanwhile).
        self.refresh_locked(&guard).await?;
        let is_manifest = self
            .store(repo)
            .layout
            .read_index(repo)
            .await?
            .is_some_and(|i| i.find_digest(digest).is_some());
        if is_manifest {
            return Err(RegistryError::Unsupported(format!(
                "{digest} is a manifest: delete it with DELETE /v2/{repo}/manifests/{digest}"
            )));
        }
        let referenced = self.meta.blob_refs(repo, digest).await?;
        if referenced > 0 {
            return Err(RegistryError::Unsupported(format!(
                "blob {digest} is referenced by {referenced} manifest(s) of {repo}: delete those manifests first"
            )));
        }
        if self.store(repo).blobs.delete_blob(repo, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }

    /// Other repositories on `repo`'s root known to hold `digest` (see
    /// [`crate::storage::Blobs::holders`]): where a mount without `from`
    /// may take it from. A store that cannot tell gives none.
    pub async fn blob_holders(&self, repo: &RepoName, digest: &Digest) -> Vec<RepoName> {
        let store = self.store(repo);
        match store.blobs.holders(digest).await {
            Ok(found) => found
                .into_iter()
                .filter(|h| h != repo && std::ptr::addr_eq(self.store(h), store))
                .collect(),
            Err(e) => {
                tracing::debug!("where {digest} is stored is not known: {e}");
                Vec::new()
            }
        }
    }

    /// Mounts a blob from another repository; false if `from` lacks it.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<bool> {
        // A mount links within one root; across roots it falls back to an
        // upload, as a mount the registry cannot do.
        if !std::ptr::addr_eq(self.store(repo), self.store(from)) {
            return Ok(false);
        }
        let here = self
            .store(repo)
            .blobs
            .blob_len(repo, digest)
            .await?
            .is_some();
        let size = match here {
            true => 0,
            false => match self.store(from).blobs.blob_len(from, digest).await? {
                Some(n) => n,
                None => return Ok(false),
            },
        };
        if size > 0
            && let Some((q, used)) = self.upload_usage(repo, 0).await?
            && used + size > q.max_bytes
        {
            return Err(RegistryError::QuotaExceeded {
                rule: q.rule,
                limit: q.max_bytes,
                used,
                projected: used + size,
            });
        }
        self.ensure_repo(repo).await?;
        let linked = self.store(repo).blobs.link_blob(from, repo, digest).await?;
        if linked {
            self.touch_blob(repo, digest);
            self.count_unreferenced(repo, digest, size);
        }
        Ok(linked)
    }
}

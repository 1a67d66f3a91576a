//! Blob reads, deletes and cross-repository mounts.

use berth_oci::{Digest, RepoName};

use super::{Registry, RegistryError, RegistryResult};

impl Registry {
    /// A blob's size.
    pub async fn blob_len(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<u64> {
        self.store
            .blob_len(repo, digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// Opens a blob with its size.
    pub async fn open_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<(tokio::fs::File, u64)> {
        self.store
            .open_blob(repo, digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// Deletes a blob from one repository.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<()> {
        if self.store.delete_blob(repo, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }

    /// Mounts a blob from another repository; false if `from` lacks it.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<bool> {
        Ok(self.store.link_blob(from, repo, digest).await?)
    }
}

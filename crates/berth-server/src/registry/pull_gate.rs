//! Rules an extension puts on pulls, and rows it keeps facts in: the
//! core knows no such rule itself (the trust extension's signature policy
//! is one), it only asks before it serves a manifest, and lets an
//! extension note what it found in a manifest's metadata row.

use berth_oci::{Digest, Reference, RepoName};

use super::{Registry, RegistryError, RegistryResult};
use crate::meta::{ManifestMeta, RepoChange};

/// Why a gate refused a pull.
#[derive(Debug)]
pub enum PullRefusal {
    /// The caller may read the repository, but this manifest may not be
    /// served (403 `DENIED` with the message).
    Denied(String),
    /// The gate could not decide (its store failed).
    Failed(RegistryError),
}

/// Consulted before a manifest is served (`GET` or `HEAD`), after the
/// caller was authorized.
#[async_trait::async_trait]
pub trait PullGate: Send + Sync {
    /// Whether the manifest `digest` (`manifest` its bytes), asked for as
    /// `reference`, may be served.
    async fn check(
        &self,
        repo: &RepoName,
        reference: &Reference,
        digest: &Digest,
        manifest: &[u8],
    ) -> Result<(), PullRefusal>;
}

impl Registry {
    /// Changes the recorded row of `digest` in `repo` under the
    /// repository's lock (an extension noting what it found, e.g. a
    /// signature's verdicts); `false` when no such row is recorded. The
    /// row keeps its repository's recorded `index.json` version, so the
    /// change never hides a write to storage the store has not seen.
    pub async fn update_manifest_row(
        &self,
        repo: &RepoName,
        digest: &Digest,
        change: impl FnOnce(&mut ManifestMeta) + Send,
    ) -> RegistryResult<bool> {
        let _guard = self.store(repo).lock_repo(repo).await?;
        let (Some(mut row), Some(version)) = (
            self.meta.manifest(repo, digest).await?,
            self.meta.version(repo).await?,
        ) else {
            return Ok(false);
        };
        change(&mut row);
        let change = RepoChange {
            put_manifests: vec![row],
            version,
            ..Default::default()
        };
        self.meta.apply(repo, &change, false).await?;
        Ok(true)
    }
}

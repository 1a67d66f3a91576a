//! Content fetched from elsewhere when this registry lacks it. The core
//! knows no upstream itself (the sync extension's on-demand mirroring is
//! one): on a manifest or blob miss, and on a tag whose check is due, it
//! asks the [`Mirror`] installed, and serves what comes back.

use berth_oci::{Digest, Reference, RepoName};
use bytes::Bytes;
use futures_util::stream::BoxStream;

use super::{ManifestContent, RegistryResult};

/// The `index.json` annotation of a mirrored index stored without some of
/// the manifests it lists (the platforms a sync rule left upstream).
pub const PARTIAL_INDEX_ANNOTATION: &str = "io.berth.sync.partial-index";

/// A blob a mirror is fetching (or has fetched): its bytes arrive as the
/// mirror receives them.
pub struct MirroredBlob {
    /// The length, when the upstream said it.
    pub len: Option<u64>,
    /// The bytes; an error ends a body cut short (the client retries).
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

/// Asked by the API on a miss; never for a repository it does not mirror
/// (it answers `None` there, without I/O).
#[async_trait::async_trait]
pub trait Mirror: Send + Sync {
    /// A manifest `repo` lacks (`local` is `None`), or holds under a tag
    /// whose check against the upstream is due (`local` is its digest).
    /// `None`: not mirrored, not upstream, or (with `local`) keep serving
    /// the local copy. An error is what the client gets (an unreachable
    /// upstream is `503 UNAVAILABLE`).
    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        local: Option<&Digest>,
    ) -> RegistryResult<Option<ManifestContent>>;

    /// Whether tag `tag` of `repo`, held locally, is due a check against
    /// the upstream (no I/O).
    fn recheck_due(&self, repo: &RepoName, tag: &str) -> bool;

    /// A blob `repo` lacks, streamed as it is fetched; `None` when it is
    /// not mirrored or not upstream.
    async fn blob(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<Option<MirroredBlob>>;

    /// The referrers of `digest` in `repo` are asked for: bring the
    /// upstream's over first (errors are logged, not returned: the local
    /// answer is served anyway).
    async fn referrers(&self, repo: &RepoName, digest: &Digest);
}

//! Copying an image from one registry to another, whatever the two are:
//! the sync extension copies from an upstream into its own storage, the
//! command line from one registry to another. The walk is the same, so it
//! is written once, here, over two small seams: a [`CopySource`] (where
//! manifests, their heads and referrers are read; a [`crate::Client`] is
//! one) and a [`CopyTarget`] (what is already there, how a blob gets
//! there, where a manifest is put).
//!
//! The order is what makes a copy safe to cut short: an image's blobs
//! first (the target brings them over: already there, mounted, or
//! copied), then an index's child manifests, then the manifest itself,
//! under its tag last; then its OCI referrers (and theirs) and cosign's
//! `sha256-<hex>.sig|att|sbom` tags. Nothing is tagged before all it
//! names is stored, so a source that dies midway leaves no tag behind, and
//! the next copy starts again from what the target holds.
//!
//! The ends the command line copies between (`ends.rs`): a registry,
//! an OCI layout (`layout.rs`) or a docker-archive (`archive.rs`), named as
//! skopeo names them (`location.rs`); files are written checked and
//! renamed into place (`files.rs`).
//!
//! An index can be cut down to some platforms ([`CopyOptions::keep`]):
//! kept as the source signed it (the platforms left out are simply
//! absent) or rewritten to list only those kept (a new digest).

mod archive;
mod ends;
mod files;
mod layout;
mod location;
mod walk;

use std::future::Future;

use berth_oci::Digest;
use berth_oci::manifest::Descriptor;

use crate::{ManifestHead, RawManifest, Referrer};

pub use archive::{ArchiveSource, ArchiveTarget};
pub use ends::{
    BlobBytes, BlobDone, BlobProgress, CopyError, Progress, Quiet, Source, Target, TargetKind,
};
pub use layout::{LayoutSource, LayoutTarget};
pub use location::{Location, LocationError, RegistryRef};
pub use walk::{ImageCopy, Outcome, Resolved};

/// Why content cannot be copied (the source's content, not a failure of
/// either side): a manifest that does not parse, an index naming a
/// manifest the source lacks, nesting past the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CopyRefused(pub String);

/// Where an image is read from.
pub trait CopySource: Sync {
    /// The error of this source (and of the copy, with its target).
    type Error: From<CopyRefused> + Send;

    /// A manifest by tag or digest; `None` when the source lacks it.
    fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<RawManifest>, Self::Error>> + Send;

    /// A manifest's digest (without its body); `None` when absent.
    fn head(
        &self,
        repo: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ManifestHead>, Self::Error>> + Send;

    /// The OCI referrers of `digest` (none where the source has no
    /// referrers API).
    fn referrers(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> impl Future<Output = Result<Vec<Referrer>, Self::Error>> + Send;
}

/// Where an image is copied to (one repository).
pub trait CopyTarget: Sync {
    /// The error of this target; the copy's error type is the source's,
    /// which must take it.
    type Error: Send;

    /// The digest `tag` names here, if any.
    fn tag_digest(&self, tag: &str) -> impl Future<Output = Option<Digest>> + Send;

    /// Whether the manifest `digest` is here.
    fn has_manifest(&self, digest: &Digest) -> impl Future<Output = bool> + Send;

    /// Makes sure the blob `blob` is here: already, mounted, or copied
    /// from the source.
    fn ensure_blob(
        &self,
        blob: &Descriptor,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stores a manifest under `tag`, or by its digest when `tag` is
    /// `None`. An index may name manifests that are not here (when
    /// platforms were left out).
    fn put_manifest(
        &self,
        manifest: &RawManifest,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A platform as an index entry gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform<'a> {
    pub os: &'a str,
    pub architecture: &'a str,
    pub variant: Option<&'a str>,
}

/// How a copy is done.
pub struct CopyOptions<'a> {
    /// Whether an index entry is copied (`None`: an entry without a
    /// platform). Default: every entry.
    pub keep: &'a (dyn Fn(Option<Platform<'_>>) -> bool + Sync),
    /// An index with entries left out is rewritten to list only those
    /// kept (a new digest); otherwise it is stored as the source signed
    /// it.
    pub rewrite_filtered_index: bool,
    /// Copy cosign's `sha256-<hex>.sig|att|sbom` tags with an image.
    pub cosign_tags: bool,
    /// Copy only images the source holds a signature of (a cosign
    /// signature tag, or a cosign, sigstore or notation referrer).
    pub only_signed: bool,
    /// Blobs of one image brought over at once.
    pub parallel_blobs: usize,
}

/// Every index entry.
pub fn keep_every_platform(_: Option<Platform<'_>>) -> bool {
    true
}

impl Default for CopyOptions<'_> {
    fn default() -> Self {
        Self {
            keep: &keep_every_platform,
            rewrite_filtered_index: false,
            cosign_tags: true,
            only_signed: false,
            parallel_blobs: 4,
        }
    }
}

impl From<CopyRefused> for crate::ClientError {
    fn from(e: CopyRefused) -> Self {
        Self::Protocol(e.0)
    }
}

/// A client is a source: the registry it talks to.
impl CopySource for crate::Client {
    type Error = crate::ClientError;

    fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<RawManifest>, Self::Error>> + Send {
        let repo = self.upstream_repo(repo);
        async move { self.get_manifest_raw(&repo, reference).await }
    }

    fn head(
        &self,
        repo: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ManifestHead>, Self::Error>> + Send {
        let repo = self.upstream_repo(repo);
        async move { self.head_manifest_digest(&repo, reference).await }
    }

    fn referrers(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> impl Future<Output = Result<Vec<Referrer>, Self::Error>> + Send {
        let repo = self.upstream_repo(repo);
        async move { crate::Client::referrers(self, &repo, digest).await }
    }
}

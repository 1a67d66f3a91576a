//! The sync extension's side of a copy; `berth-client`'s copy engine
//! ([`berth_client::copy`]) walks the image. Here: the upstream as a
//! [`CopySource`] (its URLs in turn), one repository of this registry as
//! a [`CopyTarget`] (a blob already here, mounted from another repository
//! of the root, or fetched once through [`super::fetch`]; manifests stored
//! with [`Registry::put_mirrored_manifest`]), and the options a
//! registry's content rule gives ([`Job`]).

use std::sync::Arc;

use berth_client::copy::{CopyOptions, CopyRefused, CopySource, CopyTarget, ImageCopy, Platform};
use berth_client::{ManifestHead, RawManifest, Referrer};
use berth_oci::manifest::Descriptor;
use berth_oci::{Digest, Reference, RepoName};

use super::SyncError;
use super::fetch::{BlobFetches, BlobSource, Progress};
use super::upstream::Upstream;
use crate::registry::Registry;

impl From<CopyRefused> for SyncError {
    fn from(e: CopyRefused) -> Self {
        Self::Invalid(e.0)
    }
}

impl CopySource for Upstream {
    type Error = SyncError;

    async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<RawManifest>, SyncError> {
        Upstream::manifest(self, repo, reference).await
    }

    async fn head(&self, repo: &str, reference: &str) -> Result<Option<ManifestHead>, SyncError> {
        Upstream::head(self, repo, reference).await
    }

    async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Vec<Referrer>, SyncError> {
        Upstream::referrers(self, repo, digest).await
    }
}

/// One repository of this registry, fed from one upstream.
pub(super) struct RegistryTarget<'a> {
    registry: &'a Arc<Registry>,
    fetches: &'a BlobFetches,
    source: BlobSource,
}

impl CopyTarget for RegistryTarget<'_> {
    type Error = SyncError;

    async fn tag_digest(&self, tag: &str) -> Option<Digest> {
        let reference = Reference::Tag(tag.parse().ok()?);
        self.registry
            .get_manifest(&self.source.local, &reference)
            .await
            .ok()
            .map(|m| m.digest)
    }

    async fn has_manifest(&self, digest: &Digest) -> bool {
        self.registry
            .get_manifest(&self.source.local, &Reference::Digest(digest.clone()))
            .await
            .is_ok()
    }

    async fn ensure_blob(&self, blob: &Descriptor) -> Result<(), SyncError> {
        let (local, digest) = (&self.source.local, &blob.digest);
        if self.registry.blob_len(local, digest).await.is_ok() {
            return Ok(());
        }
        for holder in self.registry.blob_holders(local, digest).await {
            if self.registry.mount_blob(local, &holder, digest).await? {
                return Ok(());
            }
        }
        let Some(fetch) = self.fetches.get(&self.source, digest).await? else {
            return Ok(());
        };
        match fetch.finished().await {
            Progress::Stored { .. } => Ok(()),
            Progress::Missing => Err(SyncError::Invalid(format!(
                "{}: the upstream does not have blob {digest}",
                self.source.remote
            ))),
            Progress::Failed(why) => Err(SyncError::Fetch(why.to_string())),
            Progress::Starting | Progress::Running { .. } => {
                Err(SyncError::Fetch("the fetch stopped".into()))
            }
        }
    }

    async fn put_manifest(
        &self,
        manifest: &RawManifest,
        tag: Option<&str>,
    ) -> Result<(), SyncError> {
        let reference = match tag {
            Some(t) => Reference::Tag(
                t.parse()
                    .map_err(|e| SyncError::Invalid(format!("tag {t:?}: {e}")))?,
            ),
            None => Reference::Digest(manifest.digest.clone()),
        };
        self.registry
            .put_mirrored_manifest(
                &self.source.local,
                &reference,
                Some(&manifest.media_type),
                &manifest.bytes,
            )
            .await?;
        Ok(())
    }
}

/// Which platforms a rule keeps.
type Keep = Box<dyn Fn(Option<Platform<'_>>) -> bool + Send + Sync>;

/// One repository's copy from one upstream under one content rule: the
/// target and the options, from which [`Job::copy`] makes the engine's
/// [`ImageCopy`].
pub(super) struct Job<'a> {
    upstream: &'a Arc<Upstream>,
    target: RegistryTarget<'a>,
    keep: Keep,
}

impl<'a> Job<'a> {
    pub(super) fn new(
        registry: &'a Arc<Registry>,
        fetches: &'a BlobFetches,
        upstream: &'a Arc<Upstream>,
        rule: usize,
        local: RepoName,
        remote: String,
    ) -> Self {
        let rules = upstream.clone();
        let keep: Keep = Box::new(move |p: Option<Platform<'_>>| match p {
            Some(p) => rules
                .rules
                .platform_allowed(rule, p.os, p.architecture, p.variant),
            // An entry without a platform (an attestation, an artifact):
            // kept with no filter, or when the filter names `""`.
            None => rules.rules.platform_allowed(rule, "", "", None),
        });
        Self {
            upstream,
            target: RegistryTarget {
                registry,
                fetches,
                source: BlobSource {
                    upstream: upstream.clone(),
                    remote,
                    local,
                },
            },
            keep,
        }
    }

    /// The options of the registry's config.
    pub(super) fn options(&self) -> CopyOptions<'_> {
        let config = &self.upstream.config;
        CopyOptions {
            keep: &*self.keep,
            rewrite_filtered_index: !config.preserve_digest,
            cosign_tags: config.sync_legacy_cosign_tags,
            only_signed: config.only_signed,
            parallel_blobs: config.req_concurrent.max(1),
        }
    }

    /// The engine, for this job with `options`.
    pub(super) fn copy<'s>(
        &'s self,
        options: &'s CopyOptions<'s>,
    ) -> ImageCopy<'s, Upstream, RegistryTarget<'a>> {
        ImageCopy {
            source: self.upstream,
            target: &self.target,
            repo: &self.target.source.remote,
            options,
        }
    }
}

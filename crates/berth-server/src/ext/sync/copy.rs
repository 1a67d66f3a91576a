//! Copying one image from an upstream: the manifest (an index with the
//! platforms the content rule keeps), every blob this root lacks (mounted
//! from another repository when one holds it, else fetched once through
//! [`super::fetch`]), the child manifests, then the manifest itself and
//! the tag last; then its OCI referrers and cosign's signature tags.
//! Nothing is tagged before all it names is stored: an upstream that dies
//! midway leaves blobs (which GC reclaims) and no tag, and the next run
//! starts again from what is stored.

use std::sync::Arc;

use berth_client::RawManifest;
use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::ManifestKind;
use berth_oci::{Digest, Reference, RepoName};
use futures_util::{StreamExt, TryStreamExt};

use super::SyncError;
use super::fetch::{BlobFetches, BlobSource, Progress};
use super::upstream::Upstream;
use crate::registry::{ManifestContent, Registry};

/// Artifact types that make an image "signed" for `onlySigned`.
const SIGNATURE_TYPES: &[&str] = &[
    "application/vnd.dev.cosign.artifact.sig.v1+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.cncf.notary.signature",
];
/// cosign's tag suffixes (`sha256-<hex>.<suffix>`).
const COSIGN_SUFFIXES: &[&str] = &["sig", "att", "sbom"];
/// How deep indexes in indexes, and referrers of referrers, are followed.
const MAX_DEPTH: usize = 4;

/// What became of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Copied (or brought up to date); its digest.
    Copied(Digest),
    /// Already the same here.
    UpToDate,
    /// Left out by `onlySigned`.
    Unsigned,
    /// Not upstream.
    Missing,
}

/// A manifest as it will be stored: upstream's, or an index cut down to
/// the platforms a rule keeps (when `preserveDigest` is off).
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub content: ManifestContent,
    pub parsed: Manifest,
    /// An index's children to copy (all, or the platforms kept).
    pub children: Vec<Descriptor>,
}

/// One repository's copy from one upstream.
pub(super) struct Copy<'a> {
    pub registry: &'a Arc<Registry>,
    pub fetches: &'a BlobFetches,
    pub upstream: &'a Arc<Upstream>,
    pub rule: usize,
    pub local: RepoName,
    pub remote: String,
}

impl Copy<'_> {
    /// The manifest `reference` names upstream, as it will be stored;
    /// `None` when the upstream does not have it.
    pub(super) async fn resolve(&self, reference: &str) -> Result<Option<Resolved>, SyncError> {
        let Some(raw) = self.upstream.manifest(&self.remote, reference).await? else {
            return Ok(None);
        };
        self.shape(raw).map(Some)
    }

    /// Parses an upstream manifest and applies the platform filter.
    fn shape(&self, raw: RawManifest) -> Result<Resolved, SyncError> {
        let parsed = Manifest::parse(&raw.bytes, Some(&raw.media_type))
            .map_err(|e| SyncError::Invalid(format!("{}@{}: {e}", self.remote, raw.digest)))?;
        let mut content = ManifestContent {
            bytes: raw.bytes.to_vec(),
            media_type: raw.media_type,
            digest: raw.digest,
        };
        if parsed.kind != ManifestKind::Index {
            return Ok(Resolved {
                content,
                parsed,
                children: Vec::new(),
            });
        }
        let rules = &self.upstream.rules;
        let children: Vec<Descriptor> = parsed
            .manifests
            .iter()
            .filter(|d| match platform(d) {
                Some((os, arch, variant)) => {
                    rules.platform_allowed(self.rule, &os, &arch, variant.as_deref())
                }
                // A child without a platform (an attestation, an
                // artifact): kept with no filter, or when the filter
                // names `""`.
                None => rules.platform_allowed(self.rule, "", "", None),
            })
            .cloned()
            .collect();
        if children.len() < parsed.manifests.len() && !self.upstream.config.preserve_digest {
            content.bytes = filtered_index(&content.bytes, &children)?;
            content.digest = Digest::sha256(&content.bytes);
        }
        Ok(Resolved {
            content,
            parsed,
            children,
        })
    }

    /// Copies an image whole: `reference` upstream, stored under the same
    /// tag (or digest) here, then its referrers and signature tags.
    pub(super) async fn image(&self, reference: &str) -> Result<Outcome, SyncError> {
        let tag = (!reference.contains(':')).then_some(reference);
        let here = match tag {
            Some(t) => self.local_digest(t).await,
            None => None,
        };
        // A HEAD first: an unchanged image costs no manifest download.
        if let Some(here) = &here
            && let Some(head) = self.upstream.head(&self.remote, reference).await?
            && head.digest == *here
        {
            self.extras(here).await?;
            return Ok(Outcome::UpToDate);
        }
        let Some(resolved) = self.resolve(reference).await? else {
            return Ok(Outcome::Missing);
        };
        if self.upstream.config.only_signed && !self.signed(&resolved.content.digest).await? {
            return Ok(Outcome::Unsigned);
        }
        if here.as_ref() == Some(&resolved.content.digest) {
            // The image is here; signatures may be new.
            self.extras(&resolved.content.digest).await?;
            return Ok(Outcome::UpToDate);
        }
        self.complete(&resolved, tag).await?;
        Ok(Outcome::Copied(resolved.content.digest))
    }

    /// Stores everything `resolved` names, then `resolved` (under `tag`
    /// when given), then its referrers and signature tags.
    pub(super) async fn complete(
        &self,
        resolved: &Resolved,
        tag: Option<&str>,
    ) -> Result<(), SyncError> {
        self.store_tree(resolved, tag, 0).await?;
        self.extras(&resolved.content.digest).await
    }

    /// The image's parts, then the image, under `tag` or its digest.
    async fn store_tree(
        &self,
        resolved: &Resolved,
        tag: Option<&str>,
        depth: usize,
    ) -> Result<(), SyncError> {
        match resolved.parsed.kind {
            ManifestKind::Image => self.blobs(&resolved.parsed).await?,
            ManifestKind::Index => {
                if depth >= MAX_DEPTH {
                    return Err(SyncError::Invalid(format!(
                        "{}: indexes nested deeper than {MAX_DEPTH}",
                        self.remote
                    )));
                }
                for child in &resolved.children {
                    if self.has_manifest(&child.digest).await {
                        continue;
                    }
                    let digest = child.digest.to_string();
                    let Some(raw) = self.upstream.manifest(&self.remote, &digest).await? else {
                        return Err(SyncError::Invalid(format!(
                            "{}: the index names {digest}, which the upstream does not have",
                            self.remote
                        )));
                    };
                    let child = self.shape(raw)?;
                    Box::pin(self.store_tree(&child, None, depth + 1)).await?;
                }
            }
        }
        let reference = match tag {
            Some(t) => Reference::Tag(
                t.parse()
                    .map_err(|e| SyncError::Invalid(format!("tag {t:?}: {e}")))?,
            ),
            None => Reference::Digest(resolved.content.digest.clone()),
        };
        self.registry
            .put_mirrored_manifest(
                &self.local,
                &reference,
                Some(&resolved.content.media_type),
                &resolved.content.bytes,
            )
            .await?;
        Ok(())
    }

    /// Every blob an image names, stored here.
    async fn blobs(&self, manifest: &Manifest) -> Result<(), SyncError> {
        let wanted: Vec<Digest> = manifest
            .required_blobs()
            .map(|d| d.digest.clone())
            .collect();
        let at_once = self.upstream.config.req_concurrent.max(1);
        futures_util::stream::iter(
            wanted
                .into_iter()
                .map(|d| async move { self.blob(&d).await }),
        )
        .buffer_unordered(at_once)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    /// One blob, stored here: already, by a mount, or fetched.
    pub(super) async fn blob(&self, digest: &Digest) -> Result<(), SyncError> {
        if self.registry.blob_len(&self.local, digest).await.is_ok() {
            return Ok(());
        }
        for holder in self.registry.blob_holders(&self.local, digest).await {
            if self
                .registry
                .mount_blob(&self.local, &holder, digest)
                .await?
            {
                return Ok(());
            }
        }
        let source = BlobSource {
            upstream: self.upstream.clone(),
            remote: self.remote.clone(),
            local: self.local.clone(),
        };
        let Some(fetch) = self.fetches.get(&source, digest).await? else {
            return Ok(());
        };
        match fetch.finished().await {
            Progress::Stored { .. } => Ok(()),
            Progress::Missing => Err(SyncError::Invalid(format!(
                "{}: the upstream does not have blob {digest}",
                self.remote
            ))),
            Progress::Failed(why) => Err(SyncError::Fetch(why.to_string())),
            Progress::Starting | Progress::Running { .. } => {
                Err(SyncError::Fetch("the fetch stopped".into()))
            }
        }
    }

    /// Referrers and cosign's tags of `digest`.
    async fn extras(&self, digest: &Digest) -> Result<(), SyncError> {
        self.referrers(digest, 0).await?;
        if self.upstream.config.sync_legacy_cosign_tags {
            self.cosign_tags(digest).await?;
        }
        Ok(())
    }

    /// The upstream's OCI referrers of `digest` (and theirs), stored here.
    pub(super) async fn referrers(&self, digest: &Digest, depth: usize) -> Result<(), SyncError> {
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        for r in self.upstream.referrers(&self.remote, digest).await? {
            if !self.has_manifest(&r.digest).await {
                let Some(raw) = self
                    .upstream
                    .manifest(&self.remote, &r.digest.to_string())
                    .await?
                else {
                    continue;
                };
                let resolved = self.shape(raw)?;
                self.store_tree(&resolved, None, 0).await?;
            }
            Box::pin(self.referrers(&r.digest, depth + 1)).await?;
        }
        Ok(())
    }

    /// cosign's `sha256-<hex>.sig|att|sbom` tags of `digest`.
    async fn cosign_tags(&self, digest: &Digest) -> Result<(), SyncError> {
        for suffix in COSIGN_SUFFIXES {
            let tag = format!("{}-{}.{suffix}", digest.algorithm().as_str(), digest.hex());
            let Some(head) = self.upstream.head(&self.remote, &tag).await? else {
                continue;
            };
            if self.local_digest(&tag).await.as_ref() == Some(&head.digest) {
                continue;
            }
            if let Some(resolved) = self.resolve(&tag).await? {
                self.store_tree(&resolved, Some(&tag), 0).await?;
            }
        }
        Ok(())
    }

    /// Whether the upstream holds a signature of `digest`.
    pub(super) async fn signed(&self, digest: &Digest) -> Result<bool, SyncError> {
        let referrers = self.upstream.referrers(&self.remote, digest).await?;
        if referrers.iter().any(|r| {
            r.artifact_type
                .as_deref()
                .is_some_and(|t| SIGNATURE_TYPES.contains(&t))
        }) {
            return Ok(true);
        }
        let tag = format!("{}-{}.sig", digest.algorithm().as_str(), digest.hex());
        Ok(self.upstream.head(&self.remote, &tag).await?.is_some())
    }

    /// The digest tag `tag` names here.
    pub(super) async fn local_digest(&self, tag: &str) -> Option<Digest> {
        let reference = Reference::Tag(tag.parse().ok()?);
        self.registry
            .get_manifest(&self.local, &reference)
            .await
            .ok()
            .map(|m| m.digest)
    }

    async fn has_manifest(&self, digest: &Digest) -> bool {
        self.registry
            .get_manifest(&self.local, &Reference::Digest(digest.clone()))
            .await
            .is_ok()
    }
}

/// `os`, `architecture` and `variant` of an index entry.
fn platform(d: &Descriptor) -> Option<(String, String, Option<String>)> {
    let p = d.extra.get("platform")?;
    let os = p.get("os")?.as_str()?.to_string();
    let arch = p.get("architecture")?.as_str()?.to_string();
    let variant = p
        .get("variant")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Some((os, arch, variant))
}

/// An index with only `kept` among its manifests (every other field as
/// the upstream wrote it).
fn filtered_index(bytes: &[u8], kept: &[Descriptor]) -> Result<Vec<u8>, SyncError> {
    let mut doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| SyncError::Invalid(format!("an index that is not JSON: {e}")))?;
    let keep: std::collections::HashSet<String> =
        kept.iter().map(|d| d.digest.to_string()).collect();
    if let Some(list) = doc.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|m| {
            m.get("digest")
                .and_then(|d| d.as_str())
                .is_some_and(|d| keep.contains(d))
        });
    }
    serde_json::to_vec(&doc).map_err(|e| SyncError::Invalid(format!("rewriting an index: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filtered_index_keeps_only_the_kept_platforms_and_every_other_field() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "annotations": {"x": "y"},
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": a.to_string(), "size": 1,
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b.to_string(), "size": 1,
                 "platform": {"os": "linux", "architecture": "arm64"}},
            ]
        });
        let bytes = serde_json::to_vec(&index).expect("json");
        let parsed = Manifest::parse(&bytes, None).expect("parse");
        let kept = vec![parsed.manifests[1].clone()];
        let out: serde_json::Value =
            serde_json::from_slice(&filtered_index(&bytes, &kept).expect("filter")).expect("json");
        assert_eq!(out["manifests"].as_array().expect("list").len(), 1);
        assert_eq!(out["manifests"][0]["digest"], b.to_string());
        assert_eq!(out["annotations"]["x"], "y");
        assert_eq!(
            platform(&parsed.manifests[0]),
            Some(("linux".into(), "amd64".into(), None))
        );
    }
}

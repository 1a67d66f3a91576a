//! The walk of one image: see the module above.

use berth_oci::Digest;
use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::ManifestKind;
use futures_util::{StreamExt, TryStreamExt};

use super::{CopyOptions, CopyRefused, CopySource, CopyTarget, Platform};
use crate::RawManifest;

/// Artifact types that make an image signed (`only_signed`).
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
pub enum Outcome {
    /// Copied (or brought up to date); the digest stored.
    Copied(Digest),
    /// The target had it already.
    UpToDate,
    /// Left out: not signed (`only_signed`).
    Unsigned,
    /// The source does not have it.
    Missing,
}

/// A manifest as it will be stored: the source's, or an index cut down
/// to the platforms kept (when rewritten).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The bytes, media type and digest to store.
    pub manifest: RawManifest,
    /// What they say.
    pub parsed: Manifest,
    /// An index's entries to copy (all, or the platforms kept).
    pub children: Vec<Descriptor>,
}

/// One image's copy from `repo` of a source into a target.
pub struct ImageCopy<'a, S, T> {
    pub source: &'a S,
    pub target: &'a T,
    /// The repository's name at the source.
    pub repo: &'a str,
    pub options: &'a CopyOptions<'a>,
}

impl<S, T> ImageCopy<'_, S, T>
where
    S: CopySource,
    T: CopyTarget,
    S::Error: From<T::Error>,
{
    /// The manifest `reference` names at the source, as it will be
    /// stored; `None` when the source does not have it.
    pub async fn resolve(&self, reference: &str) -> Result<Option<Resolved>, S::Error> {
        let Some(raw) = self.source.manifest(self.repo, reference).await? else {
            return Ok(None);
        };
        Ok(Some(self.shape(raw)?))
    }

    /// Parses a manifest and applies the platform filter.
    fn shape(&self, raw: RawManifest) -> Result<Resolved, CopyRefused> {
        let parsed = Manifest::parse(&raw.bytes, Some(&raw.media_type))
            .map_err(|e| CopyRefused(format!("{}@{}: {e}", self.repo, raw.digest)))?;
        let mut manifest = raw;
        if parsed.kind != ManifestKind::Index {
            return Ok(Resolved {
                manifest,
                parsed,
                children: Vec::new(),
            });
        }
        let children: Vec<Descriptor> = parsed
            .manifests
            .iter()
            .filter(|d| {
                let p = d.extra.get("platform");
                let field = |k: &str| p.and_then(|p| p.get(k)).and_then(|v| v.as_str());
                let platform = match (field("os"), field("architecture")) {
                    (Some(os), Some(architecture)) => Some(Platform {
                        os,
                        architecture,
                        variant: field("variant"),
                    }),
                    _ => None,
                };
                (self.options.keep)(platform)
            })
            .cloned()
            .collect();
        if children.len() < parsed.manifests.len() && self.options.rewrite_filtered_index {
            let bytes = bytes::Bytes::from(filtered_index(&manifest.bytes, &children)?);
            manifest.digest = Digest::sha256(&bytes);
            manifest.bytes = bytes;
        }
        Ok(Resolved {
            manifest,
            parsed,
            children,
        })
    }

    /// Copies an image whole: `reference` at the source, stored under the
    /// same tag (or by digest), then its referrers and signature tags. An
    /// unchanged tag costs one `HEAD` (and the signatures' checks).
    pub async fn image(&self, reference: &str) -> Result<Outcome, S::Error> {
        let tag = (!reference.contains(':')).then_some(reference);
        let here = match tag {
            Some(t) => self.target.tag_digest(t).await,
            None => None,
        };
        if let Some(here) = &here
            && let Some(head) = self.source.head(self.repo, reference).await?
            && head.digest == *here
        {
            self.extras(here).await?;
            return Ok(Outcome::UpToDate);
        }
        let Some(resolved) = self.resolve(reference).await? else {
            return Ok(Outcome::Missing);
        };
        if self.options.only_signed && !self.signed(&resolved.manifest.digest).await? {
            return Ok(Outcome::Unsigned);
        }
        if here.as_ref() == Some(&resolved.manifest.digest) {
            self.extras(&resolved.manifest.digest).await?;
            return Ok(Outcome::UpToDate);
        }
        self.complete(&resolved, tag).await?;
        Ok(Outcome::Copied(resolved.manifest.digest))
    }

    /// Stores everything `resolved` names, then `resolved` (under `tag`
    /// when given), then its referrers and signature tags.
    pub async fn complete(&self, resolved: &Resolved, tag: Option<&str>) -> Result<(), S::Error> {
        self.store_tree(resolved, tag, 0).await?;
        self.extras(&resolved.manifest.digest).await
    }

    /// Stores everything `resolved` names, then `resolved` (under `tag`
    /// when given); no referrers or signature tags (see [`Self::extras`]).
    pub async fn store(&self, resolved: &Resolved, tag: Option<&str>) -> Result<(), S::Error> {
        self.store_tree(resolved, tag, 0).await
    }

    /// The image's parts, then the image, under `tag` or its digest.
    async fn store_tree(
        &self,
        resolved: &Resolved,
        tag: Option<&str>,
        depth: usize,
    ) -> Result<(), S::Error> {
        match resolved.parsed.kind {
            ManifestKind::Image => self.blobs(&resolved.parsed).await?,
            ManifestKind::Index => {
                if depth >= MAX_DEPTH {
                    return Err(CopyRefused(format!(
                        "{}: indexes nested deeper than {MAX_DEPTH}",
                        self.repo
                    ))
                    .into());
                }
                for child in &resolved.children {
                    if self.target.has_manifest(&child.digest).await {
                        continue;
                    }
                    let digest = child.digest.to_string();
                    let Some(raw) = self.source.manifest(self.repo, &digest).await? else {
                        return Err(CopyRefused(format!(
                            "{}: the index names {digest}, which the source does not have",
                            self.repo
                        ))
                        .into());
                    };
                    let child = self.shape(raw)?;
                    Box::pin(self.store_tree(&child, None, depth + 1)).await?;
                }
            }
        }
        self.target.put_manifest(&resolved.manifest, tag).await?;
        Ok(())
    }

    /// Every blob an image names, brought to the target.
    async fn blobs(&self, manifest: &Manifest) -> Result<(), S::Error> {
        let wanted: Vec<Descriptor> = manifest.required_blobs().cloned().collect();
        futures_util::stream::iter(
            wanted
                .into_iter()
                .map(|d| async move { self.target.ensure_blob(&d).await }),
        )
        .buffer_unordered(self.options.parallel_blobs.max(1))
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    /// Referrers and cosign's tags of `digest`.
    pub async fn extras(&self, digest: &Digest) -> Result<(), S::Error> {
        self.referrers(digest, 0).await?;
        if self.options.cosign_tags {
            self.cosign_tags(digest).await?;
        }
        Ok(())
    }

    /// The source's OCI referrers of `digest` (and theirs), stored.
    pub async fn referrers(&self, digest: &Digest, depth: usize) -> Result<(), S::Error> {
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        for r in self.source.referrers(self.repo, digest).await? {
            if !self.target.has_manifest(&r.digest).await {
                let Some(raw) = self
                    .source
                    .manifest(self.repo, &r.digest.to_string())
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
    async fn cosign_tags(&self, digest: &Digest) -> Result<(), S::Error> {
        for suffix in COSIGN_SUFFIXES {
            let tag = format!("{}-{}.{suffix}", digest.algorithm().as_str(), digest.hex());
            let Some(head) = self.source.head(self.repo, &tag).await? else {
                continue;
            };
            if self.target.tag_digest(&tag).await.as_ref() == Some(&head.digest) {
                continue;
            }
            if let Some(resolved) = self.resolve(&tag).await? {
                self.store_tree(&resolved, Some(&tag), 0).await?;
            }
        }
        Ok(())
    }

    /// Whether the source holds a signature of `digest`.
    pub async fn signed(&self, digest: &Digest) -> Result<bool, S::Error> {
        let referrers = self.source.referrers(self.repo, digest).await?;
        if referrers.iter().any(|r| {
            r.artifact_type
                .as_deref()
                .is_some_and(|t| SIGNATURE_TYPES.contains(&t))
        }) {
            return Ok(true);
        }
        let tag = format!("{}-{}.sig", digest.algorithm().as_str(), digest.hex());
        Ok(self.source.head(self.repo, &tag).await?.is_some())
    }
}

/// An index with only `kept` among its manifests (every other field as
/// the source wrote it).
fn filtered_index(bytes: &[u8], kept: &[Descriptor]) -> Result<Vec<u8>, CopyRefused> {
    let mut doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| CopyRefused(format!("an index that is not JSON: {e}")))?;
    let keep: std::collections::HashSet<String> =
        kept.iter().map(|d| d.digest.to_string()).collect();
    if let Some(list) = doc.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|m| {
            m.get("digest")
                .and_then(|d| d.as_str())
                .is_some_and(|d| keep.contains(d))
        });
    }
    serde_json::to_vec(&doc).map_err(|e| CopyRefused(format!("rewriting an index: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filtered_index_keeps_only_the_kept_entries_and_every_other_field() {
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
    }
}

#[cfg(test)]
mod order_tests {
    //! The walk against an in-memory source and target: what is stored,
    //! in which order, and that a blob that cannot be brought over leaves
    //! no tag.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::{ManifestHead, Referrer};

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

    #[derive(Default)]
    struct Memory {
        manifests: HashMap<String, RawManifest>,
    }

    impl Memory {
        fn put(&mut self, reference: &str, media_type: &str, doc: serde_json::Value) -> Digest {
            let bytes = bytes::Bytes::from(serde_json::to_vec(&doc).expect("json"));
            let digest = Digest::sha256(&bytes);
            let m = RawManifest {
                bytes,
                media_type: media_type.to_string(),
                digest: digest.clone(),
            };
            self.manifests.insert(digest.to_string(), m.clone());
            self.manifests.insert(reference.to_string(), m);
            digest
        }

        fn image(&mut self, reference: &str, layer: &Digest) -> Digest {
            let d = |x: &Digest| serde_json::json!({"mediaType": "application/octet-stream", "digest": x.to_string(), "size": 1});
            self.put(
                reference,
                OCI_MANIFEST,
                serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": d(&Digest::sha256(b"config")), "layers": [d(layer)]}),
            )
        }
    }

    impl CopySource for Memory {
        type Error = crate::ClientError;

        async fn manifest(
            &self,
            _: &str,
            reference: &str,
        ) -> Result<Option<RawManifest>, Self::Error> {
            Ok(self.manifests.get(reference).cloned())
        }

        async fn head(
            &self,
            _: &str,
            reference: &str,
        ) -> Result<Option<ManifestHead>, Self::Error> {
            Ok(self.manifests.get(reference).map(|m| ManifestHead {
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
                size: Some(m.bytes.len() as u64),
            }))
        }

        async fn referrers(&self, _: &str, _: &Digest) -> Result<Vec<Referrer>, Self::Error> {
            Ok(Vec::new())
        }
    }

    /// Records every step; refuses the blob `broken`.
    #[derive(Default)]
    struct Recorder {
        steps: Mutex<Vec<String>>,
        broken: Option<Digest>,
    }

    impl CopyTarget for Recorder {
        type Error = crate::ClientError;

        async fn tag_digest(&self, _: &str) -> Option<Digest> {
            None
        }

        async fn has_manifest(&self, _: &Digest) -> bool {
            false
        }

        async fn ensure_blob(&self, blob: &Descriptor) -> Result<(), Self::Error> {
            if self.broken.as_ref() == Some(&blob.digest) {
                return Err(crate::ClientError::Transport("cut".into()));
            }
            self.steps
                .lock()
                .expect("steps")
                .push(format!("blob {}", blob.digest));
            Ok(())
        }

        async fn put_manifest(
            &self,
            m: &RawManifest,
            tag: Option<&str>,
        ) -> Result<(), Self::Error> {
            let what = tag.map_or_else(|| m.digest.to_string(), |t| format!("tag {t}"));
            self.steps
                .lock()
                .expect("steps")
                .push(format!("manifest {what}"));
            Ok(())
        }
    }

    fn platform_entry(digest: &Digest, arch: &str) -> serde_json::Value {
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest.to_string(), "size": 1,
            "platform": {"os": "linux", "architecture": arch}})
    }

    #[tokio::test]
    async fn blobs_then_children_then_the_index_under_its_tag_last() {
        let mut source = Memory::default();
        let amd = source.image("amd", &Digest::sha256(b"amd layer"));
        let arm = source.image("arm", &Digest::sha256(b"arm layer"));
        source.put(
            "v1",
            OCI_INDEX,
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
                "manifests": [platform_entry(&amd, "amd64"), platform_entry(&arm, "arm64")]}),
        );
        let target = Recorder::default();
        let keep = |p: Option<Platform<'_>>| p.is_some_and(|p| p.architecture == "arm64");
        let options = CopyOptions {
            keep: &keep,
            rewrite_filtered_index: true,
            ..CopyOptions::default()
        };
        let copy = ImageCopy {
            source: &source,
            target: &target,
            repo: "app",
            options: &options,
        };
        let outcome = copy.image("v1").await.expect("copy");
        let steps = target.steps.lock().expect("steps").clone();
        assert_eq!(
            steps.last().map(String::as_str),
            Some("manifest tag v1"),
            "{steps:?}"
        );
        assert_eq!(
            steps.iter().filter(|s| s.starts_with("blob")).count(),
            2,
            "{steps:?}"
        );
        let child = steps
            .iter()
            .position(|s| *s == format!("manifest {arm}"))
            .expect("child");
        assert!(
            steps[..child].iter().all(|s| s.starts_with("blob")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains(&amd.to_string())),
            "amd64 left out"
        );
        // Rewritten: a new digest, listing one platform.
        let Outcome::Copied(d) = outcome else {
            panic!("{outcome:?}")
        };
        assert_ne!(Some(&d), source.manifests.get("v1").map(|m| &m.digest));
    }

    #[tokio::test]
    async fn a_blob_that_cannot_be_brought_over_leaves_no_tag() {
        let mut source = Memory::default();
        let layer = Digest::sha256(b"layer");
        source.image("v1", &layer);
        let target = Recorder {
            broken: Some(layer),
            ..Recorder::default()
        };
        let options = CopyOptions::default();
        let copy = ImageCopy {
            source: &source,
            target: &target,
            repo: "app",
            options: &options,
        };
        assert!(copy.image("v1").await.is_err());
        let steps = target.steps.lock().expect("steps").clone();
        assert!(
            !steps.iter().any(|s| s.starts_with("manifest")),
            "{steps:?}"
        );
        assert_eq!(copy.image("missing").await.expect("copy"), Outcome::Missing);
    }
}

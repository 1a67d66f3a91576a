//! Manifests, tags, referrers and the catalog.

use std::collections::HashSet;

use berth_oci::manifest::{Descriptor, Manifest, ManifestError};
use berth_oci::media::{self, ManifestKind};
use berth_oci::{Digest, Reference, RepoName};

use super::{Registry, RegistryError, RegistryResult};
use crate::storage::OciIndex;

/// How deep nested indexes are searched for a manifest pulled by digest.
const MAX_INDEX_DEPTH: usize = 4;

/// A manifest as served: the exact bytes pushed, with their media type.
#[derive(Debug, Clone)]
pub struct ManifestContent {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// The outcome of a manifest push.
#[derive(Debug, Clone)]
pub struct PutManifest {
    pub digest: Digest,
    /// The manifest's `subject`, echoed in `OCI-Subject`.
    pub subject: Option<Digest>,
}

impl Registry {
    async fn index(&self, repo: &RepoName) -> RegistryResult<OciIndex> {
        self.store(repo)
            .read_index(repo)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))
    }

    /// Finds the descriptor of a manifest: a tag in `index.json`, a digest
    /// there, or a digest referenced by an index reachable from it (an OCI
    /// layout written by other tools lists only top-level manifests).
    async fn resolve(&self, repo: &RepoName, reference: &Reference) -> RegistryResult<Descriptor> {
        let unknown = || RegistryError::ManifestUnknown(reference.to_string());
        let index = self
            .store(repo)
            .read_index(repo)
            .await?
            .ok_or_else(unknown)?;
        let digest = match reference {
            Reference::Tag(t) => return index.find_tag(t.as_str()).cloned().ok_or_else(unknown),
            Reference::Digest(d) => d,
        };
        if let Some(d) = index.find_digest(digest) {
            return Ok(d.clone());
        }
        let mut seen = HashSet::new();
        let mut frontier: Vec<Descriptor> = index.manifests;
        for _ in 0..MAX_INDEX_DEPTH {
            let mut next = Vec::new();
            for d in frontier {
                if media::manifest_kind(&d.media_type) != Some(ManifestKind::Index)
                    || !seen.insert(d.digest.clone())
                {
                    continue;
                }
                let Some(bytes) = self.store(repo).read_blob(repo, &d.digest).await? else {
                    continue;
                };
                let Ok(m) = Manifest::parse(&bytes, Some(&d.media_type)) else {
                    continue;
                };
                if let Some(found) = m.manifests.iter().find(|c| &c.digest == digest) {
                    return Ok(found.clone());
                }
                next.extend(m.manifests);
            }
            frontier = next;
        }
        Err(unknown())
    }

    /// A manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> RegistryResult<ManifestContent> {
        let desc = self.resolve(repo, reference).await?;
        let bytes = self
            .store(repo)
            .read_blob(repo, &desc.digest)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))?;
        Ok(ManifestContent {
            bytes,
            media_type: desc.media_type,
            digest: desc.digest,
        })
    }

    /// Stores a manifest after checking it and everything it references.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> RegistryResult<PutManifest> {
        let manifest = Manifest::parse(bytes, content_type).map_err(|e| match e {
            ManifestError::Invalid(m) => RegistryError::ManifestInvalid(m),
            ManifestError::UnsupportedMediaType(m) => {
                RegistryError::ManifestInvalid(format!("unsupported manifest media type {m:?}"))
            }
        })?;
        let algorithm = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => berth_oci::Algorithm::Sha256,
        };
        let digest = Digest::compute(algorithm, bytes);
        if let Reference::Digest(d) = reference
            && *d != digest
        {
            return Err(RegistryError::DigestMismatch {
                expected: d.clone(),
                actual: digest,
            });
        }
        let needed: Vec<&Descriptor> = match manifest.kind {
            ManifestKind::Image => manifest.required_blobs().collect(),
            ManifestKind::Index => manifest.manifests.iter().collect(),
        };
        self.store(repo).ensure_repo(repo).await?;
        // Under the lock, a blob checked here cannot be deleted before the
        // manifest naming it is recorded.
        let guard = self.store(repo).lock_repo(repo).await;
        for d in needed {
            if self.store(repo).blob_len(repo, &d.digest).await?.is_none() {
                return Err(RegistryError::ManifestBlobUnknown(d.digest.clone()));
            }
        }
        self.store(repo)
            .put_blob_bytes(repo, &digest, bytes)
            .await?;
        let desc = Descriptor {
            media_type: manifest.media_type.clone(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            artifact_type: manifest.artifact_type.clone(),
            annotations: None,
            extra: Default::default(),
        };
        self.store(repo)
            .update_index(&guard, repo, |index| {
                match reference {
                    Reference::Tag(t) => index.set_tag(desc, t.as_str()),
                    Reference::Digest(_) => index.add_untagged(desc),
                }
                (true, ())
            })
            .await?;
        Ok(PutManifest {
            digest,
            subject: manifest.subject.map(|s| s.digest),
        })
    }

    /// Deletes a tag (the manifest stays, by digest) or a manifest by
    /// digest: its entries and tags leave `index.json` and its blob is
    /// removed, so it is gone even where an index still names it.
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> RegistryResult<()> {
        if !self.store(repo).repo_exists(repo).await? {
            return Err(RegistryError::ManifestUnknown(reference.to_string()));
        }
        let guard = self.store(repo).lock_repo(repo).await;
        let removed = self
            .store(repo)
            .update_index(&guard, repo, |index| {
                let removed = match reference {
                    Reference::Tag(t) => index.remove_tag(t.as_str()),
                    Reference::Digest(d) => index.remove_digest(d),
                };
                (removed, removed)
            })
            .await?;
        if !removed {
            return Err(RegistryError::ManifestUnknown(reference.to_string()));
        }
        if let Reference::Digest(d) = reference {
            self.store(repo).delete_blob(repo, d).await?;
        }
        Ok(())
    }

    /// The repository's tags, sorted.
    pub async fn tags(&self, repo: &RepoName) -> RegistryResult<Vec<String>> {
        Ok(self.index(repo).await?.tags())
    }

    /// Every repository, sorted.
    pub async fn catalog(&self) -> RegistryResult<Vec<RepoName>> {
        Ok(self.roots.catalog().await?)
    }

    /// The manifests in `repo` whose `subject` is `digest`, as descriptors
    /// carrying their artifact type and annotations, optionally only those
    /// of one artifact type. An unknown repository or digest has none.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> RegistryResult<Vec<Descriptor>> {
        let Some(index) = self.store(repo).read_index(repo).await? else {
            return Ok(Vec::new());
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for d in index.manifests {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            let Some(bytes) = self.store(repo).read_blob(repo, &d.digest).await? else {
                continue;
            };
            let Ok(m) = Manifest::parse(&bytes, Some(&d.media_type)) else {
                continue;
            };
            if m.subject.as_ref().map(|s| &s.digest) != Some(digest) {
                continue;
            }
            let kind = m.effective_artifact_type();
            if artifact_type.is_some_and(|want| kind.as_deref() != Some(want)) {
                continue;
            }
            out.push(Descriptor {
                media_type: m.media_type,
                digest: d.digest,
                size: bytes.len() as u64,
                artifact_type: kind,
                annotations: m.annotations,
                extra: Default::default(),
            });
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }
}

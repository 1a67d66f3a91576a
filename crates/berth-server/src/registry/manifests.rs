//! Manifests, tags, referrers and the catalog.

use std::collections::HashMap;

use berth_oci::manifest::{Descriptor, Manifest, ManifestError};
use berth_oci::media::ManifestKind;
use berth_oci::{Digest, Reference, RepoName, Tag};

use super::meta_sync::now_secs;
use super::push_batch::IndexOp;
use super::{Registry, RegistryError, RegistryResult};
use crate::meta::{MetaStore, RepoChange};
use crate::storage::tag_of;

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
    /// Finds the descriptor of a manifest by tag or digest in the metadata
    /// store (which also knows manifests reachable only through an index,
    /// as other tools write multi-platform layouts).
    async fn resolve(&self, repo: &RepoName, reference: &Reference) -> RegistryResult<Descriptor> {
        let unknown = || RegistryError::ManifestUnknown(reference.to_string());
        if !self.refresh(repo).await? {
            return Err(unknown());
        }
        let digest: Digest = match reference {
            Reference::Tag(t) => self
                .meta
                .tag(repo, t)
                .await?
                .and_then(|d| d.parse().ok())
                .ok_or_else(unknown)?,
            Reference::Digest(d) => d.clone(),
        };
        let m = self
            .meta
            .manifest_head(repo, &digest)
            .await?
            .ok_or_else(unknown)?;
        Ok(Descriptor {
            media_type: m.media_type,
            digest,
            size: m.size,
            artifact_type: None,
            annotations: None,
            extra: Default::default(),
        })
    }

    /// Whether `tag` names a manifest in `repo` (no manifest read).
    pub async fn tag_exists(&self, repo: &RepoName, tag: &str) -> RegistryResult<bool> {
        // Not a tag: no such tag.
        let Ok(tag) = tag.parse::<Tag>() else {
            return Ok(false);
        };
        Ok(self.refresh(repo).await? && self.meta.tag(repo, &tag).await?.is_some())
    }

    /// Counts a pull of a manifest (for retention and search). The count
    /// is gathered in memory and written by a task `PULLS_GATHER` later
    /// (or when GC or `settle` asks for it first), so the pull waits for
    /// nothing.
    pub fn record_pull(&self, repo: &RepoName, digest: &Digest) {
        self.emit(super::events::RegistryEvent::ManifestPulled {
            repo: repo.to_string(),
        });
        let first = {
            let mut pending = self.pending_pulls.lock().unwrap_or_else(|p| p.into_inner());
            let was_empty = pending.is_empty();
            let entry = pending
                .entry((repo.clone(), digest.clone()))
                .or_insert((0, 0));
            entry.0 += 1;
            entry.1 = now_secs();
            was_empty
        };
        if first {
            let (meta, pending) = (self.meta.clone(), self.pending_pulls.clone());
            self.background.spawn(async move {
                tokio::time::sleep(PULLS_GATHER).await;
                write_pending_pulls(meta.as_ref(), &pending).await;
            });
        }
    }

    /// Writes the pulls gathered so far now (GC's retention reads them).
    pub(super) async fn write_pulls(&self) {
        write_pending_pulls(self.meta.as_ref(), &self.pending_pulls).await;
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
            .blobs
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
        self.put_manifest_as(repo, reference, content_type, bytes, false, None)
            .await
    }

    /// [`Registry::put_manifest`] for a caller who may create tags but not
    /// move them (`create_only`): a tag that exists by the time the
    /// repository is locked is refused, so two pushes racing to create it
    /// cannot both win. `pushed_by` is the authenticated user's name
    /// (`None` for an anonymous push), recorded with the manifest.
    pub async fn put_manifest_as(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: &[u8],
        create_only: bool,
        pushed_by: Option<&str>,
    ) -> RegistryResult<PutManifest> {
        self.put_manifest_with(
            repo,
            reference,
            content_type,
            bytes,
            create_only,
            pushed_by,
            true,
        )
        .await
    }

    /// Stores a manifest copied from an upstream registry: as
    /// [`Registry::put_manifest`], except that an index may name
    /// manifests this repository does not hold (a mirror that copies only
    /// some platforms keeps the index as its upstream signed it).
    pub async fn put_mirrored_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> RegistryResult<PutManifest> {
        self.put_manifest_with(repo, reference, content_type, bytes, false, None, false)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_manifest_with(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: &[u8],
        create_only: bool,
        pushed_by: Option<&str>,
        children_required: bool,
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
        let needed: Vec<Digest> = match manifest.kind {
            ManifestKind::Image => manifest
                .required_blobs()
                .map(|d| d.digest.clone())
                .collect(),
            ManifestKind::Index if children_required => manifest
                .manifests
                .iter()
                .map(|d| d.digest.clone())
                .collect(),
            ManifestKind::Index => Vec::new(),
        };
        if create_only
            && let Reference::Tag(t) = reference
            && self.tag_exists(repo, t.as_str()).await?
        {
            // Refused before anything is written (and checked again under
            // the lock, where two racing creates meet).
            return Err(RegistryError::TagExists(t.to_string()));
        }
        self.ensure_repo(repo).await?;
        let store = self.store(repo);
        // Before the lock: a manifest naming missing blobs fails without
        // leaving its own blob behind, and the manifest's blob is written
        // (a young blob is safe from GC, as an upload's is), so the
        // repository's pushes queue only for the index update. Under the
        // lock (`push_batch`) both are checked again.
        let content = bytes::Bytes::copy_from_slice(bytes);
        if let Some(d) = store
            .blobs
            .put_blob_needing(repo, &digest, content.clone(), &needed)
            .await?
        {
            return Err(RegistryError::ManifestBlobUnknown(d));
        }
        // The config exists by now: what it says of the image is read
        // before the lock too.
        // A mirrored index whose platforms were not all copied says so in
        // its `index.json` entry (scrub then expects the gaps).
        let mut partial = false;
        if !children_required && manifest.kind == ManifestKind::Index {
            for child in &manifest.manifests {
                if store.blobs.blob_len(repo, &child.digest).await?.is_none() {
                    partial = true;
                    break;
                }
            }
        }
        let mut meta = self
            .describe(repo, &digest, bytes.len() as u64, &manifest, None)
            .await;
        meta.pushed_by = pushed_by.map(str::to_string);
        self.lint(repo, reference, &digest, &manifest, &meta, bytes)?;
        let op = IndexOp {
            reference: reference.clone(),
            desc: Descriptor {
                media_type: manifest.media_type.clone(),
                digest: digest.clone(),
                size: bytes.len() as u64,
                artifact_type: manifest.artifact_type.clone(),
                annotations: partial.then(|| {
                    [(
                        super::PARTIAL_INDEX_ANNOTATION.to_string(),
                        "true".to_string(),
                    )]
                    .into()
                }),
                extra: Default::default(),
            },
            content,
            needed,
            create_only: create_only && matches!(reference, Reference::Tag(_)),
            meta,
            index: (manifest.kind == ManifestKind::Index).then(|| manifest.clone()),
            retry: false,
        };
        self.commit_push(repo, op).await?;
        if self.events.receiver_count() > 0 {
            self.emit(super::events::RegistryEvent::ManifestPushed {
                repo: repo.to_string(),
                reference: reference.to_string(),
                digest: digest.clone(),
                media_type: manifest.media_type.clone(),
                manifest: std::sync::Arc::new(bytes.to_vec()),
            });
        }
        Ok(PutManifest {
            digest,
            subject: manifest.subject.map(|s| s.digest),
        })
    }

    /// zot's linter: an OCI image manifest (not a cosign signature tag)
    /// must carry every mandatory annotation, in its annotations or its
    /// config's labels; a refusal is announced (`LintFailed`).
    fn lint(
        &self,
        repo: &RepoName,
        reference: &Reference,
        digest: &Digest,
        manifest: &Manifest,
        meta: &crate::meta::ManifestMeta,
        bytes: &[u8],
    ) -> RegistryResult<()> {
        let cosign_tag = matches!(reference, Reference::Tag(t)
            if t.as_str().starts_with("sha256-") && t.as_str().ends_with(".sig"));
        if manifest.media_type != berth_oci::media::OCI_MANIFEST || cosign_tag {
            return Ok(());
        }
        let labels = meta.image.as_ref().map(|i| &i.labels);
        let missing = self
            .policies()
            .missing_annotations(manifest.annotations.as_ref(), labels);
        if missing.is_empty() {
            return Ok(());
        }
        self.emit(super::events::RegistryEvent::LintFailed {
            repo: repo.to_string(),
            reference: reference.to_string(),
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
            manifest: std::sync::Arc::new(bytes.to_vec()),
        });
        Err(RegistryError::LintFailed {
            reference: reference.to_string(),
            missing,
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
        self.delete_manifest_checked(repo, reference, false).await
    }

    /// [`Registry::delete_manifest`]; with `detect_collision` (zot's
    /// `detectManifestCollision` action, held by the caller), a digest
    /// that several tags name is not deleted: the deletion would take
    /// every one of them.
    pub async fn delete_manifest_checked(
        &self,
        repo: &RepoName,
        reference: &Reference,
        detect_collision: bool,
    ) -> RegistryResult<()> {
        if !self.store(repo).layout.repo_exists(repo).await? {
            return Err(RegistryError::ManifestUnknown(reference.to_string()));
        }
        let guard = self.store(repo).lock_repo(repo).await?;
        let in_step = self.in_step(&guard).await?;
        let policies = self.policies();
        // An index named by an immutable tag pins its children too.
        let children: HashMap<String, Vec<String>> =
            if policies.has_immutable(repo) && matches!(reference, Reference::Digest(_)) {
                self.meta
                    .manifests(repo)
                    .await?
                    .into_iter()
                    .filter(|m| !m.children.is_empty())
                    .map(|m| (m.digest, m.children))
                    .collect()
            } else {
                HashMap::new()
            };
        let removed = self
            .store(repo)
            .update_index(&guard, |index| {
                let pinned = match reference {
                    Reference::Tag(t) => policies
                        .immutable_rule(repo, t.as_str())
                        .filter(|_| index.find_tag(t.as_str()).is_some())
                        .map(|rule| (t.to_string(), rule.to_string())),
                    Reference::Digest(d) => {
                        let tags: Vec<(&str, String)> = index
                            .manifests()
                            .filter_map(|m| tag_of(m).map(|t| (t, m.digest.to_string())))
                            .collect();
                        super::policy::pinned_by(
                            &policies,
                            repo,
                            tags.iter().map(|(t, d)| (*t, d.as_str())),
                            &children,
                            &d.to_string(),
                        )
                    }
                };
                if let Some((tag, rule)) = pinned {
                    return (false, Err(RegistryError::TagImmutable { tag, rule }));
                }
                if let (true, Reference::Digest(d)) = (detect_collision, reference) {
                    let mut tags: Vec<String> = index
                        .manifests()
                        .filter(|m| m.digest == *d)
                        .filter_map(|m| tag_of(m).map(String::from))
                        .collect();
                    tags.sort();
                    if tags.len() > 1 {
                        let digest = d.to_string();
                        return (
                            false,
                            Err(RegistryError::ManifestCollision { digest, tags }),
                        );
                    }
                }
                let desc = match reference {
                    Reference::Tag(t) => index.find_tag(t.as_str()),
                    Reference::Digest(d) => index.find_digest(d),
                }
                .map(|d| (d.digest.clone(), d.media_type.clone()));
                let removed = match reference {
                    Reference::Tag(t) => index.remove_tag(t.as_str()),
                    Reference::Digest(d) => index.remove_digest(d),
                };
                (removed, Ok(removed.then_some(desc)))
            })
            .await??;
        let Some(desc) = removed else {
            return Err(RegistryError::ManifestUnknown(reference.to_string()));
        };
        let change = match reference {
            Reference::Tag(t) => RepoChange {
                remove_tags: vec![t.to_string()],
                ..Default::default()
            },
            Reference::Digest(d) => RepoChange {
                remove_manifests: vec![d.to_string()],
                ..Default::default()
            },
        };
        self.after_write(&guard, in_step, change).await?;
        if let Reference::Digest(d) = reference {
            self.store(repo).blobs.delete_blob(repo, d).await?;
        }
        drop(guard);
        self.emit(super::events::RegistryEvent::ManifestDeleted {
            repo: repo.to_string(),
            reference: reference.to_string(),
            digest: desc.as_ref().map(|(d, _)| d.clone()),
            media_type: desc.map(|(_, m)| m),
        });
        Ok(())
    }

    /// The repository's tags, sorted.
    pub async fn tags(&self, repo: &RepoName) -> RegistryResult<Vec<String>> {
        if !self.refresh(repo).await? {
            return Err(RegistryError::NameUnknown(repo.to_string()));
        }
        Ok(self
            .meta
            .tags(repo)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    /// Every repository, sorted (from the metadata store: no directory
    /// walk).
    pub async fn catalog(&self) -> RegistryResult<Vec<RepoName>> {
        let mut repos: Vec<RepoName> = self
            .meta
            .repos()
            .await?
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect();
        repos.sort();
        Ok(repos)
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
        if !self.refresh(repo).await? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for m in self.meta.referrers(repo, digest).await? {
            if artifact_type.is_some_and(|want| m.artifact_type.as_deref() != Some(want)) {
                continue;
            }
            let Ok(d) = m.digest.parse() else {
                continue;
            };
            out.push(Descriptor {
                media_type: m.media_type,
                digest: d,
                size: m.size,
                artifact_type: m.artifact_type,
                annotations: (!m.annotations.is_empty()).then_some(m.annotations),
                extra: Default::default(),
            });
        }
        Ok(out)
    }
}

/// How long pulls are gathered before they are written.
pub(super) const PULLS_GATHER: std::time::Duration = std::time::Duration::from_millis(200);

/// Pulls counted and not yet written (see `Registry::pending_pulls`).
pub(super) type PendingPulls = std::collections::HashMap<(RepoName, Digest), (u64, u64)>;

/// Takes what `pending` gathered and writes it, one store write per
/// manifest; a failure is logged (pull statistics are not worth failing
/// anything for).
async fn write_pending_pulls(meta: &dyn MetaStore, pending: &std::sync::Mutex<PendingPulls>) {
    let taken = std::mem::take(&mut *pending.lock().unwrap_or_else(|p| p.into_inner()));
    for ((repo, digest), (count, at)) in taken {
        if let Err(e) = meta.record_pulls(&repo, &digest, count, at).await {
            tracing::warn!(%repo, %digest, "recording pulls failed: {e}");
        }
    }
}

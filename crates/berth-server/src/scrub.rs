//! Scrub: proves every byte is intact, and changes nothing.
//!
//! For every image in every repository (each entry of `index.json`) it
//! re-hashes the manifest, parses it, and re-hashes everything it needs:
//! an image manifest's config and layers, an index's child manifests
//! (recursively). A blob shared by several images of a repository is hashed
//! once. Each image gets one [`ScrubRow`]: `ok`, or `affected` naming the
//! first bad blob and why. A `subject` may point at a manifest that is not
//! there (the spec allows a referrer to arrive first), so it is not checked.

use std::collections::HashMap;

use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::{self, ManifestKind};
use berth_oci::{Digest, DigestHasher, RepoName};
use futures_util::StreamExt;
use serde::Serialize;

use crate::storage::{Roots, StorageResult, Store};

/// How deep nested indexes are followed.
const MAX_DEPTH: usize = 8;

/// The verdict on one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrubRow {
    pub repository: String,
    /// The tag, or the digest of an untagged manifest.
    pub tag: String,
    /// `ok` or `affected`.
    pub status: &'static str,
    #[serde(rename = "affectedBlob")]
    pub affected_blob: String,
    pub error: String,
}

impl ScrubRow {
    pub fn is_affected(&self) -> bool {
        self.status == "affected"
    }
}

/// What is wrong with one blob.
#[derive(Debug, Clone)]
struct Fault {
    blob: Digest,
    error: String,
}

/// Scrubs every repository each root serves.
pub async fn scrub_all(roots: &Roots) -> StorageResult<Vec<ScrubRow>> {
    let mut rows = Vec::new();
    for root in roots.all() {
        for repo in roots.repos_of(root).await? {
            rows.extend(scrub_repo(&root.store, &repo).await?);
        }
    }
    Ok(rows)
}

/// Scrubs one repository.
pub async fn scrub_repo(store: &Store, repo: &RepoName) -> StorageResult<Vec<ScrubRow>> {
    let Some(index) = store.layout.read_index(repo).await? else {
        return Ok(Vec::new());
    };
    let mut checker = Checker {
        store,
        repo,
        hashed: HashMap::new(),
    };
    let mut rows = Vec::new();
    for desc in index.manifests() {
        let tag = crate::storage::tag_of(desc)
            .map(str::to_string)
            .unwrap_or_else(|| desc.digest.to_string());
        let fault = checker.manifest(desc, 0).await?;
        rows.push(ScrubRow {
            repository: repo.to_string(),
            tag,
            status: if fault.is_some() { "affected" } else { "ok" },
            affected_blob: fault
                .as_ref()
                .map(|f| f.blob.to_string())
                .unwrap_or_default(),
            error: fault.map(|f| f.error).unwrap_or_default(),
        });
    }
    Ok(rows)
}

struct Checker<'a> {
    store: &'a Store,
    repo: &'a RepoName,
    /// Blobs already hashed in this repository: digest → fault, if any.
    hashed: HashMap<Digest, Option<String>>,
}

impl Checker<'_> {
    /// Checks a blob's presence, size and digest; `None` when intact.
    async fn blob(&mut self, desc: &Descriptor) -> StorageResult<Option<Fault>> {
        let fault = |error: String| {
            Some(Fault {
                blob: desc.digest.clone(),
                error,
            })
        };
        let verdict = match self.hashed.get(&desc.digest) {
            Some(v) => v.clone(),
            None => {
                let v = self.hash(&desc.digest).await?;
                self.hashed.insert(desc.digest.clone(), v.clone());
                v
            }
        };
        if let Some(error) = verdict {
            return Ok(fault(error));
        }
        let len = self.store.blobs.blob_len(self.repo, &desc.digest).await?;
        if len != Some(desc.size) {
            return Ok(fault(format!(
                "size is {} but the descriptor says {}",
                len.unwrap_or(0),
                desc.size
            )));
        }
        Ok(None)
    }

    /// Re-hashes a blob from disk; `Some(error)` if missing or damaged.
    async fn hash(&self, digest: &Digest) -> StorageResult<Option<String>> {
        let Some(len) = self.store.blobs.blob_len(self.repo, digest).await? else {
            return Ok(Some("blob is missing".into()));
        };
        let Some(mut data) = self
            .store
            .blobs
            .read_blob_range(self.repo, digest, 0, len)
            .await?
        else {
            return Ok(Some("blob is missing".into()));
        };
        let mut h = DigestHasher::new(digest.algorithm());
        let result = loop {
            match data.next().await {
                Some(Ok(b)) => h.update(&b),
                Some(Err(e)) => break Err(e),
                None => break Ok(h.finish()),
            }
        };
        Ok(match result {
            Ok(actual) if &actual == digest => None,
            Ok(actual) => Some(format!("content hashes to {actual}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("blob is missing".into()),
            Err(e) => Some(format!("cannot read the blob: {e}")),
        })
    }

    /// Checks a manifest and, through it, everything it needs.
    async fn manifest(&mut self, desc: &Descriptor, depth: usize) -> StorageResult<Option<Fault>> {
        if let Some(f) = self.blob(desc).await? {
            return Ok(Some(f));
        }
        let bytes = self
            .store
            .blobs
            .read_blob(self.repo, &desc.digest)
            .await?
            .unwrap_or_default();
        let manifest = match Manifest::parse(&bytes, Some(&desc.media_type)) {
            Ok(m) => m,
            Err(e) => {
                return Ok(Some(Fault {
                    blob: desc.digest.clone(),
                    error: e.to_string(),
                }));
            }
        };
        match manifest.kind {
            ManifestKind::Image => {
                for d in manifest.required_blobs() {
                    if let Some(f) = self.blob(d).await? {
                        return Ok(Some(f));
                    }
                }
            }
            ManifestKind::Index => {
                // A mirror's index kept without some platforms: those
                // children are absent by design.
                let partial = desc
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(crate::registry::PARTIAL_INDEX_ANNOTATION));
                for child in &manifest.manifests {
                    if partial
                        && self
                            .store
                            .blobs
                            .blob_len(self.repo, &child.digest)
                            .await?
                            .is_none()
                    {
                        continue;
                    }
                    if media::manifest_kind(&child.media_type).is_none() {
                        // An index may list artifacts that are not manifests
                        // Berth understands; their bytes must still be there.
                        if let Some(f) = self.blob(child).await? {
                            return Ok(Some(f));
                        }
                        continue;
                    }
                    if depth >= MAX_DEPTH {
                        return Ok(Some(Fault {
                            blob: child.digest.clone(),
                            error: format!("indexes nested deeper than {MAX_DEPTH}"),
                        }));
                    }
                    if let Some(f) = Box::pin(self.manifest(child, depth + 1)).await? {
                        return Ok(Some(f));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// What a background pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScrubSummary {
    pub ok: usize,
    pub affected: usize,
}

/// One pass over a running registry: every repository of every root is
/// checked, damage is logged at warn level with the affected blob, nothing
/// is changed. A repository that looks damaged is checked a second time
/// before it is reported, so a manifest deleted while it was being read is
/// not taken for damage.
pub async fn scrub_pass(roots: &Roots) -> ScrubSummary {
    let mut summary = ScrubSummary::default();
    for root in roots.all() {
        let repos = match roots.repos_of(root).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "berth::scrub", "cannot list repositories: {e}");
                continue;
            }
        };
        for repo in repos {
            let mut rows = scrub_repo(&root.store, &repo).await;
            if rows
                .as_ref()
                .is_ok_and(|r| r.iter().any(ScrubRow::is_affected))
            {
                rows = scrub_repo(&root.store, &repo).await;
            }
            match rows {
                Ok(rows) => {
                    for row in rows {
                        if row.is_affected() {
                            summary.affected += 1;
                            tracing::warn!(target: "berth::scrub", repository = row.repository, tag = row.tag, blob = row.affected_blob, error = row.error, "image affected");
                        } else {
                            summary.ok += 1;
                        }
                    }
                }
                Err(e) => tracing::warn!(target: "berth::scrub", %repo, "scrub failed: {e}"),
            }
        }
    }
    tracing::info!(target: "berth::scrub", ok = summary.ok, affected = summary.affected, "scrub finished");
    summary
}

/// Renders rows as an aligned text table.
pub fn render_table(rows: &[ScrubRow]) -> String {
    let header = ["REPOSITORY", "TAG", "STATUS", "AFFECTED BLOB", "ERROR"];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.repository.as_str(),
                r.tag.as_str(),
                r.status,
                r.affected_blob.as_str(),
                r.error.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(cells.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

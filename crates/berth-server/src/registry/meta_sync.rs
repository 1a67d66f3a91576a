//! Keeping the metadata store in step with storage.
//!
//! Writes go to `index.json` first and to the metadata store right after,
//! under the repository's lock. A change is applied incrementally only when
//! the store was up to date with the `index.json` it replaces; otherwise,
//! and whenever a reader finds the file's version differs from the one
//! recorded, the repository is derived again from its layout (only
//! manifests not known yet are read from disk, and rows an older Berth
//! wrote without config details; a push that finds the store out of step
//! hands its own rows to the derive, so who pushed is not lost).
//!
//! A manifest's row is [`manifest_meta`] (what the manifest says) plus,
//! from [`Registry::describe`], what its config blob says of the image
//! (`image_config.rs`), read at push time and when a derive reads a
//! manifest from disk.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::{self, ManifestKind};
use berth_oci::{Digest, RepoName};

use super::{Registry, RegistryResult};
use crate::meta::{IndexVersion, ManifestMeta, RepoChange};
use crate::storage::{RepoGuard, tag_of};

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `os/architecture[/variant]` of a descriptor's `platform`.
pub(super) fn platform_of(d: &Descriptor) -> Option<String> {
    let p = d.extra.get("platform")?;
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    Some(match p.get("variant").and_then(|v| v.as_str()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

/// The metadata of a parsed manifest, as far as the manifest itself says
/// (the image details its config gives are [`Registry::describe`]'s).
fn manifest_meta(
    digest: &Digest,
    size: u64,
    m: &Manifest,
    platform: Option<String>,
) -> ManifestMeta {
    ManifestMeta {
        digest: digest.to_string(),
        media_type: m.media_type.clone(),
        size,
        artifact_type: m.effective_artifact_type(),
        config: m.config.as_ref().map(|c| c.digest.to_string()),
        layers: m.layers.iter().map(|l| l.digest.to_string()).collect(),
        children: m.manifests.iter().map(|c| c.digest.to_string()).collect(),
        platform,
        annotations: m.annotations.clone().unwrap_or_default(),
        subject: m.subject.as_ref().map(|s| s.digest.to_string()),
        pushed_at: now_secs(),
        pushed_by: None,
        layer_sizes: m.layers.iter().map(|l| l.size).collect(),
        config_size: m.config.as_ref().map_or(0, |c| c.size),
        config_media_type: m.config.as_ref().map(|c| c.media_type.clone()),
        image: None,
        trust: None,
    }
}

/// The names an OCI layout holds: a repository whose name has one of them
/// as a component after the first would lie inside a shorter
/// repository's layout (`a/blobs/sha256/<hex>` in `a`'s blob store), so
/// it is refused whichever of the two is created first.
const LAYOUT_NAMES: [&str; 3] = ["blobs", "index.json", "oci-layout"];

fn refuse_layout_names(repo: &RepoName) -> RegistryResult<()> {
    match repo.components().skip(1).find(|c| LAYOUT_NAMES.contains(c)) {
        Some(c) => Err(crate::storage::StorageError::NameConflict(format!(
            "{repo}: a repository name cannot hold {c:?} below its first component (it would lie inside a shorter repository's OCI layout)"
        ))
        .into()),
        None => Ok(()),
    }
}

/// Whether a recorded manifest was recorded by a Berth that did not keep
/// config details yet (this one always sets the config's media type with
/// the config), so a derive reads it again.
fn predates_image_details(m: &ManifestMeta) -> bool {
    m.config.is_some() && m.config_media_type.is_none()
}

impl Registry {
    /// [`manifest_meta`] with what the manifest's config says of the image
    /// (read from its blob: see `image_config`).
    pub(super) async fn describe(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        m: &Manifest,
        platform: Option<String>,
    ) -> ManifestMeta {
        let mut meta = manifest_meta(digest, size, m, platform);
        if let Some(config) = &m.config {
            meta.image = self.image_config(repo, config).await;
        }
        meta
    }

    /// The metadata of a manifest read from its blob (`d` names it as an
    /// index or `index.json` does); `None` if the blob is missing or is no
    /// manifest.
    async fn read_manifest_meta(
        &self,
        repo: &RepoName,
        d: &Descriptor,
        platform: Option<String>,
    ) -> RegistryResult<Option<ManifestMeta>> {
        let Some(bytes) = self.store(repo).blobs.read_blob(repo, &d.digest).await? else {
            return Ok(None);
        };
        let parsed =
            Manifest::parse(&bytes, Some(&d.media_type)).or_else(|_| Manifest::parse(&bytes, None));
        let Ok(parsed) = parsed else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        Ok(Some(
            self.describe(repo, &d.digest, size, &parsed, platform)
                .await,
        ))
    }

    async fn index_version(&self, repo: &RepoName) -> RegistryResult<Option<IndexVersion>> {
        Ok(self.store(repo).layout.index_version(repo).await?)
    }

    /// Creates a repository's layout, then records it (durably: the catalog
    /// has no file to compare with). The empty version makes the first
    /// read derive it.
    pub(super) async fn ensure_repo(&self, repo: &RepoName) -> RegistryResult<()> {
        let existed = self.store(repo).layout.repo_exists(repo).await?;
        // Held until the repository is recorded: the `maxRepos` count.
        let _cap = if existed {
            None
        } else {
            refuse_layout_names(repo)?;
            self.repo_cap(repo).await?
        };
        if !existed {
            let guard = self.store(repo).lock_repo(repo).await?;
            self.store(repo).layout.create_repo(&guard).await?;
        }
        if !existed && self.meta.version(repo).await?.is_none() {
            // The store itself keeps a durable commit off the async workers.
            self.meta.apply(repo, &RepoChange::default(), true).await?;
        }
        if !existed {
            self.emit(super::events::RegistryEvent::RepoCreated {
                repo: repo.to_string(),
            });
        }
        Ok(())
    }

    /// The version of `index.json` if the metadata store is in step
    /// with it; taken under the lock before a change.
    pub(super) async fn in_step(&self, guard: &RepoGuard) -> RegistryResult<Option<IndexVersion>> {
        let repo = guard.repo();
        let on_disk = self.index_version(repo).await?;
        let recorded = self.meta.version(repo).await?;
        Ok(if on_disk.is_some() && on_disk == recorded {
            on_disk
        } else {
            None
        })
    }

    /// Applies `change` after an `index.json` write: incrementally if the
    /// store was in step before it, else by deriving the repository again.
    pub(super) async fn after_write(
        &self,
        guard: &RepoGuard,
        was_in_step: Option<IndexVersion>,
        mut change: RepoChange,
    ) -> RegistryResult<()> {
        let repo = guard.repo();
        // Children reachable only through a removed index go with it; a
        // derive finds exactly what is still reachable.
        let mut removes_index = false;
        for d in &change.remove_manifests {
            let Ok(d) = d.parse::<Digest>() else {
                continue;
            };
            if let Ok(Some(m)) = self.meta.manifest(repo, &d).await
                && !m.children.is_empty()
            {
                removes_index = true;
                break;
            }
        }
        match (was_in_step, self.index_version(repo).await?) {
            (Some(_), Some(now)) if !removes_index => {
                change.version = now;
                self.meta.apply(repo, &change, false).await?;
                Ok(())
            }
            // What the change records of its manifests (who pushed them,
            // what their config says) is kept through the derive.
            _ => self.derive_with(guard, &change.put_manifests).await,
        }
    }

    /// Makes sure the metadata of `repo` matches its `index.json`,
    /// deriving it again if not. Returns whether the repository exists.
    pub(super) async fn refresh(&self, repo: &RepoName) -> RegistryResult<bool> {
        let on_disk = self.index_version(repo).await?;
        let recorded = self.meta.version(repo).await?;
        match (&on_disk, &recorded) {
            (Some(a), Some(b)) if a == b => return Ok(true),
            // Unknown everywhere: nothing to lock, nothing to write.
            (None, None) => return Ok(false),
            _ => {}
        }
        // A writer holding the lock (a push, GC) brings the store in step
        // when it is done: a reader does not wait for it, and answers from
        // what the store knows now.
        // A lock service that fails does not fail a read either.
        match self.store(repo).try_lock_repo(repo).await.unwrap_or(None) {
            Some(guard) => self.refresh_locked(&guard).await,
            None => Ok(on_disk.is_some()),
        }
    }

    /// [`Registry::refresh`] for a caller that holds the lock already.
    pub(super) async fn refresh_locked(&self, guard: &RepoGuard) -> RegistryResult<bool> {
        let repo = guard.repo();
        if self.in_step(guard).await?.is_none() {
            self.derive(guard).await?;
        }
        Ok(self.index_version(repo).await?.is_some())
    }

    /// Derives a repository's metadata from its layout: tags from
    /// `index.json`, manifests reachable from it (reading only those the
    /// store does not know yet).
    pub(super) async fn derive(&self, guard: &RepoGuard) -> RegistryResult<()> {
        self.derive_with(guard, &[]).await
    }

    /// [`Registry::derive`], taking the metadata of `recorded` (manifests
    /// a change was about to record) as known: a push that finds the store
    /// out of step keeps what it knows of its manifest.
    async fn derive_with(
        &self,
        guard: &RepoGuard,
        recorded: &[ManifestMeta],
    ) -> RegistryResult<()> {
        let repo = guard.repo();
        let version = self.index_version(repo).await?;
        let Some(index) = self.store(repo).layout.read_index(repo).await? else {
            self.meta.remove_repo(repo.as_str()).await?;
            return Ok(());
        };
        let known: HashMap<String, ManifestMeta> = self
            .meta
            .manifests(repo)
            .await?
            .into_iter()
            .chain(recorded.iter().cloned())
            .map(|m| (m.digest.clone(), m))
            .collect();
        let mut found: BTreeMap<String, ManifestMeta> = BTreeMap::new();
        let mut queue: Vec<(Descriptor, Option<String>)> = index
            .manifests()
            .map(|d| (d.clone(), platform_of(d)))
            .collect();
        while let Some((d, platform)) = queue.pop() {
            let key = d.digest.to_string();
            if found.contains_key(&key) || media::manifest_kind(&d.media_type).is_none() {
                continue;
            }
            // Known rows are kept; a row an older Berth wrote is read
            // again for what it did not record, keeping when and by whom
            // it was pushed.
            let known = known.get(&key);
            let fresh = match known {
                Some(m) if !predates_image_details(m) => None,
                _ => self.read_manifest_meta(repo, &d, platform.clone()).await?,
            };
            let meta = match (known, fresh) {
                (Some(old), fresh) => {
                    let mut m = fresh.unwrap_or_else(|| old.clone());
                    m.pushed_at = old.pushed_at;
                    m.pushed_by.clone_from(&old.pushed_by);
                    m.platform = old.platform.clone().or(platform);
                    m
                }
                (None, Some(mut m)) => {
                    // Found on disk: its push time is its file's.
                    if let Some(t) = self
                        .store(repo)
                        .blobs
                        .blob_modified(repo, &d.digest)
                        .await?
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    {
                        m.pushed_at = t.as_secs();
                    }
                    m
                }
                (None, None) => continue,
            };
            if media::manifest_kind(&meta.media_type) == Some(ManifestKind::Index)
                && let Some(bytes) = self.store(repo).blobs.read_blob(repo, &d.digest).await?
                && let Ok(parsed) = Manifest::parse(&bytes, None)
            {
                queue.extend(parsed.manifests.iter().map(|c| (c.clone(), platform_of(c))));
            }
            found.insert(key, meta);
        }
        let tags = index
            .manifests()
            .filter_map(|d| tag_of(d).map(|t| (t.to_string(), d.digest.to_string())))
            .collect();
        let change = RepoChange {
            put_manifests: found.into_values().collect(),
            set_tags: tags,
            version: version.unwrap_or_default(),
            replace: true,
            ..Default::default()
        };
        self.meta.apply(repo, &change, false).await?;
        Ok(())
    }

    /// The metadata of an index's children with the platform the index
    /// gives them, including children present only as blobs.
    pub(super) async fn child_metas(
        &self,
        repo: &RepoName,
        index: &Manifest,
    ) -> RegistryResult<Vec<ManifestMeta>> {
        let mut out = Vec::new();
        for c in &index.manifests {
            if media::manifest_kind(&c.media_type).is_none() {
                continue;
            }
            let platform = platform_of(c);
            let known = self.meta.manifest(repo, &c.digest).await?;
            let meta = match known {
                Some(mut m) => {
                    if platform.is_none() || m.platform == platform {
                        continue;
                    }
                    m.platform = platform;
                    m
                }
                None => match self.read_manifest_meta(repo, c, platform).await? {
                    Some(m) => m,
                    None => continue,
                },
            };
            out.push(meta);
        }
        Ok(out)
    }

    /// Brings the metadata store's list of one root's repositories in line
    /// with what is on disk (run by GC, which walks the root anyway): ones
    /// another tool added are recorded, ones removed behind the registry's
    /// back are forgotten.
    pub(super) async fn reconcile_catalog(
        &self,
        root: &crate::storage::Root,
        on_disk: &[RepoName],
    ) -> RegistryResult<()> {
        let recorded = self.meta.repos().await?;
        let recorded_here: Vec<&String> = recorded
            .iter()
            .filter(|r| {
                r.parse::<RepoName>()
                    .is_ok_and(|n| std::ptr::eq(self.roots.root_of(&n), root))
            })
            .collect();
        for name in &recorded_here {
            if !on_disk.iter().any(|r| r.as_str() == name.as_str()) {
                self.forget_if_gone(name).await?;
            }
        }
        for repo in on_disk {
            if !recorded_here.iter().any(|r| r.as_str() == repo.as_str()) {
                self.meta.apply(repo, &RepoChange::default(), false).await?;
            }
        }
        Ok(())
    }

    /// Forgets a repository the listing did not find, after checking under
    /// its lock that it is still missing (the listing is slow, and another
    /// instance may have created it since).
    async fn forget_if_gone(&self, name: &str) -> RegistryResult<()> {
        let Ok(repo) = name.parse::<RepoName>() else {
            return Ok(self.meta.remove_repo(name).await?);
        };
        let _guard = self.store(&repo).lock_repo(&repo).await?;
        if !self.store(&repo).layout.repo_exists(&repo).await? {
            self.meta.remove_repo(name).await?;
        }
        Ok(())
    }

    /// Rebuilds the metadata store's list of repositories from every root
    /// (at start when the store is new, or with `--force-reparse`): each
    /// repository is derived when first read; ones gone from disk are
    /// forgotten.
    pub async fn reparse(&self) -> RegistryResult<usize> {
        let mut on_disk = Vec::new();
        for root in self.roots.all() {
            let repos =
                self.roots
                    .repos_of(root)
                    .await
                    .map_err(|source| super::RegistryError::Root {
                        prefix: root.prefix.clone(),
                        source,
                    })?;
            on_disk.extend(repos);
        }
        on_disk.sort();
        let recorded = self.meta.repos().await?;
        for name in &recorded {
            if name
                .parse::<RepoName>()
                .map_or(true, |r| !on_disk.contains(&r))
            {
                self.forget_if_gone(name).await?;
            }
        }
        for repo in &on_disk {
            // An empty version: derived on first read. What is known is
            // kept until then (better a moment stale than empty; manifests
            // are content-addressed, so what is known of one stays true).
            self.meta.apply(repo, &RepoChange::default(), false).await?;
        }
        self.meta.flush().await?;
        Ok(on_disk.len())
    }

    /// Sets a setting of the metadata store.
    pub async fn set_meta_setting(&self, name: &str, value: &str) -> RegistryResult<()> {
        Ok(self.meta.set_setting(name, value).await?)
    }

    /// Waits for the writes requests started without waiting (pull
    /// statistics) to end.
    pub async fn settle(&self) {
        self.write_pulls().await;
        self.background.close();
        self.background.wait().await;
        self.background.reopen();
    }

    /// Makes the metadata store's writes durable and marks a clean
    /// shutdown (without the mark, the next start derives it again); also
    /// writes the dedupe index entries still in memory.
    pub async fn flush_meta(&self) {
        self.settle().await;
        let done = match self.meta.flush().await {
            Ok(()) => self.meta.set_setting("clean-shutdown", "1").await,
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            tracing::warn!("flushing the metadata store failed: {e}");
        }
        for root in self.roots.all() {
            if let Some(fs) = &root.store.local
                && let Err(e) = fs.flush_dedupe_index()
            {
                tracing::warn!(
                    "flushing the dedupe index of {} failed: {e}",
                    root.store.location()
                );
            }
        }
    }
}

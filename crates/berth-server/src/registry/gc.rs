//! Garbage collection of one repository at a time.
//!
//! Removes, when older than the delay:
//! - untagged manifests that no index in the repository lists, that are not
//!   the `subject` of another manifest, and that are not themselves a
//!   referrer of a manifest still present;
//! - blobs that no remaining manifest (followed through indexes) needs;
//! - upload files idle for longer than the delay.
//!
//! The repository's lock is held from computing what is referenced until
//! the last deletion, so a manifest push (which checks its blobs under the
//! same lock) can never record a manifest whose blob GC is about to delete.
//! Pulls take no lock and are never stalled (except the first read of a
//! repository whose metadata must be derived again, which takes the lock
//! to do so). A blob whose existence a client
//! checked recently (`HEAD`, mount) counts as young, so a push that found
//! it and is about to reference it does not lose it. Every deletion is
//! logged with its reason.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::{self, ManifestKind};
use berth_oci::{Digest, RepoName};

use super::meta_sync::now_secs;
use super::retention::{self, TagFacts};
use super::{Registry, RegistryResult};
use crate::config::{RetentionConfig, RetentionPolicy};
use crate::meta::RepoChange;
use crate::storage::RepoGuard;
use crate::storage::{Root, tag_of};

/// Upload files younger than this are never collected, whatever
/// `gcDelay` says: a temporary file lives for the milliseconds of one
/// write, and a session between two requests is not abandoned.
pub(crate) const MIN_UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// What one run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// Tags removed by retention.
    pub tags: usize,
    pub manifests: usize,
    pub blobs: usize,
    pub uploads: usize,
}

impl GcReport {
    fn add(&mut self, o: GcReport) {
        self.tags += o.tags;
        self.manifests += o.manifests;
        self.blobs += o.blobs;
        self.uploads += o.uploads;
    }
}

/// Whether `t` is at least `delay` ago (`None`, unknown: it is not).
fn older_than(t: Option<SystemTime>, delay: Duration) -> bool {
    t.and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= delay)
}

impl Registry {
    /// Notes that a client just asked about a blob: GC treats it as young.
    pub(crate) fn touch_blob(&self, repo: &RepoName, digest: &Digest) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.insert((repo.clone(), digest.clone()), Instant::now());
    }

    fn touched_within(&self, repo: &RepoName, digest: &Digest, delay: Duration) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(&(repo.clone(), digest.clone()))
            .is_some_and(|t| t.elapsed() < delay)
    }

    /// Collects every repository of one storage root, one after the other.
    pub async fn gc_root(&self, root: &Root, delay: Duration) -> RegistryResult<GcReport> {
        self.gc_root_with(root, delay, None).await
    }

    /// [`Registry::gc_root`] with the root's retention policies applied
    /// first.
    pub async fn gc_root_with(
        &self,
        root: &Root,
        delay: Duration,
        retention: Option<&RetentionConfig>,
    ) -> RegistryResult<GcReport> {
        let mut total = GcReport::default();
        let on_disk = self.roots.repos_of(root).await?;
        if let Err(e) = self.reconcile_catalog(root, &on_disk).await {
            tracing::warn!(target: "berth::gc", "reconciling the catalog failed: {e}");
        }
        for repo in on_disk {
            let _slot = self.background_slot().await;
            match self.gc_repo_with(&repo, delay, retention).await {
                Ok(r) => total.add(r),
                Err(e) => {
                    tracing::warn!(target: "berth::gc", %repo, "gc of this repository failed, going on with the others: {e}")
                }
            }
        }
        match root.store.blobs.sweep(delay).await {
            Ok(n) => total.blobs += n,
            Err(e) => {
                tracing::warn!(target: "berth::gc", root = %root.store.location(), "sweeping shared blobs failed: {e}")
            }
        }
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(repo, _), t| {
                !std::ptr::eq(self.roots.root_of(repo), root) || t.elapsed() < delay
            });
        Ok(total)
    }

    /// Collects one repository.
    pub async fn gc_repo(&self, repo: &RepoName, delay: Duration) -> RegistryResult<GcReport> {
        self.gc_repo_with(repo, delay, None).await
    }

    /// Collects one repository after applying retention: tags no rule
    /// keeps are removed (or only logged with `dryRun`), `deleteUntagged`
    /// and `deleteReferrers` decide what happens to untagged manifests, and
    /// `retention.delay` replaces `delay` for them.
    pub async fn gc_repo_with(
        &self,
        repo: &RepoName,
        delay: Duration,
        retention: Option<&RetentionConfig>,
    ) -> RegistryResult<GcReport> {
        let mut report = GcReport::default();
        let policy = retention.and_then(|r| retention::policy_for(r, repo));
        let dry_run = retention.is_some_and(|r| r.dry_run);
        let manifest_delay = retention.and_then(|r| r.delay).map_or(delay, |d| d.0);
        let guard = self.store(repo).lock_repo(repo).await?;
        if let Some(policy) = policy {
            report.tags = self.apply_retention(&guard, policy, dry_run).await?;
        }
        let Some(index) = self.store(repo).layout.read_index(repo).await? else {
            return Ok(report);
        };
        let (parsed, complete) = self
            .parse_reachable(repo, index.manifests().cloned().collect())
            .await?;

        // Untagged manifests nothing needs.
        let tagged: HashSet<&Digest> = index
            .manifests()
            .filter(|d| tag_of(d).is_some())
            .map(|d| &d.digest)
            .collect();
        let mut listed_by_index = HashSet::new();
        let mut subjects = HashSet::new();
        for m in parsed.values() {
            listed_by_index.extend(m.manifests.iter().map(|c| c.digest.clone()));
            subjects.extend(m.subject.iter().map(|s| s.digest.clone()));
        }
        let mut doomed = HashSet::new();
        let keep_untagged = self
            .kept_untagged(repo, policy, &index, &tagged, &listed_by_index, &subjects)
            .await?;
        for d in index.manifests() {
            if tagged.contains(&d.digest)
                || listed_by_index.contains(&d.digest)
                || subjects.contains(&d.digest)
            {
                continue;
            }
            // A referrer stays while its subject does, and, unless the
            // policy says `deleteReferrers`, after it is gone too (the spec
            // lets a referrer arrive before its subject).
            let kept_referrer = match parsed.get(&d.digest).and_then(|m| m.subject.as_ref()) {
                Some(s) => {
                    !policy.is_some_and(|p| p.delete_referrers)
                        || self
                            .store(repo)
                            .blobs
                            .blob_len(repo, &s.digest)
                            .await?
                            .is_some()
                }
                None => false,
            };
            if kept_referrer
                || policy.is_some_and(|p| !p.delete_untagged)
                || keep_untagged.contains(&d.digest.to_string())
                || self.touched_within(repo, &d.digest, manifest_delay)
                || !older_than(
                    self.store(repo)
                        .blobs
                        .blob_modified(repo, &d.digest)
                        .await?,
                    manifest_delay,
                )
            {
                continue;
            }
            doomed.insert(d.digest.clone());
        }
        if !doomed.is_empty() {
            let in_step = self.in_step(&guard).await?;
            self.store(repo)
                .update_index(&guard, |i| {
                    i.retain(|d| !doomed.contains(&d.digest));
                    (true, ())
                })
                .await?;
            let change = RepoChange {
                remove_manifests: doomed.iter().map(|d| d.to_string()).collect(),
                ..Default::default()
            };
            self.after_write(&guard, in_step, change).await?;
            for d in &doomed {
                tracing::info!(target: "berth::gc", %repo, digest = %d, reason = "untagged manifest that no index, subject or referrer needs", "deleted");
                self.store(repo).blobs.delete_blob(repo, d).await?;
                report.manifests += 1;
            }
        }

        // Blobs no remaining manifest needs.
        let mut needed: HashSet<Digest> = HashSet::new();
        for (digest, m) in &parsed {
            if doomed.contains(digest) {
                continue;
            }
            needed.insert(digest.clone());
            needed.extend(m.config.iter().map(|c| c.digest.clone()));
            needed.extend(m.layers.iter().map(|l| l.digest.clone()));
            needed.extend(m.manifests.iter().map(|c| c.digest.clone()));
        }
        // Entries that did not parse are kept, with whatever they name.
        needed.extend(
            index
                .manifests()
                .filter(|d| !doomed.contains(&d.digest))
                .map(|d| d.digest.clone()),
        );
        if !complete {
            // What an unreadable manifest needs is unknown: delete no blob.
            tracing::warn!(target: "berth::gc", %repo, "a manifest is missing or unreadable: no blob collected (run berth scrub)");
            drop(guard);
            report.uploads = self.gc_uploads(repo, delay).await?;
            return Ok(report);
        }
        for digest in self.store(repo).blobs.list_blobs(repo).await? {
            if needed.contains(&digest)
                || self.touched_within(repo, &digest, delay)
                || !older_than(
                    self.store(repo).blobs.blob_modified(repo, &digest).await?,
                    delay,
                )
            {
                continue;
            }
            // One blob that cannot be removed (something foreign in its
            // place) is logged and skipped; the others are still collected.
            match self.store(repo).blobs.delete_blob(repo, &digest).await {
                Ok(_) => {
                    tracing::info!(target: "berth::gc", %repo, %digest, reason = "blob no manifest references", "deleted");
                    report.blobs += 1;
                }
                Err(e) if !e.is_unavailable() => {
                    tracing::warn!(target: "berth::gc", %repo, %digest, "not deleted, skipped: {e}");
                }
                Err(e) => return Err(e.into()),
            }
        }
        drop(guard);

        report.uploads = self.gc_uploads(repo, delay).await?;
        Ok(report)
    }

    /// The untagged manifests (by digest) that `policy`'s `keepUntagged`
    /// keeps, among those nothing else keeps.
    async fn kept_untagged(
        &self,
        repo: &RepoName,
        policy: Option<&RetentionPolicy>,
        index: &crate::storage::OciIndex,
        tagged: &HashSet<&Digest>,
        listed: &HashSet<Digest>,
        subjects: &HashSet<Digest>,
    ) -> RegistryResult<HashSet<String>> {
        let Some(rule) = policy.and_then(|p| p.keep_untagged.as_ref()) else {
            return Ok(HashSet::new());
        };
        // Pulls still gathered in memory count too.
        self.write_pulls().await;
        let mut facts = Vec::new();
        for d in index.manifests().map(|d| &d.digest) {
            if tagged.contains(d) || listed.contains(d) || subjects.contains(d) {
                continue;
            }
            facts.push(TagFacts {
                tag: d.to_string(),
                pushed_at: self
                    .meta
                    .manifest(repo, d)
                    .await?
                    .map_or(0, |m| m.pushed_at),
                last_pulled: self.meta.pull_stats(repo, d).await?.last_pulled,
            });
        }
        let kept = retention::kept_by(&rule.as_rule(), &facts, now_secs());
        for d in &kept {
            tracing::debug!(target: "berth::gc", %repo, digest = %d, reason = "retention: keepUntagged", "kept");
        }
        Ok(kept)
    }

    /// Removes the tags `policy` does not keep (with `dry_run`, only logs
    /// them). Returns how many went (or would go).
    async fn apply_retention(
        &self,
        guard: &RepoGuard,
        policy: &RetentionPolicy,
        dry_run: bool,
    ) -> RegistryResult<usize> {
        let repo = guard.repo();
        if !self.refresh_locked(guard).await? {
            return Ok(0);
        }
        // Pulls still gathered in memory count too.
        self.write_pulls().await;
        let mut facts = Vec::new();
        for (tag, digest) in self.meta.tags(repo).await? {
            // A recorded digest that does not parse names no manifest.
            let (pushed_at, last_pulled) = match digest.parse::<Digest>() {
                Ok(d) => (
                    self.meta
                        .manifest(repo, &d)
                        .await?
                        .map_or(0, |m| m.pushed_at),
                    self.meta.pull_stats(repo, &d).await?.last_pulled,
                ),
                Err(_) => (0, None),
            };
            facts.push(TagFacts {
                tag,
                pushed_at,
                last_pulled,
            });
        }
        let mut remove = retention::tags_to_remove(policy, &facts, now_secs());
        // Immutable tags stay whatever retention says.
        let pinned = super::policy::immutable_tags(&self.policies(), repo, &remove);
        for tag in &pinned {
            tracing::info!(target: "berth::gc", %repo, tag, reason = "immutable tag", "retention keeps it");
        }
        remove.retain(|t| !pinned.contains(t));
        if remove.is_empty() {
            return Ok(0);
        }
        for tag in &remove {
            tracing::info!(target: "berth::gc", %repo, tag, dry_run, reason = "retention: no keepTags rule keeps it", "{}", if dry_run { "would untag" } else { "untagged" });
        }
        if dry_run {
            return Ok(remove.len());
        }
        let in_step = self.in_step(guard).await?;
        self.store(repo)
            .update_index(guard, |index| {
                for t in &remove {
                    index.remove_tag(t);
                }
                (true, ())
            })
            .await?;
        let change = RepoChange {
            remove_tags: remove.clone(),
            ..Default::default()
        };
        self.after_write(guard, in_step, change).await?;
        Ok(remove.len())
    }

    /// Parses every manifest reachable from `entries` (through indexes),
    /// keyed by digest. Entries whose blob is missing or unparsable are
    /// left out.
    async fn parse_reachable(
        &self,
        repo: &RepoName,
        entries: Vec<Descriptor>,
    ) -> RegistryResult<(HashMap<Digest, Manifest>, bool)> {
        let mut parsed = HashMap::new();
        let mut complete = true;
        let mut queue = entries;
        while let Some(d) = queue.pop() {
            if parsed.contains_key(&d.digest) || media::manifest_kind(&d.media_type).is_none() {
                continue;
            }
            let Some(bytes) = self.store(repo).blobs.read_blob(repo, &d.digest).await? else {
                complete = false;
                continue;
            };
            // The descriptor's media type may be wrong; the body's own is
            // the next best guess.
            let m = Manifest::parse(&bytes, Some(&d.media_type))
                .or_else(|_| Manifest::parse(&bytes, None));
            let Ok(m) = m else {
                complete = false;
                continue;
            };
            if m.kind == ManifestKind::Index {
                queue.extend(m.manifests.iter().cloned());
            }
            parsed.insert(d.digest.clone(), m);
        }
        Ok((parsed, complete))
    }

    /// Removes upload files (sessions, their state, temporaries) idle for
    /// longer than `delay`, and never one younger than [`MIN_UPLOAD_IDLE`]
    /// or belonging to a session a request is using right now.
    async fn gc_uploads(&self, repo: &RepoName, delay: Duration) -> RegistryResult<usize> {
        let delay = delay.max(MIN_UPLOAD_IDLE);
        let store = self.store(repo);
        let mut removed = 0;
        for entry in store.uploads.list_uploads(repo).await? {
            if !older_than(Some(entry.modified), delay) {
                continue;
            }
            // A session a request holds stays: here, by its entry in the
            // map; on another instance, by its shared lock.
            let mut _held = None;
            if let Some(session) = entry.session.as_deref() {
                if let Ok(id) = session.parse()
                    && !self.uploads.remove_if_idle(id)
                {
                    continue;
                }
                if store.is_shared() {
                    match store.locks().try_lock_upload(session).await {
                        Ok(Some(g)) => _held = Some(g),
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(target: "berth::gc", %repo, file = %entry.name, "cannot lock the upload, left alone: {e}");
                            continue;
                        }
                    }
                }
            }
            match store.uploads.remove_upload_entry(repo, &entry.name).await {
                Ok(true) => {
                    tracing::info!(target: "berth::gc", %repo, file = %entry.name, reason = "upload idle longer than gcDelay", "deleted");
                    removed += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(target: "berth::gc", %repo, file = %entry.name, "cannot remove an idle upload: {e}")
                }
            }
        }
        Ok(removed)
    }
}

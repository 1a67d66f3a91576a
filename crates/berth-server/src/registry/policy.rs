//! Repository policies, enforced for every writer (admins included, sync
//! too): byte quotas, the repository cap, and immutable tags.
//!
//! - **Quotas** (`storage.quotas`, else the root's `maxRepoBytes`): a
//!   repository's usage is the sum of the distinct blobs and manifests its
//!   manifests reference, as recorded in the metadata store (so several
//!   instances count alike; a blob shared with another repository counts
//!   in each). An upload is cut, with nothing past the quota stored, when
//!   the usage plus this instance's unreferenced uploads into the
//!   repository plus the upload itself would exceed it; the manifest push
//!   is checked again under the repository's lock, where two pushes that
//!   together exceed it meet (one is refused). A push that does not raise
//!   the usage is never refused, so a repository above a lowered quota
//!   can still be tagged and cleaned up.
//! - **`maxRepos`**: checked where a repository is created, under a lock
//!   every instance shares.
//! - **Immutable tags**: a tag matching a rule can be created, and pushed
//!   again with the same manifest, but not moved or deleted, nor can the
//!   manifest it names (or a child of it) be deleted by digest; retention
//!   keeps it.
//!
//! The rules are swapped whole when the config is reloaded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_oci::{Digest, RepoName};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::{Registry, RegistryError, RegistryResult};
use crate::config::{ConfigError, StorageConfig};
use crate::meta::ManifestMeta;
use crate::storage::HeldLock;

/// How long an upload that no manifest references yet counts against its
/// repository's quota on this instance (GC's default delay: after that,
/// an unreferenced blob may be collected any time).
const UNREFERENCED_FOR: Duration = Duration::from_secs(3600);

/// The quota that applies to a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// The config key it comes from (`storage.quotas[0]`,
    /// `storage.maxRepoBytes`, `storage.subPaths./a.maxRepoBytes`).
    pub rule: String,
    pub max_bytes: u64,
}

struct QuotaRule {
    globs: GlobSet,
    quota: Quota,
}

struct ImmutableRule {
    globs: GlobSet,
    /// Anchored; empty: every tag.
    patterns: Vec<regex::Regex>,
    rule: String,
}

/// The policies in force.
#[derive(Default)]
pub struct Policies {
    max_repos: Option<u64>,
    quotas: Vec<QuotaRule>,
    /// `maxRepoBytes` of the main root.
    main_bytes: Option<Quota>,
    /// `maxRepoBytes` of each sub-path root, by prefix (`None`: none).
    sub_bytes: HashMap<String, Option<Quota>>,
    immutable: Vec<ImmutableRule>,
    /// `extensions.lint.mandatoryAnnotations` (when the linter is on).
    mandatory_annotations: Vec<String>,
    /// `hydrateBlobOnRead` of the main root.
    main_hydrates: bool,
    /// The sub-path roots' prefixes with `hydrateBlobOnRead`.
    sub_hydrates: std::collections::HashSet<String>,
    /// Tells one set of policies from the next (answers cached under one
    /// are not given under another).
    revision: u64,
}

fn glob_set(globs: &[String], at: &str) -> Result<GlobSet, ConfigError> {
    let mut set = GlobSetBuilder::new();
    for g in globs {
        let glob = GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| ConfigError::key(at, format!("bad glob {g:?}: {e}")))?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| ConfigError::key(at, format!("bad globs: {e}")))
}

impl Policies {
    /// The policies `storage` sets (checked already by `Config::load`;
    /// an error here names the key all the same).
    pub fn from_config(storage: &StorageConfig) -> Result<Self, ConfigError> {
        let mut quotas = Vec::new();
        for (i, q) in storage.quotas.iter().enumerate() {
            let at = format!("storage.quotas[{i}]");
            quotas.push(QuotaRule {
                globs: glob_set(&q.repositories, &format!("{at}.repositories"))?,
                quota: Quota {
                    rule: at,
                    max_bytes: q.max_bytes,
                },
            });
        }
        let mut immutable = Vec::new();
        for (i, r) in storage.immutable_tags.iter().enumerate() {
            let at = format!("storage.immutableTags[{i}]");
            let mut patterns = Vec::new();
            for p in &r.patterns {
                patterns.push(crate::config::anchored_pattern(p).map_err(|e| {
                    ConfigError::key(format!("{at}.patterns"), e.to_string().replace('\n', " "))
                })?);
            }
            immutable.push(ImmutableRule {
                globs: glob_set(&r.repositories, &format!("{at}.repositories"))?,
                patterns,
                rule: at,
            });
        }
        let bytes = |rule: String, n: Option<u64>| {
            n.filter(|n| *n > 0)
                .map(|max_bytes| Quota { rule, max_bytes })
        };
        let sub_bytes = storage
            .sub_paths
            .iter()
            .map(|(key, sub)| {
                let own = sub
                    .max_repo_bytes
                    .map(|n| (format!("storage.subPaths.{key}.maxRepoBytes"), n));
                let quota = match own {
                    Some((rule, n)) => bytes(rule, Some(n)),
                    None => bytes("storage.maxRepoBytes".into(), storage.max_repo_bytes),
                };
                (key.trim_start_matches('/').to_string(), quota)
            })
            .collect();
        static REVISION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Self {
            revision: REVISION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            max_repos: storage.max_repos.filter(|n| *n > 0),
            quotas,
            main_bytes: bytes("storage.maxRepoBytes".into(), storage.max_repo_bytes),
            sub_bytes,
            immutable,
            mandatory_annotations: Vec::new(),
            main_hydrates: storage.hydrate_blob_on_read,
            sub_hydrates: storage
                .sub_paths
                .iter()
                .filter(|(_, sub)| sub.hydrate_blob_on_read)
                .map(|(key, _)| key.trim_start_matches('/').to_string())
                .collect(),
        })
    }

    /// Whether a blob read `repo` misses may be answered from another
    /// repository of its root (`hydrateBlobOnRead`).
    pub fn hydrates(&self, repo: &RepoName) -> bool {
        let first = repo.components().next().unwrap_or_default();
        match self.sub_bytes.contains_key(first) {
            true => self.sub_hydrates.contains(first),
            false => self.main_hydrates,
        }
    }

    /// With zot's linter (`extensions.lint`), when it is on.
    pub fn with_lint(mut self, lint: Option<&crate::config::LintConfig>) -> Self {
        self.mandatory_annotations = lint
            .filter(|l| l.enable)
            .map(|l| l.mandatory_annotations.clone())
            .unwrap_or_default();
        self
    }

    /// The mandatory annotations an image manifest with `annotations`
    /// and a config with `labels` lacks (zot's linter: either may carry
    /// one).
    pub fn missing_annotations(
        &self,
        annotations: Option<&std::collections::BTreeMap<String, String>>,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Vec<String> {
        self.mandatory_annotations
            .iter()
            .filter(|a| {
                !annotations.is_some_and(|m| m.contains_key(*a))
                    && !labels.is_some_and(|m| m.contains_key(*a))
            })
            .cloned()
            .collect()
    }

    /// The quota of `repo`, if any: the first `quotas` entry matching it,
    /// else its root's `maxRepoBytes`.
    pub fn quota(&self, repo: &RepoName) -> Option<&Quota> {
        if let Some(rule) = self.quotas.iter().find(|q| q.globs.is_match(repo.as_str())) {
            return Some(&rule.quota);
        }
        let first = repo.components().next().unwrap_or_default();
        match self.sub_bytes.get(first) {
            Some(sub) => sub.as_ref(),
            None => self.main_bytes.as_ref(),
        }
    }

    /// The rule making `tag` of `repo` immutable, if one does.
    pub fn immutable_rule(&self, repo: &RepoName, tag: &str) -> Option<&str> {
        self.immutable
            .iter()
            .find(|r| {
                r.globs.is_match(repo.as_str())
                    && (r.patterns.is_empty() || r.patterns.iter().any(|p| p.is_match(tag)))
            })
            .map(|r| r.rule.as_str())
    }

    /// Whether any immutable-tag rule covers `repo`.
    pub fn has_immutable(&self, repo: &RepoName) -> bool {
        self.immutable
            .iter()
            .any(|r| r.globs.is_match(repo.as_str()))
    }

    /// This set's revision, unique in the process (0: the empty default).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// zot's `maxRepos`.
    pub fn max_repos(&self) -> Option<u64> {
        self.max_repos
    }
}

/// The distinct blobs (config, layers, the manifests themselves) that
/// `metas` reference, with their sizes.
pub(crate) fn referenced<'a>(
    metas: impl IntoIterator<Item = &'a ManifestMeta>,
) -> HashMap<String, u64> {
    let mut blobs = HashMap::new();
    for m in metas {
        add_blobs(&mut blobs, m);
    }
    blobs
}

/// Adds what `m` references to `blobs`.
pub(crate) fn add_blobs(blobs: &mut HashMap<String, u64>, m: &ManifestMeta) {
    blobs.insert(m.digest.clone(), m.size);
    if let Some(c) = &m.config {
        blobs.insert(c.clone(), m.config_size);
    }
    for (i, l) in m.layers.iter().enumerate() {
        blobs.insert(l.clone(), m.layer_sizes.get(i).copied().unwrap_or(0));
    }
}

/// Digest → size and when it was stored.
type UploadedBlobs = HashMap<String, (u64, Instant)>;

/// Blobs uploaded on this instance that no manifest references yet, by
/// repository (only for repositories under a quota).
#[derive(Default)]
pub(super) struct Unreferenced {
    blobs: std::sync::Mutex<HashMap<RepoName, UploadedBlobs>>,
}

impl Unreferenced {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RepoName, UploadedBlobs>> {
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn add(&self, repo: &RepoName, digest: &Digest, size: u64) {
        self.lock()
            .entry(repo.clone())
            .or_default()
            .insert(digest.to_string(), (size, Instant::now()));
    }

    /// Forgets `repo`'s blobs that `referenced` now names.
    pub(super) fn settle(&self, repo: &RepoName, referenced: &HashMap<String, u64>) {
        let mut all = self.lock();
        let Some(blobs) = all.get_mut(repo) else {
            return;
        };
        blobs.retain(|d, _| !referenced.contains_key(d));
        if blobs.is_empty() {
            all.remove(repo);
        }
    }

    /// The bytes of `repo`'s unreferenced uploads, other than those in
    /// `referenced`.
    fn bytes(&self, repo: &RepoName, referenced: &HashMap<String, u64>) -> u64 {
        let mut all = self.lock();
        let Some(blobs) = all.get_mut(repo) else {
            return 0;
        };
        blobs.retain(|_, (_, at)| at.elapsed() < UNREFERENCED_FOR);
        blobs
            .iter()
            .filter(|(d, _)| !referenced.contains_key(*d))
            .map(|(_, (n, _))| n)
            .sum()
    }
}

/// A repository's usage against its quota.
#[derive(Debug, Clone)]
pub struct QuotaUsage {
    pub quota: Quota,
    /// Bytes its manifests reference.
    pub used: u64,
}

impl Registry {
    /// Puts `policies` in force (at start and on a config reload).
    pub fn set_policies(&self, policies: Policies) {
        *self.policies.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policies);
    }

    /// The policies in force.
    pub fn policies(&self) -> Arc<Policies> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The blobs `repo`'s manifests reference, with their sizes.
    pub(super) async fn referenced_blobs(
        &self,
        repo: &RepoName,
    ) -> RegistryResult<HashMap<String, u64>> {
        Ok(referenced(&self.meta.manifests(repo).await?))
    }

    /// `repo`'s quota and what counts against it now (`None`: no quota).
    pub async fn quota_usage(&self, repo: &RepoName) -> RegistryResult<Option<QuotaUsage>> {
        let Some(quota) = self.policies().quota(repo).cloned() else {
            return Ok(None);
        };
        let used = self.referenced_blobs(repo).await?.values().sum();
        Ok(Some(QuotaUsage { quota, used }))
    }

    /// What counts against `repo`'s quota before an upload that holds
    /// `uploaded` bytes receives more (`None`: no quota): the bytes its
    /// manifests reference, this instance's uploads no manifest references
    /// yet, and `uploaded`.
    pub(super) async fn upload_usage(
        &self,
        repo: &RepoName,
        uploaded: u64,
    ) -> RegistryResult<Option<(Quota, u64)>> {
        let Some(quota) = self.policies().quota(repo).cloned() else {
            return Ok(None);
        };
        let referenced = self.referenced_blobs(repo).await?;
        let used = referenced.values().sum::<u64>() + self.unreferenced.bytes(repo, &referenced);
        Ok(Some((quota, used.saturating_add(uploaded))))
    }

    /// Counts a blob just stored in `repo` against its quota until a
    /// manifest references it.
    pub(super) fn count_unreferenced(&self, repo: &RepoName, digest: &Digest, size: u64) {
        if self.policies().quota(repo).is_some() {
            self.unreferenced.add(repo, digest, size);
        }
    }

    /// Before `repo` is created: refuses it past `maxRepos`, else holds
    /// the lock (shared by every instance) under which the count and the
    /// creation are one step, until the returned guard is dropped.
    pub(super) async fn repo_cap(&self, repo: &RepoName) -> RegistryResult<Option<HeldLock>> {
        let Some(limit) = self.policies().max_repos() else {
            return Ok(None);
        };
        let cap = self.roots.all()[0].store.lock_named("repos:create").await?;
        if !self.store(repo).layout.repo_exists(repo).await? {
            let count = self.meta.repos().await?.len() as u64;
            if count >= limit {
                return Err(RegistryError::TooManyRepos { count, limit });
            }
        }
        Ok(Some(cap))
    }
}

/// The first of `digests` named by an immutable tag of `repo`: each tag
/// in `tags` that a rule covers, with the digest it names and that
/// manifest's children (from `children`).
pub(super) fn pinned_by<'a>(
    policies: &Policies,
    repo: &RepoName,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    children: &HashMap<String, Vec<String>>,
    digest: &str,
) -> Option<(String, String)> {
    for (tag, named) in tags {
        let Some(rule) = policies.immutable_rule(repo, tag) else {
            continue;
        };
        let hit = named == digest
            || children
                .get(named)
                .is_some_and(|c| c.iter().any(|c| c == digest));
        if hit {
            return Some((tag.to_string(), rule.to_string()));
        }
    }
    None
}

/// The bytes a manifest push adds to its repository's usage (what
/// `usage` does not hold yet).
pub(super) fn push_adds(meta: &ManifestMeta, usage: &HashMap<String, u64>) -> u64 {
    let mut own = HashMap::new();
    add_blobs(&mut own, meta);
    own.iter()
        .filter(|(d, _)| !usage.contains_key(*d))
        .map(|(_, n)| n)
        .sum()
}

/// The tags of `repo` that a policy pins, among `tags`.
pub(super) fn immutable_tags<'a>(
    policies: &Policies,
    repo: &RepoName,
    tags: impl IntoIterator<Item = &'a String>,
) -> HashSet<String> {
    tags.into_iter()
        .filter(|t| policies.immutable_rule(repo, t).is_some())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;

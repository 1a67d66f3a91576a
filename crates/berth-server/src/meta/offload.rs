//! [`Offloaded`]: a networked [`MetaStore`] called from async code. Each
//! call is a network round trip, so it runs under
//! `tokio::task::block_in_place`: the runtime moves the worker's other tasks
//! to another thread meanwhile instead of stalling them. Outside a
//! multi-threaded runtime (tests, tools) calls run as they are.

use super::{IndexVersion, ManifestMeta, MetaResult, MetaStore, PullStats, RepoChange};

/// Wraps a store whose calls block on the network.
pub struct Offloaded<M>(pub M);

fn offload<T>(f: impl FnOnce() -> T) -> T {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

impl<M: MetaStore> MetaStore for Offloaded<M> {
    fn repos(&self) -> MetaResult<Vec<String>> {
        offload(|| self.0.repos())
    }
    fn version(&self, repo: &str) -> MetaResult<Option<IndexVersion>> {
        offload(|| self.0.version(repo))
    }
    fn apply(&self, repo: &str, change: &RepoChange, durable: bool) -> MetaResult<()> {
        offload(|| self.0.apply(repo, change, durable))
    }
    fn remove_repo(&self, repo: &str) -> MetaResult<()> {
        offload(|| self.0.remove_repo(repo))
    }
    fn tags(&self, repo: &str) -> MetaResult<Vec<(String, String)>> {
        offload(|| self.0.tags(repo))
    }
    fn tag(&self, repo: &str, tag: &str) -> MetaResult<Option<String>> {
        offload(|| self.0.tag(repo, tag))
    }
    fn manifest(&self, repo: &str, digest: &str) -> MetaResult<Option<ManifestMeta>> {
        offload(|| self.0.manifest(repo, digest))
    }
    fn manifests(&self, repo: &str) -> MetaResult<Vec<ManifestMeta>> {
        offload(|| self.0.manifests(repo))
    }
    fn referrers(&self, repo: &str, digest: &str) -> MetaResult<Vec<ManifestMeta>> {
        offload(|| self.0.referrers(repo, digest))
    }
    fn blob_refs(&self, repo: &str, blob: &str) -> MetaResult<u64> {
        offload(|| self.0.blob_refs(repo, blob))
    }
    fn record_pull(&self, repo: &str, digest: &str, at: u64) -> MetaResult<()> {
        offload(|| self.0.record_pull(repo, digest, at))
    }
    fn pull_stats(&self, repo: &str, digest: &str) -> MetaResult<PullStats> {
        offload(|| self.0.pull_stats(repo, digest))
    }
    fn setting(&self, name: &str) -> MetaResult<Option<String>> {
        offload(|| self.0.setting(name))
    }
    fn set_setting(&self, name: &str, value: &str) -> MetaResult<()> {
        offload(|| self.0.set_setting(name, value))
    }
    fn flush(&self) -> MetaResult<()> {
        offload(|| self.0.flush())
    }
}

//! The search index: every repository's [`RepoData`], in memory, kept in
//! step with the metadata store.
//!
//! A query first reads the store's write generation (one cheap read). If
//! it is the one the current [`Snapshot`] was built at, the snapshot
//! answers as it is. Otherwise one refresh (the others wait for it and
//! share it) reads every repository's stamp in one call and rebuilds only
//! the repositories whose stamp changed. So writes made by another
//! instance sharing the store (Redis) are seen by the next query, and a
//! query never reads manifests from storage. The same refresh runs every
//! second between queries (`Search::keep_index_fresh`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::model::{RepoData, build_repo};
use crate::meta::{MetaResult, MetaStore};

/// Every repository search knows of, as of one generation of the store.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The store's generation read before the stamps this was built from
    /// (`None`: never built).
    generation: Option<u64>,
    pub repos: BTreeMap<String, Arc<RepoData>>,
}

impl Snapshot {
    /// The store's generation this was built at.
    pub(crate) fn generation(&self) -> Option<u64> {
        self.generation
    }
}

/// The index, shared by every query.
pub(crate) struct SearchIndex {
    meta: Arc<dyn MetaStore>,
    current: RwLock<Arc<Snapshot>>,
    /// One refresh at a time; those who waited find it done.
    refreshing: tokio::sync::Mutex<()>,
}

impl SearchIndex {
    pub(crate) fn new(meta: Arc<dyn MetaStore>) -> Self {
        Self {
            meta,
            current: RwLock::new(Arc::new(Snapshot::default())),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The index as of the store's latest write.
    pub(crate) async fn snapshot(&self) -> MetaResult<Arc<Snapshot>> {
        let generation = self.meta.generation().await?;
        let snap = self.current();
        if snap.generation == Some(generation) {
            return Ok(snap);
        }
        let _one = self.refreshing.lock().await;
        let snap = self.current();
        // Built while this query waited. (Compared for equality only: a
        // store that lost its data counts again from the start.)
        if snap.generation == Some(generation) {
            return Ok(snap);
        }
        let fresh = Arc::new(self.rebuild(&snap).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    /// A snapshot of the store now, reusing what `old` built for each
    /// repository whose stamp is unchanged.
    async fn rebuild(&self, old: &Snapshot) -> MetaResult<Snapshot> {
        // Read before the stamps: a write between the two makes the next
        // query refresh again, never miss it.
        let generation = self.meta.generation().await?;
        let mut repos = BTreeMap::new();
        for (name, stamp) in self.meta.repo_stamps().await? {
            if let Some(data) = old.repos.get(&name).filter(|d| d.stamp == stamp) {
                repos.insert(name, data.clone());
                continue;
            }
            match build_repo(self.meta.as_ref(), &name, stamp).await {
                Ok(Some(data)) => {
                    repos.insert(name, Arc::new(data));
                }
                Ok(None) => {}
                // A store that cannot be reached fails the query (503);
                // one repository's unreadable rows only leave it out.
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => tracing::warn!(repo = %name, "search leaves out a repository: {e}"),
            }
        }
        Ok(Snapshot {
            generation: Some(generation),
            repos,
        })
    }
}

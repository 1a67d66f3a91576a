//! The [`Layout`] of [`BucketStore`]: repositories found by listing the bucket
//! level by level, and each one's `index.json`, whose writes are
//! conditional on the version read under the lock (If-Match), so a holder
//! whose lock lapsed fails instead of undoing another instance's write.

use berth_oci::RepoName;
use berth_oci::media::OCI_LAYOUT_VERSION;
use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{BucketStore, IndexRead, is_not_found, version_of};
use crate::storage::backend::Layout;
use crate::storage::index::OciIndex;
use crate::storage::locks::RepoGuard;
use crate::storage::{IndexVersion, StorageError, StorageResult};

#[async_trait::async_trait]
impl Layout for BucketStore {
    /// A `HEAD` of the root's marker key through the client without
    /// retries: any answer of the service (the key need not exist) is
    /// reachable; no answer, a refused connection or a 5xx is not, and a
    /// refusal (bad credentials, no such bucket) is a backend error.
    async fn reachable(&self) -> StorageResult<()> {
        match self.probe.head(&self.key(".berth/reachable")).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn repo_exists(&self, repo: &RepoName) -> StorageResult<bool> {
        Ok(self
            .head(&self.repo_key(repo, "index.json"))
            .await?
            .is_some())
    }

    async fn create_repo(&self, guard: &RepoGuard) -> StorageResult<()> {
        let repo = guard.repo();
        if self.repo_exists(repo).await? {
            return Ok(());
        }
        let layout = format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}");
        self.put(&self.repo_key(repo, "oci-layout"), Bytes::from(layout))
            .await?;
        let index = serde_json::to_vec(&OciIndex::default()).map_err(|e| self.fail(e))?;
        // Only if absent: another writer's index is never replaced by an
        // empty one.
        let created = self
            .bucket
            .put_opts(
                &self.repo_key(repo, "index.json"),
                PutPayload::from(index),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match created {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Walks the bucket level by level: a level holding `index.json` is a
    /// repository; its `blobs/` and dot-directories are not descended into.
    async fn list_repos(&self) -> StorageResult<Vec<RepoName>> {
        let mut out = Vec::new();
        let root = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        let mut stack = vec![(root, String::new())];
        while let Some((dir, name)) = stack.pop() {
            let listed = self
                .bucket
                .list_with_delimiter(dir.as_ref())
                .await
                .map_err(|e| self.err(e))?;
            let is_repo = !name.is_empty()
                && listed
                    .objects
                    .iter()
                    .any(|o| o.location.filename() == Some("index.json"));
            if is_repo && let Ok(r) = name.parse() {
                out.push(r);
            }
            for p in listed.common_prefixes {
                let Some(child) = p
                    .filename()
                    .and_then(|part| crate::storage::walk_into(&name, is_repo, part))
                else {
                    continue;
                };
                stack.push((Some(p), child));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn read_index(&self, repo: &RepoName) -> StorageResult<Option<OciIndex>> {
        let key = self.repo_key(repo, "index.json");
        let Some(bytes) = self.get_bytes(&key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                path: key.to_string().into(),
                message: e.to_string(),
            })
    }

    async fn index_version(&self, repo: &RepoName) -> StorageResult<Option<IndexVersion>> {
        Ok(self
            .head(&self.repo_key(repo, "index.json"))
            .await?
            .map(|m| version_of(&m)))
    }

    /// Remembers the version read (ETag and generation), for `write_index`.
    async fn index_for_update(&self, guard: &RepoGuard) -> StorageResult<OciIndex> {
        let repo = guard.repo();
        let key = self.repo_key(repo, "index.json");
        let (index, read) = match self.bucket.get(&key).await {
            Ok(r) => {
                let read = IndexRead {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                let bytes = r.bytes().await.map_err(|e| self.err(e))?;
                let index = serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                    path: key.to_string().into(),
                    message: e.to_string(),
                })?;
                (index, Some(read))
            }
            Err(e) if is_not_found(&e) => (OciIndex::default(), None),
            Err(e) => return Err(self.err(e)),
        };
        self.index_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(repo.to_string(), read);
        Ok(index)
    }

    /// A conditional PUT: `index.json` must still be the version
    /// `index_for_update` read (If-Match on its ETag, or on GCS
    /// `x-goog-if-generation-match` on its generation; If-None-Match when
    /// there was none). Under the lock it always is, unless the lock was
    /// lost (its lease lapsed while Redis was unreachable) and another
    /// instance wrote meanwhile: then this write fails instead of undoing
    /// that one. An `index.json` not read under this lock first is not
    /// written at all.
    async fn write_index(&self, guard: &RepoGuard, index: OciIndex) -> StorageResult<()> {
        let repo = guard.repo();
        let bytes = index.to_json().map_err(|e| self.fail(e))?;
        let read = self
            .index_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(repo.as_str());
        let mode = match read {
            Some(Some(read)) => PutMode::Update(UpdateVersion {
                e_tag: read.e_tag,
                version: read.version,
            }),
            Some(None) => PutMode::Create,
            // Not read under this lock (or written once already since):
            // an unconditional write could undo another instance's.
            None => {
                return Err(StorageError::InvalidInput(format!(
                    "{repo}/index.json must be read under its lock before it is written"
                )));
            }
        };
        let put = self
            .bucket
            .put_opts(
                &self.repo_key(repo, "index.json"),
                PutPayload::from(bytes),
                PutOptions::from(mode),
            )
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Err(StorageError::LockLost(format!(
                "{repo}/index.json changed while its lock was held (the lock was lost?); this change was not written"
            ))),
            Err(e) => Err(self.err(e)),
        }
    }
}

//! [`DynamoMetaStore`]: the [`MetaStore`] over the items of the layout in
//! the module's documentation; `apply.rs` writes changes.

use std::collections::BTreeMap;

use berth_oci::{Digest, RepoName, Tag};

use super::DynamoOptions;
use super::client::{Dynamo, DynamoResult, n, s};
use super::items::{
    self, Cond, LINK, MANIFEST, PULL, PULLS, REPOS, Row, STARS, TAG, bump_generation, get_n, get_s,
    list_pk, sort_key,
};
use super::locks::DynamoLocks;
use crate::meta::{
    IndexVersion, ManifestHead, ManifestMeta, MetaError, MetaResult, MetaStore, PullStats,
    RepoChange, RepoStamp, StoreCheck, UserList,
};

/// The metadata store in DynamoDB. Cheap to clone; clones share the
/// client.
#[derive(Clone, Debug)]
pub struct DynamoMetaStore {
    pub(super) db: Dynamo,
}

impl DynamoMetaStore {
    /// Reaches the server `options` name, makes the tables that are
    /// missing, and marks the store (so that [`MetaStore::check`] can tell
    /// when it lost its items). An unreachable server fails here as
    /// unavailable, naming its endpoint.
    pub async fn open(options: &DynamoOptions) -> MetaResult<Self> {
        let store = Self {
            db: Dynamo::new(options).await?,
        };
        store.db.ensure_tables().await?;
        store.mark().await?;
        Ok(store)
    }

    /// Shared locks in the same tables, through the same client, with the
    /// default lease.
    pub fn locks(&self) -> DynamoLocks {
        DynamoLocks::new(self.db.clone())
    }

    /// Sets the epoch to a new random number unless it is set; whether it
    /// was missing (a new store, or one that lost its items).
    async fn mark(&self) -> DynamoResult<bool> {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        let row = Row::epoch(&self.db.tables);
        let put = self
            .db
            .client()
            .put_item()
            .table_name(&row.table)
            .set_item(Some(row.item([("n", n(high ^ low))])))
            .condition_expression("attribute_not_exists(#sk)")
            .expression_attribute_names("#sk", "sk")
            .send()
            .await;
        match put.map_err(|e| self.db.err(e)) {
            Ok(_) => Ok(true),
            Err(super::client::DynamoError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, row: &Row) -> DynamoResult<Option<super::client::Item>> {
        self.db.get(&row.table, &row.pk, &row.sk).await
    }

    /// One string attribute of one item.
    async fn get_text(&self, row: &Row, attr: &str) -> MetaResult<Option<String>> {
        let item = self.get(row).await?;
        Ok(item.and_then(|i| get_s(&i, attr).map(str::to_string)))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, item: &super::client::Item) -> MetaResult<T> {
        let json =
            get_s(item, "j").ok_or_else(|| self.db.corrupt("a manifest item has no JSON"))?;
        serde_json::from_str(json).map_err(|e| self.db.corrupt(e).into())
    }

    async fn manifest_row<T: serde::de::DeserializeOwned>(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<T>> {
        let row = Row::manifest(&self.db.tables, repo.as_str(), &digest.to_string());
        match self.get(&row).await? {
            Some(item) => self.decode(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Every item of partition `pk` of `table` whose sort key starts with
    /// `prefix`, with the rest of its sort key.
    async fn partition(
        &self,
        table: &str,
        pk: &str,
        prefix: &str,
    ) -> MetaResult<Vec<(String, super::client::Item)>> {
        let items = self.db.query(table, pk, prefix).await?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let rest = sort_key(&i)?.strip_prefix(prefix)?.to_string();
                Some((rest, i))
            })
            .collect())
    }

    /// A `#pulls` or `#stars` partition: repository → `n`.
    async fn counts(&self, pk: &str) -> MetaResult<BTreeMap<String, u64>> {
        let rows = self.partition(&self.db.tables.repo_meta, pk, "").await?;
        Ok(rows
            .into_iter()
            .map(|(repo, i)| (repo, get_n(&i, "n").unwrap_or(0)))
            .collect())
    }
}

#[async_trait::async_trait]
impl MetaStore for DynamoMetaStore {
    async fn repos(&self) -> MetaResult<Vec<String>> {
        let rows = self.partition(&self.db.tables.repo_meta, REPOS, "").await?;
        Ok(rows.into_iter().map(|(r, _)| r).collect())
    }

    async fn repo_stamps(&self) -> MetaResult<Vec<(String, RepoStamp)>> {
        let heads = self.partition(&self.db.tables.repo_meta, REPOS, "").await?;
        let pulls = self.counts(PULLS).await?;
        let stars = self.counts(STARS).await?;
        Ok(heads
            .into_iter()
            .map(|(name, head)| {
                let stamp = RepoStamp {
                    version: IndexVersion::new(get_s(&head, "v").unwrap_or_default()),
                    pulls: pulls.get(&name).copied().unwrap_or(0),
                    stars: stars.get(&name).copied().unwrap_or(0),
                    revision: get_n(&head, "rev").unwrap_or(0),
                };
                (name, stamp)
            })
            .collect())
    }

    async fn version(&self, repo: &RepoName) -> MetaResult<Option<IndexVersion>> {
        let head = self.get(&Row::head(&self.db.tables, repo.as_str())).await?;
        Ok(head.map(|h| IndexVersion::new(get_s(&h, "v").unwrap_or_default())))
    }

    async fn apply(&self, repo: &RepoName, change: &RepoChange, _durable: bool) -> MetaResult<()> {
        super::apply::apply(&self.db, repo.as_str(), change).await
    }

    /// Deletes the repository's `#repos` item first (so it leaves the
    /// catalog at once), then its other items, in transactions of up to
    /// 100; not atomic as a whole, which a removal need not be: what is
    /// left of a repository no catalog names is never read.
    async fn remove_repo(&self, repo: &str) -> MetaResult<()> {
        let t = &self.db.tables;
        let mut rows = vec![
            Row::head(t, repo),
            Row::pulls_total(t, repo),
            Row::stars(t, repo),
        ];
        for table in [&t.repo_meta, &t.image_meta, &t.repo_blobs] {
            for item in self.db.query(table, repo, "").await? {
                if let Some(sk) = sort_key(&item) {
                    rows.push(Row {
                        table: table.clone(),
                        pk: repo.to_string(),
                        sk: sk.to_string(),
                    });
                }
            }
        }
        let mut writes = Vec::with_capacity(rows.len() + 1);
        for r in &rows {
            writes.push(items::delete(r, None)?);
        }
        writes.push(bump_generation(t)?);
        for chunk in super::apply::chunks(writes) {
            self.db.transact(chunk).await?;
        }
        Ok(())
    }

    async fn tags(&self, repo: &RepoName) -> MetaResult<Vec<(String, String)>> {
        let rows = self
            .partition(&self.db.tables.repo_meta, repo.as_str(), TAG)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(tag, i)| Some((tag, get_s(&i, "d")?.to_string())))
            .collect())
    }

    async fn tag_times(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, u64>> {
        let rows = self
            .partition(&self.db.tables.repo_meta, repo.as_str(), TAG)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(tag, i)| Some((tag, get_n(&i, "at")?)))
            .collect())
    }

    async fn tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<Option<String>> {
        self.get_text(&Row::tag(&self.db.tables, repo.as_str(), tag.as_str()), "d")
            .await
    }

    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Option<ManifestMeta>> {
        self.manifest_row(repo, digest).await
    }

    async fn manifest_head(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<ManifestHead>> {
        self.manifest_row(repo, digest).await
    }

    async fn manifests(&self, repo: &RepoName) -> MetaResult<Vec<ManifestMeta>> {
        let rows = self
            .partition(&self.db.tables.image_meta, repo.as_str(), MANIFEST)
            .await?;
        // By sort key, so by digest.
        rows.iter().map(|(_, i)| self.decode(i)).collect()
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<ManifestMeta>> {
        let t = &self.db.tables;
        let prefix = format!("{LINK}{digest}#");
        let links = self.partition(&t.repo_meta, repo.as_str(), &prefix).await?;
        let keys: Vec<(String, String)> = links
            .into_iter()
            .map(|(d, _)| (repo.to_string(), format!("{MANIFEST}{d}")))
            .collect();
        let rows = self.db.get_many(&t.image_meta, &keys).await?;
        // A referrer removed between the two reads is skipped.
        rows.iter().flatten().map(|i| self.decode(i)).collect()
    }

    async fn blob_refs(&self, repo: &RepoName, blob: &Digest) -> MetaResult<u64> {
        let item = self
            .get(&Row::blob(
                &self.db.tables,
                repo.as_str(),
                &blob.to_string(),
            ))
            .await?;
        Ok(item.and_then(|i| get_n(&i, "n")).unwrap_or(0))
    }

    async fn record_pulls(
        &self,
        repo: &RepoName,
        digest: &Digest,
        count: u64,
        at: u64,
    ) -> MetaResult<()> {
        let t = &self.db.tables;
        let writes = vec![
            items::update(
                &Row::pull(t, repo.as_str(), &digest.to_string()),
                "ADD #c :c SET #l = :l",
                vec![(":c", n(count)), (":l", n(at))],
                None,
            )?,
            items::update(
                &Row::pulls_total(t, repo.as_str()),
                "ADD #n :c",
                vec![(":c", n(count))],
                None,
            )?,
            bump_generation(t)?,
        ];
        Ok(self.db.transact(writes).await?)
    }

    async fn pull_stats(&self, repo: &RepoName, digest: &Digest) -> MetaResult<PullStats> {
        let item = self
            .get(&Row::pull(
                &self.db.tables,
                repo.as_str(),
                &digest.to_string(),
            ))
            .await?;
        Ok(item.map_or_else(PullStats::default, |i| PullStats {
            last_pulled: get_n(&i, "l"),
            count: get_n(&i, "c").unwrap_or(0),
        }))
    }

    async fn pull_stats_all(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, PullStats>> {
        let rows = self
            .partition(&self.db.tables.image_meta, repo.as_str(), PULL)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(d, i)| {
                let stats = PullStats {
                    last_pulled: get_n(&i, "l"),
                    count: get_n(&i, "c").unwrap_or(0),
                };
                (d, stats)
            })
            .collect())
    }

    async fn generation(&self) -> MetaResult<u64> {
        let t = &self.db.tables;
        let (generation, epoch) = (Row::generation(t), Row::epoch(t));
        let (n, epoch) = futures_util::try_join!(self.get(&generation), self.get(&epoch))?;
        let value = |i: Option<super::client::Item>| i.and_then(|i| get_n(&i, "n")).unwrap_or(0);
        Ok(value(epoch).wrapping_add(value(n)))
    }

    /// Reads whether the repository is listed and its star count, then
    /// writes the toggle conditionally on both; a writer that raced
    /// another reads again.
    async fn toggle_user_repo(
        &self,
        user: &str,
        list: UserList,
        repo: &RepoName,
    ) -> MetaResult<bool> {
        let t = &self.db.tables;
        let listed_row = Row::listed(t, &list_pk(list.key(), user), repo.as_str());
        let stars_row = Row::stars(t, repo.as_str());
        for attempt in 0..super::apply::ATTEMPTS {
            let listed = self.get(&listed_row).await?.is_some();
            let mut writes = vec![if listed {
                items::delete(
                    &listed_row,
                    Some(Cond {
                        expr: "attribute_exists(#sk)",
                        values: vec![],
                    }),
                )?
            } else {
                items::put(
                    &listed_row,
                    listed_row.item([]),
                    Some(Cond {
                        expr: "attribute_not_exists(#sk)",
                        values: vec![],
                    }),
                )?
            }];
            if list == UserList::Starred {
                let stars = self.get(&stars_row).await?;
                let now = stars.as_ref().and_then(|i| get_n(i, "n")).unwrap_or(0);
                let next = if listed {
                    now.saturating_sub(1)
                } else {
                    now + 1
                };
                // Conditional on the count read, so no star is lost.
                let cond = match stars {
                    Some(_) => Cond {
                        expr: "#n = :was",
                        values: vec![(":was", n(now))],
                    },
                    None => Cond {
                        expr: "attribute_not_exists(#sk)",
                        values: vec![],
                    },
                };
                writes.push(if next == 0 {
                    items::delete(&stars_row, Some(cond))?
                } else {
                    items::put(&stars_row, stars_row.item([("n", n(next))]), Some(cond))?
                });
            }
            writes.push(bump_generation(t)?);
            match self.db.transact(writes).await {
                Ok(()) => return Ok(!listed),
                Err(super::client::DynamoError::Conflict(_)) => super::apply::pause(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(MetaError::Contended(format!(
            "{}: toggling {repo} in {user}'s list raced other writers too long",
            self.db.service()
        )))
    }

    async fn user_repos(&self, user: &str, list: UserList) -> MetaResult<Vec<String>> {
        let rows = self
            .partition(&self.db.tables.user_data, &list_pk(list.key(), user), "")
            .await?;
        Ok(rows.into_iter().map(|(r, _)| r).collect())
    }

    async fn setting(&self, name: &str) -> MetaResult<Option<String>> {
        self.get_text(&Row::setting(&self.db.tables, name), "v")
            .await
    }

    async fn set_setting(&self, name: &str, value: &str) -> MetaResult<()> {
        let row = Row::setting(&self.db.tables, name);
        let write = items::put(&row, row.item([("v", s(value))]), None)?;
        Ok(self.db.transact(vec![write]).await?)
    }

    async fn scan_report(&self, digest: &Digest) -> MetaResult<Option<String>> {
        self.get_text(&Row::scan(&self.db.tables, &digest.to_string()), "v")
            .await
    }

    async fn set_scan_report(&self, digest: &Digest, report: Option<&str>) -> MetaResult<()> {
        let t = &self.db.tables;
        let row = Row::scan(t, &digest.to_string());
        let write = match report {
            Some(r) => items::put(&row, row.item([("v", s(r))]), None)?,
            None => items::delete(&row, None)?,
        };
        Ok(self.db.transact(vec![write, bump_generation(t)?]).await?)
    }

    /// Nothing to do: DynamoDB acknowledges only durable writes.
    async fn flush(&self) -> MetaResult<()> {
        Ok(())
    }

    /// One conditional put of the epoch: finding it missing means the
    /// store lost its items (its tables emptied or deleted: deleted ones
    /// are made again).
    async fn check(&self) -> MetaResult<StoreCheck> {
        let marked = match self.mark().await {
            Ok(m) => m,
            Err(super::client::DynamoError::NoTable { .. }) => {
                self.db.ensure_tables().await?;
                self.mark().await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(if marked {
            StoreCheck::Lost
        } else {
            StoreCheck::Kept
        })
    }
}

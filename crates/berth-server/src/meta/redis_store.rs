//! [`RedisMetaStore`]: the metadata store in Redis, shared by every Berth
//! instance pointed at the same server, over the async connection of
//! `redis_conn.rs` (which [`RedisLocks`], the
//! [`SharedLock`](super::SharedLock) those instances coordinate with,
//! shares).
//!
//! # Key layout
//!
//! Every key starts with the key prefix `P` ([`RedisOptions::key_prefix`],
//! `berth` by default), so several registries can share one database.
//! Repository names never hold `:`, so `P:repo:{repo}:…` cannot be
//! confused between repositories (names do hold `/`, which is fine).
//!
//! | key | type | content |
//! |---|---|---|
//! | `P:repos` | sorted set | every repository, all scored 0 so they sort by name |
//! | `P:repo:{repo}:fp` | string | the [`IndexVersion`] the rows were derived from, verbatim |
//! | `P:repo:{repo}:tags` | hash | tag → digest |
//! | `P:repo:{repo}:tagtimes` | hash | tag → when it was set to its digest, seconds since the epoch (absent for tags an older Berth set) |
//! | `P:repo:{repo}:manifests` | hash | digest → [`ManifestMeta`] (JSON) |
//! | `P:repo:{repo}:referrers` | sorted set | `{subject}\0{digest}`, all scored 0, so one subject's referrers are a lexicographic range |
//! | `P:repo:{repo}:blobs` | hash | blob digest → how many manifests reference it (absent when 0) |
//! | `P:repo:{repo}:pulls:count` | hash | manifest digest → pull count |
//! | `P:repo:{repo}:pulls:last` | hash | manifest digest → last pull, seconds since the epoch |
//! | `P:generation` | string | a counter every write search sees increments ([`MetaStore::generation`]) |
//! | `P:epoch` | string | a random number set when the store is first marked, and again after it lost its data ([`MetaStore::check`]); added to the counter in what [`MetaStore::generation`] answers, so a counter restarted from zero never repeats an earlier answer |
//! | `P:pulls` | hash | repository → every pull counted ([`RepoStamp::pulls`]) |
//! | `P:stars` | hash | repository → how many users starred it (absent when none) |
//! | `P:scans` | hash | manifest digest → its scan report ([`MetaStore::scan_report`]) |
//! | `P:revisions` | hash | repository → how many changes were applied to its rows ([`RepoStamp::revision`]) |
//! | `P:starred:{user}` | set | the repositories the user starred |
//! | `P:bookmarked:{user}` | set | the repositories the user bookmarked |
//! | `P:settings` | hash | setting name → value |
//! | `P:lock:{name}` | string | the random token of the [`RedisLocks`] holder, with a lease (`PX`) |
//!
//! [`MetaStore::apply`] is one Lua script (`redis_apply.lua`), which Redis
//! runs atomically: it reads the manifests the change replaces or removes,
//! the tags and the blob counts, and writes the change, all in one round
//! trip. The new manifests come with the blobs they reference and their
//! subject, so the script decodes only the JSON of rows it replaces or
//! removes (none in a `replace`, however large). It is a script rather than a `WATCH`ed `MULTI`/`EXEC` because
//! `WATCH` belongs to a connection, and the connection is shared by every
//! task (another task's commands would land between the `WATCH` and the
//! `EXEC`); a script needs no connection of its own, no pool and no
//! retries. A `replace` deletes the repository's tag, tag-time, manifest,
//! referrer and blob-count keys inside that same script (pull statistics
//! survive, as in every backend, and so does the time of a tag the
//! replace sets to the digest it pointed at). Tag times are the caller's
//! clock (passed in), as in the embedded store. The script decodes every row it needs before its
//! first write, so a row that does not decode fails the change whole.
//!
//! Pulls counted (`redis_pulls.lua`) and a star or bookmark toggled
//! (`redis_toggle.lua`) are scripts too: the manifest's statistics, the
//! repository's total and the generation, or the user's set, the star
//! count and the generation, change together. [`MetaStore::repo_stamps`]
//! is two round trips however many repositories there are (the list,
//! then one `MULTI` of `MGET` and three `HGETALL`s).
//!
//! # Durability
//!
//! What survives a crash of the Redis server is decided by the server's
//! own persistence settings (`appendonly`, `appendfsync`, `save`), not by
//! Berth: `durable` is ignored and [`MetaStore::flush`] does nothing.
//! Issuing `SAVE`/`BGSAVE` per write would be far too costly. The store
//! is derived from storage anyway: a stale version is mended on the
//! next read, and a store found empty is re-derived. Users' stars and
//! bookmarks are the exception (storage cannot give them back): they last
//! as long as the server's persistence keeps them.

use std::collections::BTreeMap;

use berth_oci::{Digest, RepoName, Tag};
use redis::Script;

use super::redis_conn::{Redis, RedisOptions};
use super::redis_locks::RedisLocks;
use super::{
    IndexVersion, ManifestHead, ManifestMeta, MetaError, MetaResult, MetaStore, PULL_TOTALS,
    PullStats, RepoChange, RepoStamp, StoreCheck, UserList,
};

/// The script of [`MetaStore::apply`].
const APPLY: &str = include_str!("redis_apply.lua");
/// The script of [`MetaStore::record_pulls`].
const PULLS: &str = include_str!("redis_pulls.lua");
/// The script of [`MetaStore::toggle_user_repo`].
const TOGGLE: &str = include_str!("redis_toggle.lua");

/// The keys of one repository's rows.
struct RepoKeys {
    fp: String,
    tags: String,
    tag_times: String,
    manifests: String,
    referrers: String,
    blobs: String,
    pull_count: String,
    pull_last: String,
}

impl RepoKeys {
    fn new(redis: &Redis, repo: &str) -> Self {
        let k = |rest: &str| redis.key(&format!("repo:{repo}:{rest}"));
        Self {
            fp: k("fp"),
            tags: k("tags"),
            tag_times: k("tagtimes"),
            manifests: k("manifests"),
            referrers: k("referrers"),
            blobs: k("blobs"),
            pull_count: k("pulls:count"),
            pull_last: k("pulls:last"),
        }
    }

    fn all(&self) -> [&str; 8] {
        [
            &self.fp,
            &self.tags,
            &self.tag_times,
            &self.manifests,
            &self.referrers,
            &self.blobs,
            &self.pull_count,
            &self.pull_last,
        ]
    }
}

/// The member of `P:repo:{repo}:referrers` linking `digest` to `subject`
/// (`redis_apply.lua` writes them so too).
fn referrer_link(subject: &str, digest: &str) -> String {
    format!("{subject}\0{digest}")
}

/// The metadata store in Redis. Cheap to clone; clones share the
/// connection.
#[derive(Clone)]
pub struct RedisMetaStore {
    redis: Redis,
    /// `P:repos`.
    repos_key: String,
    /// `P:settings`.
    settings_key: String,
    /// `P:generation`.
    generation_key: String,
    /// `P:epoch`.
    epoch_key: String,
    /// `P:stars`.
    stars_key: String,
    /// `P:pulls`.
    pulls_key: String,
    /// `P:revisions`.
    revisions_key: String,
    /// `P:scans`.
    scans_key: String,
    apply: Script,
    pulls: Script,
    toggle: Script,
}

impl RedisMetaStore {
    /// Connects to the server `options` name (now, so an unreachable
    /// server or a wrong password fails here, with a message naming the
    /// address).
    pub async fn open(options: &RedisOptions) -> MetaResult<Self> {
        let redis = Redis::connect(options).await?;
        let store = Self {
            repos_key: redis.key("repos"),
            settings_key: redis.key("settings"),
            generation_key: redis.key("generation"),
            epoch_key: redis.key("epoch"),
            stars_key: redis.key("stars"),
            pulls_key: redis.key("pulls"),
            revisions_key: redis.key("revisions"),
            scans_key: redis.key("scans"),
            redis,
            apply: Script::new(APPLY),
            pulls: Script::new(PULLS),
            toggle: Script::new(TOGGLE),
        };
        store.add_pull_totals().await?;
        store.mark().await?;
        Ok(store)
    }

    /// Sets `P:epoch` to a new random number unless it is set; whether it
    /// was missing (a new store, or one that lost its data).
    async fn mark(&self) -> MetaResult<bool> {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        let set: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(&self.epoch_key)
                    .arg(high ^ low)
                    .arg("NX"),
            )
            .await?;
        Ok(set.is_some())
    }

    /// Adds up, once per store, the pulls each repository's manifests
    /// counted before the store kept a total per repository. Safe beside
    /// other instances counting pulls meanwhile: a total is only set where
    /// none is yet, and `redis_pulls.lua` makes a missing one from the same
    /// counts.
    async fn add_pull_totals(&self) -> MetaResult<()> {
        if self.setting(PULL_TOTALS).await?.is_some() {
            return Ok(());
        }
        let repos = self.repos().await?;
        if !repos.is_empty() {
            let mut read = redis::pipe();
            for r in &repos {
                read.cmd("HVALS")
                    .arg(RepoKeys::new(&self.redis, r).pull_count);
            }
            let counts: Vec<Vec<String>> = self.redis.query_pipe(&read).await?;
            let mut write = redis::pipe();
            for (r, counts) in repos.iter().zip(counts) {
                let n: u64 = counts.iter().filter_map(|c| c.parse::<u64>().ok()).sum();
                if n > 0 {
                    write
                        .cmd("HSETNX")
                        .arg(&self.pulls_key)
                        .arg(r)
                        .arg(n)
                        .ignore();
                }
            }
            if !write.is_empty() {
                self.redis.query_pipe::<()>(&write).await?;
            }
        }
        self.set_setting(PULL_TOTALS, "1").await
    }

    /// Shared locks on the same server, key prefix and connection, with
    /// the default lease.
    pub fn locks(&self) -> RedisLocks {
        RedisLocks::new(self.redis.clone(), super::lease_locks::DEFAULT_LEASE)
    }

    /// A row that does not read back as written.
    fn corrupt(&self, message: impl std::fmt::Display) -> MetaError {
        MetaError::Corrupt {
            location: self.redis.service().into(),
            message: message.to_string(),
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, json: &str) -> MetaResult<T> {
        serde_json::from_str(json).map_err(|e| self.corrupt(e))
    }

    /// A manifest's row, decoded as `T` (the whole row or a part of it).
    async fn manifest_row<T: serde::de::DeserializeOwned>(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<T>> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let json: Option<String> = self
            .redis
            .query(redis::cmd("HGET").arg(&k.manifests).arg(digest.to_string()))
            .await?;
        json.as_deref().map(|j| self.decode(j)).transpose()
    }

    /// `P:{list}:{user}`.
    fn list_key(&self, user: &str, list: UserList) -> String {
        self.redis.key(&format!("{}:{user}", list.key()))
    }
}

#[async_trait::async_trait]
impl MetaStore for RedisMetaStore {
    async fn repos(&self) -> MetaResult<Vec<String>> {
        self.redis
            .query(redis::cmd("ZRANGE").arg(&self.repos_key).arg(0).arg(-1))
            .await
    }

    async fn repo_stamps(&self) -> MetaResult<Vec<(String, RepoStamp)>> {
        let repos = self.repos().await?;
        if repos.is_empty() {
            return Ok(Vec::new());
        }
        let fps: Vec<String> = repos
            .iter()
            .map(|r| RepoKeys::new(&self.redis, r).fp)
            .collect();
        type Read = (
            Vec<Option<String>>,
            BTreeMap<String, u64>,
            BTreeMap<String, u64>,
            BTreeMap<String, u64>,
        );
        let (versions, pulls, stars, revisions): Read = self
            .redis
            .query_pipe(
                redis::pipe()
                    .atomic()
                    .cmd("MGET")
                    .arg(&fps)
                    .cmd("HGETALL")
                    .arg(&self.pulls_key)
                    .cmd("HGETALL")
                    .arg(&self.stars_key)
                    .cmd("HGETALL")
                    .arg(&self.revisions_key),
            )
            .await?;
        Ok(repos
            .into_iter()
            .zip(versions)
            // A repository removed between the two reads is left out.
            .filter_map(|(name, version)| {
                let stamp = RepoStamp {
                    version: IndexVersion::new(version?),
                    pulls: pulls.get(&name).copied().unwrap_or(0),
                    stars: stars.get(&name).copied().unwrap_or(0),
                    revision: revisions.get(&name).copied().unwrap_or(0),
                };
                Some((name, stamp))
            })
            .collect())
    }

    async fn version(&self, repo: &RepoName) -> MetaResult<Option<IndexVersion>> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let v: Option<String> = self.redis.query(redis::cmd("GET").arg(&k.fp)).await?;
        Ok(v.map(IndexVersion::new))
    }

    async fn apply(&self, repo: &RepoName, change: &RepoChange, _durable: bool) -> MetaResult<()> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let mut call = self.apply.prepare_invoke();
        for key in [
            &k.tags,
            &k.manifests,
            &k.referrers,
            &k.blobs,
            &k.pull_count,
            &k.pull_last,
            &self.repos_key,
            &k.fp,
            &k.tag_times,
            &self.generation_key,
            &self.revisions_key,
        ] {
            call.key(key);
        }
        call.arg(if change.replace { "1" } else { "0" })
            .arg(repo.as_str())
            .arg(change.version.as_str())
            .arg(change.remove_manifests.len())
            .arg(change.put_manifests.len())
            .arg(change.remove_tags.len())
            .arg(change.set_tags.len())
            .arg(super::unix_now());
        for digest in &change.remove_manifests {
            call.arg(digest);
        }
        for m in &change.put_manifests {
            let json = serde_json::to_string(m).map_err(|e| self.corrupt(e))?;
            let refs = m.references();
            call.arg(&m.digest)
                .arg(json)
                .arg(m.subject.as_deref().unwrap_or(""))
                .arg(refs.len());
            for blob in refs {
                call.arg(blob);
            }
        }
        for tag in &change.remove_tags {
            call.arg(tag);
        }
        for (tag, digest) in &change.set_tags {
            call.arg(tag).arg(digest);
        }
        let undecodable: Option<String> = self.redis.invoke(&call).await?;
        match undecodable {
            None => Ok(()),
            Some(digest) => {
                Err(self.corrupt(format!("the manifest {digest} of {repo} does not decode")))
            }
        }
    }

    async fn remove_repo(&self, repo: &str) -> MetaResult<()> {
        let k = RepoKeys::new(&self.redis, repo);
        self.redis
            .query_pipe(
                redis::pipe()
                    .atomic()
                    .cmd("DEL")
                    .arg(&k.all()[..])
                    .ignore()
                    .cmd("ZREM")
                    .arg(&self.repos_key)
                    .arg(repo)
                    .ignore()
                    .cmd("HDEL")
                    .arg(&self.stars_key)
                    .arg(repo)
                    .ignore()
                    .cmd("HDEL")
                    .arg(&self.pulls_key)
                    .arg(repo)
                    .ignore()
                    .cmd("HDEL")
                    .arg(&self.revisions_key)
                    .arg(repo)
                    .ignore()
                    .cmd("INCR")
                    .arg(&self.generation_key)
                    .ignore(),
            )
            .await
    }

    async fn tags(&self, repo: &RepoName) -> MetaResult<Vec<(String, String)>> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let tags: BTreeMap<String, String> =
            self.redis.query(redis::cmd("HGETALL").arg(&k.tags)).await?;
        Ok(tags.into_iter().collect())
    }

    async fn tag_times(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, u64>> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        self.redis
            .query(redis::cmd("HGETALL").arg(&k.tag_times))
            .await
    }

    async fn tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<Option<String>> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        self.redis
            .query(redis::cmd("HGET").arg(&k.tags).arg(tag.as_str()))
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
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let rows: Vec<String> = self
            .redis
            .query(redis::cmd("HVALS").arg(&k.manifests))
            .await?;
        let mut out = rows
            .iter()
            .map(|j| self.decode(j))
            .collect::<MetaResult<Vec<ManifestMeta>>>()?;
        // Sorted by digest, as the embedded store returns them.
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<ManifestMeta>> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let digest = digest.to_string();
        let lo = format!("[{}", referrer_link(&digest, ""));
        let hi = format!("({digest}\u{1}");
        let links: Vec<String> = self
            .redis
            .query(
                redis::cmd("ZRANGEBYLEX")
                    .arg(&k.referrers)
                    .arg(&lo)
                    .arg(&hi),
            )
            .await?;
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let digests: Vec<&str> = links.iter().map(|l| &l[lo.len() - 1..]).collect();
        let rows: Vec<Option<String>> = self
            .redis
            .query(redis::cmd("HMGET").arg(&k.manifests).arg(digests))
            .await?;
        // A referrer removed between the two reads is skipped.
        rows.iter().flatten().map(|j| self.decode(j)).collect()
    }

    async fn blob_refs(&self, repo: &RepoName, blob: &Digest) -> MetaResult<u64> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let n: Option<u64> = self
            .redis
            .query(redis::cmd("HGET").arg(&k.blobs).arg(blob.to_string()))
            .await?;
        Ok(n.unwrap_or(0))
    }

    async fn record_pulls(
        &self,
        repo: &RepoName,
        digest: &Digest,
        count: u64,
        at: u64,
    ) -> MetaResult<()> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let mut call = self.pulls.prepare_invoke();
        call.key(&k.pull_count)
            .key(&k.pull_last)
            .key(&self.pulls_key)
            .key(&self.generation_key)
            .arg(digest.to_string())
            .arg(count)
            .arg(at)
            .arg(repo.as_str());
        let _: Option<()> = self.redis.invoke(&call).await?;
        Ok(())
    }

    async fn pull_stats(&self, repo: &RepoName, digest: &Digest) -> MetaResult<PullStats> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let digest = digest.to_string();
        let (count, last_pulled): (Option<u64>, Option<u64>) = self
            .redis
            .query_pipe(
                redis::pipe()
                    .atomic()
                    .cmd("HGET")
                    .arg(&k.pull_count)
                    .arg(&digest)
                    .cmd("HGET")
                    .arg(&k.pull_last)
                    .arg(&digest),
            )
            .await?;
        Ok(PullStats {
            last_pulled,
            count: count.unwrap_or(0),
        })
    }

    async fn pull_stats_all(&self, repo: &RepoName) -> MetaResult<BTreeMap<String, PullStats>> {
        let k = RepoKeys::new(&self.redis, repo.as_str());
        let (counts, lasts): (BTreeMap<String, u64>, BTreeMap<String, u64>) = self
            .redis
            .query_pipe(
                redis::pipe()
                    .atomic()
                    .cmd("HGETALL")
                    .arg(&k.pull_count)
                    .cmd("HGETALL")
                    .arg(&k.pull_last),
            )
            .await?;
        let mut out: BTreeMap<String, PullStats> = counts
            .into_iter()
            .map(|(digest, count)| {
                let stats = PullStats {
                    count,
                    last_pulled: None,
                };
                (digest, stats)
            })
            .collect();
        for (digest, last) in lasts {
            out.entry(digest).or_default().last_pulled = Some(last);
        }
        Ok(out)
    }

    async fn generation(&self) -> MetaResult<u64> {
        let (n, epoch): (Option<u64>, Option<u64>) = self
            .redis
            .query(
                redis::cmd("MGET")
                    .arg(&self.generation_key)
                    .arg(&self.epoch_key),
            )
            .await?;
        Ok(epoch.unwrap_or(0).wrapping_add(n.unwrap_or(0)))
    }

    async fn toggle_user_repo(
        &self,
        user: &str,
        list: UserList,
        repo: &RepoName,
    ) -> MetaResult<bool> {
        let mut call = self.toggle.prepare_invoke();
        call.key(self.list_key(user, list))
            .key(&self.stars_key)
            .key(&self.generation_key)
            .arg(repo.as_str())
            .arg(if list == UserList::Starred { "1" } else { "0" });
        let listed: i64 = self.redis.invoke(&call).await?;
        Ok(listed == 1)
    }

    async fn user_repos(&self, user: &str, list: UserList) -> MetaResult<Vec<String>> {
        let mut repos: Vec<String> = self
            .redis
            .query(redis::cmd("SMEMBERS").arg(self.list_key(user, list)))
            .await?;
        repos.sort();
        Ok(repos)
    }

    async fn setting(&self, name: &str) -> MetaResult<Option<String>> {
        self.redis
            .query(redis::cmd("HGET").arg(&self.settings_key).arg(name))
            .await
    }

    async fn set_setting(&self, name: &str, value: &str) -> MetaResult<()> {
        self.redis
            .query(
                redis::cmd("HSET")
                    .arg(&self.settings_key)
                    .arg(name)
                    .arg(value),
            )
            .await
    }

    async fn scan_report(&self, digest: &Digest) -> MetaResult<Option<String>> {
        self.redis
            .query(
                redis::cmd("HGET")
                    .arg(&self.scans_key)
                    .arg(digest.to_string()),
            )
            .await
    }

    async fn set_scan_report(&self, digest: &Digest, report: Option<&str>) -> MetaResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        match report {
            Some(r) => pipe
                .cmd("HSET")
                .arg(&self.scans_key)
                .arg(digest.to_string())
                .arg(r),
            None => pipe
                .cmd("HDEL")
                .arg(&self.scans_key)
                .arg(digest.to_string()),
        }
        .ignore();
        pipe.cmd("INCR").arg(&self.generation_key).ignore();
        self.redis.query_pipe(&pipe).await
    }

    /// One `SET NX` of the epoch: finding it missing means the server lost
    /// what it held (restarted without its data, or flushed).
    async fn check(&self) -> MetaResult<StoreCheck> {
        Ok(if self.mark().await? {
            StoreCheck::Lost
        } else {
            StoreCheck::Kept
        })
    }

    /// Nothing to do: Redis's own persistence settings decide what
    /// survives a crash of the server (see the module's documentation).
    async fn flush(&self) -> MetaResult<()> {
        Ok(())
    }
}

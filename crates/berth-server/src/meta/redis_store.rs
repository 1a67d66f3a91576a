//! [`RedisMetaStore`]: the metadata store in Redis, shared by every Berth
//! instance pointed at the same server; and the connection pool that
//! [`RedisLocks`] (`redis_locks.rs`), the [`SharedLock`](super::SharedLock)
//! those instances coordinate with, shares.
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
//! | `P:repo:{repo}:manifests` | hash | digest → [`ManifestMeta`] (JSON) |
//! | `P:repo:{repo}:referrers` | sorted set | `{subject}\0{digest}`, all scored 0, so one subject's referrers are a lexicographic range |
//! | `P:repo:{repo}:blobs` | hash | blob digest → how many manifests reference it (absent when 0) |
//! | `P:repo:{repo}:pulls:count` | hash | manifest digest → pull count |
//! | `P:repo:{repo}:pulls:last` | hash | manifest digest → last pull, seconds since the epoch |
//! | `P:settings` | hash | setting name → value |
//! | `P:lock:{name}` | string | the random token of the [`RedisLocks`] holder, with a lease (`PX`) |
//!
//! [`MetaStore::apply`] is one `MULTI`/`EXEC` transaction, prepared under
//! `WATCH` of the keys it reads (the manifests it replaces or removes, the
//! tags and the blob counts), and retried if another writer changed them
//! in between. A `replace` deletes the repository's tag, manifest,
//! referrer and blob-count keys inside that same transaction (pull
//! statistics survive, as in every backend).
//!
//! # Durability
//!
//! What survives a crash of the Redis server is decided by the server's
//! own persistence settings (`appendonly`, `appendfsync`, `save`), not by
//! Berth: `durable` is ignored and [`MetaStore::flush`] does nothing.
//! Issuing `SAVE`/`BGSAVE` per write would be far too costly. The store
//! is derived from storage anyway: a stale version is mended on the
//! next read, and a store found empty is re-derived.
//!
//! # Connections
//!
//! Synchronous connections in an `r2d2` pool (callers block; async code
//! goes through `spawn_blocking`). A connection that saw any error is
//! dropped rather than returned to the pool, so a timed-out reply can
//! never be read as the answer to the next command. A single Redis node
//! only: no cluster, no sentinel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo};

use super::redis_locks::RedisLocks;
use super::{IndexVersion, ManifestMeta, MetaError, MetaResult, MetaStore, PullStats, RepoChange};

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may wait for its reply before the connection is
/// given up: under a third of the default lease, so one stalled renewal
/// fails in time for the next to keep the locks.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a caller waits for a free pooled connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per pool.
const POOL_SIZE: u32 = 32;
/// How often [`MetaStore::apply`] retries a transaction another writer
/// raced with (writers of one repository normally hold its shared lock,
/// so this is rare).
const APPLY_ATTEMPTS: usize = 50;

/// Where the Redis metadata store lives: zot's `storage.cacheDriver`
/// settings for its `redis` driver.
#[derive(Clone)]
pub struct RedisOptions {
    /// A `redis://[user[:password]@]host[:port][/db]` URL; takes precedence
    /// over `addr`.
    pub url: Option<String>,
    /// `host:port` addresses. Only the first is used: Berth talks to a
    /// single Redis node, not a cluster.
    pub addr: Vec<String>,
    /// The prefix of every key (zot's `keyprefix`), so several registries
    /// can share one database.
    pub key_prefix: String,
    /// The database number; overrides the URL's when not 0.
    pub db: i64,
    /// The ACL user; overrides the URL's when set.
    pub username: Option<String>,
    /// The password; overrides the URL's when set. Never logged.
    pub password: Option<String>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            url: None,
            addr: Vec::new(),
            key_prefix: "berth".into(),
            db: 0,
            username: None,
            password: None,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("addr", &self.addr)
            .field("key_prefix", &self.key_prefix)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `url` with the password of its user info, if any, masked.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<redacted>{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// What the store is called in messages until a connection names the
/// server's address.
const SERVICE: &str = "the metadata store (redis)";

/// A Redis error as what happened: a connection refused, dropped or timed
/// out means the service is unavailable; an error reply is a failure.
pub(super) fn err(e: redis::RedisError) -> MetaError {
    let message = e.to_string();
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        MetaError::Unavailable {
            service: SERVICE.into(),
            message,
        }
    } else {
        MetaError::Failed {
            location: SERVICE.into(),
            message,
        }
    }
}

/// A row that does not read back as written.
fn corrupt(e: serde_json::Error) -> MetaError {
    MetaError::Corrupt {
        location: SERVICE.into(),
        message: e.to_string(),
    }
}

/// `e` with the store named by its address.
fn naming(e: MetaError, name: &str) -> MetaError {
    match e {
        MetaError::Unavailable { message, .. } => MetaError::Unavailable {
            service: name.into(),
            message,
        },
        MetaError::Failed { message, .. } => MetaError::Failed {
            location: name.into(),
            message,
        },
        MetaError::Corrupt { message, .. } => MetaError::Corrupt {
            location: name.into(),
            message,
        },
        other => other,
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Splits `host:port` (or `[v6]:port`, or a bare host) for Redis's
/// default port 6379.
fn parse_addr(addr: &str) -> MetaResult<(String, u16)> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| MetaError::InvalidConfig(format!("invalid redis address {addr}")))?;
        (host, after.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (addr, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| {
            MetaError::InvalidConfig(format!("invalid port in redis address {addr}"))
        })?,
        None => 6379,
    };
    if host.is_empty() {
        return Err(MetaError::InvalidConfig(format!(
            "invalid redis address {addr}"
        )));
    }
    Ok((host.to_string(), port))
}

fn connection_info(o: &RedisOptions) -> MetaResult<ConnectionInfo> {
    let info = if let Some(url) = &o.url {
        // The URL may hold a password: the message does not quote it
        // (nor do the redis crate's parse errors).
        url.as_str()
            .into_connection_info()
            .map_err(|e| MetaError::InvalidConfig(format!("invalid redis url: {e}")))?
    } else {
        let addr = o
            .addr
            .first()
            .ok_or_else(|| MetaError::InvalidConfig("redis: neither url nor addr is set".into()))?;
        let (host, port) = parse_addr(addr)?;
        ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map_err(err)?
    };
    let mut settings = info.redis_settings().clone();
    if o.db != 0 {
        settings = settings.set_db(o.db);
    }
    if let Some(user) = &o.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &o.password {
        settings = settings.set_password(password);
    }
    Ok(info.set_redis_settings(settings))
}

/// A pooled connection and whether it must not be reused.
struct Conn {
    con: redis::Connection,
    broken: bool,
}

/// Opens connections with timeouts, and drops those marked broken.
struct Manager {
    client: redis::Client,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = redis::RedisError;

    fn connect(&self) -> Result<Conn, redis::RedisError> {
        let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn { con, broken: false })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), redis::RedisError> {
        redis::cmd("PING").exec(&mut conn.con)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken || !conn.con.is_open()
    }
}

/// A connection pool to one Redis server, and the key prefix.
#[derive(Clone)]
pub(super) struct Redis {
    pool: r2d2::Pool<Manager>,
    /// `host:port`, for messages (never the password).
    addr: String,
    prefix: String,
}

impl Redis {
    pub(super) fn connect(o: &RedisOptions) -> MetaResult<Self> {
        let info = connection_info(o)?;
        let addr = info.addr().to_string();
        let unreachable = |e: &dyn fmt::Display| MetaError::Unavailable {
            service: format!("the metadata store (redis at {addr})"),
            message: e.to_string(),
        };
        let manager = Manager {
            client: redis::Client::open(info).map_err(|e| unreachable(&e))?,
        };
        // One connection up front, so a wrong address or password fails
        // here with its own message rather than as a pool timeout later.
        let mut probe = r2d2::ManageConnection::connect(&manager).map_err(|e| unreachable(&e))?;
        r2d2::ManageConnection::is_valid(&manager, &mut probe).map_err(|e| unreachable(&e))?;
        drop(probe);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .build(manager)
            .map_err(|e| unreachable(&e))?;
        Ok(Self {
            pool,
            addr,
            prefix: o.key_prefix.clone(),
        })
    }

    /// Runs `f` on a pooled connection. A connection `f` failed on is
    /// discarded: it may hold a `WATCH` or a reply not yet read.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> MetaResult<T>,
    ) -> MetaResult<T> {
        let name = || format!("the metadata store (redis at {})", self.addr);
        let mut conn = self.pool.get().map_err(|e| MetaError::Unavailable {
            service: name(),
            message: e.to_string(),
        })?;
        let out = f(&mut conn.con);
        if out.is_err() {
            conn.broken = true;
        }
        out.map_err(|e| naming(e, &name()))
    }

    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }
}

/// The keys of one repository's rows.
struct RepoKeys {
    fp: String,
    tags: String,
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
            manifests: k("manifests"),
            referrers: k("referrers"),
            blobs: k("blobs"),
            pull_count: k("pulls:count"),
            pull_last: k("pulls:last"),
        }
    }

    /// The rows a `replace` drops (pull statistics stay).
    fn derived(&self) -> [&str; 4] {
        [&self.tags, &self.manifests, &self.referrers, &self.blobs]
    }

    fn all(&self) -> [&str; 7] {
        [
            &self.fp,
            &self.tags,
            &self.manifests,
            &self.referrers,
            &self.blobs,
            &self.pull_count,
            &self.pull_last,
        ]
    }
}

/// The member of `P:repo:{repo}:referrers` linking `digest` to `subject`.
fn referrer_link(subject: &str, digest: &str) -> String {
    format!("{subject}\0{digest}")
}

fn decode(json: &str) -> MetaResult<ManifestMeta> {
    serde_json::from_str(json).map_err(corrupt)
}

/// The metadata store in Redis. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct RedisMetaStore {
    redis: Redis,
    /// `P:repos`.
    repos_key: String,
    /// `P:settings`.
    settings_key: String,
}

impl RedisMetaStore {
    /// Connects to the server `options` name (a pool; one connection is
    /// made now, so an unreachable server or a wrong password fails here,
    /// with a message naming the address).
    pub fn open(options: &RedisOptions) -> MetaResult<Self> {
        let redis = Redis::connect(options)?;
        Ok(Self {
            repos_key: redis.key("repos"),
            settings_key: redis.key("settings"),
            redis,
        })
    }

    /// Shared locks on the same server, key prefix and connection pool,
    /// with the default lease.
    pub fn locks(&self) -> RedisLocks {
        RedisLocks::new(self.redis.clone(), super::redis_locks::DEFAULT_LEASE)
    }

    /// The `MULTI` transaction that applies `change`, read from the
    /// server's current state (the caller has `WATCH`ed what this reads).
    fn plan(
        &self,
        con: &mut redis::Connection,
        repo: &str,
        k: &RepoKeys,
        change: &RepoChange,
        version: &str,
    ) -> MetaResult<redis::Pipeline> {
        // The manifests this change removes or overwrites, as they are now
        // (nothing is left of them after a replace).
        let mut manifests: HashMap<&str, Option<ManifestMeta>> = HashMap::new();
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        if !change.replace {
            let digests: BTreeSet<&str> = change
                .remove_manifests
                .iter()
                .map(String::as_str)
                .chain(change.put_manifests.iter().map(|m| m.digest.as_str()))
                .collect();
            if !digests.is_empty() {
                let rows: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(&k.manifests)
                    .arg(digests.iter().collect::<Vec<_>>())
                    .query(con)
                    .map_err(err)?;
                for (digest, row) in digests.into_iter().zip(rows) {
                    manifests.insert(digest, row.as_deref().map(decode).transpose()?);
                }
            }
            if !change.remove_manifests.is_empty() {
                tags = redis::cmd("HGETALL").arg(&k.tags).query(con).map_err(err)?;
            }
        }
        // The counts of every blob those manifests and the new ones name.
        let mut counts: BTreeMap<String, i64> = manifests
            .values()
            .flatten()
            .chain(&change.put_manifests)
            .flat_map(|m| m.references())
            .map(|b| (b.clone(), 0))
            .collect();
        if !change.replace && !counts.is_empty() {
            let rows: Vec<Option<i64>> = redis::cmd("HMGET")
                .arg(&k.blobs)
                .arg(counts.keys().collect::<Vec<_>>())
                .query(con)
                .map_err(err)?;
            for (count, row) in counts.values_mut().zip(rows) {
                *count = row.unwrap_or(0);
            }
        }
        let adjust = |counts: &mut BTreeMap<String, i64>, m: &ManifestMeta, delta: i64| {
            for blob in m.references() {
                let n = counts.entry(blob.clone()).or_insert(0);
                *n = (*n + delta).max(0);
            }
        };

        let mut p = redis::pipe();
        p.atomic();
        if change.replace {
            p.cmd("DEL").arg(&k.derived()[..]);
        }
        for digest in &change.remove_manifests {
            if let Some(old) = manifests.insert(digest, None).flatten() {
                adjust(&mut counts, &old, -1);
                if let Some(s) = &old.subject {
                    p.cmd("ZREM")
                        .arg(&k.referrers)
                        .arg(referrer_link(s, digest));
                }
            }
            p.cmd("HDEL").arg(&k.manifests).arg(digest);
            // A manifest deleted takes its pull history and its tags along.
            p.cmd("HDEL").arg(&k.pull_count).arg(digest);
            p.cmd("HDEL").arg(&k.pull_last).arg(digest);
            let gone: Vec<&String> = tags
                .iter()
                .filter(|(_, d)| *d == digest)
                .map(|(t, _)| t)
                .collect();
            if !gone.is_empty() {
                p.cmd("HDEL").arg(&k.tags).arg(gone);
            }
        }
        for m in &change.put_manifests {
            if let Some(old) = manifests.insert(&m.digest, Some(m.clone())).flatten() {
                adjust(&mut counts, &old, -1);
                if let Some(s) = &old.subject {
                    p.cmd("ZREM")
                        .arg(&k.referrers)
                        .arg(referrer_link(s, &m.digest));
                }
            }
            let json = serde_json::to_string(m).map_err(corrupt)?;
            p.cmd("HSET").arg(&k.manifests).arg(&m.digest).arg(json);
            adjust(&mut counts, m, 1);
            if let Some(s) = &m.subject {
                p.cmd("ZADD")
                    .arg(&k.referrers)
                    .arg(0)
                    .arg(referrer_link(s, &m.digest));
            }
        }
        if !change.remove_tags.is_empty() {
            p.cmd("HDEL").arg(&k.tags).arg(&change.remove_tags);
        }
        if !change.set_tags.is_empty() {
            p.cmd("HSET").arg(&k.tags).arg(&change.set_tags);
        }
        for (blob, n) in &counts {
            if *n > 0 {
                p.cmd("HSET").arg(&k.blobs).arg(blob).arg(n);
            } else {
                p.cmd("HDEL").arg(&k.blobs).arg(blob);
            }
        }
        p.cmd("ZADD").arg(&self.repos_key).arg(0).arg(repo);
        p.cmd("SET").arg(&k.fp).arg(version);
        Ok(p)
    }
}

impl MetaStore for RedisMetaStore {
    fn repos(&self) -> MetaResult<Vec<String>> {
        self.redis.with(|con| {
            redis::cmd("ZRANGE")
                .arg(&self.repos_key)
                .arg(0)
                .arg(-1)
                .query(con)
                .map_err(err)
        })
    }

    fn version(&self, repo: &str) -> MetaResult<Option<IndexVersion>> {
        let k = RepoKeys::new(&self.redis, repo);
        let v: Option<String> = self
            .redis
            .with(|con| redis::cmd("GET").arg(&k.fp).query(con).map_err(err))?;
        Ok(v.map(IndexVersion::new))
    }

    fn apply(&self, repo: &str, change: &RepoChange, _durable: bool) -> MetaResult<()> {
        let k = RepoKeys::new(&self.redis, repo);
        self.redis.with(|con| {
            for attempt in 0..APPLY_ATTEMPTS {
                if attempt > 0 {
                    // Lets the writer that won go ahead before trying again.
                    std::thread::sleep(Duration::from_millis(attempt.min(10) as u64));
                }
                redis::cmd("WATCH")
                    .arg(&[&k.manifests, &k.tags, &k.blobs])
                    .exec(con)
                    .map_err(err)?;
                let txn = self.plan(con, repo, &k, change, change.version.as_str())?;
                // `None` when EXEC found a watched key changed.
                let done: Option<redis::Value> = txn.query(con).map_err(err)?;
                if done.is_some() {
                    return Ok(());
                }
            }
            Err(MetaError::Contended(format!(
                "apply to {repo}: gave up after {APPLY_ATTEMPTS} conflicting writes"
            )))
        })
    }

    fn remove_repo(&self, repo: &str) -> MetaResult<()> {
        let k = RepoKeys::new(&self.redis, repo);
        self.redis.with(|con| {
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(&k.all()[..])
                .cmd("ZREM")
                .arg(&self.repos_key)
                .arg(repo)
                .exec(con)
                .map_err(err)
        })
    }

    fn tags(&self, repo: &str) -> MetaResult<Vec<(String, String)>> {
        let k = RepoKeys::new(&self.redis, repo);
        let tags: BTreeMap<String, String> = self
            .redis
            .with(|con| redis::cmd("HGETALL").arg(&k.tags).query(con).map_err(err))?;
        Ok(tags.into_iter().collect())
    }

    fn tag(&self, repo: &str, tag: &str) -> MetaResult<Option<String>> {
        let k = RepoKeys::new(&self.redis, repo);
        self.redis.with(|con| {
            redis::cmd("HGET")
                .arg(&k.tags)
                .arg(tag)
                .query(con)
                .map_err(err)
        })
    }

    fn manifest(&self, repo: &str, digest: &str) -> MetaResult<Option<ManifestMeta>> {
        let k = RepoKeys::new(&self.redis, repo);
        let json: Option<String> = self.redis.with(|con| {
            redis::cmd("HGET")
                .arg(&k.manifests)
                .arg(digest)
                .query(con)
                .map_err(err)
        })?;
        json.as_deref().map(decode).transpose()
    }

    fn manifests(&self, repo: &str) -> MetaResult<Vec<ManifestMeta>> {
        let k = RepoKeys::new(&self.redis, repo);
        let rows: Vec<String> = self.redis.with(|con| {
            redis::cmd("HVALS")
                .arg(&k.manifests)
                .query(con)
                .map_err(err)
        })?;
        let mut out = rows
            .iter()
            .map(|j| decode(j))
            .collect::<MetaResult<Vec<_>>>()?;
        // Sorted by digest, as the embedded store returns them.
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    fn referrers(&self, repo: &str, digest: &str) -> MetaResult<Vec<ManifestMeta>> {
        let k = RepoKeys::new(&self.redis, repo);
        let lo = format!("[{}", referrer_link(digest, ""));
        let hi = format!("({digest}\u{1}");
        let rows: Vec<Option<String>> = self.redis.with(|con| {
            let links: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(&k.referrers)
                .arg(&lo)
                .arg(&hi)
                .query(con)
                .map_err(err)?;
            if links.is_empty() {
                return Ok(Vec::new());
            }
            let digests: Vec<&str> = links.iter().map(|l| &l[lo.len() - 1..]).collect();
            redis::cmd("HMGET")
                .arg(&k.manifests)
                .arg(digests)
                .query(con)
                .map_err(err)
        })?;
        // A referrer removed between the two reads is skipped.
        rows.iter().flatten().map(|j| decode(j)).collect()
    }

    fn blob_refs(&self, repo: &str, blob: &str) -> MetaResult<u64> {
        let k = RepoKeys::new(&self.redis, repo);
        let n: Option<u64> = self.redis.with(|con| {
            redis::cmd("HGET")
                .arg(&k.blobs)
                .arg(blob)
                .query(con)
                .map_err(err)
        })?;
        Ok(n.unwrap_or(0))
    }

    fn record_pull(&self, repo: &str, digest: &str, at: u64) -> MetaResult<()> {
        let k = RepoKeys::new(&self.redis, repo);
        self.redis.with(|con| {
            redis::pipe()
                .atomic()
                .cmd("HINCRBY")
                .arg(&k.pull_count)
                .arg(digest)
                .arg(1)
                .cmd("HSET")
                .arg(&k.pull_last)
                .arg(digest)
                .arg(at)
                .exec(con)
                .map_err(err)
        })
    }

    fn pull_stats(&self, repo: &str, digest: &str) -> MetaResult<PullStats> {
        let k = RepoKeys::new(&self.redis, repo);
        let (count, last_pulled): (Option<u64>, Option<u64>) = self.redis.with(|con| {
            redis::pipe()
                .atomic()
                .cmd("HGET")
                .arg(&k.pull_count)
                .arg(digest)
                .cmd("HGET")
                .arg(&k.pull_last)
                .arg(digest)
                .query(con)
                .map_err(err)
        })?;
        Ok(PullStats {
            last_pulled,
            count: count.unwrap_or(0),
        })
    }

    fn setting(&self, name: &str) -> MetaResult<Option<String>> {
        self.redis.with(|con| {
            redis::cmd("HGET")
                .arg(&self.settings_key)
                .arg(name)
                .query(con)
                .map_err(err)
        })
    }

    fn set_setting(&self, name: &str, value: &str) -> MetaResult<()> {
        self.redis.with(|con| {
            redis::cmd("HSET")
                .arg(&self.settings_key)
                .arg(name)
                .arg(value)
                .exec(con)
                .map_err(err)
        })
    }

    /// Nothing to do: Redis's own persistence settings decide what
    /// survives a crash of the server (see the module's documentation).
    fn flush(&self) -> MetaResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("redis.local:6380").expect("addr"),
            ("redis.local".into(), 6380)
        );
        assert_eq!(
            parse_addr("redis.local").expect("addr"),
            ("redis.local".into(), 6379)
        );
        assert_eq!(
            parse_addr("[::1]:7000").expect("addr"),
            ("::1".into(), 7000)
        );
        assert_eq!(parse_addr("::1").expect("addr"), ("::1".into(), 6379));
        assert!(parse_addr("host:port").is_err());
        assert!(parse_addr(":6379").is_err());
    }

    #[test]
    fn passwords_stay_out_of_debug() {
        let o = RedisOptions {
            url: Some("redis://me:hunter2@redis.local:6379/1".into()),
            password: Some("hunter3".into()),
            ..Default::default()
        };
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(
            shown.contains("redis://me:<redacted>@redis.local:6379/1"),
            "{shown}"
        );
        assert_eq!(redact_url("redis://h:1/2"), "redis://h:1/2");
    }

    #[test]
    fn options_override_the_url() {
        let o = RedisOptions {
            url: Some("redis://a:b@h:7000/3".into()),
            db: 5,
            password: Some("c".into()),
            ..Default::default()
        };
        let info = connection_info(&o).expect("info");
        assert_eq!(info.addr().to_string(), "h:7000");
        assert_eq!(info.redis_settings().db(), 5);
        assert_eq!(info.redis_settings().username(), Some("a"));
        assert_eq!(info.redis_settings().password(), Some("c"));
        let o = RedisOptions {
            addr: vec!["h2:7001".into(), "ignored:1".into()],
            ..Default::default()
        };
        let info = connection_info(&o).expect("info");
        assert_eq!(info.addr().to_string(), "h2:7001");
        assert!(connection_info(&RedisOptions::default()).is_err());
    }
}

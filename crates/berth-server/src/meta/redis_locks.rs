//! [`RedisLocks`]: the [`SharedLock`] on Redis, for several instances on
//! one store: `SET <prefix>:lock:<name> <token> NX PX <lease>`, renewed by
//! one tokio task while held, released by a compare-and-delete script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::Script;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::redis_conn::{Redis, RedisOptions};
use super::{MetaResult, SharedGuard, SharedLock};

/// How long a lock outlives a holder that stopped renewing it (a process
/// that died, or lost the server for that long).
pub(super) const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The shortest lease [`RedisLocks::with_lease`] accepts.
const MIN_LEASE: Duration = Duration::from_millis(30);
/// The first and the longest pause between two tries of a held lock.
const MIN_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Deletes `KEYS[1]` if it still holds our token `ARGV[1]` (it may have
/// lapsed and been taken by another holder).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Extends each `KEYS[i]` still holding token `ARGV[i + 1]` by `ARGV[1]`
/// milliseconds; returns 1 for each renewed, 0 for each lost.
const RENEW: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    out[i] = redis.call('PEXPIRE', key, ARGV[1])
  else
    out[i] = 0
  end
end
return out
";

/// [`SharedLock`] over Redis: `P:lock:{name}` set with `NX` to a random
/// token and a lease (`PX`), released by a compare-and-delete script.
///
/// One tokio task per `RedisLocks` (started by the first lock taken,
/// ended once the handle and all its guards are gone) renews every lock
/// held through it each third of the lease, so a live holder keeps its
/// lock however long it holds the guard, while a holder that dies loses
/// it within one lease. Dropping a guard spawns its release (one round
/// trip to Redis) on the runtime it was taken on, so a drop never waits
/// for the network; if the release fails the lock lapses with its lease.
///
/// Get one with [`RedisMetaStore::locks`](super::RedisMetaStore::locks)
/// (sharing the store's connection) or [`RedisLocks::open`] (its own).
/// Clones share the held locks and the renewing task.
#[derive(Clone)]
pub struct RedisLocks {
    inner: Arc<LockInner>,
}

struct LockInner {
    redis: Redis,
    lease: Duration,
    /// token → key of every lock held through this handle, which the
    /// renewer extends. Keyed by token: should a lease lapse, the same key
    /// may be held again here under another token. A std mutex: it is
    /// never held across an await.
    held: Mutex<HashMap<String, String>>,
    /// The renewing task, once started (started again should the runtime
    /// it ran on have ended).
    renewer: Mutex<Option<JoinHandle<()>>>,
    /// Tells the renewing task to end, once this is dropped.
    stop: Arc<Notify>,
    release: Script,
    renew: Script,
}

impl Drop for LockInner {
    fn drop(&mut self) {
        // Stores a permit if the task is not waiting right now.
        self.stop.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisLocks {
    /// Shared locks on the server `options` name, with their own
    /// connection and the default lease.
    pub async fn open(options: &RedisOptions) -> MetaResult<Self> {
        Ok(Self::new(Redis::connect(options).await?, DEFAULT_LEASE))
    }

    /// The same locks with another lease (at least 30 ms): how long a lock
    /// outlives a holder that died. A fresh handle: locks already held
    /// through `self` keep theirs.
    pub fn with_lease(self, lease: Duration) -> Self {
        Self::new(self.inner.redis.clone(), lease.max(MIN_LEASE))
    }

    pub(super) fn new(redis: Redis, lease: Duration) -> Self {
        Self {
            inner: Arc::new(LockInner {
                redis,
                lease,
                held: Mutex::default(),
                renewer: Mutex::default(),
                stop: Arc::default(),
                release: Script::new(RELEASE),
                renew: Script::new(RENEW),
            }),
        }
    }

    /// Starts the renewing task unless it runs. It holds the handle
    /// weakly, so it ends once the handle and all guards are dropped.
    fn start_renewer(&self) {
        let mut renewer = lock(&self.inner.renewer);
        if renewer.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let stop = self.inner.stop.clone();
        let every = self.inner.lease / 3;
        *renewer = Some(tokio::spawn(renew_loop(weak, stop, every)));
    }
}

async fn renew_loop(inner: Weak<LockInner>, stop: Arc<Notify>, every: Duration) {
    loop {
        tokio::select! {
            () = stop.notified() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.renew_all().await;
    }
}

impl LockInner {
    async fn renew_all(&self) {
        let held: Vec<(String, String)> = lock(&self.held)
            .iter()
            .map(|(t, k)| (t.clone(), k.clone()))
            .collect();
        if held.is_empty() {
            return;
        }
        let mut call = self.renew.prepare_invoke();
        call.arg(millis(self.lease));
        for (token, key) in &held {
            call.key(key).arg(token);
        }
        match self.redis.invoke::<Vec<i64>>(&call).await {
            Ok(renewed) => {
                for ((token, key), ok) in held.iter().zip(renewed) {
                    // Gone from `held` means released meanwhile, not lost.
                    if ok == 0 && lock(&self.held).remove(token).is_some() {
                        tracing::warn!(lock = %key, "shared lock lapsed before it was renewed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew shared locks"),
        }
    }

    /// Deletes `key` if it still holds `token`.
    async fn release(&self, key: &str, token: &str) {
        let mut call = self.release.prepare_invoke();
        call.key(key).arg(token);
        if let Err(e) = self.redis.invoke::<i64>(&call).await {
            tracing::warn!(lock = %key, error = %e, "cannot release shared lock; it lapses with its lease");
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Up to half of `pause` more, so contenders do not retry in step.
fn jitter(pause: Duration) -> Duration {
    let span = u64::try_from(pause.as_micros() / 2).unwrap_or(0) + 1;
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    Duration::from_micros(random % span)
}

#[async_trait::async_trait]
impl SharedLock for RedisLocks {
    async fn acquire(&self, name: &str, wait: Duration) -> MetaResult<Option<SharedGuard>> {
        let inner = &self.inner;
        let key = inner.redis.key(&format!("lock:{name}"));
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease = millis(inner.lease);
        // No deadline if `wait` is too long to represent.
        let deadline = Instant::now().checked_add(wait);
        let mut pause = MIN_PAUSE;
        loop {
            let taken: Option<String> = inner
                .redis
                .query(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease),
                )
                .await?;
            if taken.is_some() {
                lock(&inner.held).insert(token.clone(), key.clone());
                self.start_renewer();
                return Ok(Some(SharedGuard::new(RedisGuard {
                    inner: inner.clone(),
                    runtime: tokio::runtime::Handle::current(),
                    key,
                    token,
                })));
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => MAX_PAUSE,
            };
            if left.is_zero() {
                return Ok(None);
            }
            tokio::time::sleep((pause + jitter(pause)).min(left)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

/// One lock held; dropping it stops its renewal and releases it.
struct RedisGuard {
    inner: Arc<LockInner>,
    /// Where the release runs: dropping must not wait for the network.
    runtime: tokio::runtime::Handle,
    key: String,
    token: String,
}

impl Drop for RedisGuard {
    fn drop(&mut self) {
        lock(&self.inner.held).remove(&self.token);
        let inner = self.inner.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        // A runtime shut down drops the task: the lock lapses with its lease.
        self.runtime
            .spawn(async move { inner.release(&key, &token).await });
    }
}

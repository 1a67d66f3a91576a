//! [`RedisLocks`]: the [`SharedLock`] on Redis, for several instances on
//! one store: `SET <prefix>:lock:<name> <token> NX PX <lease>`, renewed
//! while held, released by a compare-and-delete script (the waiting,
//! renewing and releasing: `lease_locks.rs`).

use std::time::Duration;

use redis::Script;

use super::lease_locks::{DEFAULT_LEASE, LeaseBackend, LeaseLocks};
use super::redis_conn::{Redis, RedisOptions};
use super::{MetaResult, SharedGuard, SharedLock};

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
/// token and a lease (`PX`), released by a compare-and-delete script;
/// renewed each third of the lease by one task per handle (see
/// `LeaseLocks`).
///
/// Get one with [`RedisMetaStore::locks`](super::RedisMetaStore::locks)
/// (sharing the store's connection) or [`RedisLocks::open`] (its own).
/// Clones share the held locks and the renewing task.
#[derive(Clone)]
pub struct RedisLocks {
    locks: LeaseLocks<RedisLease>,
}

/// The Redis side of the locks.
struct RedisLease {
    redis: Redis,
    release: Script,
    renew: Script,
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
        Self::new(self.locks.backend().redis.clone(), lease)
    }

    pub(super) fn new(redis: Redis, lease: Duration) -> Self {
        let backend = RedisLease {
            redis,
            release: Script::new(RELEASE),
            renew: Script::new(RENEW),
        };
        Self {
            locks: LeaseLocks::new(backend, lease),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisLease {
    fn key(&self, name: &str) -> String {
        self.redis.key(&format!("lock:{name}"))
    }
}

#[async_trait::async_trait]
impl LeaseBackend for RedisLease {
    async fn take(&self, name: &str, token: &str, lease: Duration) -> MetaResult<bool> {
        let taken: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(self.key(name))
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(lease)),
            )
            .await?;
        Ok(taken.is_some())
    }

    async fn renew(&self, held: &[(String, String)], lease: Duration) -> MetaResult<Vec<bool>> {
        let mut call = self.renew.prepare_invoke();
        call.arg(millis(lease));
        for (name, token) in held {
            call.key(self.key(name)).arg(token);
        }
        let renewed: Vec<i64> = self.redis.invoke(&call).await?;
        Ok(renewed.into_iter().map(|ok| ok != 0).collect())
    }

    async fn release(&self, name: &str, token: &str) -> MetaResult<()> {
        let mut call = self.release.prepare_invoke();
        call.key(self.key(name)).arg(token);
        self.redis.invoke::<i64>(&call).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl SharedLock for RedisLocks {
    async fn acquire(&self, name: &str, wait: Duration) -> MetaResult<Option<SharedGuard>> {
        self.locks.acquire(name, wait).await
    }
}

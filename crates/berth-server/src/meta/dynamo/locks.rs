//! [`DynamoLocks`]: the [`SharedLock`] on DynamoDB, for several instances
//! on one store: the item `#lock`/`{name}` of the `cacheTablename` table,
//! put with the holder's random token and the end of its lease only if it
//! is absent or its lease ended, extended while the token holds it, and
//! deleted only by its holder (the waiting, renewing and releasing:
//! `lease_locks.rs`). Leases are told by the instances' clocks, which
//! must agree to well within a lease (10 s): NTP does.

use std::time::Duration;

use super::client::{Dynamo, DynamoError, n, s};
use super::items::{self, Cond, Row};
use crate::meta::lease_locks::{DEFAULT_LEASE, LeaseBackend, LeaseLocks};
use crate::meta::{MetaResult, SharedGuard, SharedLock};

/// [`SharedLock`] over DynamoDB (see the module's documentation). Get one
/// with [`DynamoMetaStore::locks`](super::DynamoMetaStore::locks). Clones
/// share the held locks and the renewing task.
#[derive(Clone)]
pub struct DynamoLocks {
    locks: LeaseLocks<DynamoLease>,
}

/// The DynamoDB side of the locks.
struct DynamoLease {
    db: Dynamo,
}

impl DynamoLocks {
    pub(super) fn new(db: Dynamo) -> Self {
        Self {
            locks: LeaseLocks::new(DynamoLease { db }, DEFAULT_LEASE),
        }
    }

    /// The same locks with another lease (at least 30 ms): how long a lock
    /// outlives a holder that died. A fresh handle: locks already held
    /// through `self` keep theirs.
    pub fn with_lease(self, lease: Duration) -> Self {
        Self {
            locks: LeaseLocks::new(
                DynamoLease {
                    db: self.locks.backend().db.clone(),
                },
                lease,
            ),
        }
    }
}

/// Now, in milliseconds since the epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl DynamoLease {
    /// Writes one conditional item; whether its condition held.
    async fn conditional(
        &self,
        write: aws_sdk_dynamodb::types::TransactWriteItem,
    ) -> MetaResult<bool> {
        match self.db.transact(vec![write]).await {
            Ok(()) => Ok(true),
            Err(DynamoError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl LeaseBackend for DynamoLease {
    async fn take(&self, name: &str, token: &str, lease: Duration) -> MetaResult<bool> {
        let row = Row::lock(&self.db.tables, name);
        let now = now_ms();
        let item = row.item([
            ("tok", s(token)),
            ("exp", n(now.saturating_add(millis(lease)))),
        ]);
        let cond = Cond {
            expr: "attribute_not_exists(#sk) OR #exp < :now",
            values: vec![(":now", n(now))],
        };
        self.conditional(items::put(&row, item, Some(cond))?).await
    }

    async fn renew(&self, held: &[(String, String)], lease: Duration) -> MetaResult<Vec<bool>> {
        let mut out = Vec::with_capacity(held.len());
        for (name, token) in held {
            let row = Row::lock(&self.db.tables, name);
            let write = items::update(
                &row,
                "SET #exp = :exp",
                vec![
                    (":exp", n(now_ms().saturating_add(millis(lease)))),
                    (":tok", s(token.clone())),
                ],
                Some("#tok = :tok"),
            )?;
            out.push(self.conditional(write).await?);
        }
        Ok(out)
    }

    async fn release(&self, name: &str, token: &str) -> MetaResult<()> {
        let row = Row::lock(&self.db.tables, name);
        let cond = Cond {
            expr: "#tok = :tok",
            values: vec![(":tok", s(token))],
        };
        // Not ours any more (it lapsed and was taken): nothing to do.
        self.conditional(items::delete(&row, Some(cond))?)
            .await
            .map(|_| ())
    }
}

#[async_trait::async_trait]
impl SharedLock for DynamoLocks {
    async fn acquire(&self, name: &str, wait: Duration) -> MetaResult<Option<SharedGuard>> {
        self.locks.acquire(name, wait).await
    }
}

//! [`SharedLock`]: a lock every Berth instance using the same networked
//! metadata store sees, for what must be exclusive across instances
//! (a repository's `index.json` update, GC of a repository, an upload's
//! chunks). A single instance needs none: its in-process locks suffice.

use std::time::Duration;

use super::MetaResult;

/// Proof that a shared lock is held; dropping it releases the lock (in the
/// background: another holder may have to wait a round trip for it).
pub struct SharedGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl SharedGuard {
    /// Wraps a backend's guard, whose `Drop` releases the lock.
    pub fn new(inner: impl Send + Sync + 'static) -> Self {
        Self(Box::new(inner))
    }
}

/// The seam. Async: waiting for the lock, or for the service's answer,
/// holds no thread.
#[async_trait::async_trait]
pub trait SharedLock: Send + Sync {
    /// Takes the lock `name`, waiting up to `wait` for its holder to let
    /// go; `None` when it is still held by then (`wait` zero: try once).
    /// A holder that dies loses the lock after a lease of a few seconds;
    /// a live holder keeps it for as long as it holds the guard. Dropping
    /// the guard releases the lock soon after, without blocking.
    async fn acquire(&self, name: &str, wait: Duration) -> MetaResult<Option<SharedGuard>>;
}

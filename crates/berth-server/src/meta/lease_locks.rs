//! [`LeaseLocks`]: a [`SharedLock`] over any service that can take a
//! named lock for a token with a lease, extend it while the token holds
//! it, and release it by token ([`LeaseBackend`]: Redis, DynamoDB). What
//! is the same for every such service lives here: the wait with backoff,
//! the one task that renews every lock held through a handle each third
//! of the lease, and the guard whose drop releases in the background.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{MetaResult, SharedGuard, SharedLock};

/// How long a lock outlives a holder that stopped renewing it (a process
/// that died, or lost the service for that long).
pub(super) const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The shortest lease accepted.
pub(super) const MIN_LEASE: Duration = Duration::from_millis(30);
/// The first and the longest pause between two tries of a held lock.
const MIN_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// What a service does for [`LeaseLocks`].
#[async_trait::async_trait]
pub(super) trait LeaseBackend: Send + Sync + 'static {
    /// Takes lock `name` for `token` for `lease`, if it is free or its
    /// lease ran out; whether it was taken.
    async fn take(&self, name: &str, token: &str, lease: Duration) -> MetaResult<bool>;
    /// Extends by `lease` each `(name, token)` the token still holds;
    /// whether each was still held.
    async fn renew(&self, held: &[(String, String)], lease: Duration) -> MetaResult<Vec<bool>>;
    /// Lets go of `name` if `token` still holds it.
    async fn release(&self, name: &str, token: &str) -> MetaResult<()>;
}

/// The [`SharedLock`] over a [`LeaseBackend`].
///
/// One tokio task per handle (started by the first lock taken, ended once
/// the handle and all its guards are gone) renews every lock held through
/// it each third of the lease, so a live holder keeps its lock however
/// long it holds the guard, while a holder that dies loses it within one
/// lease. Dropping a guard spawns its release (one round trip) on the
/// runtime it was taken on, so a drop never waits for the network; if the
/// release fails the lock lapses with its lease. Clones share the held
/// locks and the renewing task.
pub(super) struct LeaseLocks<B> {
    inner: Arc<LockInner<B>>,
}

impl<B> Clone for LeaseLocks<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct LockInner<B> {
    backend: B,
    lease: Duration,
    /// token → name of every lock held through this handle, which the
    /// renewer extends. Keyed by token: should a lease lapse, the same
    /// name may be held again here under another token. A std mutex: it
    /// is never held across an await.
    held: Mutex<HashMap<String, String>>,
    /// The renewing task, once started (started again should the runtime
    /// it ran on have ended).
    renewer: Mutex<Option<JoinHandle<()>>>,
    /// Tells the renewing task to end, once this is dropped.
    stop: Arc<Notify>,
}

impl<B> Drop for LockInner<B> {
    fn drop(&mut self) {
        // Stores a permit if the task is not waiting right now.
        self.stop.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: LeaseBackend> LeaseLocks<B> {
    /// Locks on `backend` with `lease` (at least [`MIN_LEASE`]).
    pub(super) fn new(backend: B, lease: Duration) -> Self {
        Self {
            inner: Arc::new(LockInner {
                backend,
                lease: lease.max(MIN_LEASE),
                held: Mutex::default(),
                renewer: Mutex::default(),
                stop: Arc::default(),
            }),
        }
    }

    pub(super) fn backend(&self) -> &B {
        &self.inner.backend
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

async fn renew_loop<B: LeaseBackend>(
    inner: Weak<LockInner<B>>,
    stop: Arc<Notify>,
    every: Duration,
) {
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

impl<B: LeaseBackend> LockInner<B> {
    async fn renew_all(&self) {
        let held: Vec<(String, String)> = lock(&self.held)
            .iter()
            .map(|(token, name)| (name.clone(), token.clone()))
            .collect();
        if held.is_empty() {
            return;
        }
        match self.backend.renew(&held, self.lease).await {
            Ok(renewed) => {
                for ((name, token), ok) in held.iter().zip(renewed) {
                    // Gone from `held` means released meanwhile, not lost.
                    if !ok && lock(&self.held).remove(token).is_some() {
                        tracing::warn!(lock = %name, "shared lock lapsed before it was renewed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew shared locks"),
        }
    }
}

/// Up to half of `pause` more, so contenders do not retry in step.
fn jitter(pause: Duration) -> Duration {
    let span = u64::try_from(pause.as_micros() / 2).unwrap_or(0) + 1;
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    Duration::from_micros(random % span)
}

#[async_trait::async_trait]
impl<B: LeaseBackend> SharedLock for LeaseLocks<B> {
    async fn acquire(&self, name: &str, wait: Duration) -> MetaResult<Option<SharedGuard>> {
        let inner = &self.inner;
        let token = uuid::Uuid::new_v4().simple().to_string();
        // No deadline if `wait` is too long to represent.
        let deadline = Instant::now().checked_add(wait);
        let mut pause = MIN_PAUSE;
        loop {
            if inner.backend.take(name, &token, inner.lease).await? {
                lock(&inner.held).insert(token.clone(), name.to_string());
                self.start_renewer();
                return Ok(Some(SharedGuard::new(LeaseGuard {
                    inner: inner.clone(),
                    runtime: tokio::runtime::Handle::current(),
                    name: name.to_string(),
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
struct LeaseGuard<B: LeaseBackend> {
    inner: Arc<LockInner<B>>,
    /// Where the release runs: dropping must not wait for the network.
    runtime: tokio::runtime::Handle,
    name: String,
    token: String,
}

impl<B: LeaseBackend> Drop for LeaseGuard<B> {
    fn drop(&mut self) {
        lock(&self.inner.held).remove(&self.token);
        let inner = self.inner.clone();
        let name = std::mem::take(&mut self.name);
        let token = std::mem::take(&mut self.token);
        // A runtime shut down drops the task: the lock lapses with its lease.
        self.runtime.spawn(async move {
            if let Err(e) = inner.backend.release(&name, &token).await {
                tracing::warn!(lock = %name, error = %e, "cannot release shared lock; it lapses with its lease");
            }
        });
    }
}

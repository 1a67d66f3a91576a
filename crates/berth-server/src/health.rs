//! Whether the services the registry needs can be reached — the metadata
//! store and each storage root — checked in the background, never per
//! probe, so that `/readyz` and `/startupz` answer at once from what the
//! last check found and a load balancer stops sending traffic while Redis
//! or S3 is away (`/livez` stays up: the process is fine).
//!
//! Every [`CHECK_EVERY`] one task checks each dependency (bounded by
//! [`CHECK_TIMEOUT`]): [`MetaStore::check`](crate::meta::MetaStore::check) for the metadata store (which
//! also tells a Redis that came back empty, and then the registry is
//! rebuilt from storage in the background while serving), and
//! [`Layout::reachable`](crate::storage::Layout::reachable) for each root. A
//! change of state is logged once, each way; the metrics show every
//! dependency's state and how many checks failed.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::meta::StoreCheck;
use crate::registry::Registry;

/// How often the dependencies are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one check may take before its dependency counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a failed rebuild of the metadata store waits before the next try.
const REBUILD_RETRY: Duration = Duration::from_secs(5);

/// One service the registry needs, and what the checks found.
#[derive(Debug)]
pub struct Dependency {
    /// How probes and metrics name it: `metadata store`, `storage` (the
    /// main root) or `storage /team` (a sub-path's root). No address: the
    /// probes are public.
    name: String,
    /// What the last check found (true until a check says otherwise: the
    /// server was built on it moments ago).
    up: AtomicBool,
    /// Checks that failed since the start.
    failures: AtomicU64,
    /// The last failure, for the log and the probe's detail.
    last_error: Mutex<Option<String>>,
}

impl Dependency {
    fn new(name: String) -> Self {
        Self {
            name,
            up: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Its name in probes, logs and metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the last check reached it.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// How many checks failed since the start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Records a check's outcome, logging a change of state.
    fn record(&self, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(dependency = %self.name, "reachable again");
                }
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(dependency = %self.name, "unavailable: {e}");
                }
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        }
    }
}

/// The state of every dependency, shared by the checks and the probes.
#[derive(Debug)]
pub struct Health {
    /// The metadata store, then each root in the order of [`Registry::roots`].
    deps: Vec<Dependency>,
    /// A round of checks found everything up (once true, stays true).
    started: AtomicBool,
    /// A rebuild of the metadata store is running.
    rebuilding: AtomicBool,
    /// The `roots` setting written after a rebuild, as at start (see
    /// `server::build_state`).
    roots_signature: String,
}

impl Health {
    /// The dependencies of `registry`, all up until checked.
    pub fn new(registry: &Registry, roots_signature: String) -> Self {
        let mut deps = vec![Dependency::new("metadata store".into())];
        for root in registry.roots().all() {
            deps.push(Dependency::new(match &root.prefix {
                None => "storage".into(),
                Some(p) => format!("storage /{p}"),
            }));
        }
        Self {
            deps,
            started: AtomicBool::new(false),
            rebuilding: AtomicBool::new(false),
            roots_signature,
        }
    }

    /// Every dependency.
    pub fn dependencies(&self) -> &[Dependency] {
        &self.deps
    }

    /// The dependencies the last checks could not reach.
    pub fn unavailable(&self) -> Vec<&Dependency> {
        self.deps.iter().filter(|d| !d.is_up()).collect()
    }

    /// Ready: started, and every dependency up.
    pub fn is_ready(&self) -> bool {
        self.is_started() && self.deps.iter().all(Dependency::is_up)
    }

    /// Started: one round of checks has found everything up.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    /// Whether a rebuild of the metadata store is running.
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::Relaxed)
    }

    /// Checks every dependency once, each bounded by [`CHECK_TIMEOUT`],
    /// all at the same time; starts a rebuild if the metadata store lost
    /// its data.
    pub async fn check(self: &Arc<Self>, registry: &Arc<Registry>) {
        let meta = async {
            match tokio::time::timeout(CHECK_TIMEOUT, registry.meta().check()).await {
                Ok(Ok(StoreCheck::Kept)) => Ok(false),
                Ok(Ok(StoreCheck::Lost)) => Ok(true),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            }
        };
        let roots = futures_util::future::join_all(registry.roots().all().iter().map(|root| {
            let layout = root.store.layout.clone();
            async move {
                match tokio::time::timeout(CHECK_TIMEOUT, layout.reachable()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                }
            }
        }));
        let (meta, roots) = tokio::join!(meta, roots);
        let lost = matches!(meta, Ok(true));
        self.deps[0].record(meta.map(|_| ()));
        for (dep, outcome) in self.deps[1..].iter().zip(roots) {
            dep.record(outcome);
        }
        if lost {
            self.rebuild(registry);
        }
        if self.deps.iter().all(Dependency::is_up) && !self.started.swap(true, Ordering::Relaxed) {
            tracing::debug!("every dependency reached: started");
        }
    }

    /// Rebuilds the metadata store's list of repositories from storage in
    /// the background (one rebuild at a time), as at a start on a new
    /// store: each repository is derived again when first read.
    fn rebuild(self: &Arc<Self>, registry: &Arc<Registry>) {
        if self.rebuilding.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            "the metadata store lost its data: rebuilding it from storage while serving"
        );
        let (health, registry) = (self.clone(), registry.clone());
        tokio::spawn(async move {
            // The store is marked again already, so this loss is not seen
            // twice: the rebuild is tried until it succeeds.
            loop {
                let done = async {
                    let n = registry.reparse().await?;
                    registry
                        .set_meta_setting("roots", &health.roots_signature)
                        .await?;
                    Ok::<_, crate::registry::RegistryError>(n)
                };
                match done.await {
                    Ok(n) => {
                        tracing::info!(repositories = n, "metadata store rebuilt from storage");
                        break;
                    }
                    Err(e) => tracing::warn!(
                        "rebuilding the metadata store failed (tried again in {REBUILD_RETRY:?}): {e}"
                    ),
                }
                tokio::time::sleep(REBUILD_RETRY).await;
            }
            health.rebuilding.store(false, Ordering::SeqCst);
        });
    }
}

/// Checks the dependencies once, then every [`CHECK_EVERY`] in a task
/// until it is aborted: a server checks before it serves, so its probes
/// answer from a check from the first request on.
pub async fn start(health: Arc<Health>, registry: Arc<Registry>) -> tokio::task::JoinHandle<()> {
    health.check(&registry).await;
    tokio::spawn(async move {
        let mut every =
            tokio::time::interval_at(tokio::time::Instant::now() + CHECK_EVERY, CHECK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            health.check(&registry).await;
        }
    })
}

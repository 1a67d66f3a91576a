//! Starting and stopping the server. The caller binds the socket and owns
//! the shutdown signal, so tests start a real server on `127.0.0.1:0` in
//! one call.

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api::{AppState, app};
use crate::config::{Config, StorageConfig};
use crate::registry::Registry;
use crate::storage::{FsStore, StorageError};

/// Builds the shared state from a config: opens storage.
pub async fn build_state(config: &Config) -> Result<AppState, StorageError> {
    let store = FsStore::open_with_dedupe(
        config.storage.root_directory.clone(),
        config.storage.commit,
        config.storage.dedupe,
    )
    .await?;
    Ok(AppState {
        registry: Arc::new(Registry::new(Arc::new(store))),
    })
}

/// Serves the API on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish. Every connection gets `TCP_NODELAY`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts background garbage collection (`storage.gc`): every
/// `gcInterval`, each repository in turn, removing what is older than
/// `gcDelay`. Returns `None` when GC is off.
pub fn spawn_gc(state: &AppState, storage: &StorageConfig) -> Option<tokio::task::JoinHandle<()>> {
    if !storage.gc {
        return None;
    }
    let registry = state.registry.clone();
    let (delay, interval) = (storage.gc_delay.0, storage.gc_interval.0);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match registry.gc_all(delay).await {
                Ok(r) => {
                    tracing::info!(target: "berth::gc", manifests = r.manifests, blobs = r.blobs, uploads = r.uploads, "gc run finished")
                }
                Err(e) => tracing::warn!(target: "berth::gc", "gc run failed: {e}"),
            }
        }
    }))
}

/// Brings existing blobs in line with `storage.dedupe` in the background
/// (a no-op once the root is in line).
pub fn spawn_dedupe_reconcile(state: &AppState) -> tokio::task::JoinHandle<()> {
    let registry = state.registry.clone();
    tokio::spawn(async move {
        if let Err(e) = registry.store().reconcile_dedupe().await {
            tracing::warn!(target: "berth::dedupe", "reconciling storage with storage.dedupe failed: {e}");
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

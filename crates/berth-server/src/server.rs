//! Starting and stopping the server. The caller binds the socket and owns
//! the shutdown signal, so tests start a real server on `127.0.0.1:0` in
//! one call.

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api::{AppState, app};
use crate::config::Config;
use crate::registry::Registry;
use crate::storage::{FsStore, StorageError};

/// Builds the shared state from a config: opens storage.
pub async fn build_state(config: &Config) -> Result<AppState, StorageError> {
    let store = FsStore::open(config.storage.root_directory.clone(), config.storage.commit).await?;
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

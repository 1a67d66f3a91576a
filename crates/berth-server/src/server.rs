//! Starting and stopping the server. The caller binds the socket and owns
//! the shutdown signal, so tests start a real server on `127.0.0.1:0` in
//! one call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api::{AppState, app};
use crate::auth::access::AccessControl;
use crate::config::{Config, StorageConfig};
use crate::meta::{MetaStore, RedbMetaStore, SharedLock};
use crate::registry::Registry;
use crate::scrub;
use crate::storage::{BlobStore, FsStore, RepoLocks, Roots, StorageError};

/// The metadata store's file, under the main root.
pub const META_FILE: &str = ".berth/meta.redb";
/// The metadata store's setting saying the last run flushed it at exit.
const CLEAN: &str = "clean-shutdown";

/// Builds the shared state from a config: opens every storage root and
/// the metadata store.
pub async fn build_state(config: &Config) -> Result<AppState, StorageError> {
    build_state_with(config, false).await
}

/// [`build_state`], and with `force_reparse` the metadata store is rebuilt
/// from storage (as it is anyway when its file is new).
pub async fn build_state_with(
    config: &Config,
    force_reparse: bool,
) -> Result<AppState, StorageError> {
    let opened = open_meta(config)?;
    let mut main = None;
    let mut sub = Vec::new();
    for r in config.storage.roots() {
        let store = open_root(config, &r, opened.shared.clone(), false).await?;
        match r.prefix {
            None => main = Some(store),
            Some(p) => sub.push((p, store)),
        }
    }
    let main = main.ok_or_else(|| StorageError::Conflict("no main storage root".into()))?;
    let meta_path = opened.path.clone();
    let meta = opened.store;
    // The store was derived for a set of roots; another set (a sub-path
    // added, a root moved) needs it derived again.
    let roots_signature = config
        .storage
        .roots()
        .iter()
        .map(|r| {
            let at = match &r.storage_driver {
                Some(d) => format!("s3://{}/{}", d.bucket, d.rootdirectory.trim_matches('/')),
                None => r.root_directory.display().to_string(),
            };
            format!("{}={at}", r.prefix.as_deref().unwrap_or(""))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let setting = |name: &str| {
        meta.setting(name).map_err(|e| StorageError::Corrupt {
            path: meta_path.clone(),
            message: e.0,
        })
    };
    // Derived for other roots, never fully derived (a rebuild cut short),
    // or not shut down cleanly (non-durable commits lost, so a fingerprint
    // could match by chance): derive again. A shared store is as durable
    // as its server, and another instance may be running: it is derived
    // again only when it is new or for other roots.
    let created = opened.created || setting("roots")?.is_none();
    let roots_changed = setting("roots")?.as_deref() != Some(roots_signature.as_str());
    let unclean = opened.shared.is_none() && setting(CLEAN)?.as_deref() != Some("1");
    let registry = Registry::new(Roots::new(main, sub), meta);
    if created || force_reparse || roots_changed || unclean {
        let n = registry.reparse().await.map_err(|e| match e {
            // Listing storage failed: say so as storage's own error.
            crate::registry::RegistryError::Storage(s) => s,
            other => StorageError::Corrupt {
                path: meta_path.clone(),
                message: other.to_string(),
            },
        })?;
        tracing::info!(repositories = n, "metadata store rebuilt from storage");
    }
    let mut settings = vec![("roots", roots_signature.as_str())];
    if opened.shared.is_none() {
        settings.push((CLEAN, "0"));
    }
    for (name, value) in settings {
        registry
            .set_meta_setting(name, value)
            .map_err(|e| StorageError::Corrupt {
                path: meta_path.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(AppState {
        registry: Arc::new(registry),
        auth: None,
        allow_origin: config.http.allow_origin.clone(),
        audit: None,
        #[cfg(feature = "metrics")]
        metrics: None,
        #[cfg(feature = "ratelimit")]
        ratelimit: config
            .http
            .ratelimit
            .as_ref()
            .map(crate::ext::ratelimit::RateLimits::new),
        access: Arc::new(std::sync::RwLock::new(
            config
                .http
                .access_control
                .clone()
                .map(|a| Arc::new(AccessControl::new(a))),
        )),
    })
}

/// The metadata store a config asks for, with the shared lock that comes
/// with a networked one.
struct OpenedMeta {
    store: Arc<dyn MetaStore>,
    /// The store was created just now (so never derived).
    created: bool,
    /// Where it is, for errors.
    path: std::path::PathBuf,
    shared: Option<Arc<dyn SharedLock>>,
}

fn open_meta(config: &Config) -> Result<OpenedMeta, StorageError> {
    #[cfg(feature = "redis")]
    if let Some(c) = &config.storage.cache_driver {
        let opts = crate::meta::RedisOptions {
            url: c.url.clone(),
            addr: c.addr.clone(),
            key_prefix: c.keyprefix.clone(),
            db: c.db,
            username: c.username.clone(),
            password: c.password.clone(),
        };
        let location = "the metadata store";
        let store =
            crate::meta::RedisMetaStore::open(&opts).map_err(|e| StorageError::Backend {
                location: location.into(),
                message: e.0,
            })?;
        let locks: Arc<dyn SharedLock> = Arc::new(store.locks());
        return Ok(OpenedMeta {
            store: Arc::new(crate::meta::Offloaded(store)),
            created: false,
            path: location.into(),
            shared: Some(locks),
        });
    }
    let path = config.storage.root_directory.join(META_FILE);
    let (store, created) = RedbMetaStore::open(&path).map_err(|e| StorageError::Corrupt {
        path: path.clone(),
        message: e.0,
    })?;
    Ok(OpenedMeta {
        store: Arc::new(store),
        created,
        path,
        shared: None,
    })
}

/// Opens one storage root: S3 when it has a `storageDriver`, else its
/// directory. `offline` (tools such as `berth scrub`) leaves a local root
/// untouched: no dedupe index is opened or created.
pub async fn open_root(
    config: &Config,
    r: &crate::config::RootSettings,
    shared: Option<Arc<dyn SharedLock>>,
    offline: bool,
) -> Result<Arc<dyn BlobStore>, StorageError> {
    let locks = match shared {
        Some(s) => RepoLocks::with_shared(s),
        None => RepoLocks::default(),
    };
    #[cfg(feature = "s3")]
    if let Some(d) = &r.storage_driver {
        let opts = crate::storage::S3Options {
            root_directory: d.rootdirectory.clone(),
            region: d.region.clone(),
            region_endpoint: d.regionendpoint.clone(),
            bucket: d.bucket.clone(),
            force_path_style: d.forcepathstyle,
            secure: d.secure,
            skip_verify: d.skipverify,
            access_key: d.accesskey.clone(),
            secret_key: d.secretkey.clone(),
            redirect_blob_url: config.storage.redirect_blob_url,
            dedupe: r.dedupe,
        };
        return Ok(Arc::new(crate::storage::S3Store::open(&opts, locks)?));
    }
    let _ = config;
    if offline {
        return Ok(Arc::new(
            FsStore::open(r.root_directory.clone(), false).await?,
        ));
    }
    let mut fs = FsStore::open_with_dedupe(r.root_directory.clone(), r.commit, r.dedupe).await?;
    fs.set_locks(locks);
    Ok(Arc::new(fs))
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
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves the API over HTTPS on `listener` until `shutdown` resolves, then
/// lets in-flight requests finish. `tls` is swapped in place when the
/// certificate files change (see [`crate::tls::spawn_reload`]).
pub async fn run_tls(
    listener: TcpListener,
    state: AppState,
    tls: axum_server::tls_rustls::RustlsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    axum_server::from_tcp(listener.into_std()?)?
        .acceptor(acceptor)
        .handle(handle)
        .serve(app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}

/// Starts background garbage collection (`gc`) for every storage root
/// with it on: every `gcInterval`, each repository of the root in turn,
/// removing what is older than `gcDelay`.
pub fn spawn_gc(state: &AppState, storage: &StorageConfig) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for settings in storage.roots().into_iter().filter(|r| r.gc) {
        let registry = state.registry.clone();
        tasks.push(tokio::spawn(async move {
            let (delay, interval) = (settings.gc_delay, settings.gc_interval);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(root) = registry.roots().all().iter().find(|r| r.prefix == settings.prefix) else {
                    return;
                };
                let root_dir = settings.root_directory.display();
                match registry.gc_root_with(root, delay, settings.retention.as_ref()).await {
                    Ok(r) => {
                        tracing::info!(target: "berth::gc", root = %root_dir, tags = r.tags, manifests = r.manifests, blobs = r.blobs, uploads = r.uploads, "gc run finished");
                        registry.emit(crate::registry::events::RegistryEvent::GcFinished { root: root_dir.to_string(), report: r });
                    }
                    Err(e) => tracing::warn!(target: "berth::gc", root = %root_dir, "gc run failed: {e}"),
                }
            }
        }));
    }
    tasks
}

/// Brings existing blobs of every root in line with its `dedupe` setting in
/// the background (a no-op once a root is in line).
pub fn spawn_dedupe_reconcile(state: &AppState) -> tokio::task::JoinHandle<()> {
    let registry = state.registry.clone();
    tokio::spawn(async move {
        for root in registry.roots().all() {
            let Some(fs) = root.store.as_fs() else {
                continue;
            };
            if let Err(e) = fs.reconcile_dedupe().await {
                tracing::warn!(target: "berth::dedupe", root = %fs.root().display(), "reconciling storage with dedupe failed: {e}");
            }
        }
    })
}

/// Starts the background scrub (`extensions.scrub`): a
/// [`scrub::scrub_pass`] every `interval`.
pub fn spawn_scrub(state: &AppState, interval: Duration) -> tokio::task::JoinHandle<()> {
    let registry = state.registry.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let summary = scrub::scrub_pass(registry.roots()).await;
            registry.emit(crate::registry::events::RegistryEvent::ScrubFinished {
                checked: summary.ok + summary.affected,
                affected: summary.affected,
            });
        }
    })
}

/// Re-reads the config file when it changes and puts its
/// `http.accessControl` in force; an invalid edit is logged and the running
/// rules kept. (Other settings need a restart.)
pub fn spawn_config_reload(
    path: std::path::PathBuf,
    state: &AppState,
) -> tokio::task::JoinHandle<()> {
    // The config file, and the bearer signer's certificate (a key rotated
    // in place, with no config edit), asked again after each reload.
    let (watched, seen) = (path.clone(), state.clone());
    let files = crate::watch::Files {
        what: "config",
        paths: Box::new(move || {
            let cert = seen.auth.as_ref().and_then(|a| a.bearer_cert());
            std::iter::once(watched.clone()).chain(cert).collect()
        }),
        rewatch: None,
    };
    let state = state.clone();
    crate::watch::spawn(files, move || match Config::load(&path) {
        Ok(c) => {
            if let Some(auth) = &state.auth
                && let Err(e) = auth.reload(&c.http)
            {
                tracing::warn!(path = %path.display(), "config changed but is invalid, keeping the running rules: {e}");
                return;
            }
            state.set_access_control(c.http.access_control.map(AccessControl::new));
            tracing::info!(path = %path.display(), "config changed: access control, htpasswd and LDAP settings reloaded");
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "config changed but is invalid, keeping the running rules: {e}")
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

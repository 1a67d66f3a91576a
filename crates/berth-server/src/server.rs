//! Starting and stopping the server. [`Server::build`] makes the whole
//! server from a [`Config`] (storage roots, metadata store, auth, audit,
//! metrics, events, background tasks, TLS); the caller binds the socket
//! and owns the shutdown signal ([`Server::run`]), so tests start a real
//! server on `127.0.0.1:0` in one call. [`build_state`] and [`run`] are
//! the bare core (storage and the API, no auth or extensions) that most
//! tests use.

mod app;
mod conn;
mod error;

pub use app::{ServeOptions, Server, bind, load_config, scrub_offline};
pub use conn::{ConnLimits, OpenFiles, default_max_connections, raise_open_files_limit};
pub use error::ServeError;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::{AppState, app};
use crate::auth::access::AccessControl;
use crate::config::{Config, RootSettings, StorageConfig};
use crate::meta::{MetaError, MetaStore, RedbMetaStore, SharedLock};
use crate::registry::{Policies, Registry};
use crate::scrub;
use crate::storage::{FsStore, RepoLocks, Roots, StorageError, Store};

/// The metadata store's file, under the main root.
pub const META_FILE: &str = ".berth/meta.redb";
/// The metadata store's setting saying the last run flushed it at exit.
const CLEAN: &str = "clean-shutdown";

/// Builds the shared state from a config: opens every storage root and
/// the metadata store. Authentication, the audit log and the extensions
/// are left off ([`Server::build`] puts them in).
pub async fn build_state(config: &Config) -> Result<AppState, ServeError> {
    build_state_with(config, false).await
}

/// [`build_state`], and with `force_reparse` the metadata store is rebuilt
/// from storage (as it is anyway when its file is new).
pub async fn build_state_with(
    config: &Config,
    force_reparse: bool,
) -> Result<AppState, ServeError> {
    let meta_key = meta_key(config);
    let meta_error = |source| ServeError::Meta {
        key: meta_key.into(),
        source,
    };
    let opened = open_meta(config).await.map_err(meta_error)?;
    let roots = open_roots(config, opened.shared.clone(), false).await?;
    let meta = opened.store;
    // The store was derived for a set of roots; another set (a sub-path
    // added, a root moved) needs it derived again.
    let roots_signature = config
        .storage
        .roots()
        .iter()
        .map(|r| {
            let at = match &r.storage_driver {
                Some(d) => d.location(),
                None => r.root_directory.display().to_string(),
            };
            format!("{}={at}", r.prefix.as_deref().unwrap_or(""))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let setting = async |name: &str| meta.setting(name).await.map_err(meta_error);
    // Derived for other roots, never fully derived (a rebuild cut short),
    // or not shut down cleanly (non-durable commits lost, so a version
    // could match by chance): derive again. A shared store is as durable
    // as its server, and another instance may be running: it is derived
    // again only when it is new or for other roots.
    let created = opened.created || setting("roots").await?.is_none();
    let roots_changed = setting("roots").await?.as_deref() != Some(roots_signature.as_str());
    let unclean = opened.shared.is_none() && setting(CLEAN).await?.as_deref() != Some("1");
    let mut registry = Registry::new(roots, meta);
    registry.set_upload_limits(
        config.http.max_uploads_per_repository,
        config.http.max_uploads_per_client,
    );
    registry.set_background_workers(config.background_workers());
    registry.set_policies(
        Policies::from_config(&config.storage)?.with_lint(config.extensions.lint.as_ref()),
    );
    if created || force_reparse || roots_changed || unclean {
        let n = registry.reparse().await.map_err(|e| match e {
            // Listing a root failed: named by that root's key.
            crate::registry::RegistryError::Root { prefix, source } => {
                match config.storage.roots().iter().find(|r| r.prefix == prefix) {
                    Some(r) => ServeError::root(r, source),
                    None => ServeError::Storage {
                        key: "storage".into(),
                        source,
                    },
                }
            }
            // A repository's check (its lock, its layout) failed.
            crate::registry::RegistryError::Storage(source) => ServeError::Storage {
                key: "storage.rootDirectory".into(),
                source,
            },
            crate::registry::RegistryError::Meta(source) => meta_error(source),
            other => meta_error(MetaError::Failed {
                location: "the metadata store".into(),
                message: other.to_string(),
            }),
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
            .await
            .map_err(|e| match e {
                crate::registry::RegistryError::Meta(source) => meta_error(source),
                other => meta_error(MetaError::Failed {
                    location: "the metadata store".into(),
                    message: other.to_string(),
                }),
            })?;
    }
    let registry = Arc::new(registry);
    let health = Arc::new(crate::health::Health::new(&registry, roots_signature));
    Ok(AppState {
        health,
        pull_gate: None,
        mirror: None,
        #[cfg(feature = "sync")]
        sync: None,
        #[cfg(feature = "cluster")]
        cluster: cluster(config)?,
        registry,
        auth: None,
        allow_origin: config.http.allow_origin.clone(),
        external_url: config.http.external_url.clone(),
        read_only: config.http.read_only,
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
        #[cfg(feature = "search")]
        search: None,
        #[cfg(feature = "trust")]
        trust: None,
    })
}

/// The key the metadata store is configured by: the cache driver's (Redis
/// or DynamoDB), or the main root's (the redb file lives there).
fn meta_key(config: &Config) -> &'static str {
    if (cfg!(feature = "redis") || cfg!(feature = "dynamodb"))
        && config.storage.cache_driver.is_some()
    {
        "storage.cacheDriver"
    } else {
        "storage.rootDirectory"
    }
}

/// Opens every storage root of a config, the same way for the server and
/// for offline tools (`offline`: see [`open_root`]); an error names the
/// root's key.
pub async fn open_roots(
    config: &Config,
    shared: Option<Arc<dyn SharedLock>>,
    offline: bool,
) -> Result<Roots, ServeError> {
    let mut main = None;
    let mut sub = Vec::new();
    for r in config.storage.roots() {
        let store = open_root(config, &r, shared.clone(), offline)
            .await
            .map_err(|e| ServeError::root(&r, e))?;
        match r.prefix {
            None => main = Some(store),
            Some(p) => sub.push((p, store)),
        }
    }
    let main = main.ok_or_else(|| ServeError::Storage {
        key: "storage.rootDirectory".into(),
        source: StorageError::InvalidInput("no main storage root".into()),
    })?;
    Ok(Roots::new(main, sub))
}

/// zot's `cluster`, when it routes: members that share storage need no
/// owners (each serves everything), nor does a cluster of one.
#[cfg(feature = "cluster")]
fn cluster(config: &Config) -> Result<Option<Arc<crate::ext::cluster::Cluster>>, ServeError> {
    let Some(c) = config.cluster.as_ref().filter(|c| c.members.len() > 1) else {
        return Ok(None);
    };
    if config.shares_storage() {
        tracing::info!(
            members = c.members.len(),
            "cluster: the members share storage and metadata, so each serves every repository"
        );
        return Ok(None);
    }
    let cluster = crate::ext::cluster::Cluster::new(c, &config.http)?;
    tracing::info!(
        member = %c.members[cluster.local()],
        "cluster: each repository is served by the member its name hashes to"
    );
    Ok(Some(Arc::new(cluster)))
}

/// The metadata store a config asks for, with the shared lock that comes
/// with a networked one.
struct OpenedMeta {
    store: Arc<dyn MetaStore>,
    /// The store was created just now (so never derived).
    created: bool,
    shared: Option<Arc<dyn SharedLock>>,
}

async fn open_meta(config: &Config) -> Result<OpenedMeta, MetaError> {
    #[cfg(feature = "dynamodb")]
    if let Some(c) = config
        .storage
        .cache_driver
        .as_ref()
        .filter(|c| c.name == "dynamodb")
    {
        let region = c.region.clone().unwrap_or_else(|| "us-east-1".into());
        let mut opts =
            crate::meta::DynamoOptions::new(c.endpoint.clone(), region, c.dynamo_tables());
        opts.command_timeout = c.command_timeout.0;
        let store = crate::meta::DynamoMetaStore::open(&opts).await?;
        let locks: Arc<dyn SharedLock> = Arc::new(store.locks());
        return Ok(OpenedMeta {
            store: Arc::new(store),
            created: false,
            shared: Some(locks),
        });
    }
    #[cfg(feature = "redis")]
    if let Some(c) = config
        .storage
        .cache_driver
        .as_ref()
        .filter(|c| c.name == "redis")
    {
        let opts = redis_options(c, "storage.cacheDriver")?;
        let store = crate::meta::RedisMetaStore::open(&opts).await?;
        let locks: Arc<dyn SharedLock> = Arc::new(store.locks());
        return Ok(OpenedMeta {
            store: Arc::new(store),
            created: false,
            shared: Some(locks),
        });
    }
    let path = config.storage.root_directory.join(META_FILE);
    let (store, created) = RedbMetaStore::open(&path)?;
    Ok(OpenedMeta {
        store: Arc::new(store),
        created,
        shared: None,
    })
}

/// Opens one storage root: S3 when it has a `storageDriver`, else its
/// directory. `offline` (tools such as `berth scrub`) leaves a local root
/// untouched: no dedupe index is opened or created.
pub async fn open_root(
    config: &Config,
    r: &RootSettings,
    shared: Option<Arc<dyn SharedLock>>,
    offline: bool,
) -> Result<Store, StorageError> {
    let locks = match shared {
        Some(s) => RepoLocks::with_shared(s),
        None => RepoLocks::default(),
    };
    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    if let Some(d) = &r.storage_driver {
        return Ok(open_bucket(config, r, d, locks)?.into_store());
    }
    let _ = config;
    if offline {
        return Ok(Store::local(
            FsStore::open(r.root_directory.clone(), false).await?,
        ));
    }
    let mut fs = FsStore::open_with_dedupe(r.root_directory.clone(), r.commit, r.dedupe).await?;
    fs.set_locks(locks);
    Ok(Store::local(fs))
}

/// The store of a root whose data is in a bucket, from its
/// `storageDriver` (checked at load: the driver's feature is built in).
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn open_bucket(
    config: &Config,
    r: &RootSettings,
    d: &crate::config::StorageDriverConfig,
    locks: RepoLocks,
) -> Result<crate::storage::BucketStore, StorageError> {
    use crate::storage::BucketStore;
    let settings = crate::storage::BucketSettings {
        root_directory: d.rootdirectory.clone(),
        redirect_blob_url: config.storage.redirect_blob_url,
        dedupe: r.dedupe,
    };
    match d.name.as_str() {
        #[cfg(feature = "gcs")]
        "gcs" => {
            let opts = crate::storage::GcsOptions {
                settings,
                bucket: d.bucket.clone(),
                key_file: d.keyfile.clone().or_else(|| d.credentials_file.clone()),
                key: d.gcs_key(),
            };
            BucketStore::open_gcs(&opts, locks)
        }
        #[cfg(feature = "azure")]
        "azure" => {
            use crate::config::AzureCredentialsConfig as Given;
            use crate::storage::AzureCredentials;
            let credentials = match d.azure_credentials() {
                Given::SharedKey(key) => AzureCredentials::SharedKey(key),
                Given::ClientSecret {
                    client_id,
                    tenant_id,
                    secret,
                } => AzureCredentials::ClientSecret {
                    client_id,
                    tenant_id,
                    secret,
                },
                Given::Default => AzureCredentials::Default,
            };
            let opts = crate::storage::AzureOptions {
                settings,
                account_name: d.accountname.clone().unwrap_or_default(),
                container: d.container.clone().unwrap_or_default(),
                credentials,
                realm: d.realm.clone(),
                service_url: d.serviceurl.clone(),
            };
            BucketStore::open_azure(&opts, locks)
        }
        #[cfg(feature = "s3")]
        "s3" => {
            let opts = crate::storage::S3Options {
                root_directory: settings.root_directory,
                region: d.region.clone(),
                region_endpoint: d.regionendpoint.clone(),
                bucket: d.bucket.clone(),
                force_path_style: d.forcepathstyle.unwrap_or(false),
                secure: d.secure.unwrap_or(true),
                skip_verify: d.skipverify.unwrap_or(false),
                access_key: d.accesskey.clone(),
                secret_key: d.secretkey.clone(),
                redirect_blob_url: settings.redirect_blob_url,
                dedupe: settings.dedupe,
            };
            BucketStore::open_s3(&opts, locks)
        }
        other => Err(StorageError::InvalidInput(format!(
            "storage driver {other:?} is not built in"
        ))),
    }
}

/// Serves the API over plain HTTP on `listener` until `shutdown`
/// resolves, then lets in-flight requests finish, with the default
/// connection limits (see [`serve`]).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, state, None, ConnLimits::default(), shutdown).await
}

/// Serves the API on `listener`, over HTTPS with `tls` (swapped in place
/// when the certificate files change, see [`crate::tls::spawn_reload`]),
/// until `shutdown` resolves, then lets in-flight requests finish. Every
/// connection gets `TCP_NODELAY`, and `limits` (see `server::conn`): past
/// `max_connections` a new connection is answered 503 (plain HTTP) or
/// closed (HTTPS) at once.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _checks = HealthChecks::start(&state).await;
    let router = app(state);
    match tls {
        None => {
            let acceptor = axum_server::accept::DefaultAcceptor::new();
            conn::serve(
                listener,
                acceptor,
                router,
                limits,
                Some(conn::BUSY),
                shutdown,
            )
            .await
        }
        Some(tls) => {
            let acceptor = crate::tls::VersionedTls(
                axum_server::tls_rustls::RustlsAcceptor::new(tls)
                    .handshake_timeout(limits.handshake_timeout()),
            );
            conn::serve(listener, acceptor, router, limits, None, shutdown).await
        }
    }
}

/// The background health checks of a running server, stopped when
/// dropped (when `run` returns).
struct HealthChecks(tokio::task::JoinHandle<()>);

impl HealthChecks {
    /// Checks once, then starts the task.
    async fn start(state: &AppState) -> Self {
        Self(crate::health::start(state.health.clone(), state.registry.clone()).await)
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts background garbage collection (`gc`) for every storage root
/// with it on: every `gcInterval` (a run due outside the root's
/// `gcTimeWindow` waits for it to open), each repository of the root in
/// turn, removing what is older than `gcDelay`.
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
                let root_dir = settings.root_directory.display();
                if let Some(window) = settings.gc_time_window {
                    let wait = until_window_opens(window);
                    if !wait.is_zero() {
                        tracing::debug!(target: "berth::gc", root = %root_dir, "outside gcTimeWindow: the next run waits {}s for it", wait.as_secs());
                        tokio::time::sleep(wait).await;
                    }
                }
                let Some(root) = registry.roots().all().iter().find(|r| r.prefix == settings.prefix) else {
                    return;
                };
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

/// How long until `window` opens in the local time zone (zero inside it).
fn until_window_opens(window: crate::config::TimeWindow) -> Duration {
    use chrono::Timelike;
    let now = chrono::Local::now();
    let minute = now.hour() * 60 + now.minute();
    match window.minutes_until_open(minute) {
        0 => Duration::ZERO,
        m => Duration::from_secs(u64::from(m) * 60 - u64::from(now.second())),
    }
}

/// Brings existing blobs of every root in line with its `dedupe` setting in
/// the background (a no-op once a root is in line).
pub fn spawn_dedupe_reconcile(state: &AppState) -> tokio::task::JoinHandle<()> {
    let registry = state.registry.clone();
    tokio::spawn(async move {
        for root in registry.roots().all() {
            let Some(fs) = &root.store.local else {
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
            let slot = registry.background_slot().await;
            let summary = scrub::scrub_pass(registry.roots()).await;
            drop(slot);
            registry.emit(crate::registry::events::RegistryEvent::ScrubFinished {
                checked: summary.ok + summary.affected,
                affected: summary.affected,
            });
        }
    })
}

/// Re-reads the config file when it changes, or at SIGHUP, and puts its
/// `http.accessControl`, its quotas, immutable tags, linter and sync
/// registries in force; an invalid edit is logged and the running
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
            for note in &c.notes {
                tracing::warn!(path = %path.display(), "{note}");
            }
            if let Some(auth) = &state.auth
                && let Err(e) = auth.reload(&c.http)
            {
                tracing::warn!(path = %path.display(), "config changed but is invalid, keeping the running rules: {e}");
                return;
            }
            let policies = match Policies::from_config(&c.storage) {
                Ok(p) => p.with_lint(c.extensions.lint.as_ref()),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "config changed but is invalid, keeping the running rules: {e}");
                    return;
                }
            };
            #[cfg(feature = "sync")]
            reload_sync(&state, c.extensions.sync.as_ref());
            state.set_access_control(c.http.access_control.map(AccessControl::new));
            state.registry.set_policies(policies);
            tracing::info!(path = %path.display(), "config changed: access control, htpasswd, LDAP, quotas and immutable tags reloaded");
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "config changed but is invalid, keeping the running rules: {e}")
        }
    })
}

/// Puts an edited `extensions.sync` in force (registries, rules,
/// credentials); turning sync on or off needs a restart.
#[cfg(feature = "sync")]
fn reload_sync(state: &AppState, config: Option<&crate::config::SyncConfig>) {
    match (&state.sync, config) {
        (Some(sync), Some(c)) => match sync.reload(c) {
            Ok(()) => tracing::info!("config changed: sync registries reloaded"),
            Err(e) => tracing::warn!(
                "config changed but its sync section cannot be used, keeping the running one: {e}"
            ),
        },
        (None, Some(c)) if c.enable => {
            tracing::warn!(
                "config changed: extensions.sync was added; it starts at the next restart"
            )
        }
        (Some(_), None) => {
            tracing::warn!(
                "config changed: extensions.sync was removed; sync stops at the next restart"
            )
        }
        _ => {}
    }
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

/// The Redis client settings of a `redis` driver section at `at` (the
/// cache driver, or the session driver).
#[cfg(feature = "redis")]
pub(crate) fn redis_options(
    c: &crate::config::CacheDriverConfig,
    at: &str,
) -> Result<crate::meta::RedisOptions, MetaError> {
    let client = c
        .redis_client()
        .map_err(|e| MetaError::InvalidConfig(e.to_string()))?;
    if c.root_dir.is_some() {
        tracing::warn!(
            "{at}.rootDir is zot's embedded-cache directory, meaningless with redis: ignored"
        );
    }
    let defaults = crate::meta::RedisOptions::default();
    Ok(crate::meta::RedisOptions {
        url: client.url,
        addr: c.addr.clone(),
        key_prefix: c.keyprefix.clone(),
        db: c.db,
        username: c.username.clone(),
        password: c.password.clone(),
        command_timeout: client.command_timeout,
        connect_timeout: client.connect_timeout.unwrap_or(defaults.connect_timeout),
        reconnect_attempts: client
            .reconnect_attempts
            .unwrap_or(defaults.reconnect_attempts),
        reconnect_pause: client.min_backoff.unwrap_or(defaults.reconnect_pause),
        reconnect_max_pause: client.max_backoff,
        resp3: client.resp3,
        identity: client.identity,
        connections: client.connections,
    })
}

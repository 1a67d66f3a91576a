//! [`Server`]: the whole server built from a [`Config`], and the offline
//! scrub, which opens storage through the same code.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{ServeError, build_state_with, open_roots};
use crate::api::{AppState, app};
use crate::config::{Config, ConfigError, TlsConfig};
use crate::registry::Registry;
use crate::scrub::ScrubRow;

/// What a config does not say about how to serve it.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Rebuild the metadata store from storage before serving.
    pub force_reparse: bool,
    /// The config file, watched so that access control, htpasswd, LDAP and
    /// bearer settings are reloaded when it changes (`None`: not watched).
    pub config_path: Option<PathBuf>,
}

/// Background tasks, aborted when dropped: a server that is dropped, or
/// whose build fails half-way, leaves nothing running.
#[derive(Default)]
struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    fn push(&mut self, task: JoinHandle<()>) {
        self.0.push(task);
    }
}

impl Extend<JoinHandle<()>> for Tasks {
    fn extend<I: IntoIterator<Item = JoinHandle<()>>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A server built from a config, ready to serve on a listener.
pub struct Server {
    state: AppState,
    /// `http.tls`: its settings (for the reload task) and the rustls
    /// configuration they make.
    tls: Option<(TlsConfig, Arc<rustls::ServerConfig>)>,
    /// The main root, for the start-up log line.
    root: PathBuf,
    /// `http.readTimeout`, `writeTimeout`, `idleTimeout`, `maxConnections`.
    limits: super::ConnLimits,
    tasks: Tasks,
}

/// Reads a config file and checks the files it names that `verify` does
/// not (TLS), as `serve` does before it opens anything.
pub fn load_config(path: &Path) -> Result<Config, ServeError> {
    let config = Config::load(path)?;
    if let Some(tls) = &config.http.tls {
        tls_config(tls)?;
    }
    Ok(config)
}

fn tls_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    Ok(crate::tls::server_config(tls)?)
}

impl Server {
    /// Builds the whole server from `config`: authentication (and the
    /// htpasswd reload), storage roots and the metadata store, the audit
    /// log, events and metrics, the background tasks (GC, dedupe
    /// reconcile, scrub, config reload) and TLS. Background work starts
    /// here, so a caller binds its port first.
    pub async fn build(config: &Config, options: ServeOptions) -> Result<Self, ServeError> {
        let auth = crate::auth::Auth::from_config(&config.http, &config.storage.root_directory)?;
        let mut state = build_state_with(config, options.force_reparse).await?;
        let mut tasks = Tasks::default();
        tasks.extend(
            auth.as_ref()
                .and_then(|a| a.htpasswd())
                .map(|h| h.spawn_reload()),
        );
        if let (Some(a), Some(cfg)) = (&auth, &config.http.auth)
            && a.wants_sessions()
        {
            let sessions = crate::auth::session::open(
                cfg,
                &config.storage.root_directory,
                config.storage.storage_driver.is_none(),
                config.http.tls.is_some(),
            )
            .await?;
            let sessions = std::sync::Arc::new(sessions);
            tasks.push(sessions.spawn_purge());
            a.attach_sessions(sessions);
        }
        state.auth = auth;
        state.audit = crate::api::audit::from_config(&config.log)?;
        #[cfg(feature = "events")]
        if let Some(e) = &config.extensions.events {
            tasks.extend(crate::ext::events::spawn(e, &state.registry)?);
        }
        #[cfg(feature = "metrics")]
        if let Some(path) = config.extensions.metrics_path() {
            let m = crate::ext::metrics::Metrics::new(&path);
            tasks.extend(crate::ext::metrics::spawn(&m, &state.registry));
            state.metrics = Some(m);
        }
        #[cfg(feature = "search")]
        if let Some(search) =
            crate::ext::search::Search::from_config(config, state.registry.clone())
        {
            let search = std::sync::Arc::new(search);
            let index = search.clone();
            tasks.push(tokio::spawn(async move { index.keep_index_fresh().await }));
            #[cfg(feature = "scan")]
            if let Some(cve) = config.extensions.cve() {
                let scanning = crate::ext::scan::Scanning::open(
                    cve,
                    state.registry.clone(),
                    &config.storage.root_directory,
                )
                .map_err(|e| ServeError::Storage {
                    key: "extensions.search.cve".into(),
                    source: crate::storage::StorageError::InvalidInput(e.to_string()),
                })?;
                search.set_cve_source(scanning.cve_source());
                tasks.extend(scanning.spawn());
            }
            state.search = Some(search);
        }
        #[cfg(feature = "trust")]
        if let Some(t) = config.extensions.trust_enabled() {
            let opened = crate::ext::trust::Trust::open(t, state.registry.clone())
                .await
                .map_err(|source| ServeError::Storage {
                    key: "extensions.trust".into(),
                    source,
                })?;
            if let Some(trust) = opened {
                if !t.require_signed.is_empty() && config.http.auth.is_none() {
                    tracing::warn!(
                        "extensions.trust.requireSigned without http.auth: anyone may upload a key and sign (and push); turn on authentication and access control"
                    );
                }
                tasks.extend(trust.spawn());
                state.pull_gate = trust.gate();
                state.trust = Some(trust);
            }
        }
        #[cfg(feature = "sync")]
        if let Some(sync) = config.extensions.sync.as_ref().filter(|s| s.enable) {
            let sync = crate::ext::sync::Sync::start(
                sync,
                state.registry.clone(),
                &config.storage.root_directory,
            )
            .await?;
            state.mirror = Some(sync.mirror());
            state.sync = Some(sync);
        }
        match options.config_path {
            Some(p) => tasks.push(super::spawn_config_reload(p, &state)),
            None => tasks.push(crate::watch::ignore_hangups()),
        }
        tasks.extend(super::spawn_gc(&state, &config.storage));
        tasks.push(super::spawn_dedupe_reconcile(&state));
        tasks.extend(
            config
                .extensions
                .scrub_interval()
                .map(|i| super::spawn_scrub(&state, i)),
        );
        let tls = match &config.http.tls {
            Some(t) => Some((t.clone(), tls_config(t)?)),
            None => None,
        };
        Ok(Self {
            state,
            tls,
            root: config.storage.root_directory.clone(),
            limits: super::ConnLimits::from_config(&config.http),
            tasks,
        })
    }

    /// The shared state of the handlers.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The registry, for calling domain operations directly.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.state.registry
    }

    /// The router, without a socket, for driving the server in-process.
    pub fn router(&self) -> axum::Router {
        app(self.state.clone())
    }

    /// Serves on `listener` (HTTPS when `http.tls` is set) until
    /// `shutdown` resolves, lets in-flight requests finish, stops the
    /// background tasks and flushes the metadata store.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Self {
            state,
            tls,
            root,
            limits,
            mut tasks,
        } = self;
        let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
        let off = |d: Option<std::time::Duration>| {
            d.map_or_else(
                || "off".to_string(),
                |d| humantime::format_duration(d).to_string(),
            )
        };
        // Before the line that says the server is up.
        tracing::info!(
            "serving at most {} connections at once (http.maxConnections); readTimeout {}, writeTimeout {}, idleTimeout {}",
            limits.max_connections,
            off(limits.read_timeout),
            off(limits.write_timeout),
            off(limits.idle_timeout)
        );
        tracing::info!(
            root = %root.display(),
            "berth {} listening on {}://{local}",
            env!("CARGO_PKG_VERSION"),
            if tls.is_some() { "https" } else { "http" }
        );
        let registry = state.registry.clone();
        let live = tls.map(|(settings, server_config)| {
            let live = axum_server::tls_rustls::RustlsConfig::from_config(server_config);
            tasks.push(crate::tls::spawn_reload(settings, live.clone()));
            live
        });
        let served = super::serve(listener, state, live, limits, shutdown)
            .await
            .map_err(ServeError::Serve);
        drop(tasks);
        registry.flush_meta().await;
        served
    }
}

/// Binds the address a config names (the caller binds before it builds:
/// a server already running there must not see its storage opened again).
pub async fn bind(config: &Config) -> Result<TcpListener, ServeError> {
    let addr = format!("{}:{}", config.http.address, config.http.port.0);
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

/// Scrubs every root of `config` offline (see [`crate::scrub::scrub_all`]):
/// refused while something listens on the configured port; the roots are
/// opened as the server opens them, but without the dedupe index, so
/// nothing is written.
pub async fn scrub_offline(config: &Config) -> Result<Vec<ScrubRow>, ServeError> {
    let port = config.http.port.0;
    if port != 0 {
        let addr = format!("{}:{port}", config.http.address);
        if let Err(e) = std::net::TcpListener::bind(&addr)
            && e.kind() == std::io::ErrorKind::AddrInUse
        {
            return Err(ServeError::Running { addr });
        }
    }
    for r in config.storage.roots() {
        if r.storage_driver.is_none() && !r.root_directory.is_dir() {
            return Err(ConfigError::key(
                super::error::root_key(&r),
                format!("{} is not a directory", r.root_directory.display()),
            )
            .into());
        }
    }
    let roots = open_roots(config, None, true).await?;
    crate::scrub::scrub_all(&roots)
        .await
        .map_err(ServeError::Scrub)
}

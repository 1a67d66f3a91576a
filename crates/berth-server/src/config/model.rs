//! The config structs. Field names follow zot's JSON keys exactly; every
//! struct refuses unknown keys. Defaults are zot's unless noted.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::access::AccessControlConfig;
use super::auth::AuthConfig;
use super::retention::RetentionConfig;
use super::value::{DurationValue, PortValue};
use super::{ConfigError, DEFAULT_PORT, DIST_SPEC_VERSION};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// What reading the file noted in passing: settings accepted with no
    /// effect, values read differently from how they were written. Logged
    /// by `serve` once logging is set up, printed by `verify`.
    #[serde(skip)]
    pub notes: Vec<String>,
    /// Accepted for compatibility; Berth always speaks [`DIST_SPEC_VERSION`].
    #[serde(default = "default_dist_spec")]
    pub dist_spec_version: String,
    pub storage: StorageConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub extensions: ExtensionsConfig,
    /// zot's background task pool.
    #[serde(default)]
    pub scheduler: Option<SchedulerConfig>,
    /// zot's scale-out members (`ext/cluster.rs`).
    #[serde(default)]
    pub cluster: Option<super::cluster::ClusterConfig>,
}

/// `scheduler`: how much background work (GC of a repository, a scrub
/// pass, an image scan, a sync copy) runs at once.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchedulerConfig {
    /// Default: 4 per CPU, as zot.
    #[serde(default)]
    pub num_workers: Option<usize>,
}

impl Config {
    /// How many background jobs may run at once.
    pub fn background_workers(&self) -> usize {
        self.scheduler
            .as_ref()
            .and_then(|s| s.num_workers)
            .unwrap_or_else(|| {
                4 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
    }
}

/// `extensions`: each one present (even as `{}`) is enabled, as in zot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionsConfig {
    /// Background scrub of every storage root.
    #[serde(default)]
    pub scrub: Option<ScrubConfig>,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// CloudEvents to webhooks.
    #[serde(default)]
    pub events: Option<EventsConfig>,
    /// zot's search (GraphQL).
    #[serde(default)]
    pub search: Option<super::search::SearchConfig>,
    /// zot's UI switch: with search, stars and bookmarks.
    #[serde(default)]
    pub ui: Option<super::search::UiConfig>,
    /// `/v2/_zot/ext/mgmt`.
    #[serde(default)]
    pub mgmt: Option<super::search::MgmtConfig>,
    /// zot's signature verification, and Berth's signature policy.
    #[serde(default)]
    pub trust: Option<super::trust::TrustConfig>,
    /// zot's sync: mirroring upstream registries.
    #[serde(default)]
    pub sync: Option<super::sync::SyncConfig>,
    /// zot's linter: mandatory annotations.
    #[serde(default)]
    pub lint: Option<super::policy::LintConfig>,
}

/// `extensions.events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
    /// Where events go.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// zot's: the CloudEvents `source` of every event (default `berth`).
    #[serde(default)]
    pub source: Option<String>,
    /// zot's: the namespace of event types, in place of `zotregistry`
    /// (`<typePrefix>.image.updated`).
    #[serde(default, rename = "typePrefix")]
    pub type_prefix: Option<String>,
}

/// One of `extensions.events.sinks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `http` or `nats`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL events are POSTed to (`http`), or the NATS server
    /// (`nats://host:port`, several separated by commas).
    pub address: String,
    /// How long one delivery may take (default 30s).
    #[serde(default = "thirty_seconds")]
    pub timeout: DurationValue,
    /// Extra headers sent with every event.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// `{username, password}` (Basic) or `{token}` (Bearer).
    #[serde(default)]
    pub credentials: Option<SinkCredentials>,
    /// Sent as the CloudEvents `channel` extension attribute (`http`);
    /// the subject events are published on (`nats`, required).
    #[serde(default)]
    pub channel: Option<String>,
    /// zot's TLS settings (`tlsconfig`, as zot's embedded struct is
    /// named; Berth also reads `tls`): the CA the sink's certificate
    /// chains to, and a client certificate.
    #[serde(default, rename = "tlsconfig", alias = "tls")]
    pub tls: Option<SinkTls>,
    /// zot's: an HTTP proxy for an `http` sink (`http://host:port`).
    #[serde(default)]
    pub proxy: Option<String>,
}

/// `extensions.events.sinks[].tlsconfig` (zot's `CACertFile`, `CertFile`,
/// `KeyFile`, in any case).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkTls {
    /// Trusted in place of the system's roots.
    #[serde(default, alias = "cacert")]
    pub cacertfile: Option<std::path::PathBuf>,
    #[serde(default, alias = "cert")]
    pub certfile: Option<std::path::PathBuf>,
    #[serde(default, alias = "key")]
    pub keyfile: Option<std::path::PathBuf>,
}

/// `extensions.events.sinks[].credentials`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkCredentials {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// A NATS credentials file (`nats` only).
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
}

fn thirty_seconds() -> DurationValue {
    DurationValue(Duration::from_secs(30))
}

impl EventsConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (i, sink) in self.sinks.iter().enumerate() {
            let at = |k: &str| format!("extensions.events.sinks.{i}.{k}");
            match sink.kind.as_str() {
                "http" => {
                    if !(sink.address.starts_with("http://")
                        || sink.address.starts_with("https://"))
                    {
                        return Err(ConfigError::key(
                            at("address"),
                            "must be an http:// or https:// URL",
                        ));
                    }
                    if sink.credentials.as_ref().is_some_and(|c| c.file.is_some()) {
                        return Err(ConfigError::key(
                            at("credentials.file"),
                            "a credentials file is for a nats sink",
                        ));
                    }
                }
                "nats" => {
                    if sink.address.trim().is_empty() {
                        return Err(ConfigError::key(at("address"), "must name a NATS server"));
                    }
                    if sink.channel.as_deref().is_none_or(str::is_empty) {
                        return Err(ConfigError::key(
                            at("channel"),
                            "a nats sink needs the subject to publish on",
                        ));
                    }
                    if !sink.headers.is_empty() {
                        return Err(ConfigError::key(
                            at("headers"),
                            "headers are for an http sink",
                        ));
                    }
                    if let Some(f) = sink.credentials.as_ref().and_then(|c| c.file.as_ref())
                        && !f.is_file()
                    {
                        return Err(ConfigError::key(
                            at("credentials.file"),
                            format!("{} is not a readable file", f.display()),
                        ));
                    }
                }
                other => {
                    return Err(ConfigError::key(
                        at("type"),
                        format!("{other:?} is not supported (\"http\" or \"nats\")"),
                    ));
                }
            }
            if let Some(tls) = &sink.tls {
                if tls.certfile.is_some() != tls.keyfile.is_some() {
                    return Err(ConfigError::key(
                        at("tlsconfig.keyfile"),
                        "certfile and keyfile go together",
                    ));
                }
                for (key, path) in [
                    ("cacertfile", &tls.cacertfile),
                    ("certfile", &tls.certfile),
                    ("keyfile", &tls.keyfile),
                ] {
                    if let Some(p) = path
                        && !p.is_file()
                    {
                        return Err(ConfigError::key(
                            at(&format!("tlsconfig.{key}")),
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
            }
            if sink.proxy.is_some() && sink.kind != "http" {
                return Err(ConfigError::key(at("proxy"), "a proxy is for an http sink"));
            }
            if sink.timeout.0.is_zero() {
                return Err(ConfigError::key(at("timeout"), "must be above zero"));
            }
            if let Some(c) = &sink.credentials
                && c.token.is_some()
                && (c.username.is_some() || c.password.is_some())
            {
                return Err(ConfigError::key(
                    at("credentials"),
                    "either username and password, or token",
                ));
            }
        }
        Ok(())
    }
}

/// `extensions.metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default)]
    pub prometheus: Option<PrometheusConfig>,
}

/// `extensions.metrics.prometheus`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Where the metrics are served (default `/metrics`).
    #[serde(default = "default_metrics_path")]
    pub path: String,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

/// `extensions.scrub`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
    /// Time between scrubs (default 24h, at least 2h as in zot).
    #[serde(default = "one_day")]
    pub interval: DurationValue,
}

impl ExtensionsConfig {
    /// The path metrics are served at, when metrics are on.
    pub fn metrics_path(&self) -> Option<String> {
        self.metrics.as_ref().filter(|m| m.enable).map(|m| {
            m.prometheus
                .as_ref()
                .map(|p| p.path.clone())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(default_metrics_path)
        })
    }

    /// The scrub interval when background scrub is on.
    pub fn scrub_interval(&self) -> Option<Duration> {
        self.scrub
            .as_ref()
            .filter(|s| s.enable)
            .map(|s| s.interval.0)
    }
}

fn one_day() -> DurationValue {
    DurationValue(Duration::from_secs(24 * 3600))
}

fn default_dist_spec() -> String {
    DIST_SPEC_VERSION.to_string()
}

/// `storage`: where repositories live and how they are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageConfig {
    /// Directory holding one OCI image layout per repository. Required,
    /// but for storage wholly remote (a `storageDriver` and a
    /// `cacheDriver`, as zot's all-remote examples), where it defaults to
    /// [`DEFAULT_ROOT`](super::DEFAULT_ROOT) for the few local files
    /// (API keys, the scan database).
    #[serde(default)]
    pub root_directory: PathBuf,
    /// fsync blobs, manifests and `index.json` before acknowledging (zot's
    /// `commit`, default false: a crash of the process loses nothing
    /// acknowledged either way, a power loss may without it).
    #[serde(default)]
    pub commit: bool,
    /// Store a blob already held by another repository on this root as a
    /// hard link to it (default true); existing content is reconciled with
    /// the setting in the background at start.
    #[serde(default = "yes")]
    pub dedupe: bool,
    /// Garbage-collect unreferenced content in the background (default
    /// true).
    #[serde(default = "yes")]
    pub gc: bool,
    /// Minimum age of content before GC may remove it (default 1h).
    #[serde(default = "one_hour", rename = "gcDelay")]
    pub gc_delay: DurationValue,
    /// Interval between GC runs (default 1h).
    #[serde(default = "one_hour", rename = "gcInterval")]
    pub gc_interval: DurationValue,
    /// zot's window of the day GC may start in (default: any time).
    #[serde(default, rename = "gcTimeWindow")]
    pub gc_time_window: Option<super::TimeWindow>,
    /// zot's switch to skip re-reading storage at start. Berth never
    /// re-reads storage at start, so this is accepted and has no effect.
    #[serde(default)]
    pub fast_restart: bool,
    /// Tag retention (none by default: every tag is kept).
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// Keep blobs and layouts in a bucket (S3, GCS, Azure) instead of
    /// `rootDirectory` (which still holds the local metadata store).
    /// Default: none, the local directory.
    #[serde(default, rename = "storageDriver")]
    pub storage_driver: Option<super::drivers::StorageDriverConfig>,
    /// Keep metadata in Redis or DynamoDB, shared by every instance using
    /// it, with the locks that let several instances serve one S3 store.
    /// Default: none, the embedded store in `rootDirectory`.
    #[serde(default, rename = "cacheDriver")]
    pub cache_driver: Option<super::drivers::CacheDriverConfig>,
    /// zot's "the cache driver is remote": `true` only with a
    /// `cacheDriver`, `false` only without (`dynamodb.rs`). Default: as
    /// `cacheDriver` says.
    #[serde(default, rename = "remoteCache")]
    pub remote_cache: Option<bool>,
    /// Answer blob GETs in a bucket with a 307 to a presigned URL (default
    /// false: Berth streams the blob).
    #[serde(default, rename = "redirectBlobURL")]
    pub redirect_blob_url: bool,
    /// zot's `hydrateBlobOnRead` (default false: a repository's blobs are
    /// its own). When true, a blob read (`HEAD` or `GET`) a repository
    /// misses is answered from another repository of the root that holds
    /// it and that the caller may read; a caller who may also push there
    /// gets it linked in (a mount), so the push that follows may use it.
    #[serde(default, rename = "hydrateBlobOnRead")]
    pub hydrate_blob_on_read: bool,
    /// Further storage roots, keyed by `/<first name component>`.
    #[serde(default, rename = "subPaths")]
    pub sub_paths: std::collections::BTreeMap<String, SubPathConfig>,
    /// zot's cap on the number of repositories (default none; 0: none). A
    /// push that would create one more is refused (429).
    #[serde(default, rename = "maxRepos")]
    pub max_repos: Option<u64>,
    /// zot's byte quota of every repository on this root that no
    /// `quotas` entry matches (default none; 0: none).
    #[serde(default, rename = "maxRepoBytes")]
    pub max_repo_bytes: Option<u64>,
    /// Byte quotas per repository glob, the first match applying (default
    /// none).
    #[serde(default)]
    pub quotas: Vec<super::policy::QuotaConfig>,
    /// Tags that cannot be moved or deleted once pushed (default none).
    #[serde(default, rename = "immutableTags")]
    pub immutable_tags: Vec<super::policy::ImmutableTagsConfig>,
}

/// `storage.subPaths."/<prefix>"`: a root of its own for the repositories
/// whose name starts with `<prefix>/` (or is `<prefix>`), with its own
/// settings, each defaulting as in `storage`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubPathConfig {
    pub root_directory: PathBuf,
    #[serde(default)]
    pub commit: bool,
    #[serde(default = "yes")]
    pub dedupe: bool,
    #[serde(default = "yes")]
    pub gc: bool,
    #[serde(default = "one_hour", rename = "gcDelay")]
    pub gc_delay: DurationValue,
    #[serde(default = "one_hour", rename = "gcInterval")]
    pub gc_interval: DurationValue,
    #[serde(default, rename = "gcTimeWindow")]
    pub gc_time_window: Option<super::TimeWindow>,
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// This sub-path's own bucket (default: none, its `rootDirectory`).
    #[serde(default, rename = "storageDriver")]
    pub storage_driver: Option<super::drivers::StorageDriverConfig>,
    /// zot's byte quota of this root's repositories that no
    /// `storage.quotas` entry matches (default: the main root's).
    #[serde(default, rename = "maxRepoBytes")]
    pub max_repo_bytes: Option<u64>,
    /// zot's per-root `remoteCache`: every root shares the main metadata
    /// store, so only the main root's answer is accepted (`dynamodb.rs`).
    #[serde(default, rename = "remoteCache")]
    pub remote_cache: Option<bool>,
    /// zot's per-root cache driver: every root shares the main metadata
    /// store, so only the main root's `storage.cacheDriver` is accepted.
    #[serde(default, rename = "cacheDriver")]
    pub cache_driver: Option<super::drivers::CacheDriverConfig>,
    /// This root's `hydrateBlobOnRead` (default false, as zot's).
    #[serde(default, rename = "hydrateBlobOnRead")]
    pub hydrate_blob_on_read: bool,
    /// `storage.redirectBlobURL` is one setting for every root: only the
    /// main root's value is accepted here.
    #[serde(default, rename = "redirectBlobURL")]
    pub redirect_blob_url: Option<bool>,
}

/// The settings one storage root runs with (the main root's or a
/// sub-path's).
#[derive(Debug, Clone)]
pub struct RootSettings {
    /// `None` for the main root, else the sub-path's first name component.
    pub prefix: Option<String>,
    pub root_directory: PathBuf,
    pub commit: bool,
    pub dedupe: bool,
    pub gc: bool,
    pub gc_delay: Duration,
    pub gc_interval: Duration,
    /// When GC may start (`None`: any time).
    pub gc_time_window: Option<super::TimeWindow>,
    pub retention: Option<RetentionConfig>,
    /// Where its blobs live when not in `root_directory`.
    pub storage_driver: Option<super::drivers::StorageDriverConfig>,
    /// zot's `maxRepoBytes` for this root (0 or none: no quota).
    pub max_repo_bytes: Option<u64>,
}

impl StorageConfig {
    /// The main root's settings, then each sub-path's.
    pub fn roots(&self) -> Vec<RootSettings> {
        let mut out = vec![RootSettings {
            prefix: None,
            root_directory: self.root_directory.clone(),
            commit: self.commit,
            dedupe: self.dedupe,
            gc: self.gc,
            gc_delay: self.gc_delay.0,
            gc_interval: self.gc_interval.0,
            gc_time_window: self.gc_time_window,
            retention: self.retention.clone(),
            storage_driver: self.storage_driver.clone(),
            max_repo_bytes: self.max_repo_bytes,
        }];
        out.extend(self.sub_paths.iter().map(|(k, s)| RootSettings {
            prefix: Some(k.trim_start_matches('/').to_string()),
            root_directory: s.root_directory.clone(),
            commit: s.commit,
            dedupe: s.dedupe,
            gc: s.gc,
            gc_delay: s.gc_delay.0,
            gc_interval: s.gc_interval.0,
            gc_time_window: s.gc_time_window,
            retention: s.retention.clone(),
            storage_driver: s.storage_driver.clone(),
            max_repo_bytes: s.max_repo_bytes.or(self.max_repo_bytes),
        }));
        out
    }
}

impl StorageConfig {
    pub fn with_root(root_directory: PathBuf) -> Self {
        Self {
            root_directory,
            commit: false,
            dedupe: true,
            gc: true,
            gc_delay: one_hour(),
            gc_interval: one_hour(),
            gc_time_window: None,
            fast_restart: false,
            retention: None,
            storage_driver: None,
            cache_driver: None,
            remote_cache: None,
            redirect_blob_url: false,
            hydrate_blob_on_read: false,
            sub_paths: Default::default(),
            max_repos: None,
            max_repo_bytes: None,
            quotas: Vec::new(),
            immutable_tags: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

fn one_hour() -> DurationValue {
    DurationValue(Duration::from_secs(3600))
}

/// `http`: the listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpConfig {
    /// Address to bind (default 127.0.0.1).
    #[serde(default = "default_address")]
    pub address: String,
    /// Port to bind (default 8080; 0 picks a free port and logs it).
    #[serde(default = "default_port")]
    pub port: PortValue,
    /// Realm named in authentication challenges (default "berth").
    #[serde(default = "default_realm")]
    pub realm: String,
    /// zot's `compat` list (e.g. `["docker2s2"]`). Berth always stores and
    /// serves Docker schema2 manifests and lists, so this needs no switch.
    #[serde(default)]
    pub compat: Vec<CompatValue>,
    /// HTTPS (and with `cacert`, client certificates required).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Authentication; none by default (every request is anonymous and
    /// allowed).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Who may do what on which repositories; none by default.
    #[serde(default)]
    pub access_control: Option<AccessControlConfig>,
    /// Request rate limits; none by default.
    #[serde(default)]
    pub ratelimit: Option<RateLimitConfig>,
    /// The origin browsers may call the API from (`*` for any); none by
    /// default (no CORS headers).
    #[serde(default)]
    pub allow_origin: Option<String>,
    /// The address users reach this registry at
    /// (`https://registry.example.com`): where OpenID providers send them
    /// back, and the origin a browser session's requests may come from.
    #[serde(default)]
    pub external_url: Option<String>,
    /// zot's `readTimeout` (Go's `ReadTimeout`), kept from cutting blob
    /// transfers: how long a client may take to finish a TLS handshake and
    /// to send each request's header (for HTTP/1.1 the wait for the next
    /// request on a kept-alive connection counts), and how long a request
    /// body may go without a byte (default 30s; 0: no limit).
    #[serde(default = "thirty_seconds")]
    pub read_timeout: DurationValue,
    /// zot's `writeTimeout` (Go's `WriteTimeout`), kept from cutting blob
    /// transfers: how long a response may go without the client taking a
    /// byte of it before the connection is closed (default 60s; 0: no
    /// limit).
    #[serde(default = "one_minute")]
    pub write_timeout: DurationValue,
    /// Berth's: a connection with no request in flight for this long is
    /// closed (HTTP/2 gets a GOAWAY; default 120s; 0: no limit).
    #[serde(default = "two_minutes")]
    pub idle_timeout: DurationValue,
    /// Berth's: connections served at once; past it a new connection is
    /// closed at once, the others served as before (default: from the
    /// open-files limit, see `server::conn::default_max_connections`).
    #[serde(default)]
    pub max_connections: Option<std::num::NonZeroUsize>,
    /// Berth's: upload sessions open at once in one repository; past it
    /// starting one is 429 (default 1,000; 0: no cap).
    #[serde(default = "default_uploads_per_repository")]
    pub max_uploads_per_repository: usize,
    /// Berth's: upload sessions open at once from one client address; past
    /// it starting one is 429 (default 100; 0: no cap).
    #[serde(default = "default_uploads_per_client")]
    pub max_uploads_per_client: usize,
    /// zot 1.x's `ReadOnly`: every push, tag move and delete through the
    /// API is refused (403 `DENIED`), whoever asks; pulls go on (default
    /// false). Takes a restart.
    #[serde(default)]
    pub read_only: bool,
}

fn one_minute() -> DurationValue {
    DurationValue(Duration::from_secs(60))
}

fn two_minutes() -> DurationValue {
    DurationValue(Duration::from_secs(120))
}

fn default_uploads_per_repository() -> usize {
    1000
}

fn default_uploads_per_client() -> usize {
    100
}

/// `http.ratelimit`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second over all clients and methods (default: no
    /// overall limit).
    #[serde(default)]
    pub rate: Option<u32>,
    /// Further limits per method.
    #[serde(default)]
    pub methods: Vec<MethodRate>,
}

/// One entry of `http.ratelimit.methods`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRate {
    /// An HTTP method, e.g. `GET`.
    pub method: String,
    /// Requests per second with that method.
    pub rate: u32,
}

impl RateLimitConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.rate == Some(0) {
            return Err(ConfigError::key(
                "http.ratelimit.rate",
                "must be above zero",
            ));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if m.rate == 0 {
                return Err(ConfigError::key(
                    format!("http.ratelimit.methods.{i}.rate"),
                    "must be above zero",
                ));
            }
            if http::Method::from_bytes(m.method.to_ascii_uppercase().as_bytes()).is_err()
                || m.method.is_empty()
            {
                return Err(ConfigError::key(
                    format!("http.ratelimit.methods.{i}.method"),
                    format!("{:?} is not an HTTP method", m.method),
                ));
            }
        }
        Ok(())
    }
}

/// `http.tls`: PEM files, re-read when they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// CA certificates for client certificates: when set, every client
    /// must present a certificate this CA signed (mTLS).
    #[serde(default)]
    pub cacert: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            address: default_address(),
            port: default_port(),
            realm: default_realm(),
            compat: Vec::new(),
            tls: None,
            auth: None,
            access_control: None,
            ratelimit: None,
            allow_origin: None,
            external_url: None,
            read_timeout: thirty_seconds(),
            write_timeout: one_minute(),
            idle_timeout: two_minutes(),
            max_connections: None,
            max_uploads_per_repository: default_uploads_per_repository(),
            max_uploads_per_client: default_uploads_per_client(),
            read_only: false,
        }
    }
}

/// Values allowed in `http.compat`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum CompatValue {
    #[serde(rename = "docker2s2")]
    Docker2s2,
}

fn default_address() -> String {
    "127.0.0.1".to_string()
}

fn default_port() -> PortValue {
    PortValue(DEFAULT_PORT)
}

fn default_realm() -> String {
    "berth".to_string()
}

/// `log`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogConfig {
    /// One of trace, debug, info, warn, error (default info; zot's `panic`
    /// and `fatal` mean error).
    #[serde(default = "default_level")]
    pub level: LogLevel,
    /// A file to append logs to (default: standard error).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// `text` or `json` (Berth's own key; default text).
    #[serde(default)]
    pub format: LogFormat,
    /// A file to append the audit log to: one JSON line per mutating
    /// request (default: none).
    #[serde(default)]
    pub audit: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_level(),
            output: None,
            format: LogFormat::Text,
            audit: None,
        }
    }
}

/// `log.level`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Panic,
    Fatal,
}

impl LogLevel {
    /// The `tracing` filter directive for the level.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Panic | LogLevel::Fatal => "error",
        }
    }
}

fn default_level() -> LogLevel {
    LogLevel::Info
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// zot keys Berth does not implement yet. A config that sets one (to
/// anything but null or an empty object) is refused, naming the key.
const NOT_YET: &[&str] = &["extensions.userprefs"];

pub(super) fn refuse_unimplemented(value: &mut serde_json::Value) -> Result<(), ConfigError> {
    for key in NOT_YET {
        // Keys in any case, as zot reads them.
        let (parents, leaf) = match key.rsplit_once('.') {
            Some((p, l)) => (p.split('.').collect::<Vec<_>>(), l),
            None => (Vec::new(), *key),
        };
        let mut at = Some(&mut *value);
        for p in parents {
            at = at
                .and_then(|v| v.as_object_mut())
                .and_then(|o| o.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(p)))
                .map(|(_, v)| v);
        }
        let Some(obj) = at.and_then(|v| v.as_object_mut()) else {
            continue;
        };
        let Some(leaf) = obj.keys().find(|k| k.eq_ignore_ascii_case(leaf)).cloned() else {
            continue;
        };
        let leaf = leaf.as_str();
        let Some(v) = obj.get(leaf) else {
            continue;
        };
        // `false` switches nothing on (zot's `apikey: false`).
        if v == &serde_json::Value::Bool(false) {
            obj.remove(leaf);
            continue;
        }
        // An empty section enables nothing, except under `extensions`,
        // where `{}` turns an extension on.
        let enables = key.starts_with("extensions.");
        if v.is_null() || (!enables && v.as_object().is_some_and(|o| o.is_empty())) {
            // An empty section enables nothing: drop it.
            obj.remove(leaf);
        } else {
            return Err(ConfigError::key(
                *key,
                "zot key not supported by this version of berth",
            ));
        }
    }
    Ok(())
}

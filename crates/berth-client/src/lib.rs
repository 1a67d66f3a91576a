//! An OCI distribution client over HTTP(S): what the bench, the
//! command-line client, `berth scan` and sync share. Each call is one
//! registry operation; a refusal comes back as [`ClientError::Status`]
//! with the status, so callers can count answers by class.
//!
//! Where things are:
//! - `lib.rs` — [`Client`], [`ClientOptions`], [`ClientError`];
//! - `request.rs` — the one path every request takes: the concurrency
//!   permit, credentials, the token challenge, retries, the status check;
//! - `auth.rs` — `WWW-Authenticate` challenges, token scopes and the
//!   token cache (the Docker token flow);
//! - `retry.rs` — which answers are retried and how long to wait;
//! - `tls.rs` — extra trusted roots and the client certificate;
//! - `ops.rs` — pushes, pulls and the other calls of the bench and the
//!   command line;
//! - `upstream.rs` — what sync needs of an upstream registry: raw
//!   manifests, blob streams, referrers, whole catalogs and tag lists;
//! - `push.rs` — a blob pushed from a stream: mount, one `PUT`, or
//!   bounded `PATCH`es;
//! - `copy/` — copying an image between any source and target (sync,
//!   the command line), over two small seams;
//! - `image.rs` — small image manifests to push (bench, tests);
//! - `search.rs` — zot's search API (GraphQL) as the command line asks
//!   it, with typed answers.
//!
//! Authentication is transparent: Basic credentials go with every request
//! to the registry's own origin; a `401` with a `Bearer` challenge fetches
//! a token from the challenge's realm (with the Basic credentials, or
//! anonymously), caches it per scope and retries once. Credentials never
//! go to another origin, redirects included.

mod auth;
pub mod auth_file;
pub mod copy;
mod image;
mod ops;
mod push;
mod request;
mod retry;
pub mod search;
mod tls;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

pub use image::{OCI_MANIFEST, image_manifest, image_manifest_annotated};
pub use ops::Download;
pub use push::{ByteStream, MAX_RESUMES, Mount, Reopen};
pub use upstream::{BlobStream, ManifestHead, RawManifest, Referrer};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry answered, but not as hoped.
    #[error("{method} {path}: {status}: {body}")]
    Status {
        /// The request's method.
        method: &'static str,
        /// The path (or URL) asked for.
        path: String,
        /// The answer's status.
        status: StatusCode,
        /// The start of the answer's body (300 characters at most).
        body: String,
    },
    /// The token endpoint named by a `Bearer` challenge refused to give a
    /// token, or gave an answer without one.
    #[error("token from {realm}: {message}")]
    Auth {
        /// The realm (token endpoint URL) asked.
        realm: String,
        /// The token endpoint's status, when it answered with a refusal.
        status: Option<StatusCode>,
        /// What went wrong, with the start of the answer's body.
        message: String,
    },
    /// No answer (connection, TLS, timeout, a body cut short).
    #[error("{0}")]
    Transport(String),
    /// An answer that breaks the protocol.
    #[error("{0}")]
    Protocol(String),
    /// The client could not be set up (base URL, certificates, key).
    #[error("{0}")]
    Config(String),
    /// Writing what was downloaded failed.
    #[error("writing the download: {0}")]
    Write(#[source] std::io::Error),
    /// The search API refused a query (its GraphQL errors).
    #[error("the registry's search refused the query: {0}")]
    Query(String),
}

impl ClientError {
    /// The status, when the registry (or its token endpoint) answered:
    /// a `401` here means the credentials were refused.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Auth { status, .. } => *status,
            _ => None,
        }
    }
}

/// The result of a client call.
pub type ClientResult<T> = Result<T, ClientError>;

/// Basic credentials: a user name and a password.
pub type Login = (String, String);

/// An error with its causes on one line (reqwest's own says only "error
/// sending request for url (...)").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        // Some layers repeat their source's text in their own.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// A transport error with its causes on one line.
fn transport(e: reqwest::Error) -> ClientError {
    ClientError::Transport(with_causes(&e))
}

/// How a [`Client`] connects, beyond its base URL and credentials.
#[derive(Clone)]
pub struct ClientOptions {
    /// Accept any TLS certificate and host name: a registry with a
    /// self-signed certificate (`--insecure`, skopeo's
    /// `--tls-verify=false`, zot's `tlsVerify: false`).
    pub accept_invalid_certs: bool,
    /// Give up on a connection not made within this time.
    pub connect_timeout: Option<Duration>,
    /// Give up on an answer (or a body) from which nothing arrives for
    /// this long.
    pub read_timeout: Option<Duration>,
    /// Extra trusted roots, each a PEM text that may hold several
    /// certificates (zot's `certDir` `ca.crt`); added to the system's.
    pub ca_certs_pem: Vec<Vec<u8>>,
    /// A client certificate (with its chain) and its private key, in one
    /// PEM text, for registries that require mutual TLS.
    pub identity_pem: Option<Vec<u8>>,
    /// How many times a `GET` or `HEAD` is tried again after a transport
    /// error or a `429`, `502`, `503`, `504` (zot's `maxRetries`). Other
    /// methods are never retried, nor is a body that breaks off once the
    /// answer has begun.
    pub max_retries: u32,
    /// The wait before the first retry, doubled for each further one
    /// (zot's `retryDelay`).
    pub retry_delay: Duration,
    /// The longest wait between retries, `Retry-After` included.
    pub max_retry_delay: Duration,
    /// At most this many requests of this client (and its clones) in
    /// flight at once (0 counts as 1); a blob stream counts until it ends
    /// or is dropped.
    pub max_concurrent: Option<usize>,
    /// Speak HTTP/1.1 only, even where the registry offers HTTP/2 (zot's
    /// `disableHTTP2`).
    pub http1_only: bool,
    /// Start at most this many requests a second (zot's `reqPerSec`):
    /// requests are spaced evenly, the first is not delayed.
    pub max_per_second: Option<f64>,
    /// Idle connections kept per host (zot's `maxIdleConnsPerHost`;
    /// default 256).
    pub max_idle_per_host: Option<usize>,
}

impl std::fmt::Debug for ClientOptions {
    /// Everything but the client certificate's private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("ca_certs_pem", &self.ca_certs_pem.len())
            .field("identity_pem", &self.identity_pem.as_ref().map(|_| "…"))
            .field("max_retries", &self.max_retries)
            .field("retry_delay", &self.retry_delay)
            .field("max_retry_delay", &self.max_retry_delay)
            .field("max_concurrent", &self.max_concurrent)
            .field("http1_only", &self.http1_only)
            .field("max_per_second", &self.max_per_second)
            .field("max_idle_per_host", &self.max_idle_per_host)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            accept_invalid_certs: false,
            connect_timeout: None,
            read_timeout: None,
            ca_certs_pem: Vec::new(),
            identity_pem: None,
            max_retries: 0,
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(30),
            max_concurrent: None,
            http1_only: false,
            max_per_second: None,
            max_idle_per_host: None,
        }
    }
}

/// A registry at one base URL. Cheap to clone; clones share the
/// connection pool, the token cache and the concurrency limit.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The URL requests go to, without a trailing `/`.
    base: String,
    /// `base` parsed, to tell the registry's own origin from others
    /// (redirect targets, token realms, upload locations elsewhere).
    base_url: reqwest::Url,
    /// `host[:port]` as the caller wrote it (before `docker.io` became
    /// `registry-1.docker.io`), the key of credential files.
    host: String,
    /// Basic credentials (user, password), shared by the clones and
    /// replaced by [`Client::set_credentials`] (a std lock: held only to
    /// read or swap them, never across an await).
    auth: Arc<std::sync::RwLock<Option<Login>>>,
    tokens: Arc<auth::Tokens>,
    /// Bounds the requests in flight (`max_concurrent`); an owned permit
    /// goes with each answer, so a streamed body keeps its place.
    limit: Option<Arc<tokio::sync::Semaphore>>,
    /// When the next request may start (`max_per_second`).
    pace: Option<Arc<request::Pace>>,
    retry: retry::RetryPolicy,
}

impl std::fmt::Debug for Client {
    /// The base and host; never the credentials or tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("host", &self.host)
            .field("auth", &self.credentials().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

/// Every manifest type a pull accepts: OCI image manifests and indexes,
/// Docker schema 2 manifests and manifest lists (no `*/*`, so a registry
/// never converts to an older schema).
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Docker Hub's names: the first is what people write, the registry API
/// itself is at `registry-1.docker.io`.
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

impl Client {
    /// A client for `base` (`http://host:port`, or just `host:port` for
    /// plain HTTP; `docker.io` is Docker Hub over HTTPS); `auth` is
    /// `user:password`.
    pub fn new(base: &str, auth: Option<&str>) -> ClientResult<Self> {
        Self::with_options(base, auth, ClientOptions::default())
    }

    /// [`Client::new`] with `options`.
    pub fn with_options(
        base: &str,
        auth: Option<&str>,
        options: ClientOptions,
    ) -> ClientResult<Self> {
        let trimmed = base.trim_end_matches('/');
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, trimmed),
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, h)| h)
            .to_ascii_lowercase();
        let base = if DOCKER_HUB_HOSTS[..2].contains(&host.as_str()) {
            "https://registry-1.docker.io".to_string()
        } else {
            format!("{}://{rest}", scheme.unwrap_or("http"))
        };
        let base_url = reqwest::Url::parse(&base)
            .map_err(|e| ClientError::Config(format!("registry URL {base:?}: {e}")))?;
        let auth: Option<Login> = auth.map(|a| match a.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (a.to_string(), String::new()),
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(options.max_idle_per_host.unwrap_or(256));
        if let Some(timeout) = options.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = options.read_timeout {
            builder = builder.read_timeout(timeout);
        }
        if options.http1_only {
            builder = builder.http1_only();
        }
        builder = tls::configure(builder, &options)?;
        let http = builder
            .build()
            .map_err(|e| ClientError::Config(format!("{base}: {}", with_causes(&e))))?;
        Ok(Self {
            http,
            base,
            base_url,
            host,
            auth: Arc::new(std::sync::RwLock::new(auth)),
            tokens: Arc::default(),
            limit: options
                .max_concurrent
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
            pace: options
                .max_per_second
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| Arc::new(request::Pace::new(r))),
            retry: retry::RetryPolicy::from_options(&options),
        })
    }

    /// The Basic credentials (user, password) requests go with now.
    pub fn credentials(&self) -> Option<Login> {
        self.auth
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the Basic credentials of this client and its clones (a
    /// credential helper's fresh login). When they change, the tokens got
    /// with the old ones are dropped, so the next request asks for new
    /// ones. Says whether they changed.
    pub fn set_credentials(&self, user: &str, password: &str) -> bool {
        let mut auth = self
            .auth
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if auth
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == password)
        {
            return false;
        }
        *auth = Some((user.to_string(), password.to_string()));
        drop(auth);
        self.tokens.clear();
        true
    }

    /// The base URL requests go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `host[:port]` of the base URL as given (`docker.io` stays
    /// `docker.io` though requests go to `registry-1.docker.io`): the key
    /// to look credentials up by.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The name of `repo` on this registry: Docker Hub keeps official
    /// images under `library/`, so there `alpine` is `library/alpine`;
    /// elsewhere names are unchanged.
    pub fn upstream_repo(&self, repo: &str) -> String {
        let hub = DOCKER_HUB_HOSTS.contains(&self.host.as_str())
            || self.base_url.host_str() == Some("registry-1.docker.io");
        if hub && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo.to_string()
        }
    }
}

//! [`ServeError`]: why a server cannot be built or run. Each variant
//! names the config key of the part that failed, chosen where it failed.

use crate::config::{ConfigError, RootSettings};
use crate::meta::MetaError;
use crate::storage::StorageError;

/// Why a server, or an offline tool over its storage, cannot start or
/// stopped. Its `Display` is one line that begins with the config key to
/// look at (but for the listening socket's own errors).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting that cannot be put in force (`log.audit`,
    /// `extensions.events`, a root that is no directory, ...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A storage root or the metadata store cannot be opened or read.
    #[error("{key}: {source}")]
    Storage {
        /// `storage.rootDirectory`, `storage.storageDriver`,
        /// `storage.cacheDriver`, `storage.subPaths./<p>.rootDirectory`, ...
        key: String,
        #[source]
        source: StorageError,
    },
    /// The metadata store cannot be opened or read.
    #[error("{key}: {source}")]
    Meta {
        /// `storage.cacheDriver`, or `storage.rootDirectory` for the
        /// embedded store.
        key: String,
        #[source]
        source: MetaError,
    },
    /// `http.auth` cannot be put in force. The message begins with the
    /// key inside the section it is about (`http.auth.htpasswd.path: ...`).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    /// Browser sessions cannot be kept (`http.auth.sessionDriver`,
    /// `sessionKeysFile`).
    #[error("http.auth.sessionDriver: {0}")]
    Sessions(#[from] crate::auth::session::SessionError),
    /// `http.tls` cannot be put in force. The message begins with the key
    /// inside the section (`http.tls.cert: ...`).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The configured address cannot be listened on.
    #[error("http: cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The listener's address cannot be read.
    #[error("http: cannot read the bound address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// Serving stopped with an error.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
    /// An offline tool found the server running.
    #[error("scrub runs offline, but something listens on {addr}: stop the server first")]
    Running { addr: String },
    /// An offline scrub could not read storage.
    /// The sync extension could not start (its message names the key).
    #[cfg(feature = "sync")]
    #[error(transparent)]
    Sync(#[from] crate::ext::sync::SyncError),
    #[error(transparent)]
    Scrub(StorageError),
}

impl ServeError {
    /// The config key of the part that failed, when one did.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Config(ConfigError::Key { key, .. })
            | Self::Storage { key, .. }
            | Self::Meta { key, .. } => Some(key),
            Self::Auth(_) => Some("http.auth"),
            Self::Sessions(_) => Some("http.auth.sessionDriver"),
            Self::Tls(_) => Some("http.tls"),
            Self::Listen { .. } | Self::Running { .. } => Some("http"),
            #[cfg(feature = "sync")]
            Self::Sync(_) => Some("extensions.sync"),
            Self::Config(_) | Self::LocalAddr(_) | Self::Serve(_) | Self::Scrub(_) => None,
        }
    }

    /// A storage root's failure, named by the root's key.
    pub(crate) fn root(r: &RootSettings, source: StorageError) -> Self {
        Self::Storage {
            key: root_key(r),
            source,
        }
    }
}

/// The key a storage root is configured by: its directory, or its
/// `storageDriver` when its blobs live in a bucket.
pub(crate) fn root_key(r: &RootSettings) -> String {
    let field = match r.storage_driver {
        Some(_) => "storageDriver",
        None => "rootDirectory",
    };
    match &r.prefix {
        None => format!("storage.{field}"),
        Some(p) => format!("storage.subPaths./{p}.{field}"),
    }
}

//! Why the advisory database could not be opened, read or refreshed:
//! each error names the file, the URL (without credentials) or the
//! ecosystem it is about.

use std::path::{Path, PathBuf};

use berth_vuln::advisory::AdvisoryError;

/// Why the advisory database could not be opened, read or refreshed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The redb file failed.
    #[error("advisory database {}: {source}", path.display())]
    Redb {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    /// A request failed (the URL without credentials or query).
    #[error("{url}: {}", causes(source))]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A request was answered with an error status.
    #[error("{url}: answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    /// A response was larger than allowed.
    #[error("{url}: larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    /// A response ended before the length it declared.
    #[error("{url}: cut after {read} of {declared} bytes")]
    Truncated {
        url: String,
        read: u64,
        declared: u64,
    },
    /// The source cannot be used as it is.
    #[error("osv source {at}: {reason}")]
    Source { at: String, reason: String },
    /// An ecosystem's dump could not be read.
    #[error("{ecosystem} advisories: {source}")]
    Zip {
        ecosystem: String,
        #[source]
        source: AdvisoryError,
    },
    /// A stored advisory does not decode.
    #[error("stored advisory {key:?}: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A blocking task of the database panicked or was cancelled.
    #[error("advisory database task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl DbError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(super) fn redb(path: &Path, source: impl Into<redb::Error>) -> Self {
        Self::Redb {
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    pub(super) fn http(url: &str, source: reqwest::Error) -> Self {
        Self::Http {
            url: url.to_owned(),
            source: source.without_url(),
        }
    }
}

/// `?` for redb calls: the error names the database's file.
pub(super) trait InDb<T> {
    fn in_db(self, path: &Path) -> Result<T, DbError>;
}

impl<T, E: Into<redb::Error>> InDb<T> for Result<T, E> {
    fn in_db(self, path: &Path) -> Result<T, DbError> {
        self.map_err(|e| DbError::redb(path, e))
    }
}

/// A request's error and its causes (reqwest's own says little:
/// "error sending request"), `: `-separated.
fn causes(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

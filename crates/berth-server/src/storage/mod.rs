//! Storage: one OCI image layout per repository under a root directory,
//! exactly as zot writes it.
//!
//! ```text
//! <root>/<repo>/oci-layout             {"imageLayoutVersion":"1.0.0"}
//! <root>/<repo>/index.json             manifests; tags are ref.name annotations
//! <root>/<repo>/blobs/<alg>/<hex>      blobs and manifests
//! <root>/<repo>/.uploads/<id>          upload sessions and temporary files
//! <root>/<repo>/.uploads/.index-{a,b}  the two files index.json alternates
//!                                      between (one is always index.json)
//! ```
//!
//! Invariants:
//! - anything not yet committed lives in `.uploads/`; a blob or `index.json`
//!   appears in place only by an atomic rename of a complete file, so no
//!   reader ever sees a partial one;
//! - `index.json` is read-modified-written only under its repository's lock;
//!   there is no store-wide lock, and blob writes take no lock at all (a
//!   rename of identical content over identical content is harmless);
//! - this module knows nothing of manifests' meaning: it stores bytes and
//!   the layout's index.

mod backend;
mod blob_index;
mod dedupe;
mod direct_append;
mod fs;
mod fs_index;
mod fs_uploads;
mod index;
mod locks;
mod new_file;
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
mod object;
mod root_files;
mod roots;
mod version;

pub use backend::{
    Blobs, ByteStream, ChunkReceiver, Layout, Store, UploadEntry, UploadState, Uploads,
};
pub use dedupe::ReconcileReport;
pub use fs::FsStore;
pub use index::{OciIndex, tag_of};
pub use locks::{BlobGuard, HeldLock, RepoGuard, RepoLocks, UploadGuard};
#[cfg(feature = "gcs")]
pub use object::GcsOptions;
#[cfg(feature = "s3")]
pub use object::S3Options;
#[cfg(feature = "azure")]
pub use object::{AzureCredentials, AzureOptions};
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
pub use object::{BucketSettings, BucketStore};
pub use root_files::RootFiles;
pub use roots::{Root, Roots};
pub use version::IndexVersion;

/// One step of the walk that finds repositories (on disk and in a bucket
/// alike): the name of the directory `dir` under `parent` (a repository
/// name so far, `""` at the root) if the walk goes into it. A repository's
/// own `blobs/` is not a place for repositories, and neither is a directory
/// whose name cannot start a name component (`.uploads`, `.berth`,
/// `_trivy`).
pub(crate) fn walk_into(parent: &str, parent_is_repo: bool, dir: &str) -> Option<String> {
    let starts_a_name = dir
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (parent_is_repo && dir == "blobs") || !starts_a_name {
        return None;
    }
    Some(if parent.is_empty() {
        dir.to_string()
    } else {
        format!("{parent}/{dir}")
    })
}

/// A storage failure, saying what happened. Not-found is not an error
/// here: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The request would make two repositories' layouts overlap.
    #[error("{0}")]
    NameConflict(String),
    /// The caller named something the store does not hold that way (an
    /// upload leftover that is no upload file).
    #[error("{0}")]
    InvalidInput(String),
    #[error("{path} is corrupt: {message}")]
    Corrupt {
        path: std::path::PathBuf,
        message: String,
    },
    /// A networked backend answered with an error; `location` says which.
    #[error("{location}: {message}")]
    Backend { location: String, message: String },
    /// A networked backend or the shared lock service could not be reached
    /// or did not answer in time: worth retrying later.
    #[error("{service} is unavailable: {message}")]
    Unavailable { service: String, message: String },
    /// Another instance held a lock past the wait.
    #[error("lock {name} still held by another instance after {waited_secs}s")]
    LockBusy { name: String, waited_secs: u64 },
    /// A conditional write found the object changed under a lock this
    /// instance believed it held (its lease lapsed): nothing was written.
    #[error("{0}")]
    LockLost(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

impl StorageError {
    /// Whether retrying later may succeed (a backend down, a lock busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::LockBusy { .. })
    }

    /// The same error again (an I/O error keeps its kind and text).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Io { path, source } => Self::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Self::NameConflict(s) => Self::NameConflict(s.clone()),
            Self::InvalidInput(s) => Self::InvalidInput(s.clone()),
            Self::Corrupt { path, message } => Self::Corrupt {
                path: path.clone(),
                message: message.clone(),
            },
            Self::Backend { location, message } => Self::Backend {
                location: location.clone(),
                message: message.clone(),
            },
            Self::Unavailable { service, message } => Self::Unavailable {
                service: service.clone(),
                message: message.clone(),
            },
            Self::LockBusy { name, waited_secs } => Self::LockBusy {
                name: name.clone(),
                waited_secs: *waited_secs,
            },
            Self::LockLost(s) => Self::LockLost(s.clone()),
        }
    }
}

impl From<crate::meta::MetaError> for StorageError {
    /// A failure of the shared lock service (which lives with the
    /// metadata store).
    fn from(e: crate::meta::MetaError) -> Self {
        use crate::meta::MetaError as M;
        match e {
            M::Unavailable { service, message } => Self::Unavailable { service, message },
            other => Self::Backend {
                location: "the shared lock service".into(),
                message: other.to_string(),
            },
        }
    }
}

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> StorageResult<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> StorageResult<T> {
        self.map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::walk_into;

    #[test]
    fn the_walk_goes_into_name_components_only() {
        let cases = [
            ("", false, "team", Some("team")),
            ("team", false, "app", Some("team/app")),
            ("team", true, "blobs", None),
            ("team", false, "blobs", Some("team/blobs")),
            ("team", true, "sub", Some("team/sub")),
            ("", false, ".uploads", None),
            ("a", true, ".berth", None),
            ("", false, "_trivy", None),
            ("", false, "9lives", Some("9lives")),
            ("", false, "Upper", None),
        ];
        for (parent, is_repo, dir, want) in cases {
            assert_eq!(
                walk_into(parent, is_repo, dir).as_deref(),
                want,
                "{parent:?} {is_repo} {dir:?}"
            );
        }
    }
}

//! The registry layer's error.

use berth_oci::Digest;

use crate::meta::MetaError;
use crate::storage::StorageError;

/// What went wrong in a registry operation. Each variant is a distinct
/// answer the API gives; only `Storage` is the server's fault.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("repository {0} is not known")]
    NameUnknown(String),
    #[error("blob {0} is not known")]
    BlobUnknown(Digest),
    #[error("upload session is not known")]
    UploadUnknown,
    #[error("chunk out of order: the upload has {size} bytes")]
    UploadOutOfOrder { size: u64 },
    #[error("upload invalid: {0}")]
    UploadInvalid(String),
    #[error("digest {expected} does not match the content ({actual})")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("{0}")]
    DigestInvalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("manifest {0} is not known")]
    ManifestUnknown(String),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("manifest references {0}, which is not in the repository")]
    ManifestBlobUnknown(Digest),
    #[error("{0}")]
    SizeInvalid(String),
    #[error("tag {0} exists, and moving it needs the update permission")]
    TagExists(String),
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
    /// As many upload sessions are open as `scope` (`repository` or
    /// `client`) may hold.
    #[error(
        "{limit} upload sessions are open for this {scope}, the most allowed; complete or cancel one"
    )]
    TooManyUploads { scope: &'static str, limit: usize },
    /// zot's `maxRepos`: as many repositories exist as may.
    #[error("{count} repositories exist, the most storage.maxRepos allows ({limit})")]
    TooManyRepos { count: u64, limit: u64 },
    /// The push would take the repository past its byte quota.
    #[error(
        "the repository would use {projected} bytes, over its quota of {limit} ({rule}); it uses {used}"
    )]
    QuotaExceeded {
        rule: String,
        limit: u64,
        used: u64,
        projected: u64,
    },
    /// zot's linter: the image lacks mandatory annotations.
    #[error("the image is missing the mandatory annotations {}", .missing.join(", "))]
    LintFailed {
        reference: String,
        missing: Vec<String>,
    },
    /// A deletion by digest of a manifest several tags name, by a caller
    /// holding zot's `detectManifestCollision`.
    #[error("{digest} is tagged {}: deleting it would remove every one", tags.join(", "))]
    ManifestCollision { digest: String, tags: Vec<String> },
    /// The tag is immutable: it cannot be moved or deleted.
    #[error("tag {tag} is immutable ({rule}): it cannot be moved or deleted")]
    TagImmutable { tag: String, rule: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Listing one storage root failed: `prefix` says which (`None` for
    /// the main root, `Some("team")` for sub-path `/team`).
    #[error("{source}")]
    Root {
        prefix: Option<String>,
        #[source]
        source: StorageError,
    },
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A rule of the registry's own code broke (a bug, not the client's
    /// nor a backend's fault).
    #[error("{0}")]
    Internal(&'static str),
}

impl RegistryError {
    /// The same error again, for each push of a batch that one failure
    /// ended (an I/O error is not `Clone`: its kind and text are kept).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::NameUnknown(s) => Self::NameUnknown(s.clone()),
            Self::BlobUnknown(d) => Self::BlobUnknown(d.clone()),
            Self::UploadUnknown => Self::UploadUnknown,
            Self::UploadOutOfOrder { size } => Self::UploadOutOfOrder { size: *size },
            Self::UploadInvalid(s) => Self::UploadInvalid(s.clone()),
            Self::DigestMismatch { expected, actual } => Self::DigestMismatch {
                expected: expected.clone(),
                actual: actual.clone(),
            },
            Self::DigestInvalid(s) => Self::DigestInvalid(s.clone()),
            Self::Unsupported(s) => Self::Unsupported(s.clone()),
            Self::ManifestUnknown(s) => Self::ManifestUnknown(s.clone()),
            Self::ManifestInvalid(s) => Self::ManifestInvalid(s.clone()),
            Self::ManifestBlobUnknown(d) => Self::ManifestBlobUnknown(d.clone()),
            Self::SizeInvalid(s) => Self::SizeInvalid(s.clone()),
            Self::TagExists(s) => Self::TagExists(s.clone()),
            Self::BodyRead(s) => Self::BodyRead(s.clone()),
            Self::TooManyUploads { scope, limit } => Self::TooManyUploads {
                scope,
                limit: *limit,
            },
            Self::TooManyRepos { count, limit } => Self::TooManyRepos {
                count: *count,
                limit: *limit,
            },
            Self::QuotaExceeded {
                rule,
                limit,
                used,
                projected,
            } => Self::QuotaExceeded {
                rule: rule.clone(),
                limit: *limit,
                used: *used,
                projected: *projected,
            },
            Self::LintFailed { reference, missing } => Self::LintFailed {
                reference: reference.clone(),
                missing: missing.clone(),
            },
            Self::ManifestCollision { digest, tags } => Self::ManifestCollision {
                digest: digest.clone(),
                tags: tags.clone(),
            },
            Self::TagImmutable { tag, rule } => Self::TagImmutable {
                tag: tag.clone(),
                rule: rule.clone(),
            },
            Self::Storage(e) => Self::Storage(e.duplicate()),
            Self::Root { prefix, source } => Self::Root {
                prefix: prefix.clone(),
                source: source.duplicate(),
            },
            Self::Meta(e) => Self::Meta(e.duplicate()),
            Self::Internal(s) => Self::Internal(s),
        }
    }
}

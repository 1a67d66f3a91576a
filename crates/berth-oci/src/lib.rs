//! OCI types shared by the Berth server, client and tests.
//!
//! This crate does no I/O. It holds the grammar of the distribution spec
//! (repository names, tags, digests, the `Content-Range` and `Range` headers),
//! the media types Berth recognises, a tolerant model of manifests and
//! indexes, and the error codes with their JSON body.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod media;
pub mod name;
pub mod range;
pub mod reference;

pub use digest::{Algorithm, Digest, DigestHasher};
pub use error::{ErrorBody, ErrorCode};
pub use name::RepoName;
pub use reference::{Reference, Tag};

/// A string did not match the grammar it was parsed against.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct ParseError {
    /// What was being parsed ("digest", "repository name", ...).
    pub what: &'static str,
    /// Why it was refused, lower-case, no trailing period.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }
}

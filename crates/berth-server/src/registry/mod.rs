//! The registry domain: upload sessions, blobs, manifests, tags and
//! referrers, on top of [`crate::storage`].
//!
//! This layer knows the distribution spec's rules (a manifest's blobs must
//! exist, a digest must match its bytes, chunks arrive in order) but nothing
//! of HTTP: the API layer turns its [`RegistryError`] into OCI error bodies.

mod blobs;
mod error;
mod manifests;
mod uploads;

use std::sync::Arc;

pub use error::RegistryError;
pub use manifests::{ManifestContent, PutManifest};
pub use uploads::{UploadId, Uploads};

use crate::storage::FsStore;

pub type RegistryResult<T> = Result<T, RegistryError>;

/// The registry: storage plus the live upload sessions. Shared by all
/// requests behind an `Arc`.
pub struct Registry {
    store: Arc<FsStore>,
    uploads: Uploads,
}

impl Registry {
    pub fn new(store: Arc<FsStore>) -> Self {
        Self {
            store,
            uploads: Uploads::default(),
        }
    }

    pub fn store(&self) -> &FsStore {
        &self.store
    }
}

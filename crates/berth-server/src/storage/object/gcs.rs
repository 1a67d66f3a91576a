//! The Google Cloud Storage client of [`BucketStore`] (feature `gcs`):
//! zot's `gcs` keys. Credentials are a service account key (a file, or
//! the key's JSON itself), else Google's application default credentials
//! (`GOOGLE_APPLICATION_CREDENTIALS`, the instance's metadata server).
//!
//! zot has no key for another endpoint than Google's: as with
//! `object_store`, a service account key may name one in
//! `"gcs_base_url"` (an emulator's address; `http://` allowed) with
//! `"disable_oauth": true` to send no token.

use object_store::gcp::GoogleCloudStorageBuilder;

use super::{BucketSettings, BucketStore, Clients, Limits, backend_err};
use crate::storage::StorageResult;
use crate::storage::locks::RepoLocks;

/// zot's `storage.storageDriver` keys for `gcs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcsOptions {
    pub settings: BucketSettings,
    pub bucket: String,
    /// A service account key file (`keyfile`, zot's `credentialsFile`).
    pub key_file: Option<std::path::PathBuf>,
    /// A service account key itself, as JSON (`credentials`).
    pub key: Option<String>,
}

impl BucketStore {
    /// Connects to a GCS bucket (no request is made until the first use;
    /// a key file is read now).
    pub fn open_gcs(opts: &GcsOptions, locks: RepoLocks) -> StorageResult<Self> {
        let location = format!(
            "gs://{}/{}",
            opts.bucket,
            opts.settings.root_directory.trim_matches('/')
        );
        let key = match (&opts.key_file, &opts.key) {
            (Some(path), _) => Some(std::fs::read_to_string(path).map_err(|e| {
                backend_err(&location, format!("cannot read {}: {e}", path.display()))
            })?),
            (None, key) => key.clone(),
        };
        let mut b = GoogleCloudStorageBuilder::new().with_bucket_name(&opts.bucket);
        let mut allow_http = false;
        if let Some(key) = key {
            let base_url = serde_json::from_str::<serde_json::Value>(&key)
                .ok()
                .and_then(|v| v.get("gcs_base_url")?.as_str().map(str::to_string));
            allow_http = base_url.is_some_and(|u| u.starts_with("http://"));
            b = b.with_service_account_key(key);
        }
        let limits = Limits {
            max_copy: None,
            max_parts: 10_000,
        };
        let clients = Clients::build(location, limits, allow_http, false, |options, retry| {
            b.clone()
                .with_client_options(options)
                .with_retry(retry)
                .build()
        })?;
        Ok(Self::new(clients, &opts.settings, locks))
    }
}

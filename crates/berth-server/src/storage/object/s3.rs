//! The S3 client of [`BucketStore`] (feature `s3`): zot's `s3` keys, any
//! S3-compatible endpoint, path or virtual-hosted style.

use object_store::aws::AmazonS3Builder;

use super::{BucketSettings, BucketStore, Clients, Limits};
use crate::storage::StorageResult;
use crate::storage::locks::RepoLocks;

/// The largest object one CopyObject moves.
const MAX_COPY: u64 = 5 << 30;

/// zot's `storage.storageDriver` keys for `s3`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    pub root_directory: String,
    pub region: Option<String>,
    pub region_endpoint: Option<String>,
    pub bucket: String,
    pub force_path_style: bool,
    pub secure: bool,
    pub skip_verify: bool,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// `storage.redirectBlobURL`: blob GETs answer 307 to a presigned URL.
    pub redirect_blob_url: bool,
    /// `storage.dedupe`: store each blob once, linked from repositories.
    pub dedupe: bool,
}

impl BucketStore {
    /// Connects to an S3 bucket (no request is made until the first use).
    pub fn open_s3(opts: &S3Options, locks: RepoLocks) -> StorageResult<Self> {
        let location = format!(
            "s3://{}/{}",
            opts.bucket,
            opts.root_directory.trim_matches('/')
        );
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&opts.bucket)
            .with_region(opts.region.as_deref().unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(!opts.force_path_style);
        let mut allow_http = false;
        if let Some(ep) = &opts.region_endpoint {
            let ep = if ep.contains("://") {
                ep.clone()
            } else if opts.secure {
                format!("https://{ep}")
            } else {
                format!("http://{ep}")
            };
            allow_http = ep.starts_with("http://");
            b = b.with_endpoint(ep);
        }
        if let (Some(k), Some(s)) = (&opts.access_key, &opts.secret_key) {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        let clients = Clients::build(
            location,
            Limits {
                max_copy: Some(MAX_COPY),
                max_parts: 10_000,
            },
            allow_http,
            opts.skip_verify,
            |options, retry| {
                b.clone()
                    .with_client_options(options)
                    .with_retry(retry)
                    .build()
            },
        )?;
        let settings = BucketSettings {
            root_directory: opts.root_directory.clone(),
            redirect_blob_url: opts.redirect_blob_url,
            dedupe: opts.dedupe,
        };
        Ok(Self::new(clients, &settings, locks))
    }
}

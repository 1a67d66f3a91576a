//! [`BucketStore`]: OCI image layouts in an object store bucket (S3 or
//! any S3-compatible store, Google Cloud Storage, an Azure Blob container),
//! through `object_store`. One implementation serves the three providers:
//! each provider's file (`s3.rs`, `gcs.rs`, `azure.rs`, one cargo feature
//! each) only builds its client from zot's keys and says its limits.
//!
//! ```text
//! <rootdirectory>/<repo>/oci-layout
//! <rootdirectory>/<repo>/index.json
//! <rootdirectory>/<repo>/blobs/<alg>/<hex>    a blob (dedupe off)
//! <rootdirectory>/<repo>/_links/<alg>/<hex>   "<size> <data key>" (dedupe on)
//! <rootdirectory>/<repo>/.uploads/<id>        session state and unsent tail
//! <rootdirectory>/<repo>/.uploads/<id>.data   a multipart upload's object (dedupe off)
//! <rootdirectory>/.berth/data/<id>            a blob's bytes (dedupe on)
//! <rootdirectory>/.berth/blobs/<alg>/<hex>    "<size> <data key>": where a digest is stored
//! <rootdirectory>/.berth/refs/<alg>/<hex>/<repo>   who links it
//! <rootdirectory>/_cosign/…, _notation/…     root-level files (`files.rs`: trust material)
//! ```
//!
//! With `dedupe` off this is the layout on disk, so a bucket synced to a
//! directory is an OCI layout; completing an upload copies its object to
//! the blob's key (no provider has a rename; on S3 one CopyObject, so up to
//! 5 GiB). With `dedupe` on (the default, as on disk) a blob's bytes are
//! stored once, where its upload put them, and each repository holding it
//! has a link; a commit or a mount writes small objects and copies no bytes
//! (see `shared.rs`). Reads follow a link first and fall back to a plain
//! blob, so content written with either setting stays readable after a
//! change.
//!
//! Uploads (`uploads.rs`) are multipart uploads of fixed 5 MiB parts (S3's
//! and GCS's minimum part; Azure's blocks have none): S3 and GCS take
//! 10,000 parts (about 48 GiB per blob), Azure 50,000 blocks (about
//! 244 GiB). Objects appear whole: a PUT or a multipart completion, after
//! the digest was checked.

#[cfg(feature = "azure")]
mod azure;
mod files;
#[cfg(feature = "gcs")]
mod gcs;
mod layout;
#[cfg(feature = "s3")]
mod s3;
mod shared;
mod uploads;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_oci::{Digest, RepoName};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjPath;
use object_store::signer::Signer;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use super::backend::{Blobs, ByteStream, Store};
use super::locks::RepoLocks;
use super::{IndexVersion, StorageError, StorageResult};

#[cfg(feature = "azure")]
pub use azure::{AzureCredentials, AzureOptions};
#[cfg(feature = "gcs")]
pub use gcs::GcsOptions;
#[cfg(feature = "s3")]
pub use s3::S3Options;

/// How long a failing request to the bucket is retried.
const RETRY_FOR: Duration = Duration::from_secs(10);
/// How long a health check of the bucket may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a presigned blob URL stays valid.
const PRESIGN_FOR: Duration = Duration::from_secs(20 * 60);

/// What the store needs of a provider's client: objects, multipart uploads
/// that span requests, and presigned URLs. `object_store` implements all
/// three for S3, GCS and Azure.
trait Bucket: ObjectStore + MultipartStore + Signer {}

impl<T: ObjectStore + MultipartStore + Signer> Bucket for T {}

/// A provider's two clients for one bucket, as its file builds them.
struct Clients {
    /// Requests of the registry: retried for about [`RETRY_FOR`].
    bucket: Arc<dyn Bucket>,
    /// The health checks': one try, answered within [`PROBE_TIMEOUT`].
    probe: Arc<dyn Bucket>,
    /// `scheme://bucket/prefix`, for errors and the logs.
    location: String,
    limits: Limits,
}

/// What a provider takes.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The largest object one server-side copy moves, if the provider
    /// has such a bound (S3's CopyObject: 5 GiB).
    max_copy: Option<u64>,
    /// The most parts of one multipart upload (S3 and GCS 10,000; Azure
    /// 50,000 blocks).
    max_parts: usize,
}

/// What every provider's options share: zot's `rootdirectory` and the two
/// `storage` settings the store acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketSettings {
    /// The key prefix inside the bucket (`rootdirectory`).
    pub root_directory: String,
    /// `storage.redirectBlobURL`: blob GETs answer 307 to a presigned URL.
    pub redirect_blob_url: bool,
    /// `storage.dedupe`: store each blob once, linked from repositories.
    pub dedupe: bool,
}

/// The store in a bucket. Cheap to share behind an `Arc`.
pub struct BucketStore {
    bucket: Arc<dyn Bucket>,
    /// The same bucket without retries and with a short timeout, for
    /// [`Layout::reachable`](super::backend::Layout::reachable).
    probe: Arc<dyn Bucket>,
    prefix: String,
    location: String,
    redirect: bool,
    dedupe: bool,
    limits: Limits,
    locks: Arc<RepoLocks>,
    /// The version (ETag and generation) of each `index.json` read for an
    /// update, which the write that follows must still find (see
    /// `write_index`).
    index_versions: std::sync::Mutex<std::collections::HashMap<String, Option<IndexRead>>>,
}

/// The version of an `index.json` read under its lock: its ETag (S3,
/// Azure: If-Match) and its generation (GCS: `x-goog-if-generation-match`).
#[derive(Debug, Clone)]
struct IndexRead {
    e_tag: Option<String>,
    version: Option<String>,
}

/// An error of the bucket as what happened. object_store gives no
/// "unreachable" variant: a request that could not be sent or got no
/// answer (after the retries) is a `Generic` error whose source chain holds
/// an I/O error or a timeout, so the chain is searched for one. Anything
/// else (a status the service answered, a body that does not parse) is a
/// backend error.
fn backend_err(location: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend {
        location: location.to_string(),
        message: e.to_string(),
    }
}

fn classify(location: &str, e: &object_store::Error) -> StorageError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if s.is::<std::io::Error>()
            || text.contains("timed out")
            || text.contains("error sending request")
            || text.contains("connection")
        {
            return StorageError::Unavailable {
                service: format!("the storage backend ({location})"),
                message: e.to_string(),
            };
        }
        source = s.source();
    }
    backend_err(location, e)
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// The retries of the registry's client: a failing request is retried,
/// with a backoff of 100 ms doubling up to 1 s, for about [`RETRY_FOR`]
/// (whatever their count): a blip or a restart of the service is ridden
/// out, an outage is reported after that. object_store retries a request
/// that could not be sent, or got a 5xx or 429, always; one sent but not
/// answered in time only when it is idempotent (reads, deletes, plain puts
/// and the multipart calls; not the conditional `index.json` writes nor
/// copies, which may have taken effect).
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: usize::MAX,
        retry_timeout: RETRY_FOR,
    }
}

/// The health checks' retries: none.
fn no_retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 0,
        ..Default::default()
    }
}

/// The HTTP options of the registry's client and of the probe's.
fn client_options(allow_http: bool, skip_verify: bool) -> (ClientOptions, ClientOptions) {
    let main = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_allow_invalid_certificates(skip_verify);
    let probe = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_allow_invalid_certificates(skip_verify)
        .with_connect_timeout(PROBE_TIMEOUT)
        .with_timeout(PROBE_TIMEOUT);
    (main, probe)
}

impl Clients {
    /// Builds a provider's two clients with `build` (its builder, given
    /// the HTTP options and the retries).
    fn build<B: Bucket + 'static>(
        location: String,
        limits: Limits,
        allow_http: bool,
        skip_verify: bool,
        build: impl Fn(ClientOptions, object_store::RetryConfig) -> object_store::Result<B>,
    ) -> StorageResult<Self> {
        let (options, probe_options) = client_options(allow_http, skip_verify);
        let probe = build(probe_options, no_retry()).map_err(|e| backend_err(&location, e))?;
        let bucket = build(options, retry()).map_err(|e| backend_err(&location, e))?;
        Ok(Self {
            bucket: Arc::new(bucket),
            probe: Arc::new(probe),
            location,
            limits,
        })
    }
}

impl BucketStore {
    /// The store over a provider's clients (no request is made until the
    /// first use).
    fn new(clients: Clients, settings: &BucketSettings, locks: RepoLocks) -> Self {
        Self {
            bucket: clients.bucket,
            probe: clients.probe,
            prefix: settings.root_directory.trim_matches('/').to_string(),
            location: clients.location,
            redirect: settings.redirect_blob_url,
            dedupe: settings.dedupe,
            limits: clients.limits,
            locks: Arc::new(locks),
            index_versions: std::sync::Mutex::default(),
        }
    }

    /// The store as the registry uses it: its three seams and its locks.
    pub fn into_store(self) -> Store {
        let (locks, location) = (self.locks.clone(), self.location.clone());
        Store::new(Arc::new(self), locks, location)
    }

    fn key(&self, rel: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn repo_key(&self, repo: &RepoName, rel: &str) -> ObjPath {
        self.key(&format!("{repo}/{rel}"))
    }

    fn blob_key(&self, repo: &RepoName, digest: &Digest) -> ObjPath {
        self.repo_key(
            repo,
            &format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex()),
        )
    }

    fn data_key(&self, repo: &RepoName, id: &str) -> ObjPath {
        self.repo_key(repo, &format!(".uploads/{id}.data"))
    }

    fn upload_key(&self, repo: &RepoName, id: &str) -> ObjPath {
        self.repo_key(repo, &format!(".uploads/{id}"))
    }

    /// A failure of a request to the bucket.
    fn err(&self, e: object_store::Error) -> StorageError {
        classify(&self.location, &e)
    }

    /// Anything else that went wrong with what the bucket holds.
    fn fail(&self, e: impl std::fmt::Display) -> StorageError {
        backend_err(&self.location, e)
    }

    async fn get_bytes(&self, key: &ObjPath) -> StorageResult<Option<Bytes>> {
        match self.bucket.get(key).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.err(e))?)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn head(&self, key: &ObjPath) -> StorageResult<Option<object_store::ObjectMeta>> {
        match self.bucket.head(key).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn delete(&self, key: &ObjPath) -> StorageResult<bool> {
        if self.head(key).await?.is_none() {
            return Ok(false);
        }
        match self.bucket.delete(key).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn put(&self, key: &ObjPath, bytes: Bytes) -> StorageResult<()> {
        self.bucket
            .put(key, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// The version of an object: its ETag, which the service changes with every
/// write (with its size and time where a service gives no ETag).
fn version_of(m: &object_store::ObjectMeta) -> IndexVersion {
    match &m.e_tag {
        Some(tag) => IndexVersion::new(format!("etag:{tag}")),
        None => IndexVersion::new(format!(
            "modified:{}:{}",
            m.last_modified.timestamp_nanos_opt().unwrap_or_default(),
            m.size
        )),
    }
}

#[async_trait::async_trait]
impl Blobs for BucketStore {
    /// With dedupe, the repositories linking the digest (its `refs/`
    /// keys; at most 100).
    async fn holders(&self, digest: &Digest) -> StorageResult<Vec<RepoName>> {
        if !self.dedupe {
            return Ok(Vec::new());
        }
        self.linking(digest, 100).await
    }

    async fn blob_len(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<u64>> {
        Ok(self.locate(repo, digest).await?.map(|(_, size, _)| size))
    }

    async fn blob_modified(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<Option<SystemTime>> {
        Ok(self.locate(repo, digest).await?.map(|(_, _, t)| t))
    }

    async fn read_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        start: u64,
        count: u64,
    ) -> StorageResult<Option<ByteStream>> {
        let Some((key, _, _)) = self.locate(repo, digest).await? else {
            return Ok(None);
        };
        if count == 0 {
            return Ok(Some(Box::pin(futures_util::stream::empty())));
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..start + count)),
            ..Default::default()
        };
        match self.bucket.get_opts(&key, opts).await {
            Ok(r) => Ok(Some(Box::pin(
                r.into_stream().map_err(std::io::Error::other),
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn read_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<Vec<u8>>> {
        let Some((key, _, _)) = self.locate(repo, digest).await? else {
            return Ok(None);
        };
        Ok(self.get_bytes(&key).await?.map(|b| b.to_vec()))
    }

    async fn put_blob_bytes(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> StorageResult<()> {
        if !self.dedupe {
            // Written again when present: the new object's date is the
            // push's, for GC's delay.
            return self.put(&self.blob_key(repo, digest), bytes).await;
        }
        self.put_shared(repo, digest, bytes).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<bool> {
        let _blob = self.lock_blob(digest).await?;
        let linked = self.unlink(repo, digest).await?;
        let plain = self.delete(&self.blob_key(repo, digest)).await?;
        Ok(linked || plain)
    }

    /// With dedupe, a link (no bytes move); without, a server-side copy.
    async fn link_blob(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        if self.blob_len(to, digest).await?.is_some() {
            return Ok(true);
        }
        self.link_from(from, to, digest).await
    }

    async fn list_blobs(&self, repo: &RepoName) -> StorageResult<Vec<Digest>> {
        let mut out = std::collections::BTreeSet::new();
        for dir in ["blobs", "_links"] {
            for alg in ["sha256", "sha512"] {
                let prefix = self.repo_key(repo, &format!("{dir}/{alg}"));
                let listed = self
                    .bucket
                    .list_with_delimiter(Some(&prefix))
                    .await
                    .map_err(|e| self.err(e))?;
                out.extend(listed.objects.iter().filter_map(|o| {
                    format!("{alg}:{}", o.location.filename()?)
                        .parse::<Digest>()
                        .ok()
                }));
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn blob_url(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<String>> {
        if !self.redirect {
            return Ok(None);
        }
        let Some((key, _, _)) = self.locate(repo, digest).await? else {
            return Ok(None);
        };
        let url = self
            .bucket
            .signed_url(http::Method::GET, &key, PRESIGN_FOR)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Some(url.to_string()))
    }

    async fn sweep(&self, delay: Duration) -> StorageResult<usize> {
        self.sweep_shared(delay).await
    }
}

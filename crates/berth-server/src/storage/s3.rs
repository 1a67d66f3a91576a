//! [`S3Store`]: OCI image layouts in an S3 bucket (or any S3-compatible
//! store), through `object_store`.
//!
//! ```text
//! <rootdirectory>/<repo>/oci-layout
//! <rootdirectory>/<repo>/index.json
//! <rootdirectory>/<repo>/blobs/<alg>/<hex>    a blob (dedupe off)
//! <rootdirectory>/<repo>/_links/<alg>/<hex>   a link to a shared blob (dedupe on)
//! <rootdirectory>/<repo>/.uploads/<id>        session state and unsent tail
//! <rootdirectory>/<repo>/.uploads/<id>.data   the multipart upload's object
//! <rootdirectory>/.berth/blobs/<alg>/<hex>    shared blobs (dedupe on)
//! <rootdirectory>/.berth/refs/<alg>/<hex>/<repo>   who links a shared blob
//! ```
//!
//! With `dedupe` off this is the layout on disk, so a bucket synced to a
//! directory is an OCI layout. With `dedupe` on (the default, as on disk) a
//! blob is stored once under `.berth/blobs/` and each repository holding it
//! has a link (its body: the size) plus an entry under `.berth/refs/`; a
//! mount writes two small objects and copies no bytes. Reads follow a link
//! first and fall back to a plain blob, so content written with either
//! setting stays readable after the setting changes. A shared blob goes
//! when no repository links it any more ([`BlobStore::sweep`], after GC);
//! linking and sweeping one digest take the lock `blob:<digest>`, shared
//! across instances like every other lock.
//!
//! Objects appear whole: a PUT or a multipart completion.
//!
//! An upload is an S3 multipart upload of fixed 5 MiB parts (S3's minimum,
//! and R2 wants equal parts). Bytes short of a part wait in the session's
//! state object together with the size, the SHA-256 state and the part ids,
//! all written by one PUT after each chunk, so the next chunk can go to any
//! instance. Completion turns the parts into `<id>.data` and copies it to
//! the blob's key (S3 has no rename); a small blob is one PUT.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_oci::media::OCI_LAYOUT_VERSION;
use berth_oci::{Digest, RepoName};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjPath;
use object_store::signer::Signer;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::backend::{BlobStore, ByteStream, ChunkReceiver, UploadEntry, UploadState};
use super::index::OciIndex;
use super::locks::{RepoGuard, RepoLocks};
use super::{StorageError, StorageResult};
use crate::meta::Fingerprint;

/// The part size of multipart uploads.
const PART: usize = 5 << 20;
/// How long a presigned blob URL stays valid.
const PRESIGN_FOR: Duration = Duration::from_secs(20 * 60);

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

/// The S3 store. Cheap to share behind an `Arc`.
pub struct S3Store {
    s3: Arc<AmazonS3>,
    prefix: String,
    location: String,
    redirect: bool,
    dedupe: bool,
    locks: RepoLocks,
}

/// What a session keeps besides its size and hash state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MultipartState {
    /// The S3 multipart upload, once a first part was sent.
    multipart: Option<String>,
    /// Part ids in order.
    parts: Vec<String>,
    /// The parts were already completed into `<id>.data` (to re-hash
    /// them); only the copy to the blob's key remains.
    completed: bool,
}

/// The state object: size and hash state, then the multipart bookkeeping.
#[derive(Serialize, Deserialize)]
struct SavedUpload {
    size: u64,
    hash_state: Option<String>,
    #[serde(flatten)]
    multipart: MultipartState,
}

fn backend_err(location: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend {
        location: location.to_string(),
        message: e.to_string(),
    }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// Splits a session's backend bytes into its bookkeeping and its tail.
fn split_backend(bytes: &[u8]) -> (MultipartState, Vec<u8>) {
    let Some(nl) = bytes.iter().position(|b| *b == b'\n') else {
        return (MultipartState::default(), Vec::new());
    };
    let state = serde_json::from_slice(&bytes[..nl]).unwrap_or_default();
    (state, bytes[nl + 1..].to_vec())
}

fn join_backend(state: &MultipartState, tail: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(state).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(tail);
    out
}

impl S3Store {
    /// Connects to the bucket (no request is made until the first use).
    pub fn open(opts: &S3Options, locks: RepoLocks) -> StorageResult<Self> {
        let location = format!(
            "s3://{}/{}",
            opts.bucket,
            opts.root_directory.trim_matches('/')
        );
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&opts.bucket)
            .with_region(opts.region.as_deref().unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(!opts.force_path_style);
        if let Some(ep) = &opts.region_endpoint {
            let ep = if ep.contains("://") {
                ep.clone()
            } else if opts.secure {
                format!("https://{ep}")
            } else {
                format!("http://{ep}")
            };
            b = b
                .with_allow_http(ep.starts_with("http://"))
                .with_endpoint(ep);
        }
        if let (Some(k), Some(s)) = (&opts.access_key, &opts.secret_key) {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        if opts.skip_verify {
            b = b.with_client_options(ClientOptions::new().with_allow_invalid_certificates(true));
        }
        let s3 = b.build().map_err(|e| backend_err(&location, e))?;
        Ok(Self {
            s3: Arc::new(s3),
            prefix: opts.root_directory.trim_matches('/').to_string(),
            location,
            redirect: opts.redirect_blob_url,
            dedupe: opts.dedupe,
            locks,
        })
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

    fn link_key(&self, repo: &RepoName, digest: &Digest) -> ObjPath {
        self.repo_key(
            repo,
            &format!("_links/{}/{}", digest.algorithm().as_str(), digest.hex()),
        )
    }

    fn shared_key(&self, digest: &Digest) -> ObjPath {
        self.key(&format!(
            ".berth/blobs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    fn refs_prefix(&self, digest: &Digest) -> ObjPath {
        self.key(&format!(
            ".berth/refs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    fn ref_key(&self, repo: &RepoName, digest: &Digest) -> ObjPath {
        self.key(&format!(
            ".berth/refs/{}/{}/{repo}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    /// Where the repository's blob is: the shared object its link points
    /// to, or its own plain object. With the link's date (or the plain
    /// object's) and the blob's size.
    async fn locate(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<Option<(ObjPath, u64, SystemTime)>> {
        let link = self.link_key(repo, digest);
        match self.s3.get(&link).await {
            Ok(r) => {
                let modified: SystemTime = r.meta.last_modified.into();
                let body = r.bytes().await.map_err(|e| self.err(e))?;
                let size = std::str::from_utf8(&body)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| StorageError::Corrupt {
                        path: link.to_string().into(),
                        message: "a link's body is the blob's size".into(),
                    })?;
                return Ok(Some((self.shared_key(digest), size, modified)));
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(self.err(e)),
        }
        let plain = self.blob_key(repo, digest);
        Ok(self
            .head(&plain)
            .await?
            .map(|m| (plain, m.size, m.last_modified.into())))
    }

    /// Links `repo` to the shared blob (the caller holds `blob:<digest>`
    /// and the shared blob exists).
    async fn write_link(&self, repo: &RepoName, digest: &Digest, size: u64) -> StorageResult<()> {
        self.put(&self.ref_key(repo, digest), Bytes::new()).await?;
        self.put(&self.link_key(repo, digest), Bytes::from(size.to_string()))
            .await
    }

    async fn lock_blob(&self, digest: &Digest) -> StorageResult<RepoGuard> {
        self.locks.lock(&format!("blob:{digest}")).await
    }

    fn upload_key(&self, repo: &RepoName, id: &str) -> ObjPath {
        self.repo_key(repo, &format!(".uploads/{id}"))
    }

    fn data_key(&self, repo: &RepoName, id: &str) -> ObjPath {
        self.repo_key(repo, &format!(".uploads/{id}.data"))
    }

    fn err(&self, e: impl std::fmt::Display) -> StorageError {
        backend_err(&self.location, e)
    }

    async fn get_bytes(&self, key: &ObjPath) -> StorageResult<Option<Bytes>> {
        match self.s3.get(key).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.err(e))?)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn head(&self, key: &ObjPath) -> StorageResult<Option<object_store::ObjectMeta>> {
        match self.s3.head(key).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn delete(&self, key: &ObjPath) -> StorageResult<bool> {
        if self.head(key).await?.is_none() {
            return Ok(false);
        }
        match self.s3.delete(key).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn put(&self, key: &ObjPath, bytes: Bytes) -> StorageResult<()> {
        self.s3
            .put(key, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Sends the tail's whole parts; what is left stays in `tail`.
    async fn send_parts(
        &self,
        repo: &RepoName,
        id: &str,
        mp: &mut MultipartState,
        tail: &mut Vec<u8>,
        last: bool,
    ) -> StorageResult<()> {
        while tail.len() >= PART || (last && !tail.is_empty() && mp.multipart.is_some()) {
            let key = self.data_key(repo, id);
            let upload = match &mp.multipart {
                Some(u) => u.clone(),
                None => {
                    let u = self
                        .s3
                        .create_multipart(&key)
                        .await
                        .map_err(|e| self.err(e))?;
                    mp.multipart = Some(u.clone());
                    u
                }
            };
            let n = tail.len().min(PART);
            let part: Vec<u8> = tail.drain(..n).collect();
            let pid = self
                .s3
                .put_part(&key, &upload, mp.parts.len(), PutPayload::from(part))
                .await
                .map_err(|e| self.err(e))?;
            mp.parts.push(pid.content_id);
        }
        Ok(())
    }

    /// Completes the multipart upload into `<id>.data`, tail included.
    async fn complete(
        &self,
        repo: &RepoName,
        id: &str,
        mp: &mut MultipartState,
        tail: &mut Vec<u8>,
    ) -> StorageResult<()> {
        if mp.completed {
            return Ok(());
        }
        self.send_parts(repo, id, mp, tail, true).await?;
        let Some(upload) = &mp.multipart else {
            return Ok(());
        };
        let parts = mp
            .parts
            .iter()
            .map(|c| PartId {
                content_id: c.clone(),
            })
            .collect();
        self.s3
            .complete_multipart(&self.data_key(repo, id), upload, parts)
            .await
            .map_err(|e| self.err(e))?;
        mp.completed = true;
        Ok(())
    }
}

/// A version of an object as a [`Fingerprint`]: the ETag's hash stands in
/// for the inode.
fn fingerprint_of(m: &object_store::ObjectMeta) -> Fingerprint {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.e_tag.hash(&mut h);
    let t: SystemTime = m.last_modified.into();
    Fingerprint {
        inode: h.finish(),
        len: m.size,
        mtime_ns: t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn locks(&self) -> &RepoLocks {
        &self.locks
    }

    async fn repo_exists(&self, repo: &RepoName) -> StorageResult<bool> {
        Ok(self
            .head(&self.repo_key(repo, "index.json"))
            .await?
            .is_some())
    }

    async fn create_repo(&self, _guard: &RepoGuard, repo: &RepoName) -> StorageResult<()> {
        if self.repo_exists(repo).await? {
            return Ok(());
        }
        let layout = format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}");
        self.put(&self.repo_key(repo, "oci-layout"), Bytes::from(layout))
            .await?;
        let index = serde_json::to_vec(&OciIndex::default()).map_err(|e| self.err(e))?;
        self.put(&self.repo_key(repo, "index.json"), Bytes::from(index))
            .await
    }

    /// Walks the bucket level by level: a level holding `index.json` is a
    /// repository; its `blobs/` and dot-directories are not descended into.
    async fn list_repos(&self) -> StorageResult<Vec<RepoName>> {
        let mut out = Vec::new();
        let root = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        let mut stack = vec![(root, String::new())];
        while let Some((dir, name)) = stack.pop() {
            let listed = self
                .s3
                .list_with_delimiter(dir.as_ref())
                .await
                .map_err(|e| self.err(e))?;
            let is_repo = !name.is_empty()
                && listed
                    .objects
                    .iter()
                    .any(|o| o.location.filename() == Some("index.json"));
            if is_repo && let Ok(r) = name.parse() {
                out.push(r);
            }
            for p in listed.common_prefixes {
                let Some(part) = p.filename().map(str::to_string) else {
                    continue;
                };
                if (is_repo && part == "blobs")
                    || !part
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    continue;
                }
                let child = if name.is_empty() {
                    part
                } else {
                    format!("{name}/{part}")
                };
                stack.push((Some(p), child));
            }
        }
        out.sort();
        Ok(out)
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
        match self.s3.get_opts(&key, opts).await {
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

    /// Written again when present: the new object's date is the push's,
    /// for GC's delay.
    async fn put_blob_bytes(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> StorageResult<()> {
        if !self.dedupe {
            return self.put(&self.blob_key(repo, digest), bytes).await;
        }
        let _blob = self.lock_blob(digest).await?;
        let size = bytes.len() as u64;
        if self.head(&self.shared_key(digest)).await?.is_none() {
            self.put(&self.shared_key(digest), bytes).await?;
        }
        self.write_link(repo, digest, size).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> StorageResult<bool> {
        let _blob = self.lock_blob(digest).await?;
        let linked = self.delete(&self.link_key(repo, digest)).await?;
        if linked {
            self.delete(&self.ref_key(repo, digest)).await?;
        }
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
        let _blob = self.lock_blob(digest).await?;
        let Some((key, size, _)) = self.locate(from, digest).await? else {
            return Ok(false);
        };
        if self.dedupe && key == self.shared_key(digest) {
            self.write_link(to, digest, size).await?;
            return Ok(true);
        }
        let dest = if self.dedupe {
            self.shared_key(digest)
        } else {
            self.blob_key(to, digest)
        };
        match self.s3.copy(&key, &dest).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(self.err(e)),
        }
        if self.dedupe {
            self.write_link(to, digest, size).await?;
        }
        Ok(true)
    }

    async fn list_blobs(&self, repo: &RepoName) -> StorageResult<Vec<Digest>> {
        let mut out = std::collections::BTreeSet::new();
        for dir in ["blobs", "_links"] {
            for alg in ["sha256", "sha512"] {
                let prefix = self.repo_key(repo, &format!("{dir}/{alg}"));
                let listed = self
                    .s3
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

    /// Removes shared blobs no repository links, older than `delay`.
    async fn sweep(&self, delay: Duration) -> StorageResult<usize> {
        let mut removed = 0;
        let mut shared = Vec::new();
        for alg in ["sha256", "sha512"] {
            let prefix = self.key(&format!(".berth/blobs/{alg}"));
            let listed = self
                .s3
                .list_with_delimiter(Some(&prefix))
                .await
                .map_err(|e| self.err(e))?;
            shared.extend(listed.objects.into_iter().filter_map(|o| {
                let d = format!("{alg}:{}", o.location.filename()?)
                    .parse::<Digest>()
                    .ok()?;
                let t: SystemTime = o.last_modified.into();
                Some((d, t))
            }));
        }
        for (digest, modified) in shared {
            if SystemTime::now()
                .duration_since(modified)
                .map_or(true, |age| age < delay)
            {
                continue;
            }
            let _blob = self.lock_blob(&digest).await?;
            let mut refs = self.s3.list(Some(&self.refs_prefix(&digest)));
            let linked = match refs.next().await {
                Some(Ok(_)) => true,
                Some(Err(e)) => return Err(self.err(e)),
                None => false,
            };
            if !linked && self.delete(&self.shared_key(&digest)).await? {
                tracing::info!(target: "berth::gc", root = %self.location, %digest, reason = "shared blob no repository links", "deleted");
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn blob_url(&self, repo: &RepoName, digest: &Digest) -> StorageResult<Option<String>> {
        if !self.redirect {
            return Ok(None);
        }
        let Some((key, _, _)) = self.locate(repo, digest).await? else {
            return Ok(None);
        };
        let url = self
            .s3
            .signed_url(http::Method::GET, &key, PRESIGN_FOR)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Some(url.to_string()))
    }

    async fn read_index(&self, repo: &RepoName) -> StorageResult<Option<OciIndex>> {
        let key = self.repo_key(repo, "index.json");
        let Some(bytes) = self.get_bytes(&key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                path: key.to_string().into(),
                message: e.to_string(),
            })
    }

    async fn index_fingerprint(&self, repo: &RepoName) -> StorageResult<Option<Fingerprint>> {
        Ok(self
            .head(&self.repo_key(repo, "index.json"))
            .await?
            .map(|m| fingerprint_of(&m)))
    }

    async fn index_for_update(
        &self,
        _guard: &RepoGuard,
        repo: &RepoName,
    ) -> StorageResult<OciIndex> {
        Ok(self.read_index(repo).await?.unwrap_or_default())
    }

    async fn write_index(
        &self,
        _guard: &RepoGuard,
        repo: &RepoName,
        index: OciIndex,
    ) -> StorageResult<()> {
        let bytes = serde_json::to_vec(&index).map_err(|e| self.err(e))?;
        self.put(&self.repo_key(repo, "index.json"), Bytes::from(bytes))
            .await
    }

    async fn upload_create(&self, repo: &RepoName, id: &str) -> StorageResult<UploadState> {
        let state = UploadState {
            trusted: true,
            backend: join_backend(&MultipartState::default(), &[]),
            ..Default::default()
        };
        self.upload_save(repo, id, &state).await?;
        Ok(state)
    }

    async fn upload_load(&self, repo: &RepoName, id: &str) -> StorageResult<Option<UploadState>> {
        let Some(bytes) = self.get_bytes(&self.upload_key(repo, id)).await? else {
            return Ok(None);
        };
        let Some(nl) = bytes.iter().position(|b| *b == b'\n') else {
            return Err(StorageError::Corrupt {
                path: self.upload_key(repo, id).to_string().into(),
                message: "no header".into(),
            });
        };
        let saved: SavedUpload =
            serde_json::from_slice(&bytes[..nl]).map_err(|e| StorageError::Corrupt {
                path: self.upload_key(repo, id).to_string().into(),
                message: e.to_string(),
            })?;
        Ok(Some(UploadState {
            size: saved.size,
            hash_state: saved.hash_state.and_then(|h| hex::decode(h).ok()),
            trusted: true,
            backend: join_backend(&saved.multipart, &bytes[nl + 1..]),
        }))
    }

    async fn upload_append(
        &self,
        repo: &RepoName,
        id: &str,
        state: &mut UploadState,
        mut data: ChunkReceiver,
    ) -> StorageResult<()> {
        let (mut mp, mut tail) = split_backend(&state.backend);
        if mp.completed {
            return Err(self.err(format!("upload {id} is already complete")));
        }
        let mut result = Ok(());
        while let Some(chunk) = data.recv().await {
            tail.extend_from_slice(&chunk);
            if tail.len() >= PART
                && let Err(e) = self.send_parts(repo, id, &mut mp, &mut tail, false).await
            {
                result = Err(e);
                break;
            }
        }
        // Whatever was received is kept in the state (a failed part stays
        // in the tail and is sent again).
        state.backend = join_backend(&mp, &tail);
        result
    }

    async fn upload_save(
        &self,
        repo: &RepoName,
        id: &str,
        state: &UploadState,
    ) -> StorageResult<()> {
        let (mp, tail) = split_backend(&state.backend);
        let saved = SavedUpload {
            size: state.size,
            hash_state: state.hash_state.as_deref().map(hex::encode),
            multipart: mp,
        };
        let mut body = serde_json::to_vec(&saved).map_err(|e| self.err(e))?;
        body.push(b'\n');
        body.extend_from_slice(&tail);
        self.put(&self.upload_key(repo, id), Bytes::from(body))
            .await
    }

    async fn upload_read(
        &self,
        repo: &RepoName,
        id: &str,
        state: &mut UploadState,
    ) -> StorageResult<ByteStream> {
        let (mut mp, mut tail) = split_backend(&state.backend);
        self.complete(repo, id, &mut mp, &mut tail).await?;
        state.backend = join_backend(&mp, &tail);
        let tail_stream =
            futures_util::stream::iter((!tail.is_empty()).then(|| Ok(Bytes::from(tail))));
        if !mp.completed {
            return Ok(Box::pin(tail_stream));
        }
        let r = self
            .s3
            .get(&self.data_key(repo, id))
            .await
            .map_err(|e| self.err(e))?;
        Ok(Box::pin(
            r.into_stream()
                .map_err(std::io::Error::other)
                .chain(tail_stream),
        ))
    }

    async fn upload_commit(
        &self,
        repo: &RepoName,
        id: &str,
        state: UploadState,
        digest: &Digest,
    ) -> StorageResult<()> {
        let (mut mp, mut tail) = split_backend(&state.backend);
        let _blob = if self.dedupe {
            Some(self.lock_blob(digest).await?)
        } else {
            None
        };
        let dest = if self.dedupe {
            self.shared_key(digest)
        } else {
            self.blob_key(repo, digest)
        };
        // With dedupe, a blob already stored is only linked.
        let stored = self.dedupe && self.head(&dest).await?.is_some();
        if mp.multipart.is_none() {
            // Small: one PUT of what was received.
            if !stored {
                self.put(&dest, Bytes::from(tail)).await?;
            }
        } else {
            let data = self.data_key(repo, id);
            if stored {
                if let Some(upload) = &mp.multipart
                    && !mp.completed
                {
                    let _ = self.s3.abort_multipart(&data, upload).await;
                }
            } else {
                self.complete(repo, id, &mut mp, &mut tail).await?;
                self.s3.copy(&data, &dest).await.map_err(|e| self.err(e))?;
            }
            self.delete(&data).await?;
        }
        if self.dedupe {
            self.write_link(repo, digest, state.size).await?;
        }
        self.delete(&self.upload_key(repo, id)).await?;
        Ok(())
    }

    async fn upload_remove(&self, repo: &RepoName, id: &str) -> StorageResult<bool> {
        let Some(state) = self.upload_load(repo, id).await? else {
            return Ok(false);
        };
        let (mp, _) = split_backend(&state.backend);
        let data = self.data_key(repo, id);
        if let Some(upload) = &mp.multipart
            && !mp.completed
        {
            let _ = self.s3.abort_multipart(&data, upload).await;
        }
        self.delete(&data).await?;
        self.delete(&self.upload_key(repo, id)).await
    }

    async fn list_uploads(&self, repo: &RepoName) -> StorageResult<Vec<UploadEntry>> {
        let prefix = self.repo_key(repo, ".uploads");
        let listed = self
            .s3
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| self.err(e))?;
        Ok(listed
            .objects
            .iter()
            .filter_map(|o| {
                let name = o.location.filename()?.to_string();
                let session = name.trim_end_matches(".data");
                let session = uuid::Uuid::try_parse(session)
                    .is_ok()
                    .then(|| session.to_string());
                Some(UploadEntry {
                    name,
                    session,
                    modified: o.last_modified.into(),
                })
            })
            .collect())
    }

    /// A session's state object takes its multipart upload with it.
    async fn remove_upload_entry(&self, repo: &RepoName, name: &str) -> StorageResult<bool> {
        if name.contains('/') || name.starts_with('.') {
            return Err(StorageError::Conflict(format!(
                "{name} is not an upload object"
            )));
        }
        if uuid::Uuid::try_parse(name).is_ok() {
            return self.upload_remove(repo, name).await;
        }
        self.delete(&self.repo_key(repo, &format!(".uploads/{name}")))
            .await
    }
}

//! Upload sessions in a bucket: one multipart upload of fixed 5 MiB parts
//! (S3's and GCS's minimum; R2 wants equal parts; on Azure, blocks of a
//! block list) per session.
//!
//! The session's state object `<repo>/.uploads/<id>` is one JSON line
//! (size, SHA-256 state, the multipart upload, its part ids, where it
//! completes, whether it did) followed by the bytes not yet in a part. It
//! is rewritten by one PUT after each chunk, so the next chunk can go to
//! any instance, and after every step of a commit that cannot be repeated
//! (the completion), so a retried commit picks up where the last stopped.
//! A part leaves the tail only once the bucket has it; the size is checked against
//! parts and tail before anything is completed.

use std::time::SystemTime;

use berth_oci::{Digest, RepoName};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::multipart::PartId;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::BucketStore;
use super::shared::Pointer;
use crate::storage::backend::{ByteStream, ChunkReceiver, UploadEntry, UploadState, Uploads};
use crate::storage::{StorageError, StorageResult};

/// The part size of multipart uploads.
pub(super) const PART: usize = 5 << 20;
/// Names `<id>.mp-<n>`: a multipart upload a session began, written as it
/// begins (before the session's state can record it), so one begun by a
/// request that then failed or died is still found and aborted.
pub(super) const MARKER: &str = ".mp-";

/// What a session keeps besides its size and hash state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MultipartState {
    /// The multipart upload, once a first part was sent.
    multipart: Option<String>,
    /// Where it completes, relative to the store's prefix (fixed when it
    /// starts: dedupe may be switched between two chunks).
    key: Option<String>,
    /// Part ids in order.
    parts: Vec<String>,
    /// The parts were completed into `key` (to re-hash them, or by a
    /// commit that stopped after it).
    completed: bool,
    /// The digest a commit was for, saved before it links anything, so a
    /// session removed later knows whether its object is a stored blob.
    digest: Option<String>,
    /// The markers of the multipart uploads this state began.
    #[serde(default)]
    markers: Vec<String>,
}

/// The state object's first line.
#[derive(Serialize, Deserialize)]
struct SavedUpload {
    size: u64,
    hash_state: Option<String>,
    #[serde(flatten)]
    multipart: MultipartState,
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

impl BucketStore {
    /// Where a new multipart upload of session `id` completes.
    fn target(&self, repo: &RepoName, id: &str) -> String {
        if self.dedupe {
            self.shared_data(id)
        } else {
            let full = self.data_key(repo, id).to_string();
            match self.prefix.is_empty() {
                true => full,
                false => full
                    .strip_prefix(&format!("{}/", self.prefix))
                    .unwrap_or(&full)
                    .to_string(),
            }
        }
    }

    /// Sends the tail's whole parts (and with `last`, what is left of it
    /// once a multipart upload exists). A part leaves the tail only once
    /// the bucket has it.
    async fn send_parts(
        &self,
        repo: &RepoName,
        id: &str,
        mp: &mut MultipartState,
        tail: &mut Vec<u8>,
        last: bool,
    ) -> StorageResult<()> {
        while tail.len() >= PART || (last && !tail.is_empty() && mp.multipart.is_some()) {
            let rel = mp.key.get_or_insert_with(|| self.target(repo, id)).clone();
            let key = self.key(&rel);
            let upload = match &mp.multipart {
                Some(u) => u.clone(),
                None => {
                    let u = self
                        .bucket
                        .create_multipart(&key)
                        .await
                        .map_err(|e| self.err(e))?;
                    let marker = format!("{id}{MARKER}{}", uuid::Uuid::new_v4().simple());
                    self.put(
                        &self.repo_key(repo, &format!(".uploads/{marker}")),
                        Bytes::from(format!("{rel}\n{u}")),
                    )
                    .await?;
                    mp.markers.push(marker);
                    mp.multipart = Some(u.clone());
                    u
                }
            };
            if mp.parts.len() >= self.limits.max_parts {
                return Err(self.fail(format!(
                    "upload {id} is larger than {} parts of 5 MiB, the most one upload of this store takes",
                    self.limits.max_parts
                )));
            }
            let n = tail.len().min(PART);
            let pid = self
                .bucket
                .put_part(
                    &key,
                    &upload,
                    mp.parts.len(),
                    PutPayload::from(tail[..n].to_vec()),
                )
                .await
                .map_err(|e| self.err(e))?;
            tail.drain(..n);
            mp.parts.push(pid.content_id);
        }
        Ok(())
    }

    /// Completes the multipart upload, tail included; then nothing is left
    /// to send and the object is at `mp.key`.
    async fn complete(
        &self,
        repo: &RepoName,
        id: &str,
        size: u64,
        mp: &mut MultipartState,
        tail: &mut Vec<u8>,
    ) -> StorageResult<()> {
        if mp.completed {
            return Ok(());
        }
        // Completed before, though the state saved then did not say so (the
        // reply was lost, or the save after it failed): the upload is gone
        // and its object is there, whole.
        if mp.multipart.is_some()
            && let Some(key) = &mp.key
            && self
                .head(&self.key(key))
                .await?
                .is_some_and(|m| m.size == size)
        {
            tail.clear();
            mp.completed = true;
            return Ok(());
        }
        self.send_parts(repo, id, mp, tail, true).await?;
        let (Some(upload), Some(key)) = (&mp.multipart, &mp.key) else {
            return Ok(());
        };
        let parts = mp
            .parts
            .iter()
            .map(|c| PartId {
                content_id: c.clone(),
            })
            .collect();
        self.bucket
            .complete_multipart(&self.key(key), upload, parts)
            .await
            .map_err(|e| self.err(e))?;
        mp.completed = true;
        Ok(())
    }

    /// Saves the session with its bookkeeping replaced.
    async fn save_with(
        &self,
        repo: &RepoName,
        id: &str,
        state: &mut UploadState,
        mp: &MultipartState,
        tail: &[u8],
    ) -> StorageResult<()> {
        state.backend = join_backend(mp, tail);
        self.upload_save(repo, id, state).await
    }

    /// Parts and tail must hold exactly the bytes the registry counted
    /// and hashed.
    fn check_size(
        &self,
        id: &str,
        size: u64,
        mp: &MultipartState,
        tail: &[u8],
    ) -> StorageResult<()> {
        if mp.completed {
            return Ok(());
        }
        let held = (mp.parts.len() * PART + tail.len()) as u64;
        if held != size {
            return Err(self.fail(format!(
                "upload {id} holds {held} bytes but {size} were received"
            )));
        }
        Ok(())
    }

    /// Aborts every multipart upload a session began, including those its
    /// state lost track of (found by listing), and deletes their markers.
    /// Best effort: what is left, GC finds again.
    async fn drop_markers(&self, repo: &RepoName, id: &str) {
        let listed = match self
            .bucket
            .list_with_delimiter(Some(&self.repo_key(repo, ".uploads")))
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(target: "berth::s3", %repo, upload = id, "cannot list upload markers; GC will: {e}");
                return;
            }
        };
        let prefix = format!("{id}{MARKER}");
        for o in listed.objects {
            if let Some(name) = o.location.filename()
                && name.starts_with(&prefix)
                && let Err(e) = self.abort_marked(repo, name).await
            {
                tracing::warn!(target: "berth::s3", %repo, marker = name, "cannot abort a marked upload; GC will: {e}");
            }
        }
    }

    /// Aborts the multipart upload a marker names (nothing if it was
    /// completed or aborted already), then deletes the marker.
    pub(super) async fn abort_marked(&self, repo: &RepoName, name: &str) -> StorageResult<bool> {
        let marker = self.repo_key(repo, &format!(".uploads/{name}"));
        let Some(body) = self.get_bytes(&marker).await? else {
            return Ok(false);
        };
        if let Some((key, upload)) = std::str::from_utf8(&body)
            .ok()
            .and_then(|t| t.split_once('\n'))
            && !key.contains("..")
        {
            // An upload completed or aborted before answers NoSuchUpload.
            let _ = self
                .bucket
                .abort_multipart(&self.key(key), &upload.to_string())
                .await;
        }
        self.delete(&marker).await
    }

    fn completed_key(&self, mp: &MultipartState) -> StorageResult<ObjPath> {
        mp.key
            .as_deref()
            .map(|k| self.key(k))
            .ok_or_else(|| self.fail("a completed upload without a key"))
    }

    /// With dedupe: the upload's object becomes the digest's bytes where
    /// it lies, or is dropped when the digest is stored already.
    async fn commit_shared(
        &self,
        repo: &RepoName,
        id: &str,
        state: &mut UploadState,
        mp: &mut MultipartState,
        tail: &mut Vec<u8>,
        digest: &Digest,
    ) -> StorageResult<()> {
        let stored = match self.pointer(digest).await? {
            Some(p) if self.head(&self.key(&p.data)).await?.is_some() => Some(p),
            _ => None,
        };
        if let Some(p) = stored {
            // Stored already: a link. If the stored bytes are this upload's
            // own (a retry of a commit that got that far), nothing is
            // surplus; else what this upload sent is, and goes only once
            // the link is written.
            let own = mp.key.as_deref() == Some(p.data.as_str());
            self.adopt(repo, digest, p).await?;
            if !own {
                match (&mp.multipart, &mp.key, mp.completed) {
                    (Some(upload), Some(key), false) => {
                        let _ = self.bucket.abort_multipart(&self.key(key), upload).await;
                    }
                    (_, Some(_), true) => {
                        self.delete(&self.completed_key(mp)?).await?;
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        let shared = self.shared_data(id);
        if mp.multipart.is_none() {
            self.put(&self.key(&shared), Bytes::from(std::mem::take(tail)))
                .await?;
            mp.key = Some(shared.clone());
            mp.completed = true;
        } else {
            self.complete(repo, id, state.size, mp, tail).await?;
            if mp.key.as_deref() != Some(shared.as_str()) {
                // Started with dedupe off: moved where shared bytes live.
                let from = self.completed_key(mp)?;
                self.bucket
                    .copy(&from, &self.key(&shared))
                    .await
                    .map_err(|e| self.err(e))?;
                mp.key = Some(shared.clone());
                self.save_with(repo, id, state, mp, tail).await?;
                self.delete(&from).await?;
            }
        }
        let data = shared;
        // Only bytes that are there, whole, are recorded as the digest's.
        let there = self.head(&self.key(&data)).await?.map(|m| m.size);
        if there != Some(state.size) {
            return Err(self.fail(format!(
                "upload {id}: {data} holds {there:?} bytes, {} expected",
                state.size
            )));
        }
        mp.digest = Some(digest.to_string());
        self.save_with(repo, id, state, mp, tail).await?;
        let p = Pointer {
            size: state.size,
            data,
        };
        if !self.adopt(repo, digest, p).await? {
            self.delete(&self.completed_key(mp)?).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Uploads for BucketStore {
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
        let key = self.upload_key(repo, id);
        let Some(bytes) = self.get_bytes(&key).await? else {
            return Ok(None);
        };
        let corrupt = |message: String| StorageError::Corrupt {
            path: key.to_string().into(),
            message,
        };
        let nl = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| corrupt("no header line".into()))?;
        let saved: SavedUpload =
            serde_json::from_slice(&bytes[..nl]).map_err(|e| corrupt(e.to_string()))?;
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
            return Err(self.fail(format!("upload {id} is already complete")));
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
        let mut body = serde_json::to_vec(&saved).map_err(|e| self.fail(e))?;
        body.push(b'\n');
        body.extend_from_slice(&tail);
        self.put(&self.upload_key(repo, id), Bytes::from(body))
            .await
    }

    /// Completes the upload first if it has parts (saving that), then
    /// streams the object and the tail.
    async fn upload_read(
        &self,
        repo: &RepoName,
        id: &str,
        state: &mut UploadState,
    ) -> StorageResult<ByteStream> {
        let (mut mp, mut tail) = split_backend(&state.backend);
        self.check_size(id, state.size, &mp, &tail)?;
        if mp.multipart.is_some() && !mp.completed {
            self.complete(repo, id, state.size, &mut mp, &mut tail)
                .await?;
            self.save_with(repo, id, state, &mp, &tail).await?;
        }
        let tail_stream =
            futures_util::stream::iter((!tail.is_empty()).then(|| Ok(Bytes::from(tail))));
        let Some(key) = mp.key.as_deref().filter(|_| mp.completed) else {
            return Ok(Box::pin(tail_stream));
        };
        let r = self
            .bucket
            .get(&self.key(key))
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
        mut state: UploadState,
        digest: &Digest,
    ) -> StorageResult<()> {
        let (mut mp, mut tail) = split_backend(&state.backend);
        self.check_size(id, state.size, &mp, &tail)?;
        let _blob = self.lock_blob(digest).await?;
        if self.dedupe {
            self.commit_shared(repo, id, &mut state, &mut mp, &mut tail, digest)
                .await?;
        } else {
            let dest = self.blob_key(repo, digest);
            if mp.multipart.is_none() {
                // Small: one PUT of what was received.
                self.put(&dest, Bytes::from(std::mem::take(&mut tail)))
                    .await?;
            } else {
                if !mp.completed {
                    self.complete(repo, id, state.size, &mut mp, &mut tail)
                        .await?;
                    self.save_with(repo, id, &mut state, &mp, &tail).await?;
                }
                let data = self.completed_key(&mp)?;
                // A retry after the copy went through finds it in place.
                let placed = self
                    .head(&dest)
                    .await?
                    .is_some_and(|m| m.size == state.size);
                if !placed {
                    if let Some(max) = self.limits.max_copy
                        && state.size > max
                    {
                        return Err(self.fail(format!(
                            "a blob over {} GiB cannot be moved into place without dedupe ({} bytes)",
                            max >> 30,
                            state.size
                        )));
                    }
                    self.bucket
                        .copy(&data, &dest)
                        .await
                        .map_err(|e| self.err(e))?;
                }
                self.delete(&data).await?;
            }
        }
        // The markers this state knows of (its uploads are completed or
        // aborted by now); any other is found by GC's listing.
        for marker in &mp.markers {
            let key = self.repo_key(repo, &format!(".uploads/{marker}"));
            if let Err(e) = self.delete(&key).await {
                tracing::warn!(target: "berth::s3", %repo, marker, "cannot delete an upload marker; GC will: {e}");
            }
        }
        self.delete(&self.upload_key(repo, id)).await?;
        Ok(())
    }

    /// Ends a session: aborts its multipart upload, or deletes its
    /// completed object unless it became a stored digest's bytes.
    async fn upload_remove(&self, repo: &RepoName, id: &str) -> StorageResult<bool> {
        let Some(state) = self.upload_load(repo, id).await? else {
            return Ok(false);
        };
        let (mp, _) = split_backend(&state.backend);
        if let (Some(upload), Some(key)) = (&mp.multipart, &mp.key)
            && !mp.completed
        {
            let _ = self.bucket.abort_multipart(&self.key(key), upload).await;
        }
        self.drop_markers(repo, id).await;
        if mp.completed
            && let Some(key) = &mp.key
        {
            let in_use = match mp.digest.as_deref().and_then(|d| d.parse::<Digest>().ok()) {
                Some(d) => self.pointer(&d).await?.is_some_and(|p| &p.data == key),
                None => false,
            };
            if !in_use {
                self.delete(&self.key(key)).await?;
            }
        }
        self.delete(&self.upload_key(repo, id)).await
    }

    /// Each leftover is dated by its session's latest write, so the marker
    /// of a multipart upload begun long ago does not go while the session
    /// is still in use.
    async fn list_uploads(&self, repo: &RepoName) -> StorageResult<Vec<UploadEntry>> {
        let prefix = self.repo_key(repo, ".uploads");
        let listed = self
            .bucket
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| self.err(e))?;
        let mut entries: Vec<UploadEntry> = listed
            .objects
            .iter()
            .filter_map(|o| {
                let name = o.location.filename()?.to_string();
                let session = session_of(&name);
                Some(UploadEntry {
                    name,
                    session,
                    modified: o.last_modified.into(),
                })
            })
            .collect();
        let mut latest: std::collections::HashMap<String, SystemTime> = Default::default();
        for e in &entries {
            if let Some(s) = &e.session {
                let t = latest.entry(s.clone()).or_insert(e.modified);
                *t = (*t).max(e.modified);
            }
        }
        for e in &mut entries {
            if let Some(t) = e.session.as_ref().and_then(|s| latest.get(s)) {
                e.modified = *t;
            }
        }
        Ok(entries)
    }

    /// A session's state object takes its multipart upload with it.
    async fn remove_upload_entry(&self, repo: &RepoName, name: &str) -> StorageResult<bool> {
        if name.contains('/') || name.starts_with('.') {
            return Err(StorageError::InvalidInput(format!(
                "{name} is not an upload object"
            )));
        }
        if uuid::Uuid::try_parse(name).is_ok() {
            return self.upload_remove(repo, name).await;
        }
        if name.contains(MARKER) {
            return self.abort_marked(repo, name).await;
        }
        self.delete(&self.repo_key(repo, &format!(".uploads/{name}")))
            .await
    }
}

/// The session an upload leftover belongs to: `<id>`, `<id>.data`,
/// `<id>.mp-<n>`.
fn session_of(name: &str) -> Option<String> {
    let id = name.split('.').next()?;
    uuid::Uuid::try_parse(id).is_ok().then(|| id.to_string())
}

//! Upload sessions: chunks streamed to a file under the repository's
//! `.uploads/`, hashed as they arrive.
//!
//! After every accepted chunk the session's hash state and length are saved
//! next to its file (`<id>.state`), so an upload resumes after a restart
//! without re-reading what it already has. If the state is missing or does
//! not match the file (a crash mid-chunk), the file is re-hashed once.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_oci::{Algorithm, Digest, DigestHasher, RepoName};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io::Write;

use tokio::io::AsyncReadExt;

use super::{Registry, RegistryError, RegistryResult};
use crate::storage::{IoContext, StorageError};

/// Write buffer for chunk data: large writes, few system calls.
const WRITE_BUF: usize = 256 << 10;
/// Chunks queued for the writer thread (hyper hands over frames of up to a
/// few hundred KiB, so this bounds the queue to about a MiB: sixteen
/// uploads at once stay within a few tens of MiB).
const WRITE_QUEUE: usize = 4;
/// Read buffer when re-hashing a file.
const READ_BUF: usize = 1 << 20;

/// An upload session's id: a UUID, which also keeps it a safe file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadId(uuid::Uuid);

impl UploadId {
    fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for UploadId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        uuid::Uuid::try_parse(s).map(Self).map_err(|_| ())
    }
}

/// A session's live state.
struct Session {
    repo: RepoName,
    /// Bytes in the upload file.
    size: u64,
    /// sha256 of those bytes (the algorithm nearly every client uses; a
    /// sha512 upload is re-hashed at the end).
    hasher: DigestHasher,
    /// The hash state came from `<id>.state` on disk. Without `commit` the
    /// data behind it may not have survived a power loss, so such a
    /// session is re-hashed from its file before it is accepted.
    from_saved_state: bool,
}

type SharedSession = Arc<tokio::sync::Mutex<Session>>;

/// In memory at once before idle sessions are dropped from the map.
const MAX_LIVE: usize = 4096;
/// A session unused for this long may be dropped from memory (it stays on
/// disk and is reloaded when used again).
const IDLE: Duration = Duration::from_secs(600);

struct Live {
    session: SharedSession,
    last_used: Instant,
}

/// Sessions in use, each behind its own lock so chunks of one upload are
/// applied one at a time while other uploads run freely. A session not in
/// the map is loaded from disk on first use; idle ones are dropped from the
/// map when it grows, so abandoned uploads do not hold memory.
#[derive(Default)]
pub struct Uploads {
    live: Mutex<HashMap<UploadId, Live>>,
}

impl Uploads {
    /// Sessions open now.
    pub(super) fn count(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn get(&self, id: UploadId) -> Option<SharedSession> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let entry = live.get_mut(&id)?;
        entry.last_used = Instant::now();
        Some(entry.session.clone())
    }

    fn insert(&self, id: UploadId, s: Session) -> SharedSession {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.len() >= MAX_LIVE {
            live.retain(|_, e| e.last_used.elapsed() < IDLE || Arc::strong_count(&e.session) > 1);
        }
        live.entry(id)
            .or_insert_with(|| Live {
                session: Arc::new(tokio::sync::Mutex::new(s)),
                last_used: Instant::now(),
            })
            .session
            .clone()
    }

    /// Forgets the session unless a request holds it right now; returns
    /// whether it was idle (its files may then go). Checked and removed
    /// under one lock of the map, so no request can pick it up in between.
    pub(super) fn remove_if_idle(&self, id: UploadId) -> bool {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let busy = live
            .get(&id)
            .is_some_and(|e| Arc::strong_count(&e.session) > 1 || e.session.try_lock().is_err());
        if !busy {
            live.remove(&id);
        }
        !busy
    }

    pub(super) fn remove(&self, id: UploadId) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

impl Registry {
    fn upload_path(&self, repo: &RepoName, id: UploadId) -> PathBuf {
        self.store(repo).uploads_dir(repo).join(id.to_string())
    }

    fn state_path(&self, repo: &RepoName, id: UploadId) -> PathBuf {
        self.store(repo)
            .uploads_dir(repo)
            .join(format!("{id}.state"))
    }

    /// Starts an upload session in `repo`, creating the repository.
    pub async fn start_upload(&self, repo: &RepoName) -> RegistryResult<UploadId> {
        self.ensure_repo(repo).await?;
        let id = UploadId::new();
        let path = self.upload_path(repo, id);
        tokio::fs::File::create(&path).await.at(&path)?;
        self.uploads.insert(
            id,
            Session {
                repo: repo.clone(),
                size: 0,
                hasher: DigestHasher::new(Algorithm::Sha256),
                from_saved_state: false,
            },
        );
        Ok(id)
    }

    /// The live session, loaded from disk if this process has not seen it.
    async fn session(&self, repo: &RepoName, id: UploadId) -> RegistryResult<SharedSession> {
        if let Some(s) = self.uploads.get(id) {
            if s.lock().await.repo != *repo {
                return Err(RegistryError::UploadUnknown);
            }
            return Ok(s);
        }
        let path = self.upload_path(repo, id);
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m.len(),
            _ => return Err(RegistryError::UploadUnknown),
        };
        let saved = tokio::fs::read(self.state_path(repo, id)).await.ok();
        let restored = saved.as_deref().and_then(|b| {
            let (len, state) = b.split_at_checked(8)?;
            let len = u64::from_le_bytes(len.try_into().ok()?);
            (len == size)
                .then(|| DigestHasher::restore(state))
                .flatten()
        });
        let from_saved_state = restored.is_some();
        let hasher = match restored {
            Some(h) => h,
            None => hash_file(&path, Algorithm::Sha256).await?,
        };
        Ok(self.uploads.insert(
            id,
            Session {
                repo: repo.clone(),
                size,
                hasher,
                from_saved_state,
            },
        ))
    }

    /// The number of bytes an upload has received.
    pub async fn upload_size(&self, repo: &RepoName, id: UploadId) -> RegistryResult<u64> {
        Ok(self.session(repo, id).await?.lock().await.size)
    }

    /// Appends a chunk. With `range` (from `Content-Range`), the chunk must
    /// start where the upload ends. Returns the new size.
    pub async fn append_chunk<S, E>(
        &self,
        repo: &RepoName,
        id: UploadId,
        range: Option<(u64, u64)>,
        body: S,
    ) -> RegistryResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        self.append(repo, id, range, body, true).await
    }

    /// [`Registry::append_chunk`]; `save_state: false` when the upload is
    /// completed in the same request (a state saved only to be removed a
    /// moment later would cost two files; after a crash the data file is
    /// re-hashed instead, as for any state that does not match it).
    async fn append<S, E>(
        &self,
        repo: &RepoName,
        id: UploadId,
        range: Option<(u64, u64)>,
        body: S,
        save_state: bool,
    ) -> RegistryResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        let session = self.session(repo, id).await?;
        let mut s = session.lock().await;
        if let Some((start, _)) = range
            && start != s.size
        {
            return Err(RegistryError::UploadOutOfOrder { size: s.size });
        }
        let before = s.size;
        let result = self.write_body(repo, id, &mut s, body, save_state).await;
        if let Some((start, end)) = range
            && result.is_ok()
            && s.size - before != end - start + 1
        {
            // The data is in; the client's arithmetic was wrong. Keep the
            // bytes (they are hashed) but say so.
            return Err(RegistryError::SizeInvalid(format!(
                "Content-Range {start}-{end} announced {} bytes, got {}",
                end - start + 1,
                s.size - before
            )));
        }
        result.map(|()| s.size)
    }

    async fn write_body<S, E>(
        &self,
        repo: &RepoName,
        id: UploadId,
        s: &mut Session,
        mut body: S,
        save_state: bool,
    ) -> RegistryResult<()>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        let path = self.upload_path(repo, id);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|_| RegistryError::UploadUnknown)?;
        // The disk writes run on a blocking thread fed through a bounded
        // channel, so receiving and hashing the next chunk overlaps with
        // writing the previous one; the bound keeps memory flat.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        let commit = self.store(repo).commit();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut w = std::io::BufWriter::with_capacity(WRITE_BUF, file);
            while let Some(b) = rx.blocking_recv() {
                w.write_all(&b)?;
            }
            w.flush()?;
            if commit {
                // Data before the hash state that vouches for it.
                w.get_ref().sync_data()?;
            }
            Ok(())
        });
        let mut outcome = Ok(());
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(b) => {
                    s.hasher.update(&b);
                    s.size += b.len() as u64;
                    if tx.send(b).await.is_err() {
                        // The writer stopped on an error, reported below.
                        break;
                    }
                }
                Err(e) => {
                    outcome = Err(RegistryError::BodyRead(e.to_string()));
                    break;
                }
            }
        }
        drop(tx);
        let written = match writer.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Err(e) = written {
            outcome = Err(StorageError::Io {
                path: path.clone(),
                source: e,
            }
            .into());
        }
        if matches!(outcome, Err(RegistryError::Storage(_))) {
            // The file and the hash may disagree: forget the session so the
            // next request reloads it from the file.
            self.uploads.remove(id);
            return outcome;
        }
        if save_state {
            self.save_state(repo, id, s).await?;
        }
        outcome
    }

    async fn save_state(&self, repo: &RepoName, id: UploadId, s: &Session) -> RegistryResult<()> {
        let mut bytes = s.size.to_le_bytes().to_vec();
        bytes.extend_from_slice(&s.hasher.save());
        let tmp = self.store(repo).temp_path(repo);
        tokio::fs::write(&tmp, &bytes).await.at(&tmp)?;
        let dest = self.state_path(repo, id);
        tokio::fs::rename(&tmp, &dest).await.at(&dest)?;
        Ok(())
    }

    /// Completes an upload: appends an optional last chunk, checks the
    /// digest and moves the blob into place. A digest mismatch ends the
    /// session.
    pub async fn finish_upload<S, E>(
        &self,
        repo: &RepoName,
        id: UploadId,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: S,
    ) -> RegistryResult<()>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        self.append(repo, id, range, body, false).await?;
        let session = self.session(repo, id).await?;
        let s = session.lock().await;
        let path = self.upload_path(repo, id);
        let trust_state = !s.from_saved_state || self.store(repo).commit();
        let actual = match digest.algorithm() {
            Algorithm::Sha256 if trust_state => s.hasher.peek(),
            other => hash_file(&path, other).await?.finish(),
        };
        if actual != *digest {
            drop(s);
            self.cancel_upload(repo, id).await?;
            return Err(RegistryError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        self.store(repo).commit_upload(repo, &path, digest).await?;
        let _ = tokio::fs::remove_file(self.state_path(repo, id)).await;
        self.uploads.remove(id);
        Ok(())
    }

    /// Cancels an upload and removes its data.
    pub async fn cancel_upload(&self, repo: &RepoName, id: UploadId) -> RegistryResult<()> {
        let session = self.session(repo, id).await?;
        let _s = session.lock().await;
        let path = self.upload_path(repo, id);
        let _ = tokio::fs::remove_file(self.state_path(repo, id)).await;
        let removed = tokio::fs::remove_file(&path).await;
        self.uploads.remove(id);
        removed.map_err(|_| RegistryError::UploadUnknown)
    }

    /// A monolithic upload (`POST ?digest=`): one body, checked and stored.
    pub async fn put_blob<S, E>(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: S,
    ) -> RegistryResult<()>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        let id = self.start_upload(repo).await?;
        let result = self.finish_upload(repo, id, digest, None, body).await;
        if matches!(
            result,
            Err(RegistryError::BodyRead(_) | RegistryError::Storage(_))
        ) {
            let _ = self.cancel_upload(repo, id).await;
        }
        result
    }
}

/// Hashes a whole file with large reads.
async fn hash_file(path: &std::path::Path, algorithm: Algorithm) -> RegistryResult<DigestHasher> {
    let mut f = tokio::fs::File::open(path).await.at(path)?;
    let mut h = DigestHasher::new(algorithm);
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = f.read(&mut buf).await.at(path)?;
        if n == 0 {
            return Ok(h);
        }
        h.update(&buf[..n]);
    }
}

//! Upload sessions: chunks hashed as they arrive and handed to the storage
//! backend ([`crate::storage::Uploads`]), which keeps the data and the
//! session's state.
//!
//! After every accepted chunk the session's hash state and size are saved
//! with it, so an upload resumes after a restart, or on another instance,
//! without re-reading what it already has. If the state is missing or does
//! not match the data (a crash mid-chunk), the data is re-hashed once.
//! Sessions are cached in memory by a single instance; instances sharing a
//! store load each from the backend under its shared lock instead.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_oci::{Algorithm, Digest, DigestHasher, RepoName};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::body_hasher::BodyHasher;
use super::{Registry, RegistryError, RegistryResult};
use crate::storage::{ByteStream, StorageError, UploadGuard, UploadState};

/// Chunks queued for the backend's writer (hyper hands over frames of up
/// to a few hundred KiB, so this bounds the queue to about a MiB: sixteen
/// uploads at once stay within a few tens of MiB).
const WRITE_QUEUE: usize = 4;

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
    /// What the backend keeps: size, saved hash state, its own bookkeeping.
    state: UploadState,
    /// sha256 of the `state.size` bytes received (the algorithm nearly
    /// every client uses; a sha512 upload is re-hashed at the end).
    hasher: DigestHasher,
    /// Size and hash may not match what the backend holds (a write failed
    /// or was cancelled midway), or the session ended: whoever gets the
    /// session next reloads it from the backend instead.
    stale: bool,
}

type SharedSession = Arc<tokio::sync::Mutex<Session>>;
type LockedSession = tokio::sync::OwnedMutexGuard<Session>;

/// In memory at once before idle sessions are dropped from the map.
const MAX_LIVE: usize = 4096;
/// A session unused for this long may be dropped from memory (it stays on
/// disk and is reloaded when used again).
const IDLE: Duration = Duration::from_secs(600);

struct Live {
    session: SharedSession,
    last_used: Instant,
}

/// How many upload sessions a client may hold open at once
/// (`http.maxUploadsPerRepository`, `http.maxUploadsPerClient`; 0: no
/// cap). Only sessions opened to outlive their request count (`POST`
/// without a digest, a mount that falls back to one), not a monolithic
/// upload, which ends with its request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct UploadLimits {
    per_repository: usize,
    per_client: usize,
}

/// A session counted against the caps.
struct Place {
    repo: RepoName,
    client: Option<IpAddr>,
    /// Last used through this instance (for a store shared with other
    /// instances, which may end the session without this one knowing).
    last_used: Instant,
}

/// The sessions counted against [`UploadLimits`], and how many each
/// repository and client holds. A session's place is freed when it ends
/// here (completed, cancelled, failed its digest) or GC removes it; on a
/// store shared with other instances also once it has gone unused here
/// for [`IDLE`] (another instance may have ended it). Sessions left from
/// before a restart are not counted (GC removes them).
#[derive(Default)]
struct Ledger {
    sessions: HashMap<UploadId, Place>,
    repos: HashMap<RepoName, usize>,
    clients: HashMap<IpAddr, usize>,
}

impl Ledger {
    fn free(&mut self, id: UploadId) {
        let Some(place) = self.sessions.remove(&id) else {
            return;
        };
        let drop_one = |n: &mut usize| {
            *n -= 1;
            *n > 0
        };
        if let Some(n) = self.repos.get_mut(&place.repo)
            && !drop_one(n)
        {
            self.repos.remove(&place.repo);
        }
        if let Some(c) = place.client
            && let Some(n) = self.clients.get_mut(&c)
            && !drop_one(n)
        {
            self.clients.remove(&c);
        }
    }

    /// The cap `repo` or `client` is at, if either is.
    fn full(
        &self,
        limits: UploadLimits,
        repo: &RepoName,
        client: Option<IpAddr>,
    ) -> Option<RegistryError> {
        let at = |held: Option<&usize>, cap: usize| cap > 0 && held.copied().unwrap_or(0) >= cap;
        if at(self.repos.get(repo), limits.per_repository) {
            return Some(RegistryError::TooManyUploads {
                scope: "repository",
                limit: limits.per_repository,
            });
        }
        if let Some(c) = client
            && at(self.clients.get(&c), limits.per_client)
        {
            return Some(RegistryError::TooManyUploads {
                scope: "client",
                limit: limits.per_client,
            });
        }
        None
    }

    /// Counts a new session, unless a cap is reached; on a shared store
    /// the places unused here for [`IDLE`] are freed first when one is.
    fn admit(
        &mut self,
        limits: UploadLimits,
        id: UploadId,
        repo: &RepoName,
        client: Option<IpAddr>,
        shared: bool,
    ) -> RegistryResult<()> {
        if shared && self.full(limits, repo, client).is_some() {
            let stale: Vec<UploadId> = self
                .sessions
                .iter()
                .filter(|(_, p)| p.last_used.elapsed() >= IDLE)
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                self.free(id);
            }
        }
        if let Some(e) = self.full(limits, repo, client) {
            return Err(e);
        }
        *self.repos.entry(repo.clone()).or_default() += 1;
        if let Some(c) = client {
            *self.clients.entry(c).or_default() += 1;
        }
        self.sessions.insert(
            id,
            Place {
                repo: repo.clone(),
                client,
                last_used: Instant::now(),
            },
        );
        Ok(())
    }
}

/// Sessions in use, each behind its own lock so chunks of one upload are
/// applied one at a time while other uploads run freely. A session not in
/// the map is loaded from disk on first use; idle ones are dropped from the
/// map when it grows, so abandoned uploads do not hold memory.
///
/// A map of our own rather than a `moka` cache: a session must never be
/// dropped while a request holds it (a second request would load a second
/// copy, and the per-session lock would no longer exclude anything), and
/// `moka` evicts by size or age without asking whether an entry is in use.
///
/// Beside it, the ledger of sessions counted against `UploadLimits`.
#[derive(Default)]
pub struct Uploads {
    live: Mutex<HashMap<UploadId, Live>>,
    ledger: Mutex<Ledger>,
    limits: UploadLimits,
}

impl Uploads {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions counted against the caps now.
    pub(super) fn counted(&self) -> usize {
        self.ledger().sessions.len()
    }

    /// The session was used through this instance just now.
    fn touch(&self, id: UploadId) {
        if let Some(p) = self.ledger().sessions.get_mut(&id) {
            p.last_used = Instant::now();
        }
    }

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
            self.ledger().free(id);
        }
        !busy
    }

    /// Forgets the session if the map still holds this very one.
    fn remove_this(&self, id: UploadId, session: &SharedSession) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live
            .get(&id)
            .is_some_and(|e| Arc::ptr_eq(&e.session, session))
        {
            live.remove(&id);
        }
    }

    /// Forgets a session that ended, and frees its place.
    pub(super) fn remove(&self, id: UploadId) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.ledger().free(id);
    }
}

impl Registry {
    /// Caps the upload sessions open at once per repository and per
    /// client address (0: no cap; see [`Registry::open_upload`]), before
    /// the registry is shared.
    pub fn set_upload_limits(&mut self, per_repository: usize, per_client: usize) {
        self.uploads.limits = UploadLimits {
            per_repository,
            per_client,
        };
    }

    /// Upload sessions counted against the caps now.
    pub fn uploads_counted(&self) -> usize {
        self.uploads.counted()
    }

    /// Opens an upload session in `repo` for `client` (its address, when
    /// known), which then holds a place among the caps
    /// ([`Registry::set_upload_limits`]) until the session ends; past a
    /// cap, [`RegistryError::TooManyUploads`].
    pub async fn open_upload(
        &self,
        repo: &RepoName,
        client: Option<IpAddr>,
    ) -> RegistryResult<UploadId> {
        let id = UploadId::new();
        let shared = self.store(repo).is_shared();
        self.uploads
            .ledger()
            .admit(self.uploads.limits, id, repo, client, shared)?;
        let started = self.start_upload_as(repo, id).await;
        if started.is_err() {
            self.uploads.ledger().free(id);
        }
        started.map(|()| id)
    }

    /// Starts an upload session in `repo`, creating the repository; it
    /// counts against no cap (a monolithic upload's, which ends with its
    /// request; see [`Registry::open_upload`]).
    pub async fn start_upload(&self, repo: &RepoName) -> RegistryResult<UploadId> {
        let id = UploadId::new();
        self.start_upload_as(repo, id).await.map(|()| id)
    }

    async fn start_upload_as(&self, repo: &RepoName, id: UploadId) -> RegistryResult<()> {
        self.ensure_repo(repo).await?;
        let state = self
            .store(repo)
            .uploads
            .upload_create(repo, &id.to_string())
            .await?;
        if !self.store(repo).is_shared() {
            self.uploads.insert(
                id,
                Session {
                    repo: repo.clone(),
                    state,
                    hasher: DigestHasher::new(Algorithm::Sha256),
                    stale: false,
                },
            );
        }
        Ok(())
    }

    /// The session, locked: from memory if this process has it and it is
    /// not stale, else loaded from the backend. With other instances
    /// sharing the store, a chunk may have gone to one of them since: the
    /// session is always loaded, under its shared lock (the returned
    /// guard).
    async fn session(
        &self,
        repo: &RepoName,
        id: UploadId,
    ) -> RegistryResult<(LockedSession, Option<UploadGuard>)> {
        let store = self.store(repo);
        if store.is_shared() {
            self.uploads.touch(id);
            let guard = store.lock_upload(&id.to_string()).await?;
            let session = self.load_session(repo, id).await?;
            let locked = Arc::new(tokio::sync::Mutex::new(session))
                .lock_owned()
                .await;
            return Ok((locked, Some(guard)));
        }
        // A stale session is replaced by a reload; a few rounds at most
        // (each needs another request to have made it stale meanwhile).
        for _ in 0..4 {
            let shared = match self.uploads.get(id) {
                Some(s) => s,
                None => {
                    let session = self.load_session(repo, id).await?;
                    self.uploads.insert(id, session)
                }
            };
            let live = shared.clone().lock_owned().await;
            if live.repo != *repo {
                return Err(RegistryError::UploadUnknown);
            }
            if !live.stale {
                return Ok((live, None));
            }
            self.uploads.remove_this(id, &shared);
        }
        Err(RegistryError::UploadUnknown)
    }

    /// Loads a session from the backend, re-hashing its data when no hash
    /// state matching it was saved.
    async fn load_session(&self, repo: &RepoName, id: UploadId) -> RegistryResult<Session> {
        let store = self.store(repo);
        let Some(mut state) = store.uploads.upload_load(repo, &id.to_string()).await? else {
            return Err(RegistryError::UploadUnknown);
        };
        let restored = state.hash_state.as_deref().and_then(DigestHasher::restore);
        let hasher = match restored {
            Some(h) => h,
            None => {
                state.trusted = true;
                let data = store
                    .uploads
                    .upload_read(repo, &id.to_string(), &mut state)
                    .await?;
                hash_stream(data, Algorithm::Sha256).await?
            }
        };
        Ok(Session {
            repo: repo.clone(),
            state,
            hasher,
            stale: false,
        })
    }

    /// The number of bytes an upload has received.
    pub async fn upload_size(&self, repo: &RepoName, id: UploadId) -> RegistryResult<u64> {
        let (s, _guard) = self.session(repo, id).await?;
        Ok(s.state.size)
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
        let (mut s, _guard) = self.session(repo, id).await?;
        self.append(repo, id, &mut s, range, body, true).await
    }

    /// Appends to a locked session; `save_state: false` when the upload is
    /// completed in the same request (a state saved only to be removed a
    /// moment later would cost writes; after a crash the data is re-hashed
    /// instead, as for any state that does not match it).
    async fn append<S, E>(
        &self,
        repo: &RepoName,
        id: UploadId,
        s: &mut Session,
        range: Option<(u64, u64)>,
        body: S,
        save_state: bool,
    ) -> RegistryResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        if let Some((start, _)) = range
            && start != s.state.size
        {
            return Err(RegistryError::UploadOutOfOrder { size: s.state.size });
        }
        let before = s.state.size;
        let quota = self.upload_usage(repo, before).await?;
        let result = self.write_body(repo, id, s, body, save_state, quota).await;
        let size = s.state.size;
        if let Some((start, end)) = range
            && result.is_ok()
            && size - before != end - start + 1
        {
            // The data is in; the client's arithmetic was wrong. Keep the
            // bytes (they are hashed) but say so.
            return Err(RegistryError::SizeInvalid(format!(
                "Content-Range {start}-{end} announced {} bytes, got {}",
                end - start + 1,
                size - before
            )));
        }
        result.map(|()| size)
    }

    /// Hashes the body as it arrives ([`BodyHasher`]: past its first MiB
    /// on a thread of its own) and hands it to the backend through a
    /// bounded channel, so reading, hashing and writing overlap and memory
    /// stays flat. With `quota` (the quota and what counts against it so far),
    /// a body declared longer than the room left is refused unread, and
    /// any other is cut before the chunk that would exceed it: nothing
    /// past the quota is stored.
    async fn write_body<S, E>(
        &self,
        repo: &RepoName,
        id: UploadId,
        s: &mut Session,
        mut body: S,
        save_state: bool,
        quota: Option<(super::Quota, u64)>,
    ) -> RegistryResult<()>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        // A body whose declared length (`Content-Length`) would pass the
        // quota is refused before any of it is read.
        if let Some((q, used)) = &quota {
            let declared = body.size_hint().0 as u64;
            if declared > 0 && used + declared > q.max_bytes {
                return Err(RegistryError::QuotaExceeded {
                    rule: q.rule.clone(),
                    limit: q.max_bytes,
                    used: *used,
                    projected: used + declared,
                });
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        let store = self.store(repo);
        let name = id.to_string();
        // Until the write is through, the session may not match the
        // backend (this future may also be dropped midway).
        s.stale = true;
        let mut backend_state = s.state.clone();
        let start_size = backend_state.size;
        let mut received = 0u64;
        let mut hashing = BodyHasher::new(&mut s.hasher);
        let feed = async {
            let mut outcome = Ok(());
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(b) => {
                        if let Some((q, used)) = &quota {
                            let projected = used + received + b.len() as u64;
                            if projected > q.max_bytes {
                                outcome = Err(RegistryError::QuotaExceeded {
                                    rule: q.rule.clone(),
                                    limit: q.max_bytes,
                                    used: used + received,
                                    projected,
                                });
                                break;
                            }
                        }
                        if let Err(e) = hashing.update(&b).await {
                            outcome = Err(e);
                            break;
                        }
                        received += b.len() as u64;
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
            // The hasher back in the session, having seen what was sent.
            match hashing.finish().await {
                Err(e) if outcome.is_ok() => Err(e),
                _ => outcome,
            }
        };
        let write = store
            .uploads
            .upload_append(repo, &name, &mut backend_state, rx);
        let (mut outcome, written) = futures_util::join!(feed, write);
        backend_state.size = start_size + received;
        s.state = backend_state;
        if let Err(e) = written {
            outcome = Err(e.into());
        }
        if matches!(
            outcome,
            Err(RegistryError::Storage(_) | RegistryError::Internal(_))
        ) {
            // The data and the hash may disagree (or the hash is lost with
            // its thread): the next request reloads the session from what
            // the backend saved.
            return outcome;
        }
        if save_state {
            s.state.hash_state = Some(s.hasher.save());
            store.uploads.upload_save(repo, &name, &s.state).await?;
        }
        s.stale = false;
        outcome
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
        let (mut s, _guard) = self.session(repo, id).await?;
        self.append(repo, id, &mut s, range, body, false).await?;
        // What the backend saves from here on (a commit saves its steps)
        // must carry a hash state for the size it saves.
        s.state.hash_state = Some(s.hasher.save());
        let store = self.store(repo);
        let name = id.to_string();
        let actual = match digest.algorithm() {
            Algorithm::Sha256 if s.state.trusted => s.hasher.peek(),
            other => {
                // Reading may complete the upload in the backend: until the
                // digest is settled, this copy of the session is not to be
                // reused.
                s.stale = true;
                let data = store.uploads.upload_read(repo, &name, &mut s.state).await?;
                hash_stream(data, other).await?.finish()
            }
        };
        if actual != *digest {
            s.stale = true;
            store.uploads.upload_remove(repo, &name).await?;
            self.uploads.remove(id);
            return Err(RegistryError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        // Whatever happens next, this copy of the session is done with: a
        // request waiting for it reloads it (and finds it gone once the
        // commit went through).
        s.stale = true;
        store
            .uploads
            .upload_commit(repo, &name, s.state.clone(), digest)
            .await?;
        self.uploads.remove(id);
        self.count_unreferenced(repo, digest, s.state.size);
        Ok(())
    }

    /// Cancels an upload and removes its data.
    pub async fn cancel_upload(&self, repo: &RepoName, id: UploadId) -> RegistryResult<()> {
        let (mut s, _guard) = self.session(repo, id).await?;
        s.stale = true;
        let removed = self
            .store(repo)
            .uploads
            .upload_remove(repo, &id.to_string())
            .await;
        self.uploads.remove(id);
        match removed {
            Ok(true) => Ok(()),
            Ok(false) => Err(RegistryError::UploadUnknown),
            Err(e) => Err(e.into()),
        }
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
            Err(RegistryError::BodyRead(_)
                | RegistryError::Storage(_)
                | RegistryError::QuotaExceeded { .. })
        ) {
            let _ = self.cancel_upload(repo, id).await;
        }
        result
    }
}

/// Hashes a stream of bytes.
async fn hash_stream(mut data: ByteStream, algorithm: Algorithm) -> RegistryResult<DigestHasher> {
    let mut h = DigestHasher::new(algorithm);
    while let Some(chunk) = data.next().await {
        let b = chunk.map_err(|e| StorageError::Backend {
            location: "upload".into(),
            message: e.to_string(),
        })?;
        h.update(&b);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        s.parse().expect("name")
    }

    #[test]
    fn the_ledger_counts_per_repository_and_client() {
        let limits = UploadLimits {
            per_repository: 2,
            per_client: 3,
        };
        let (a, b) = (Some([10, 0, 0, 1].into()), Some([10, 0, 0, 2].into()));
        let mut l = Ledger::default();
        let ids: Vec<UploadId> = (0..4).map(|_| UploadId::new()).collect();
        l.admit(limits, ids[0], &repo("x"), a, false).expect("1");
        l.admit(limits, ids[1], &repo("x"), b, false).expect("2");
        let full = l.admit(limits, ids[2], &repo("x"), a, false);
        assert!(matches!(
            full,
            Err(RegistryError::TooManyUploads {
                scope: "repository",
                limit: 2
            })
        ));
        l.admit(limits, ids[2], &repo("y"), a, false).expect("3");
        l.admit(limits, ids[3], &repo("z"), a, false).expect("4");
        let full = l.admit(limits, UploadId::new(), &repo("w"), a, false);
        assert!(matches!(
            full,
            Err(RegistryError::TooManyUploads {
                scope: "client",
                ..
            })
        ));
        // Without an address only the repository counts.
        l.admit(limits, UploadId::new(), &repo("w"), None, false)
            .expect("no address");
        l.free(ids[0]);
        l.free(ids[0]);
        assert_eq!(l.repos.get(&repo("x")), Some(&1));
        assert_eq!(l.clients.get(&a.expect("a")), Some(&2));
        l.free(ids[1]);
        assert!(!l.repos.contains_key(&repo("x")));
        assert!(!l.clients.contains_key(&b.expect("b")));
    }

    #[test]
    fn on_a_shared_store_places_unused_here_lapse_at_the_cap() {
        let limits = UploadLimits {
            per_repository: 1,
            per_client: 0,
        };
        let mut l = Ledger::default();
        let old = UploadId::new();
        l.admit(limits, old, &repo("x"), None, true).expect("1");
        // Not yet lapsed: refused.
        assert!(
            l.admit(limits, UploadId::new(), &repo("x"), None, true)
                .is_err()
        );
        // (Lapsed ten minutes ago: the monotonic clock started longer ago.)
        let Some(lapsed) = Instant::now().checked_sub(IDLE + Duration::from_secs(1)) else {
            return;
        };
        if let Some(p) = l.sessions.get_mut(&old) {
            p.last_used = lapsed;
        }
        // A local store keeps it counted until it ends or GC removes it.
        assert!(
            l.admit(limits, UploadId::new(), &repo("x"), None, false)
                .is_err()
        );
        l.admit(limits, UploadId::new(), &repo("x"), None, true)
            .expect("lapsed place freed");
        assert!(!l.sessions.contains_key(&old));
    }
}

//! One upstream fetch per blob, however many wait for it, and its bytes
//! streamed to every client as they arrive.
//!
//! A fetch writes the upstream's bytes into a staging file (under
//! `downloadDir`, or the root's `.berth/sync/`), hashing them as they
//! come; readers read that file up to what has been written, and wait for
//! more. Once the whole blob is there and its digest checked, it is stored
//! in the repository through the registry's own blob write, and only then
//! leaves the table of fetches: a request that finds no fetch finds the
//! blob stored. A fetch runs in its own task, so a client that disconnects
//! cancels nothing that others (or the image copy) wait on. The staging
//! file is deleted when the last reader and the fetch let go of it.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_oci::{Digest, DigestHasher, RepoName};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::SyncError;
use super::upstream::Upstream;
use crate::registry::Registry;

/// How far a fetch got.
#[derive(Debug, Clone)]
pub(super) enum Progress {
    /// Asking the upstream.
    Starting,
    /// `written` bytes are in the staging file; `len` is what the upstream
    /// announced.
    Running { written: u64, len: Option<u64> },
    /// Stored in the repository (and the staging file complete).
    Stored { len: u64 },
    /// The upstream does not have it.
    Missing,
    /// Failed; the reason, for the log and for readers.
    Failed(Arc<str>),
}

/// A staging file, deleted when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One blob being fetched.
pub(super) struct BlobFetch {
    staging: Staging,
    progress: watch::Receiver<Progress>,
}

impl BlobFetch {
    /// Waits until the fetch is over (stored, missing or failed).
    pub(super) async fn finished(&self) -> Progress {
        let mut rx = self.progress.clone();
        loop {
            let now = rx.borrow_and_update().clone();
            match now {
                Progress::Starting | Progress::Running { .. } => {}
                done => return done,
            }
            if rx.changed().await.is_err() {
                // The task ended without a last word (it panicked).
                let last = rx.borrow().clone();
                return match last {
                    Progress::Starting | Progress::Running { .. } => {
                        Progress::Failed("the fetch stopped".into())
                    }
                    done => done,
                };
            }
        }
    }

    /// Waits until the upstream answered: `None` when it does not have
    /// the blob, else its announced length.
    pub(super) async fn started(&self) -> Result<Option<Option<u64>>, SyncError> {
        let mut rx = self.progress.clone();
        loop {
            let now = rx.borrow_and_update().clone();
            match now {
                Progress::Starting => {}
                Progress::Running { len, .. } => return Ok(Some(len)),
                Progress::Stored { len } => return Ok(Some(Some(len))),
                Progress::Missing => return Ok(None),
                Progress::Failed(why) => return Err(SyncError::Fetch(why.to_string())),
            }
            if rx.changed().await.is_err() {
                return Err(SyncError::Fetch("the fetch stopped".into()));
            }
        }
    }

    /// The blob's bytes, from the first, as they arrive.
    pub(super) fn reader(self: Arc<Self>) -> BoxStream<'static, std::io::Result<Bytes>> {
        let state = Reader {
            rx: self.progress.clone(),
            fetch: self,
            file: None,
            pos: 0,
        };
        futures_util::stream::unfold(Some(state), |state| async move {
            let mut r = state?;
            loop {
                let now = r.rx.borrow_and_update().clone();
                let available = match now {
                    Progress::Starting => 0,
                    Progress::Running { written, .. } => written,
                    Progress::Stored { len } => len,
                    Progress::Missing => {
                        return Some((Err(io_error("the upstream does not have this blob")), None));
                    }
                    Progress::Failed(why) => return Some((Err(io_error(&why)), None)),
                };
                if r.pos < available {
                    return match r.read_upto(available).await {
                        Ok(chunk) => {
                            r.pos += chunk.len() as u64;
                            Some((Ok(chunk), Some(r)))
                        }
                        Err(e) => Some((Err(e), None)),
                    };
                }
                if matches!(now, Progress::Stored { .. }) {
                    return None;
                }
                if r.rx.changed().await.is_err() {
                    let done = matches!(&*r.rx.borrow(), Progress::Stored { len } if *len == r.pos);
                    return (!done).then(|| (Err(io_error("the fetch stopped")), None));
                }
            }
        })
        .boxed()
    }
}

/// A reader of a fetch's staging file.
struct Reader {
    fetch: Arc<BlobFetch>,
    rx: watch::Receiver<Progress>,
    file: Option<tokio::fs::File>,
    pos: u64,
}

impl Reader {
    /// The next bytes before `available`.
    async fn read_upto(&mut self, available: u64) -> std::io::Result<Bytes> {
        if self.file.is_none() {
            let mut f = tokio::fs::File::open(&self.fetch.staging.0).await?;
            f.seek(SeekFrom::Start(self.pos)).await?;
            self.file = Some(f);
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io_error("no staging file"))?;
        let want = (available - self.pos).min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            let n = file.read(&mut buf[got..]).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        if got == 0 {
            return Err(io_error("the staging file is shorter than written"));
        }
        Ok(Bytes::from(buf))
    }
}

fn io_error(message: &str) -> std::io::Error {
    std::io::Error::other(message.to_string())
}

/// `<digest hex>-<32 hex>`, the name of a staging file.
fn is_staging_name(name: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    name.split_once('-')
        .is_some_and(|(d, u)| matches!(d.len(), 64 | 128) && hex(d) && u.len() == 32 && hex(u))
}

/// The most read from the staging file at once.
const CHUNK: usize = 1 << 20;
/// The most of the upstream's body written to the staging file at once.
const BATCH: usize = 1 << 20;

/// Where a blob is fetched from and stored to.
#[derive(Clone)]
pub(super) struct BlobSource {
    pub upstream: Arc<Upstream>,
    /// The repository's upstream name.
    pub remote: String,
    /// The repository it is stored in.
    pub local: RepoName,
}

/// Fetches under way by (repository, blob).
type FetchTable = Arc<Mutex<HashMap<(RepoName, Digest), Arc<BlobFetch>>>>;

/// The fetches under way, one per (repository, blob).
pub(super) struct BlobFetches {
    registry: Arc<Registry>,
    staging_dir: PathBuf,
    running: FetchTable,
}

impl BlobFetches {
    pub(super) fn new(registry: Arc<Registry>, staging_dir: PathBuf) -> Self {
        Self {
            registry,
            staging_dir,
            running: Arc::default(),
        }
    }

    /// The fetch of `digest` into `source.local`: the one under way, or a
    /// new one. `None` when the blob is stored by now (the caller reads it
    /// from the registry).
    pub(super) async fn get(
        &self,
        source: &BlobSource,
        digest: &Digest,
    ) -> Result<Option<Arc<BlobFetch>>, SyncError> {
        let key = (source.local.clone(), digest.clone());
        if let Some(f) = self.lock().get(&key) {
            return Ok(Some(f.clone()));
        }
        // Stored since the caller looked (a fetch that just ended)?
        if self.registry.blob_len(&source.local, digest).await.is_ok() {
            return Ok(None);
        }
        tokio::fs::create_dir_all(&self.staging_dir)
            .await
            .map_err(|e| SyncError::Staging(self.staging_dir.clone(), e))?;
        let mut running = self.lock();
        if let Some(f) = running.get(&key) {
            return Ok(Some(f.clone()));
        }
        let path = self.staging_dir.join(format!(
            "{}-{}",
            digest.hex(),
            uuid::Uuid::new_v4().simple()
        ));
        let (tx, rx) = watch::channel(Progress::Starting);
        let fetch = Arc::new(BlobFetch {
            staging: Staging(path),
            progress: rx,
        });
        running.insert(key.clone(), fetch.clone());
        drop(running);
        let task = FetchTask {
            registry: self.registry.clone(),
            source: source.clone(),
            digest: digest.clone(),
            fetch: fetch.clone(),
            tx,
        };
        let table = self.running.clone();
        tokio::spawn(async move {
            let outcome = task.run().await;
            // Out of the table only once stored (or failed): a request
            // that misses the table finds the blob.
            table.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            outcome
        });
        Ok(Some(fetch))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(RepoName, Digest), Arc<BlobFetch>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Staging files left by a run that stopped midway: only files named
    /// as a fetch names them (`downloadDir` may be shared with others).
    pub(super) async fn clear_leftovers(dir: &Path) {
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
            return;
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            if e.file_name().to_str().is_some_and(is_staging_name) {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }
}

/// The task behind one fetch.
struct FetchTask {
    registry: Arc<Registry>,
    source: BlobSource,
    digest: Digest,
    fetch: Arc<BlobFetch>,
    tx: watch::Sender<Progress>,
}

impl FetchTask {
    async fn run(self) {
        let last = match self.copy().await {
            Ok(Some(len)) => Progress::Stored { len },
            Ok(None) => Progress::Missing,
            Err(e) => {
                tracing::warn!(target: "berth::sync", upstream = %self.source.upstream.name(), repo = %self.source.local, digest = %self.digest, "blob fetch failed: {e}");
                Progress::Failed(e.to_string().into())
            }
        };
        let _ = self.tx.send(last);
    }

    /// A chunk of the upstream's body, or why it broke off.
    fn chunk(&self, chunk: berth_client::ClientResult<Bytes>) -> Result<Bytes, SyncError> {
        chunk.map_err(|e| SyncError::upstream(self.source.upstream.name(), e))
    }

    /// Fetches into the staging file, checks, stores; the length, or
    /// `None` when the upstream lacks the blob.
    async fn copy(&self) -> Result<Option<u64>, SyncError> {
        let path = &self.fetch.staging.0;
        let Some(blob) = self
            .source
            .upstream
            .blob_stream(&self.source.remote, &self.digest)
            .await?
        else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let staging_error = |e| SyncError::Staging(path.clone(), e);
        let create = path.clone();
        let file = std::sync::Arc::new(
            tokio::task::spawn_blocking(move || std::fs::File::create(create))
                .await
                .map_err(|e| SyncError::Fetch(format!("creating the staging file: {e}")))?
                .map_err(staging_error)?,
        );
        let _ = self.tx.send(Progress::Running {
            written: 0,
            len: blob.len,
        });
        // Hashed on a thread of its own, beside the download: a client
        // streaming the blob is not held up by the hashing.
        let (to_hash, hashed) = std::sync::mpsc::channel::<Vec<Bytes>>();
        let algorithm = self.digest.algorithm();
        let hashing = tokio::task::spawn_blocking(move || {
            let mut hasher = DigestHasher::new(algorithm);
            for chunks in hashed {
                for c in &chunks {
                    hasher.update(c);
                }
            }
            hasher.finish()
        });
        let mut written = 0u64;
        let mut stream = blob.stream;
        let mut ended = false;
        while !ended {
            // Waits for the next chunk, then takes whatever else has
            // arrived (up to a batch) without waiting: few writes when
            // the upstream is fast, no delay when it is slow. The chunks
            // are written as they came (no copy into one buffer).
            let mut batch = Vec::new();
            let mut size = 0;
            match stream.next().await {
                Some(chunk) => {
                    let c = self.chunk(chunk)?;
                    size += c.len();
                    batch.push(c);
                }
                None => break,
            }
            while size < BATCH {
                match stream.next().now_or_never() {
                    Some(Some(chunk)) => {
                        let c = self.chunk(chunk)?;
                        size += c.len();
                        batch.push(c);
                    }
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
            let _ = to_hash.send(batch.clone());
            // Written (to the page cache) before it is announced: a reader
            // must find what it is told of.
            let f = file.clone();
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                batch.iter().try_for_each(|c| (&*f).write_all(c))
            })
            .await
            .map_err(|e| SyncError::Fetch(format!("writing the staging file: {e}")))?
            .map_err(staging_error)?;
            written += size as u64;
            if let Some(len) = blob.len
                && written > len
            {
                return Err(SyncError::Invalid(format!(
                    "blob {} is longer than the {len} bytes announced",
                    self.digest
                )));
            }
            let _ = self.tx.send(Progress::Running {
                written,
                len: blob.len,
            });
        }
        drop(file);
        drop(to_hash);
        let actual = hashing
            .await
            .map_err(|e| SyncError::Fetch(format!("hashing the download: {e}")))?;
        if actual != self.digest {
            return Err(SyncError::Invalid(format!(
                "blob {} arrived as {actual}",
                self.digest
            )));
        }
        if let Some(len) = blob.len
            && written != len
        {
            return Err(SyncError::Invalid(format!(
                "blob {} is {written} bytes, {len} were announced",
                self.digest
            )));
        }
        let fetched = started.elapsed();
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| SyncError::Staging(path.clone(), e))?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, CHUNK);
        self.registry
            .put_blob(&self.source.local, &self.digest, body)
            .await?;
        self.registry
            .emit(crate::registry::events::RegistryEvent::SyncedBlob {
                upstream: self.source.upstream.name().to_string(),
                bytes: written,
            });
        tracing::debug!(target: "berth::sync", upstream = %self.source.upstream.name(), repo = %self.source.local, digest = %self.digest, bytes = written, fetch_secs = fetched.as_secs_f64(), store_secs = (started.elapsed() - fetched).as_secs_f64(), "blob copied");
        Ok(Some(written))
    }
}

#[cfg(test)]
mod tests {
    use super::is_staging_name;

    #[test]
    fn only_staging_files_are_taken_for_leftovers() {
        let ours = format!("{}-{}", "a".repeat(64), "b".repeat(32));
        assert!(is_staging_name(&ours));
        assert!(!is_staging_name("notes.txt"));
        assert!(!is_staging_name(&format!("{}-x", "a".repeat(64))));
        assert!(!is_staging_name(&"a".repeat(64)));
    }
}

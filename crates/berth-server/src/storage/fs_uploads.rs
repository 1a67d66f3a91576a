//! Upload sessions of [`FsStore`]: each is a file `.uploads/<id>` that
//! chunks are appended to, and `.uploads/<id>.state` holding the size it
//! vouches for and the saved hash state. A state that does not match the
//! file (a crash mid-chunk) is ignored and the file re-hashed.

use std::io::{Seek as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use berth_oci::{Digest, RepoName};
use bytes::Bytes;

use super::backend::{ByteStream, ChunkReceiver, UploadEntry, UploadState, Uploads};
use super::direct_append::Appender;
use super::fs::{FsStore, not_found};
use super::{IoContext, StorageError, StorageResult};

/// Write buffer for chunk data: large writes, few system calls, and
/// past the page cache where the file system allows ([`Appender`]). While
/// at most [`ROOMY_WRITERS`] bodies are written at once, each gets the
/// larger buffer (one 100 MiB push alone is about 19% faster with it);
/// past that, the smaller one, so memory stays bounded as uploads
/// multiply (16 at once with the larger one peaked at 71 MiB).
const WRITE_BUF: usize = 1 << 20;
const WRITE_BUF_BUSY: usize = 256 << 10;
const ROOMY_WRITERS: usize = 2;
/// Large bodies being written now.
static WRITERS: AtomicUsize = AtomicUsize::new(0);

/// Counts one body among [`WRITERS`] while it lives.
struct Writer;

impl Writer {
    /// Joins the writers; the buffer size this one gets.
    fn join() -> (Self, usize) {
        let before = WRITERS.fetch_add(1, Ordering::AcqRel);
        let cap = if before < ROOMY_WRITERS {
            WRITE_BUF
        } else {
            WRITE_BUF_BUSY
        };
        (Writer, cap)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        WRITERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Read buffer when re-hashing a file.
const READ_BUF: usize = 1 << 20;
/// A body up to this long is written without a trip to a blocking thread.
const SMALL_BODY: usize = 64 << 10;

impl FsStore {
    fn upload_path(&self, repo: &RepoName, id: &str) -> PathBuf {
        self.uploads_dir(repo).join(id)
    }

    fn state_path(&self, repo: &RepoName, id: &str) -> PathBuf {
        self.uploads_dir(repo).join(format!("{id}.state"))
    }
}

#[async_trait::async_trait]
impl Uploads for FsStore {
    async fn upload_create(&self, repo: &RepoName, id: &str) -> StorageResult<UploadState> {
        let path = self.upload_path(repo, id);
        let created = path.clone();
        super::fs::small_io(false, path, move || {
            super::fs::create_new_in_dir(&created).map(drop)
        })
        .await?;
        Ok(UploadState {
            trusted: true,
            ..Default::default()
        })
    }

    /// The file's size, and the saved hash state when it is for exactly
    /// that size. Without `commit` the data behind a saved state may not
    /// have survived a power loss, so such a state is not trusted.
    async fn upload_load(&self, repo: &RepoName, id: &str) -> StorageResult<Option<UploadState>> {
        let path = self.upload_path(repo, id);
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return Ok(None),
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e).at(&path),
        };
        let saved = tokio::fs::read(self.state_path(repo, id)).await.ok();
        let hash_state = saved.as_deref().and_then(|b| {
            let (len, state) = b.split_at_checked(8)?;
            let len = u64::from_le_bytes(len.try_into().ok()?);
            (len == size).then(|| state.to_vec())
        });
        Ok(Some(UploadState {
            size,
            trusted: hash_state.is_none() || self.commit(),
            hash_state,
            backend: Vec::new(),
        }))
    }

    /// A body that ends within `SMALL_BODY` bytes is written here at
    /// once (`small_io`). A longer one is written on a
    /// blocking thread fed through the bounded channel, so receiving and
    /// hashing the next chunk overlaps with writing the previous one.
    /// A session whose file is gone is refused before its body is read.
    async fn upload_append(
        &self,
        repo: &RepoName,
        id: &str,
        _state: &mut UploadState,
        mut data: ChunkReceiver,
    ) -> StorageResult<()> {
        let path = self.upload_path(repo, id);
        // Opened before the body is read, and kept: a descriptor is not
        // to be found later, when the process may have run out of them.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let commit = self.commit();
        let mut head: Vec<Bytes> = Vec::new();
        let mut held = 0;
        let ended = loop {
            match data.recv().await {
                Some(b) => {
                    held += b.len();
                    head.push(b);
                    if held > SMALL_BODY {
                        break false;
                    }
                }
                None => break true,
            }
        };
        if ended {
            let at = path.clone();
            return super::fs::small_io(commit, path, move || {
                let mut f = file;
                f.seek(std::io::SeekFrom::End(0)).at(&at)?;
                for b in head {
                    f.write_all(&b).at(&at)?;
                }
                if commit {
                    f.sync_data().at(&at)?;
                }
                Ok(())
            })
            .await;
        }
        let at = path.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let (_writer, cap) = Writer::join();
            let mut w = Appender::open(file, &at, cap)?;
            for b in head {
                w.write(&b)?;
            }
            while let Some(b) = data.blocking_recv() {
                w.write(&b)?;
            }
            let file = w.finish()?;
            if commit {
                // Data before the hash state that vouches for it.
                file.sync_data()?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        written.at(&path)
    }

    async fn upload_save(
        &self,
        repo: &RepoName,
        id: &str,
        state: &UploadState,
    ) -> StorageResult<()> {
        let Some(hash) = &state.hash_state else {
            return Ok(());
        };
        let mut bytes = state.size.to_le_bytes().to_vec();
        bytes.extend_from_slice(hash);
        let tmp = self.temp_path(repo);
        tokio::fs::write(&tmp, &bytes).await.at(&tmp)?;
        let dest = self.state_path(repo, id);
        tokio::fs::rename(&tmp, &dest).await.at(&dest)
    }

    async fn upload_read(
        &self,
        repo: &RepoName,
        id: &str,
        _state: &mut UploadState,
    ) -> StorageResult<ByteStream> {
        let path = self.upload_path(repo, id);
        let f = tokio::fs::File::open(&path).await.at(&path)?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            f, READ_BUF,
        )))
    }

    /// The file must hold exactly the bytes the registry counted and
    /// hashed.
    async fn upload_commit(
        &self,
        repo: &RepoName,
        id: &str,
        state: UploadState,
        digest: &Digest,
    ) -> StorageResult<()> {
        let size = state.size;
        let (path, state) = (self.upload_path(repo, id), self.state_path(repo, id));
        self.commit_upload(repo, &path, &state, size, digest).await
    }

    async fn upload_remove(&self, repo: &RepoName, id: &str) -> StorageResult<bool> {
        let _ = tokio::fs::remove_file(self.state_path(repo, id)).await;
        let path = self.upload_path(repo, id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Session files, their states and temporaries. A temporary file may
    /// be a fresh hard link to an old inode: it is dated by when it was
    /// linked (ctime), not by its mtime.
    async fn list_uploads(&self, repo: &RepoName) -> StorageResult<Vec<UploadEntry>> {
        let dir = self.uploads_dir(repo);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e).at(&dir),
        };
        let mut out = Vec::new();
        while let Some(e) = entries.next_entry().await.at(&dir)? {
            let name = e.file_name().to_string_lossy().into_owned();
            // Not ours (an NFS `.nfsXXXX` file, say).
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = e.metadata().await else {
                continue;
            };
            let mut modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if name.starts_with("tmp-") {
                modified = modified.max(changed_at(&meta));
            }
            let session = uuid::Uuid::try_parse(name.trim_end_matches(".state"))
                .is_ok()
                .then(|| name.trim_end_matches(".state").to_string());
            out.push(UploadEntry {
                name,
                session,
                modified,
            });
        }
        Ok(out)
    }

    async fn remove_upload_entry(&self, repo: &RepoName, name: &str) -> StorageResult<bool> {
        if name.contains('/') || name.starts_with('.') {
            return Err(StorageError::InvalidInput(format!(
                "{name} is not an upload file"
            )));
        }
        let path = self.uploads_dir(repo).join(name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).at(&path),
        }
    }
}

/// When the inode last changed (ctime).
#[cfg(unix)]
fn changed_at(m: &std::fs::Metadata) -> SystemTime {
    use std::os::unix::fs::MetadataExt;
    let secs = u64::try_from(m.ctime()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

#[cfg(not(unix))]
fn changed_at(m: &std::fs::Metadata) -> SystemTime {
    m.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

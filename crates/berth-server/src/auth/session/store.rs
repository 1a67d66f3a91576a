//! Where sessions and logins in progress are kept: the [`SessionStore`]
//! seam and its backends on this host (memory, files under the main
//! root). Redis is in `redis.rs`. Every backend passes the one suite in
//! `conformance.rs`.
//!
//! A record is opaque bytes with an expiry; a record past it is never
//! returned, and is deleted by [`SessionStore::purge`] (the files) or by
//! the backend itself (Redis).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A browser session, by its id.
    Session,
    /// A spent OpenID login `state`: claimed once.
    Login,
}

impl RecordKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Session => "session_",
            Self::Login => "login_",
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store: {0}")]
    Io(#[from] std::io::Error),
    #[error("session store unavailable: {0}")]
    Unavailable(String),
}

/// The seam: a keyed record store with expiry and a one-time claim.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores `record` under `(kind, id)` until `expires` (Unix seconds).
    async fn put(
        &self,
        kind: RecordKind,
        id: &str,
        record: &[u8],
        expires: i64,
    ) -> Result<(), StoreError>;
    /// The record, unless absent or expired.
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores an empty record under `(kind, id)` until `expires` unless
    /// one is there (and not expired): whether this call stored it. Of
    /// two claims at once, one wins.
    async fn claim(&self, kind: RecordKind, id: &str, expires: i64) -> Result<bool, StoreError>;
    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), StoreError>;
    /// Deletes expired records; how many.
    async fn purge(&self) -> Result<usize, StoreError>;
    /// A secret every instance sharing the store sees the same (made
    /// once), to sign cookies without `sessionKeysFile`; `None`: this
    /// store is not shared.
    async fn shared_secret(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
}

pub(super) fn now() -> i64 {
    crate::auth::apikeys::now()
}

/// Sessions in this process's memory (when the main root is in a bucket:
/// nothing else on this host lasts; they end at a restart).
/// A record and its expiry, by kind and id.
type Records = HashMap<(RecordKind, String), (Vec<u8>, i64)>;

#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn put(
        &self,
        kind: RecordKind,
        id: &str,
        record: &[u8],
        expires: i64,
    ) -> Result<(), StoreError> {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        r.insert((kind, id.to_string()), (record.to_vec(), expires));
        Ok(())
    }

    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        Ok(r.get(&(kind, id.to_string()))
            .filter(|(_, e)| *e > now())
            .map(|(v, _)| v.clone()))
    }

    async fn claim(&self, kind: RecordKind, id: &str, expires: i64) -> Result<bool, StoreError> {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let key = (kind, id.to_string());
        if r.get(&key).is_some_and(|(_, e)| *e > now()) {
            return Ok(false);
        }
        r.insert(key, (Vec::new(), expires));
        Ok(true)
    }

    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), StoreError> {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        r.remove(&(kind, id.to_string()));
        Ok(())
    }

    async fn purge(&self) -> Result<usize, StoreError> {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let before = r.len();
        let t = now();
        r.retain(|_, (_, e)| *e > t);
        Ok(before - r.len())
    }
}

/// Sessions as files in a directory (zot's `<rootDirectory>/_sessions`):
/// `session_<sha256 of the id>`, each the expiry (8 bytes, big-endian)
/// then the record; written to a temporary file and renamed, so a reader
/// never sees half of one. The file name is a hash so that the directory
/// listing gives no usable cookie away.
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store in `dir`, made if missing (owner-only).
    pub fn open(dir: PathBuf) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir })
    }

    fn path(&self, kind: RecordKind, id: &str) -> PathBuf {
        self.dir.join(format!(
            "{}{}",
            kind.prefix(),
            hex::encode(Sha256::digest(id.as_bytes()))
        ))
    }

    /// Reads a record file: `None` when absent or expired.
    fn read(path: &std::path::Path) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some((head, record)) = bytes.split_first_chunk::<8>() else {
            return Ok(None);
        };
        Ok((i64::from_be_bytes(*head) > now()).then(|| record.to_vec()))
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }
}

#[async_trait]
impl SessionStore for FileStore {
    async fn put(
        &self,
        kind: RecordKind,
        id: &str,
        record: &[u8],
        expires: i64,
    ) -> Result<(), StoreError> {
        let path = self.path(kind, id);
        let tmp = self.dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let mut bytes = expires.to_be_bytes().to_vec();
        bytes.extend_from_slice(record);
        Self::blocking(move || {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
            Ok(())
        })
        .await
    }

    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(kind, id);
        Self::blocking(move || Self::read(&path)).await
    }

    async fn claim(&self, kind: RecordKind, id: &str, expires: i64) -> Result<bool, StoreError> {
        // A hard link fails when the name exists: of two claims, one
        // links. An expired record in the way is removed once.
        let path = self.path(kind, id);
        let tmp = self.dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        Self::blocking(move || {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let claimed = (|| {
                use std::io::Write;
                let mut f = opts.open(&tmp)?;
                f.write_all(&expires.to_be_bytes())?;
                f.sync_data()?;
                for _ in 0..2 {
                    match std::fs::hard_link(&tmp, &path) {
                        Ok(()) => return Ok(true),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            if Self::read(&path)?.is_some() {
                                return Ok(false);
                            }
                            let _ = std::fs::remove_file(&path);
                        }
                        Err(e) => return Err(StoreError::from(e)),
                    }
                }
                Ok(false)
            })();
            let _ = std::fs::remove_file(&tmp);
            claimed
        })
        .await
    }

    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), StoreError> {
        let path = self.path(kind, id);
        Self::blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        })
        .await
    }

    async fn purge(&self) -> Result<usize, StoreError> {
        let dir = self.dir.clone();
        Self::blocking(move || {
            let mut removed = 0;
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let stale_tmp = name.starts_with(".tmp-");
                let record = name.starts_with("session_") || name.starts_with("login_");
                // A temporary file older than a minute was left by a crash.
                let old = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|a| a.as_secs() > 60);
                let expired = record && Self::read(&path).is_ok_and(|r| r.is_none());
                if ((stale_tmp && old) || expired) && std::fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }
}

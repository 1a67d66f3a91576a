//! Small files under a root itself, outside every repository: where zot
//! keeps what belongs to the whole registry (`_cosign/` keys,
//! `_notation/truststore/…` certificates) and where Berth keeps the same,
//! on disk or in the bucket, so that every instance sharing the root sees
//! them.
//!
//! A path is relative, of `/`-separated components of letters, digits,
//! `.`, `_`, `-` and `:` (no `.` or `..` component), and its first
//! component starts with `_`, which no repository name can: such a file
//! never lies inside a repository's layout.

use std::path::PathBuf;

use super::fs::{FsStore, not_found, on_blocking, write_atomic_sync};
use super::{IoContext, StorageError, StorageResult};

/// The root-level files seam.
#[async_trait::async_trait]
pub trait RootFiles: Send + Sync {
    /// The names of the files directly in `dir`, sorted (none when `dir`
    /// does not exist).
    async fn list_files(&self, dir: &str) -> StorageResult<Vec<String>>;
    /// A file's content, `None` when it does not exist.
    async fn read_file(&self, path: &str) -> StorageResult<Option<Vec<u8>>>;
    /// Writes a file whole: a reader sees the old content or the new one,
    /// never a part.
    async fn write_file(&self, path: &str, bytes: &[u8]) -> StorageResult<()>;
    /// Removes a file; whether it existed.
    async fn delete_file(&self, path: &str) -> StorageResult<bool>;
}

/// Checks a root-level path (see the module's documentation).
pub(super) fn check_path(path: &str) -> StorageResult<()> {
    let ok = path.starts_with('_')
        && path.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidInput(format!(
            "{path:?} is no root-level file path"
        )))
    }
}

impl FsStore {
    fn root_file(&self, path: &str) -> StorageResult<PathBuf> {
        check_path(path)?;
        Ok(self.root().join(path))
    }
}

#[async_trait::async_trait]
impl RootFiles for FsStore {
    async fn list_files(&self, dir: &str) -> StorageResult<Vec<String>> {
        let dir = self.root_file(dir)?;
        on_blocking(dir.clone(), move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if not_found(&e) => return Ok(Vec::new()),
                Err(e) => return Err(e).at(&dir),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.at(&dir)?;
                if entry.file_type().at(&dir)?.is_file()
                    && let Some(name) = entry.file_name().to_str()
                    && !name.starts_with('.')
                    && check_path(&format!("_/{name}")).is_ok()
                {
                    names.push(name.to_string());
                }
            }
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn read_file(&self, path: &str) -> StorageResult<Option<Vec<u8>>> {
        let path = self.root_file(path)?;
        on_blocking(path.clone(), move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e).at(&path),
        })
        .await
    }

    async fn write_file(&self, path: &str, bytes: &[u8]) -> StorageResult<()> {
        let dest = self.root_file(path)?;
        let (root, commit, bytes) = (self.root().to_path_buf(), self.commit(), bytes.to_vec());
        on_blocking(dest.clone(), move || {
            let dir = dest.parent().unwrap_or(&root).to_path_buf();
            std::fs::create_dir_all(&dir).at(&dir)?;
            let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
            write_atomic_sync(&root, commit, &tmp, &dest, &bytes)
        })
        .await
    }

    async fn delete_file(&self, path: &str) -> StorageResult<bool> {
        let path = self.root_file(path)?;
        on_blocking(path.clone(), move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).at(&path),
        })
        .await
    }
}

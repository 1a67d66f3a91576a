//! Opening the redb files Berth derives from storage (the metadata store,
//! the dedupe index): a file that is not a sound redb database is moved
//! aside (`<name>.damaged-<seconds>`, kept for whoever wants to look at
//! it) and made anew, since what it held can be derived again; a file
//! held by another process, unreadable, or of another format version is
//! never moved, and its error is returned.

use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, StorageError};

/// The database at `path` with a page cache of `cache_bytes` (redb's
/// default of 1 GiB is far more than these files need), and where a
/// damaged file found there was moved, if one was.
pub(crate) fn open(
    path: &Path,
    cache_bytes: usize,
) -> Result<(Database, Option<PathBuf>), DatabaseError> {
    let open = || Database::builder().set_cache_size(cache_bytes).create(path);
    match open() {
        Err(e) if is_damaged(&e) => {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!(".damaged-{since}"));
            let aside = PathBuf::from(aside);
            std::fs::rename(path, &aside).map_err(|io| DatabaseError::Storage(io.into()))?;
            tracing::warn!(
                "{} is damaged ({e}): moved aside to {}, and made anew",
                path.display(),
                aside.display()
            );
            Ok((open()?, Some(aside)))
        }
        other => other.map(|db| (db, None)),
    }
}

/// Whether opening failed because the file is not a sound redb database.
fn is_damaged(e: &DatabaseError) -> bool {
    match e {
        DatabaseError::Storage(StorageError::Corrupted(_)) => true,
        DatabaseError::Storage(StorageError::Io(io)) => {
            io.kind() == std::io::ErrorKind::InvalidData
        }
        _ => false,
    }
}

//! Blobs to and from files, for the layout and archive ends: a blob is
//! written to a temporary name beside its place, hashed as it arrives,
//! checked, and only then renamed into place; a copy cut short (an error,
//! Ctrl-C, a dropped source) leaves no file under a blob's name.

use std::path::{Path, PathBuf};

use berth_oci::{Digest, DigestHasher};
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use super::ends::{BlobBytes, CopyError};

/// Reads at most this much at a time from a file.
const READ_BUF: usize = 256 * 1024;

/// `path` as a stream of its bytes, from `offset`, `len` of them.
pub(super) async fn read_range(path: &Path, offset: u64, len: u64) -> Result<BlobBytes, CopyError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| CopyError::io(path, e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| CopyError::io(path, e))?;
    let owned = path.to_path_buf();
    Ok(
        tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_BUF)
            .map_err(move |e| CopyError::io(&owned, e))
            .boxed(),
    )
}

/// A temporary file removed when dropped unless it was put in place.
struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A temporary name beside `dest`, unique to this process and call.
pub(super) fn temp_beside(dest: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.berth-{}-{n}", std::process::id()))
}

/// Writes `data` to `dest` (through a temporary file and a rename),
/// checking that it is `size` bytes with digest `digest`; `seen` is told
/// the length of each piece as it is written.
pub(super) async fn write_blob(
    dest: &Path,
    digest: &Digest,
    size: u64,
    mut data: BlobBytes,
    seen: &(dyn Fn(u64) + Sync),
) -> Result<(), CopyError> {
    let tmp = temp_beside(dest);
    let mut partial = Partial {
        path: tmp.clone(),
        kept: false,
    };
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| CopyError::io(&tmp, e))?;
    let mut hasher = DigestHasher::new(digest.algorithm());
    let mut written = 0u64;
    while let Some(piece) = data.next().await {
        let piece = piece?;
        hasher.update(&piece);
        written += piece.len() as u64;
        if written > size {
            return Err(CopyError::Invalid(format!(
                "{digest}: more than the {size} bytes its descriptor says"
            )));
        }
        file.write_all(&piece)
            .await
            .map_err(|e| CopyError::io(&tmp, e))?;
        seen(piece.len() as u64);
    }
    let got = hasher.finish();
    if got != *digest || written != size {
        return Err(CopyError::Invalid(format!(
            "{digest}: arrived as {written} bytes with digest {got}"
        )));
    }
    file.sync_all().await.map_err(|e| CopyError::io(&tmp, e))?;
    drop(file);
    tokio::fs::rename(&tmp, dest)
        .await
        .map_err(|e| CopyError::io(dest, e))?;
    partial.kept = true;
    Ok(())
}

/// Writes `bytes` to `dest` atomically (a temporary file, synced, renamed).
pub(super) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), CopyError> {
    use std::io::Write as _;
    let tmp = temp_beside(dest);
    let mut partial = Partial {
        path: tmp.clone(),
        kept: false,
    };
    let mut file = std::fs::File::create(&tmp).map_err(|e| CopyError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CopyError::io(&tmp, e))?;
    std::fs::rename(&tmp, dest).map_err(|e| CopyError::io(dest, e))?;
    partial.kept = true;
    Ok(())
}

/// The place of blob `digest` under a layout's (or a staging) directory.
pub(super) fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

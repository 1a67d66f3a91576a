//! New files whose inode is allocated outside their directory's lock.
//!
//! A file created by name (`open` with `O_CREAT`) gets its inode while the
//! kernel holds the directory's lock, so creations in one directory wait
//! for each other's inode allocation — and every upload and every
//! manifest of a repository is created in its `.uploads/`. On ext4 without
//! a journal an allocation walks past every inode freed in the last
//! minutes, so after deletes (GC, a benchmark's cleanup) that lock was
//! most of a push's time, spent spinning. A file opened with `O_TMPFILE`
//! is allocated with no directory lock held and is then given its name by
//! `linkat`, which only adds a directory entry.
//!
//! Where `O_TMPFILE` is not supported (NFS, some FUSE file systems) or
//! `/proc` is not mounted, files are created by name as before; the first
//! such failure switches this process to that for good.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

/// Set once anonymous creation has failed in a way that will not change.
static BY_NAME_ONLY: AtomicBool = AtomicBool::new(false);

/// Creates the file `path`, which must not exist yet (callers pass fresh
/// names), open for writing. A missing directory is `NotFound`.
pub(super) fn create_new(path: &Path) -> io::Result<File> {
    if !BY_NAME_ONLY.load(Ordering::Relaxed) {
        match create_anonymous(path) {
            Ok(f) => return Ok(f),
            Err(Fallback::Never(e)) => return Err(e),
            Err(Fallback::ByName) => BY_NAME_ONLY.store(true, Ordering::Relaxed),
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

enum Fallback {
    /// The error stands whichever way the file is created.
    Never(io::Error),
    /// This file system or process cannot do it: create by name.
    ByName,
}

fn create_anonymous(path: &Path) -> Result<File, Fallback> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fd = rustix::fs::openat(
        CWD,
        dir,
        OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::ACCESS => {
            Fallback::Never(e.into())
        }
        _ => Fallback::ByName,
    })?;
    let file = File::from(fd);
    let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    rustix::fs::linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW).map_err(
        |e| match e {
            rustix::io::Errno::EXIST | rustix::io::Errno::NOSPC | rustix::io::Errno::ACCESS => {
                Fallback::Never(e.into())
            }
            _ => Fallback::ByName,
        },
    )?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn creates_a_named_writable_file_and_never_an_existing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        let mut f = create_new(&p).expect("create");
        f.write_all(b"hello").expect("write");
        drop(f);
        assert_eq!(std::fs::read(&p).expect("read"), b"hello");
        let again = create_new(&p).map(|_| ()).expect_err("exists");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).expect("read"), b"hello", "untouched");
        let missing = create_new(&dir.path().join("no/such/dir/f"))
            .map(|_| ())
            .expect_err("missing dir");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        // Nothing else was left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}

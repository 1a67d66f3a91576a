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
//! Where `O_TMPFILE` is not supported (NFS, some FUSE file systems), where
//! `/proc` is not mounted, or where the process umask cannot be read,
//! files are created by name as before; the first such failure switches
//! this process to that for good. Other errors (no space, too many open
//! files) are returned as they are: creating by name would meet them too.
//!
//! The mode is `0o666` less the umask, applied here: some kernels do not
//! apply the umask to `O_TMPFILE` files. (In a directory with a default
//! ACL the kernel would skip the umask for a file created by name; here it
//! is applied all the same, so such files may be less open.)
//!
//! `O_TMPFILE` and `/proc` are Linux's: on other systems (macOS, the BSDs,
//! Windows) every file is created by name.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates the file `path`, which must not exist yet (callers pass fresh
/// names), open for writing. A missing directory is `NotFound`.
pub(super) fn create_new(path: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    if let Some(created) = anonymous::create_new(path) {
        return created;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// `O_TMPFILE` and `linkat` through `/proc` (Linux).
#[cfg(target_os = "linux")]
mod anonymous {
    use std::fs::File;
    use std::io;
    use std::path::Path;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::fs::{AtFlags, CWD, Mode, OFlags};

    /// Set once anonymous creation has failed in a way that will not change.
    static BY_NAME_ONLY: AtomicBool = AtomicBool::new(false);

    /// The file created anonymously and linked at `path`, or its error; `None`
    /// when it is to be created by name.
    pub(super) fn create_new(path: &Path) -> Option<io::Result<File>> {
        if BY_NAME_ONLY.load(Ordering::Relaxed) {
            return None;
        }
        match create_anonymous(path) {
            Ok(f) => Some(Ok(f)),
            Err(Fallback::Never(e)) => Some(Err(e)),
            Err(Fallback::ByName) => {
                BY_NAME_ONLY.store(true, Ordering::Relaxed);
                None
            }
            Err(Fallback::Once) => None,
        }
    }

    enum Fallback {
        /// The error stands whichever way the file is created.
        Never(io::Error),
        /// This file system or process cannot do it: create by name.
        ByName,
        /// Create this one by name.
        Once,
    }

    /// The process umask, from `/proc/self/status` (read once: reading it
    /// with `umask(2)` means setting it, which races with other threads).
    /// A failed read (too many open files, say) is tried again next time.
    /// One line of one file read by hand: `procfs` is an optional dependency
    /// of the `metrics` feature, and this runs in every build.
    pub(super) fn umask() -> Option<u32> {
        static UMASK: OnceLock<u32> = OnceLock::new();
        if let Some(m) = UMASK.get() {
            return Some(*m);
        }
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("Umask:"))?;
        let mask = u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()?;
        Some(*UMASK.get_or_init(|| mask))
    }

    fn create_anonymous(path: &Path) -> Result<File, Fallback> {
        use rustix::io::Errno;
        let Some(mask) = umask() else {
            // Created by name this time; anonymously again once it reads.
            return Err(Fallback::Once);
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let fd = rustix::fs::openat(
            CWD,
            dir,
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666 & !mask),
        )
        .map_err(|e| match e {
            // The file system (or kernel) has no O_TMPFILE.
            Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL => Fallback::ByName,
            _ => Fallback::Never(e.into()),
        })?;
        let file = File::from(fd);
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        rustix::fs::linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW).map_err(
            |e| match e {
                // No /proc, or linking through it is not allowed here.
                Errno::NOENT if !Path::new("/proc/self/fd").is_dir() => Fallback::ByName,
                Errno::PERM | Errno::XDEV | Errno::OPNOTSUPP => Fallback::ByName,
                _ => Fallback::Never(e.into()),
            },
        )?;
        Ok(file)
    }
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

    #[cfg(target_os = "linux")]
    #[test]
    fn the_mode_is_what_creating_by_name_gives() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let ours = dir.path().join("ours");
        drop(create_new(&ours).expect("create"));
        let by_name = dir.path().join("by-name");
        drop(File::create(&by_name).expect("create"));
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&by_name));
        assert!(anonymous::umask().is_some(), "the umask is readable here");
    }
}

//! What std offers only on unix, with what stands in for it elsewhere:
//! a file's identity (device and inode). Linux-only calls (`O_TMPFILE`,
//! `/proc`, rlimits) stay next to their one user, each behind its own
//! `cfg` with a fallback (`storage/new_file.rs`, `server/conn.rs`,
//! `ext/metrics.rs`).
//!
//! Without inodes (Windows), a file's identity is unknown: callers that
//! compare identities to spot a file replaced under the same name fall back
//! to its size and modification time, and those that count hard links once
//! count each name.

use std::fs::Metadata;

/// The (device, inode) of a file; `None` where std does not tell them.
pub(crate) fn file_id(m: &Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

/// The inode of a file, 0 where std does not tell it.
pub(crate) fn inode(m: &Metadata) -> u64 {
    file_id(m).map_or(0, |(_, ino)| ino)
}

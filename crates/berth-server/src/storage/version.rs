//! [`IndexVersion`]: which version of a repository's `index.json` the
//! metadata store was derived from. Storage makes it and compares it; to
//! the metadata store it is an opaque string kept verbatim.

use std::path::Path;
use std::time::UNIX_EPOCH;

/// One version of a repository's `index.json`. Two reads of the same file
/// give equal versions; any write gives a new one. The empty version
/// (`Default`) matches no file, so rows recorded with it are derived again
/// on their first read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct IndexVersion(String);

impl IndexVersion {
    /// A version as a backend spells it (an S3 ETag, or a stored value
    /// read back).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The version of the local file at `path`, `None` if it is missing:
    /// its inode, size and modification time. Every write of `index.json`
    /// renames one of two slot inodes into place with an mtime above both
    /// the slot's and the current file's (`fs_index.rs`), so the three
    /// never name two contents. Spelled as the JSON object Berth has always
    /// stored (`{"inode":…,"len":…,"mtime_ns":…}`), so the versions in an
    /// existing metadata store stay valid.
    pub fn of_file(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        let inode = crate::os::inode(&m);
        let mtime_ns = m
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        Some(Self(format!(
            "{{\"inode\":{inode},\"len\":{},\"mtime_ns\":{mtime_ns}}}",
            m.len()
        )))
    }

    /// The version as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_version_is_spelled_as_before_and_changes_with_a_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("index.json");
        assert!(IndexVersion::of_file(&p).is_none());
        std::fs::write(&p, b"{}").expect("write");
        let v = IndexVersion::of_file(&p).expect("version");
        let parsed: serde_json::Value = serde_json::from_str(v.as_str()).expect("json");
        assert_eq!(parsed["len"], 2);
        assert!(parsed["inode"].is_u64() && parsed["mtime_ns"].is_u64());
        assert_eq!(IndexVersion::of_file(&p), Some(v.clone()));
        let tmp = dir.path().join("new");
        std::fs::write(&tmp, b"{\"a\":1}").expect("write");
        std::fs::rename(&tmp, &p).expect("rename");
        assert_ne!(IndexVersion::of_file(&p), Some(v));
        assert_ne!(
            IndexVersion::default(),
            IndexVersion::of_file(&p).expect("v")
        );
    }
}

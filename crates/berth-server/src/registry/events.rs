//! What happens in the registry, announced on a broadcast channel for
//! whoever listens (the metrics and events extensions). The registry never
//! waits for a listener: the channel is bounded, and a listener that falls
//! behind loses the oldest events (and is told how many).

use berth_oci::Digest;

use super::GcReport;

/// How many events a slow listener may fall behind before losing some.
pub const CAPACITY: usize = 4096;

/// Something the registry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    /// A repository was created by its first write.
    RepoCreated { repo: String },
    /// A manifest was stored, by tag or by digest.
    ManifestPushed {
        repo: String,
        reference: String,
        digest: Digest,
        media_type: String,
        /// The manifest itself (bounded by the manifest size limit).
        manifest: std::sync::Arc<Vec<u8>>,
    },
    /// A tag or a manifest was deleted.
    ManifestDeleted {
        repo: String,
        reference: String,
        /// The manifest's digest, when it was known.
        digest: Option<Digest>,
        media_type: Option<String>,
    },
    /// zot's linter refused a manifest push.
    LintFailed {
        repo: String,
        reference: String,
        digest: Digest,
        media_type: String,
        manifest: std::sync::Arc<Vec<u8>>,
    },
    /// A manifest was read (GET, not HEAD).
    ManifestPulled { repo: String },
    /// A repository under a byte quota was written to: the bytes its
    /// manifests reference now, and its quota.
    QuotaUsage { repo: String, used: u64, limit: u64 },
    /// A GC run of one storage root finished.
    GcFinished { root: String, report: GcReport },
    /// A scrub of every root finished; `affected` images were damaged.
    ScrubFinished { checked: usize, affected: usize },
    /// The sync extension dealt with one image of an upstream (an image
    /// already up to date is not announced).
    Synced {
        /// The upstream's first URL.
        upstream: String,
        repo: String,
        reference: String,
        outcome: SyncOutcome,
        /// Why it was skipped or failed.
        message: Option<String>,
    },
    /// The sync extension stored a blob it downloaded from an upstream.
    SyncedBlob {
        /// The upstream's first URL.
        upstream: String,
        bytes: u64,
    },
}

/// What became of one image the sync extension looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Copied, or brought up to date.
    Copied,
    /// The same here already.
    UpToDate,
    /// Left out (`onlySigned`, or not upstream).
    Skipped,
    /// The copy failed (it is tried again by the next run or pull).
    Failed,
}

impl SyncOutcome {
    /// The metrics' and events' word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copied => "copied",
            Self::UpToDate => "up_to_date",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

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
    /// A manifest was read (GET, not HEAD).
    ManifestPulled { repo: String },
    /// A GC run of one storage root finished.
    GcFinished { root: String, report: GcReport },
    /// A scrub of every root finished; `affected` images were damaged.
    ScrubFinished { checked: usize, affected: usize },
}

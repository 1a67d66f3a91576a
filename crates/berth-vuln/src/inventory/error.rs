//! The one way a whole scan fails: a layer that cannot be read to its
//! end. Everything smaller (a file over the bounds, a database of
//! garbage, a layer that is not a filesystem) is a note in the
//! [`Inventory`](super::Inventory) instead.

use std::io;

/// Why an image's inventory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The layer's bytes could not be read or decompressed (a corrupt
    /// gzip or zstd stream, a tar header that does not check out, an I/O
    /// error of the reader). Layers are numbered from 1, the base.
    #[error("layer {layer} cannot be read: {source}")]
    Read {
        layer: usize,
        #[source]
        source: io::Error,
    },
    /// The layer ends before its tar stream does (inside an entry, or
    /// without the end-of-archive blocks).
    #[error("layer {layer} is truncated{}", at.as_deref().map(|p| format!(" in {p}")).unwrap_or_default())]
    Truncated {
        layer: usize,
        /// The entry being read when the stream ended, if any.
        at: Option<String>,
    },
}

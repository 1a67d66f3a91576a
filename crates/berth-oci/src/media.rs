//! Media types Berth gives meaning to.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";
/// The annotation holding a tag in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// How Berth treats a manifest of a given media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (OCI or Docker schema2): config plus layers.
    Image,
    /// An index (OCI index or Docker manifest list): child manifests.
    Index,
}

/// The kind of a manifest media type, `None` if Berth does not accept it.
pub fn manifest_kind(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

/// Docker foreign layers are fetched from their `urls`, never pushed.
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type.contains(".foreign.") || media_type.contains("nondistributable")
}

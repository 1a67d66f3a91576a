//! Small OCI image manifests to push: what the bench and tests upload.

use berth_oci::Digest;
use bytes::Bytes;

/// The media type [`image_manifest`] writes.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An OCI image manifest naming `config` and `layers` (digest, size).
pub fn image_manifest(config: (&Digest, u64), layers: &[(&Digest, u64)]) -> Bytes {
    image_manifest_annotated(config, layers, &[])
}

/// [`image_manifest`] with `annotations` (which make otherwise equal
/// manifests distinct).
pub fn image_manifest_annotated(
    config: (&Digest, u64),
    layers: &[(&Digest, u64)],
    annotations: &[(&str, &str)],
) -> Bytes {
    let layer = |(d, s): &(&Digest, u64)| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                           "digest": d.to_string(), "size": s})
    };
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.0.to_string(), "size": config.1},
        "layers": layers.iter().map(layer).collect::<Vec<_>>(),
    });
    if !annotations.is_empty() {
        m["annotations"] = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    Bytes::from(m.to_string())
}

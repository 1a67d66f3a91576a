//! The on-disk format is zot's OCI layout, and a layout made by another
//! tool is served as is.

use berth_oci::Digest;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn writes_an_oci_layout_like_zot() {
    let s = Server::start().await;
    let (m, d) = s.push_image("team/app", "1.0", &[b"layer"]).await;
    let repo = s.root.join("team/app");
    let layout: Value =
        serde_json::from_slice(&std::fs::read(repo.join("oci-layout")).expect("oci-layout"))
            .expect("json");
    assert_eq!(layout, json!({"imageLayoutVersion": "1.0.0"}));
    let index: Value =
        serde_json::from_slice(&std::fs::read(repo.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["schemaVersion"], 2);
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], d.to_string());
    assert_eq!(entries[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(entries[0]["size"], m.len());
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.0"
    );
    assert_eq!(
        std::fs::read(repo.join("blobs/sha256").join(d.hex())).expect("manifest blob"),
        m
    );
    let layer = Digest::sha256(b"layer");
    assert_eq!(
        std::fs::read(repo.join("blobs/sha256").join(layer.hex())).expect("layer blob"),
        b"layer"
    );
}

/// Writes a layout the way `skopeo copy --all ... oci:` does: only the
/// top-level index is in `index.json`; its children live only in `blobs/`.
fn write_foreign_layout(dir: &std::path::Path) -> (Digest, Digest, Vec<u8>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let put = |data: &[u8]| {
        let d = Digest::sha256(data);
        std::fs::write(blobs.join(d.hex()), data).expect("write blob");
        d
    };
    let config = br#"{"architecture":"arm64","os":"linux"}"#;
    let cd = put(config);
    let ld = put(b"foreign layer");
    let child = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, &cd, config.len()), "layers": [desc(OCI_LAYER, &ld, 13)]
    }))
    .expect("json");
    let child_d = put(&child);
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child_d.to_string(), "size": child.len(), "platform": {"architecture":"arm64","os":"linux"}}]
    }))
    .expect("json");
    let idx_d = put(&idx);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_INDEX, "digest": idx_d.to_string(), "size": idx.len(),
             "annotations": {"org.opencontainers.image.ref.name": "stable"}}]}))
        .expect("json"),
    )
    .expect("index");
    (idx_d, child_d, child)
}

#[tokio::test]
async fn serves_an_existing_layout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (idx_d, child_d, child) = write_foreign_layout(&tmp.path().join("imported/image"));
    let s = Server::start_at(tmp.path()).await;
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(v["repositories"], json!(["imported/image"]));
    let v: Value = s
        .get("/v2/imported/image/tags/list")
        .await
        .json()
        .await
        .expect("j");
    assert_eq!(v["tags"], json!(["stable"]));
    let r = s.get("/v2/imported/image/manifests/stable").await;
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert_eq!(header(&r, "docker-content-digest"), idx_d.to_string());
    let r = s
        .get(&format!("/v2/imported/image/manifests/{child_d}"))
        .await;
    assert_eq!(r.status(), 200, "child of the index, found through it");
    assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
    assert_eq!(r.bytes().await.expect("b").as_ref(), &child[..]);
    let r = s
        .get(&format!(
            "/v2/imported/image/blobs/{}",
            Digest::sha256(b"foreign layer")
        ))
        .await;
    assert_eq!(r.bytes().await.expect("b").as_ref(), b"foreign layer");
    // Pushing into it keeps the foreign entries' fields.
    s.push_image("imported/image", "new", &[b"more"]).await;
    let index: Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("imported/image/index.json")).expect("i"),
    )
    .expect("j");
    assert_eq!(index["manifests"].as_array().expect("m").len(), 2);
    assert_eq!(
        s.get("/v2/imported/image/manifests/stable").await.status(),
        200
    );
}

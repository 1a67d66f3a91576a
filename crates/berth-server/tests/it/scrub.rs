//! Scrub finds corrupted and missing blobs, names them, and changes nothing.

use std::collections::BTreeMap;
use std::path::Path;

use berth_oci::Digest;
use berth_server::scrub::{render_table, scrub_all};
use berth_server::storage::{FsStore, Roots};
use serde_json::json;

use crate::support::*;

/// Every file under `dir` with its bytes, to prove nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[tokio::test]
async fn finds_and_names_damage_without_touching_anything() {
    let s = Server::start().await;
    s.push_image("good/one", "v1", &[b"fine layer"]).await;
    s.push_image(
        "bad/layer",
        "v1",
        &[b"layer to corrupt", b"shared ok layer"],
    )
    .await;
    s.push_image("bad/config", "v2", &[b"some layer"]).await;
    // A multi-arch index whose child is damaged is affected too.
    let (child, child_d) = s.push_image("bad/index", "child", &[b"child layer"]).await;
    let idx = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[desc(OCI_MANIFEST,&child_d,child.len())]})).expect("j");
    assert_eq!(
        s.put_manifest("bad/index", "all", OCI_INDEX, &idx)
            .await
            .status(),
        201
    );
    let root = s.root.clone();

    let store = FsStore::open(root.clone(), false).await.expect("store");
    let store = Roots::single(berth_server::storage::Store::local(store));
    let rows = scrub_all(&store).await.expect("scrub");
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| !r.is_affected()), "{rows:#?}");

    let bad_layer = Digest::sha256(b"layer to corrupt");
    std::fs::write(
        root.join("bad/layer/blobs/sha256").join(bad_layer.hex()),
        b"layer to corrupX",
    )
    .expect("corrupt");
    let cfg = r#"{"architecture":"amd64","os":"linux","layers":1}"#;
    let cfg_d = Digest::sha256(cfg.as_bytes());
    std::fs::remove_file(root.join("bad/config/blobs/sha256").join(cfg_d.hex()))
        .expect("remove config");
    let child_layer = Digest::sha256(b"child layer");
    std::fs::write(
        root.join("bad/index/blobs/sha256").join(child_layer.hex()),
        b"",
    )
    .expect("truncate");

    let before = snapshot(&root);
    let rows = scrub_all(&store).await.expect("scrub");
    assert_eq!(before, snapshot(&root), "scrub changed nothing on disk");

    let row = |repo: &str, tag: &str| {
        rows.iter()
            .find(|r| r.repository == repo && r.tag == tag)
            .unwrap_or_else(|| panic!("no row for {repo}:{tag} in {rows:#?}"))
            .clone()
    };
    assert_eq!(row("good/one", "v1").status, "ok");
    let r = row("bad/layer", "v1");
    assert_eq!(
        (r.status, r.affected_blob.as_str()),
        ("affected", bad_layer.to_string().as_str())
    );
    assert!(r.error.contains("content hashes to"), "{r:?}");
    let r = row("bad/config", "v2");
    assert_eq!(
        (r.status, r.affected_blob.as_str()),
        ("affected", cfg_d.to_string().as_str())
    );
    assert_eq!(r.error, "blob is missing");
    for tag in ["child", "all"] {
        let r = row("bad/index", tag);
        assert_eq!(
            (r.status, r.affected_blob.as_str()),
            ("affected", child_layer.to_string().as_str()),
            "{tag}"
        );
    }
    let table = render_table(&rows);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert_eq!(table.lines().count(), 6);
}

#[tokio::test]
async fn background_pass_counts_damage() {
    let s = Server::start().await;
    s.push_image("pass/ok", "v1", &[b"fine"]).await;
    s.push_image("pass/bad", "v1", &[b"will break"]).await;
    let d = Digest::sha256(b"will break");
    std::fs::write(
        s.root.join("pass/bad/blobs/sha256").join(d.hex()),
        b"broken!!!!",
    )
    .expect("damage");
    let summary = berth_server::scrub::scrub_pass(s.registry.roots()).await;
    assert_eq!(
        summary,
        berth_server::scrub::ScrubSummary { ok: 1, affected: 1 }
    );
}

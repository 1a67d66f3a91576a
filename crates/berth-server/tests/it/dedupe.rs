//! Dedupe by hard links, and reconciling existing content with the setting.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_oci::Digest;
use serde_json::json;

use crate::support::*;

fn inode(root: &Path, repo: &str, d: &Digest) -> (u64, u64) {
    let m =
        std::fs::metadata(root.join(repo).join("blobs/sha256").join(d.hex())).expect("blob file");
    (m.ino(), m.nlink())
}

#[tokio::test]
async fn a_blob_pushed_twice_is_stored_once() {
    let s = Server::start().await;
    let layer = vec![9u8; 100_000];
    let d = s.push_blob("one/a", &layer).await;
    // Chunked upload into another repository: linked on completion.
    let r = s
        .http
        .post(s.url("/v2/two/b/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let loc = header(&r, "location").to_string();
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={d}")))
        .body(layer.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    let (ino_a, links) = inode(&s.root, "one/a", &d);
    assert_eq!(inode(&s.root, "two/b", &d).0, ino_a, "same file");
    assert_eq!(links, 2);
    assert!(
        !s.root
            .join("two/b/.uploads")
            .join(loc.rsplit('/').next().expect("id"))
            .exists()
    );

    // Deleting one repository's copy leaves the other's.
    let r = s
        .http
        .delete(s.url(&format!("/v2/one/a/blobs/{d}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 202);
    let got = s
        .get(&format!("/v2/two/b/blobs/{d}"))
        .await
        .bytes()
        .await
        .expect("b");
    assert_eq!(got.as_ref(), &layer[..]);
    assert_eq!(inode(&s.root, "two/b", &d).1, 1);

    // The holder recorded in the index is gone: the next push stores the
    // blob in full instead of failing.
    s.push_blob("three/c", &layer).await;
    assert_eq!(s.get(&format!("/v2/three/c/blobs/{d}")).await.status(), 200);
}

#[tokio::test]
async fn off_means_separate_copies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start_with(tmp.path(), json!({"dedupe": false})).await;
    let d = s.push_blob("x", b"same bytes").await;
    s.push_blob("y", b"same bytes").await;
    assert_ne!(inode(tmp.path(), "x", &d).0, inode(tmp.path(), "y", &d).0);
}

#[tokio::test]
async fn turning_dedupe_on_then_off_reconciles_existing_content() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = b"layer shared by three repositories";
    let repos = ["p/one", "p/two", "p/three"];
    let s = Server::start_with(tmp.path(), json!({"dedupe": false})).await;
    for r in repos {
        s.push_image(r, "v1", &[data]).await;
    }
    let d = Digest::sha256(data);
    let registry = s.registry.clone();
    assert_eq!(
        registry.roots().all()[0]
            .store
            .reconcile_dedupe()
            .await
            .expect("noop")
            .linked,
        0,
        "already in line"
    );
    drop(registry);
    s.stop().await;

    let s = Server::start_with(tmp.path(), json!({"dedupe": true})).await;
    let report = s.registry.roots().all()[0]
        .store
        .reconcile_dedupe()
        .await
        .expect("reconcile");
    // The layer, the config and the (identical) manifest of each of the two
    // later repositories.
    assert_eq!(report.linked, 6, "{report:?}");
    let first = inode(tmp.path(), repos[0], &d).0;
    for r in repos {
        assert_eq!(inode(tmp.path(), r, &d).0, first, "{r} linked");
        assert_eq!(s.get(&format!("/v2/{r}/manifests/v1")).await.status(), 200);
    }
    assert_eq!(
        s.registry.roots().all()[0]
            .store
            .reconcile_dedupe()
            .await
            .expect("again"),
        Default::default(),
        "remembered"
    );
    s.stop().await;

    let s = Server::start_with(tmp.path(), json!({"dedupe": false})).await;
    let report = s.registry.roots().all()[0]
        .store
        .reconcile_dedupe()
        .await
        .expect("reconcile");
    assert!(report.copied >= 2, "{report:?}");
    let inodes: std::collections::HashSet<u64> =
        repos.iter().map(|r| inode(tmp.path(), r, &d).0).collect();
    assert_eq!(inodes.len(), 3, "separate copies again");
    for r in repos {
        let got = s
            .get(&format!("/v2/{r}/blobs/{d}"))
            .await
            .bytes()
            .await
            .expect("b");
        assert_eq!(got.as_ref(), data);
        assert_eq!(inode(tmp.path(), r, &d).1, 1);
    }
}

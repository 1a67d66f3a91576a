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
            .local
            .as_ref()
            .expect("local root")
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
        .local
        .as_ref()
        .expect("local root")
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
            .local
            .as_ref()
            .expect("local root")
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
        .local
        .as_ref()
        .expect("local root")
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

#[tokio::test]
async fn a_damaged_holder_is_not_linked() {
    let s = Server::start().await;
    let data = vec![5u8; 4096];
    let d = s.push_blob("holder/a", &data).await;
    // The recorded holder loses its tail (say, a crash of another tool).
    std::fs::write(
        s.root.join("holder/a/blobs/sha256").join(d.hex()),
        &data[..100],
    )
    .expect("damage");
    s.push_blob("holder/b", &data).await;
    assert_ne!(
        inode(&s.root, "holder/a", &d).0,
        inode(&s.root, "holder/b", &d).0
    );
    let got = s
        .get(&format!("/v2/holder/b/blobs/{d}"))
        .await
        .bytes()
        .await
        .expect("b");
    assert_eq!(got.as_ref(), &data[..], "the verified upload was kept");
}

#[tokio::test]
async fn reconcile_leaves_a_corrupt_copy_alone_and_mount_copies_when_off() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = b"identical bytes, or so the names say";
    let s = Server::start_with(tmp.path(), json!({"dedupe": false})).await;
    let d = s.push_blob("c/one", data).await;
    s.push_blob("c/two", data).await;
    s.push_blob("c/three", data).await;
    // Mounting with dedupe off makes a copy.
    let r = s
        .http
        .post(s.url(&format!("/v2/c/four/blobs/uploads/?mount={d}&from=c/one")))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), 201);
    assert_ne!(
        inode(tmp.path(), "c/one", &d).0,
        inode(tmp.path(), "c/four", &d).0
    );
    // Same length, different bytes: bit rot in c/two.
    let mut rotten = data.to_vec();
    rotten[0] ^= 1;
    std::fs::write(tmp.path().join("c/two/blobs/sha256").join(d.hex()), &rotten).expect("rot");
    s.stop().await;

    let s = Server::start_with(tmp.path(), json!({"dedupe": true})).await;
    let report = s.registry.roots().all()[0]
        .store
        .local
        .as_ref()
        .expect("local root")
        .reconcile_dedupe()
        .await
        .expect("reconcile");
    assert_eq!(
        report.linked, 2,
        "c/three and c/four linked to c/one, c/two left alone"
    );
    assert_ne!(
        inode(tmp.path(), "c/two", &d).0,
        inode(tmp.path(), "c/one", &d).0
    );
    assert_eq!(
        inode(tmp.path(), "c/three", &d).0,
        inode(tmp.path(), "c/one", &d).0
    );
}

//! Blob reads, ranges, deletes and mounts.

use berth_oci::Digest;

use crate::support::*;

#[tokio::test]
async fn get_head_range_delete() {
    let s = Server::start().await;
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let d = s.push_blob("r", &data).await;
    let path = format!("/v2/r/blobs/{d}");

    let r = s.http.head(s.url(&path)).send().await.expect("head");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), "10000");
    assert_eq!(header(&r, "docker-content-digest"), d.to_string());

    let r = s.get(&path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").as_ref(), &data[..]);

    let r = s
        .http
        .get(s.url(&path))
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 100-199/10000");
    assert_eq!(r.bytes().await.expect("body").as_ref(), &data[100..200]);

    let r = s
        .http
        .get(s.url(&path))
        .header("range", "bytes=9990-")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.expect("body").as_ref(), &data[9990..]);

    let r = s
        .http
        .get(s.url(&path))
        .header("range", "bytes=10000-10001")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "content-range"), "bytes */10000");

    let r = s.http.delete(s.url(&path)).send().await.expect("delete");
    assert_eq!(r.status(), 202);
    assert_error(s.get(&path).await, 404, "BLOB_UNKNOWN").await;
    let r = s.http.head(s.url(&path)).send().await.expect("head");
    assert_eq!(r.status(), 404);
    assert_error(
        s.http.delete(s.url(&path)).send().await.expect("delete"),
        404,
        "BLOB_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn unknown_blob_and_repo() {
    let s = Server::start().await;
    let d = Digest::sha256(b"nope");
    assert_error(
        s.get(&format!("/v2/never/blobs/{d}")).await,
        404,
        "BLOB_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = Server::start().await;
    let d = s.push_blob("src/a", b"shared layer").await;
    let r = s
        .http
        .post(s.url(&format!("/v2/dst/b/blobs/uploads/?mount={d}&from=src/a")))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/dst/b/blobs/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d.to_string());
    let got = s
        .get(&format!("/v2/dst/b/blobs/{d}"))
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(got.as_ref(), b"shared layer");

    // Deleting the mounted copy leaves the source intact.
    let r = s
        .http
        .delete(s.url(&format!("/v2/dst/b/blobs/{d}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 202);
    assert_eq!(s.get(&format!("/v2/src/a/blobs/{d}")).await.status(), 200);

    // Unknown source blob or bad source name: a plain session instead.
    let other = Digest::sha256(b"missing");
    for q in [
        format!("mount={other}&from=src/a"),
        format!("mount={d}&from=BAD..name"),
        "mount=sha256:nothex&from=src/a".to_string(),
        format!("mount={other}"),
    ] {
        let r = s
            .http
            .post(s.url(&format!("/v2/dst/b/blobs/uploads/?{q}")))
            .send()
            .await
            .expect("mount");
        assert_eq!(r.status(), 202, "{q}");
        assert!(header(&r, "location").starts_with("/v2/dst/b/blobs/uploads/"));
    }
    // Without `from`: the store knows where the blob is (automatic
    // content discovery), so it is mounted.
    let r = s
        .http
        .post(s.url(&format!("/v2/dst/c/blobs/uploads/?mount={d}")))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/dst/c/blobs/{d}"));
    assert_eq!(s.get(&format!("/v2/dst/c/blobs/{d}")).await.status(), 200);
}

#[tokio::test]
async fn mount_into_a_repository_that_has_the_blob() {
    let s = Server::start().await;
    let d = s.push_blob("has/it", b"already here").await;
    let r = s
        .http
        .post(s.url(&format!(
            "/v2/has/it/blobs/uploads/?mount={d}&from=lacks/it"
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), 201);
}

/// A name with a layout's own names (`blobs`, `index.json`,
/// `oci-layout`) below its first component would lie inside a shorter
/// repository's layout: refused whichever of the two is created first
/// (a squatter could otherwise take a blob's place in a repository that
/// does not exist yet).
#[tokio::test]
async fn repositories_cannot_nest_in_each_others_layout() {
    let s = Server::start().await;
    let hex = "a".repeat(64);
    for name in [
        format!("victim/blobs/sha256/{hex}"),
        "outer/blobs".to_string(),
        "deep/blobs".to_string(),
        "a/index.json".to_string(),
        "a/b/oci-layout".to_string(),
    ] {
        let r = s
            .http
            .post(s.url(&format!("/v2/{name}/blobs/uploads/")))
            .send()
            .await
            .expect("post");
        assert_error(r, 400, "NAME_INVALID").await;
    }
    s.push_blob("outer", b"x").await;
    let r = s
        .http
        .post(s.url("/v2/outer/blobs/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_error(r, 400, "NAME_INVALID").await;
    // A first component may be any name.
    s.push_blob("blobs/x", b"z").await;
}

/// What an older Berth let happen — a directory where a blob belongs —
/// breaks neither a push of that blob (the directory is moved aside,
/// kept, logged) nor GC (skipped; the other blobs are collected).
#[tokio::test]
async fn a_directory_where_a_blob_belongs_is_survived() {
    let s = Server::start().await;
    s.push_blob("victim", b"first").await;
    let squatted = Digest::sha256(b"a common base layer");
    let blobs = s.root.join("victim/blobs/sha256");
    std::fs::create_dir_all(blobs.join(squatted.hex()).join("blobs")).expect("squat");
    assert_eq!(
        s.get(&format!("/v2/victim/blobs/{squatted}"))
            .await
            .status(),
        404
    );
    s.push_blob("victim", b"a common base layer").await;
    let got = s.get(&format!("/v2/victim/blobs/{squatted}")).await;
    assert_eq!(
        got.bytes().await.expect("body").as_ref(),
        b"a common base layer"
    );
    let aside: Vec<_> = std::fs::read_dir(s.root.join(".berth/foreign"))
        .expect("moved aside")
        .collect();
    assert_eq!(aside.len(), 1);

    // GC walks past another such directory and collects the rest.
    let foreign = Digest::sha256(b"never pushed");
    std::fs::create_dir_all(blobs.join(foreign.hex())).expect("squat");
    let name: berth_oci::RepoName = "victim".parse().expect("name");
    let report = s
        .registry
        .gc_repo(&name, std::time::Duration::ZERO)
        .await
        .expect("gc");
    assert_eq!(report.blobs, 2, "the two unreferenced blobs");
    assert!(blobs.join(foreign.hex()).is_dir(), "left alone");
}

/// A blob a manifest still references — its config or a layer, of a
/// tagged or an untagged manifest — cannot be deleted (the image would
/// stay listed but no longer pull); once the manifest is gone it can.
#[tokio::test]
async fn a_referenced_blob_is_not_deleted() {
    let s = Server::start().await;
    let (m, md) = s.push_image("r", "v1", &[b"layer one", b"layer two"]).await;
    let manifest: serde_json::Value = serde_json::from_slice(&m).expect("json");
    let config = manifest["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string();
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .expect("layer")
        .to_string();
    for blob in [&config, &layer] {
        let r = s
            .http
            .delete(s.url(&format!("/v2/r/blobs/{blob}")))
            .send()
            .await
            .expect("delete");
        assert_eq!(r.status(), 405, "{blob}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["errors"][0]["code"], "UNSUPPORTED");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("referenced by 1 manifest"), "{message}");
        assert_eq!(s.get(&format!("/v2/r/blobs/{blob}")).await.status(), 200);
    }
    // An unreferenced blob goes; so does the layer once its manifest is
    // deleted.
    let loose = s.push_blob("r", b"nobody needs this").await;
    let r = s
        .http
        .delete(s.url(&format!("/v2/r/blobs/{loose}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 202);
    let r = s
        .http
        .delete(s.url(&format!("/v2/r/manifests/{md}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 202);
    let r = s
        .http
        .delete(s.url(&format!("/v2/r/blobs/{layer}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 202);
}

//! The metadata store follows storage: pulls are counted, and a change to
//! `index.json` made behind the registry's back is picked up.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn pulls_are_counted_and_pushes_recorded() {
    let s = Server::start().await;
    let (_, d) = s.push_image("meta/app", "v1", &[b"l"]).await;
    for _ in 0..3 {
        assert_eq!(s.get("/v2/meta/app/manifests/v1").await.status(), 200);
    }
    s.http
        .head(s.url("/v2/meta/app/manifests/v1"))
        .send()
        .await
        .expect("head");
    let meta = s.registry.meta();
    let repo: berth_oci::RepoName = "meta/app".parse().expect("name");
    // Pulls are recorded in the background (a pull never waits for it).
    let mut stats = meta.pull_stats(&repo, &d).await.expect("stats");
    for _ in 0..100 {
        if stats.count >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stats = meta.pull_stats(&repo, &d).await.expect("stats");
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let stats = meta.pull_stats(&repo, &d).await.expect("stats");
    assert_eq!(stats.count, 3, "GETs count, HEADs do not");
    assert!(stats.last_pulled.is_some());
    let m = meta
        .manifest(&repo, &d)
        .await
        .expect("m")
        .expect("recorded");
    assert!(m.pushed_at > 0);
    assert_eq!(m.layers.len(), 1);
    let layer = m.layers[0].parse().expect("digest");
    assert_eq!(meta.blob_refs(&repo, &layer).await.expect("refs"), 1);
}

#[tokio::test]
async fn an_index_json_edited_behind_the_registry_is_picked_up() {
    let s = Server::start().await;
    let (_, d) = s.push_image("meta/edit", "v1", &[b"x"]).await;
    assert_eq!(
        s.get("/v2/meta/edit/tags/list")
            .await
            .json::<Value>()
            .await
            .expect("j")["tags"],
        json!(["v1"])
    );
    // Another tool adds a tag by rewriting index.json.
    let path = s.root.join("meta/edit/index.json");
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let mut entry = index["manifests"][0].clone();
    entry["annotations"]["org.opencontainers.image.ref.name"] = json!("added-outside");
    index["manifests"].as_array_mut().expect("m").push(entry);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&index).expect("j")).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    assert_eq!(
        s.get("/v2/meta/edit/tags/list")
            .await
            .json::<Value>()
            .await
            .expect("j")["tags"],
        json!(["added-outside", "v1"])
    );
    let r = s.get("/v2/meta/edit/manifests/added-outside").await;
    assert_eq!(header(&r, "docker-content-digest"), d.to_string());
    // And a repository removed behind its back answers 404.
    std::fs::remove_dir_all(s.root.join("meta/edit")).expect("rm");
    assert_error(s.get("/v2/meta/edit/tags/list").await, 404, "NAME_UNKNOWN").await;
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(v["repositories"], json!([]), "forgotten once found gone");
}

#[tokio::test]
async fn an_index_records_its_children_and_takes_them_when_deleted() {
    let s = Server::start().await;
    // A child pushed only as a blob, then an index naming it with a platform.
    let cfg = s.push_blob("meta/idx", b"{}").await;
    let layer = s.push_blob("meta/idx", b"child layer").await;
    let child = image_manifest(
        desc(OCI_CONFIG, &cfg, 2),
        vec![desc(OCI_LAYER, &layer, 11)],
        None,
    );
    let child_d = s.push_blob("meta/idx", &child).await;
    let idx = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[
        {"mediaType":OCI_MANIFEST,"digest":child_d.to_string(),"size":child.len(),"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}))
    .expect("j");
    let idx_d = berth_oci::Digest::sha256(&idx);
    assert_eq!(
        s.put_manifest("meta/idx", &idx_d.to_string(), OCI_INDEX, &idx)
            .await
            .status(),
        201
    );
    assert_eq!(
        s.get(&format!("/v2/meta/idx/manifests/{child_d}"))
            .await
            .status(),
        200
    );
    let m = s
        .registry
        .meta()
        .manifest(
            &"meta/idx".parse::<berth_oci::RepoName>().expect("name"),
            &child_d,
        )
        .await
        .expect("m")
        .expect("child recorded");
    assert_eq!(m.platform.as_deref(), Some("linux/arm64/v8"));
    // Deleting the index takes the child reachable only through it.
    let r = s
        .http
        .delete(s.url(&format!("/v2/meta/idx/manifests/{idx_d}")))
        .send()
        .await
        .expect("del");
    assert_eq!(r.status(), 202);
    assert_error(
        s.get(&format!("/v2/meta/idx/manifests/{child_d}")).await,
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn gc_brings_the_catalog_in_line_with_disk() {
    let s = Server::start().await;
    s.push_image("meta/known", "v1", &[b"k"]).await;
    // Another tool writes a layout into the root.
    let src = s.root.join("meta/known");
    let added = s.root.join("meta/added");
    std::fs::create_dir_all(&added).expect("mkdir");
    for f in ["oci-layout", "index.json"] {
        std::fs::copy(src.join(f), added.join(f)).expect("copy");
    }
    std::fs::create_dir_all(added.join("blobs")).expect("mkdir");
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(v["repositories"], json!(["meta/known"]), "not seen yet");
    let root = &s.registry.roots().all()[0];
    s.registry
        .gc_root(root, std::time::Duration::from_secs(3600))
        .await
        .expect("gc");
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(v["repositories"], json!(["meta/added", "meta/known"]));
}

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
    let stats = meta.pull_stats("meta/app", &d.to_string()).expect("stats");
    assert_eq!(stats.count, 3, "GETs count, HEADs do not");
    assert!(stats.last_pulled.is_some());
    let m = meta
        .manifest("meta/app", &d.to_string())
        .expect("m")
        .expect("recorded");
    assert!(m.pushed_at > 0);
    assert_eq!(m.layers.len(), 1);
    assert_eq!(meta.blob_refs("meta/app", &m.layers[0]).expect("refs"), 1);
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

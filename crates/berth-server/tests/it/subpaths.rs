//! Several storage roots: routing by the first name component, a merged
//! catalog, per-root settings.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn repositories_live_under_their_sub_path_root() {
    let main = tempfile::tempdir().expect("tmp");
    let team = tempfile::tempdir().expect("tmp");
    let s = Server::start_with(
        main.path(),
        json!({"subPaths": {"/team": {"rootDirectory": team.path(), "dedupe": false}}}),
    )
    .await;
    let (_, d) = s.push_image("team/app", "v1", &[b"team layer"]).await;
    s.push_image("team", "v1", &[b"bare prefix"]).await;
    s.push_image("other/app", "v1", &[b"other layer"]).await;
    assert!(team.path().join("team/app/index.json").is_file());
    assert!(team.path().join("team/index.json").is_file());
    assert!(!main.path().join("team").exists());
    assert!(main.path().join("other/app/index.json").is_file());
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(v["repositories"], json!(["other/app", "team", "team/app"]));
    assert_eq!(
        s.get(&format!("/v2/team/app/manifests/{d}")).await.status(),
        200
    );

    // A mount across roots cannot link: the client gets a session instead.
    let layer = berth_oci::Digest::sha256(b"team layer");
    let r = s
        .http
        .post(s.url(&format!(
            "/v2/other/app/blobs/uploads/?mount={layer}&from=team/app"
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), 202);

    // Each root is collected on its own.
    let orphan = s.push_blob("team/app", b"orphan").await;
    let roots = s.registry.roots();
    let team_root = roots
        .all()
        .iter()
        .find(|r| r.prefix.as_deref() == Some("team"))
        .expect("root");
    let report = s
        .registry
        .gc_root(team_root, Duration::ZERO)
        .await
        .expect("gc");
    assert!(report.blobs >= 1, "{report:?}");
    assert_eq!(
        s.get(&format!("/v2/team/app/blobs/{orphan}"))
            .await
            .status(),
        404
    );
    assert_eq!(s.get("/v2/other/app/manifests/v1").await.status(), 200);
}

#[tokio::test]
async fn a_main_root_directory_named_like_a_sub_path_is_not_served() {
    let main = tempfile::tempdir().expect("tmp");
    let team = tempfile::tempdir().expect("tmp");
    // Pushed before the sub-path existed.
    let s = Server::start_at(main.path()).await;
    s.push_image("team/old", "v1", &[b"x"]).await;
    s.stop().await;
    let s = Server::start_with(
        main.path(),
        json!({"subPaths": {"/team": {"rootDirectory": team.path()}}}),
    )
    .await;
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(v["repositories"], json!([]));
    assert_eq!(s.get("/v2/team/old/manifests/v1").await.status(), 404);
}

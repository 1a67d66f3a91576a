//! The registry on Azure Blob Storage (`storage.storageDriver.name:
//! azure`), over HTTP, against a real Azurite that checks SharedKey
//! signatures.

use berth_server::storage::{AzureCredentials, BucketStore, RepoLocks};
use reqwest::StatusCode;
use serde_json::json;

use crate::azurite_server::AzuriteServer;
use crate::support::{
    Server, assert_presigned_redirect, assert_pulls, assert_upload_goes_on, push_chunked,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_by_the_service() {
    let azure = AzuriteServer::start();
    let mut opts = azure.options("x");
    opts.credentials = AzureCredentials::SharedKey("d3Jvbmcta2V5".into());
    let store = BucketStore::open_azure(&opts, RepoLocks::default())
        .expect("open")
        .into_store();
    let err = store
        .layout
        .list_repos()
        .await
        .expect_err("a bad signature must be refused");
    assert!(err.to_string().contains("azure://bertha/berth/x"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_mount_gc_and_restart_on_azure() {
    let azure = AzuriteServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let driver = json!({"storageDriver": azure.driver("/registry"), "gcDelay": "1s"});
    let server = Server::start_with(local.path(), driver.clone()).await;

    // A chunked upload across 5 MiB parts (blocks), then an image.
    let layer: Vec<u8> = (0..(7 << 20) + 99).map(|i| (i % 253) as u8).collect();
    let ld = push_chunked(&server, "az/app", &layer, 3 << 20).await;
    let (manifest, md) = server.push_image("az/app", "v1", &[b"small layer"]).await;
    assert!(!local.path().join("az").exists(), "nothing stored locally");

    assert_pulls(&server, "az/app", (&ld, &layer), &manifest).await;

    // A mount is a link to the same bytes (dedupe): both repositories hold
    // the digest.
    let r = server
        .http
        .post(server.url(&format!(
            "/v2/az/other/blobs/uploads/?mount={ld}&from=az/app"
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), StatusCode::CREATED);
    let store = azure.store("/registry");
    let mut holders = store.blobs.holders(&ld).await.expect("holders");
    holders.sort();
    let names: Vec<String> = holders.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["az/app", "az/other"]);

    // Delete and collect: the image's blobs and the unreferenced layer go
    // from az/app; the mounted layer stays in az/other.
    let r = server
        .http
        .delete(server.url(&format!("/v2/az/app/manifests/{md}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let repo = "az/app".parse().expect("repo");
    let report = server
        .registry
        .gc_repo(&repo, std::time::Duration::from_secs(1))
        .await
        .expect("gc");
    assert_eq!(report.blobs, 3, "{report:?}");
    assert_eq!(
        server.get(&format!("/v2/az/app/blobs/{ld}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(&format!("/v2/az/other/blobs/{ld}"))
            .await
            .status(),
        StatusCode::OK
    );

    // A fresh local directory on the same container: the metadata is
    // derived again from it.
    server.stop().await;
    let fresh = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(fresh.path(), driver).await;
    let catalog: serde_json::Value = server
        .get("/v2/_catalog")
        .await
        .json()
        .await
        .expect("catalog");
    assert_eq!(catalog["repositories"], json!(["az/app", "az/other"]));
    server.stop().await;
}

/// Berth restarts between two chunks of an upload (with a new local
/// directory): the session, its uncommitted blocks and its hash state are
/// in the container, so the client goes on where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_goes_on_after_a_restart_on_azure() {
    let azure = AzuriteServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let driver = json!({"storageDriver": azure.driver("restart")});
    let server = Server::start_with(local.path(), driver.clone()).await;
    let blob: Vec<u8> = (0..(11 << 20) + 7).map(|i| (i % 241) as u8).collect();
    let location = server.start_upload("resumed").await;
    let half = 6 << 20;
    let r = server.patch_upload(&location, 0, &blob[..half]).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    server.stop().await;

    // Nothing local is needed: a new local directory will do.
    let fresh = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(fresh.path(), driver).await;
    assert_upload_goes_on(&server, "resumed", &location, &blob, half).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_blob_url_answers_a_sas_url_that_works() {
    let azure = AzuriteServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        local.path(),
        json!({"storageDriver": azure.driver("r"), "redirectBlobURL": true}),
    )
    .await;
    let d = server.push_blob("red/x", b"redirected bytes").await;
    let presigned = (azure.endpoint(), "sig=");
    assert_presigned_redirect(
        &server,
        "red/x",
        &d,
        (&presigned.0, presigned.1),
        b"redirected bytes",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_write_after_a_lost_lock_is_refused_on_azure() {
    let azure = AzuriteServer::start();
    crate::storage_conformance::fenced_index_writes(&azure.store("fence"), &azure.store("fence"))
        .await;
}

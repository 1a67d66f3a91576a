//! The registry on S3 (`storage.storageDriver`), over HTTP, against a real
//! `s3s-fs` that checks signatures.

use berth_oci::Digest;
use berth_server::storage::{BucketStore, RepoLocks};
use reqwest::StatusCode;
use serde_json::json;

use crate::s3_server::S3Server;
use crate::support::{
    OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Server, assert_presigned_redirect, assert_pulls,
    assert_upload_goes_on, desc, image_manifest, push_chunked,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_by_the_server() {
    let s3 = S3Server::start();
    let mut opts = s3.options("x");
    opts.secret_key = Some("not-the-secret".into());
    let store = BucketStore::open_s3(&opts, RepoLocks::default())
        .expect("open")
        .into_store();
    let err = store
        .layout
        .list_repos()
        .await
        .expect_err("a bad signature must be refused");
    assert!(err.to_string().contains("s3://berth/x"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_delete_and_gc_on_s3() {
    let s3 = S3Server::start();
    let local = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        local.path(),
        json!({"storageDriver": s3.driver("/registry"), "gcDelay": "1s"}),
    )
    .await;

    // A chunked upload across parts, then an image using it.
    let layer: Vec<u8> = (0..(7 << 20) + 99).map(|i| (i % 253) as u8).collect();
    let ld = push_chunked(&server, "s3/app", &layer, 3 << 20).await;
    let (manifest, md) = server.push_image("s3/app", "v1", &[b"small layer"]).await;
    // The image config was read from the bucket (a range read) at push.
    let app: berth_oci::RepoName = "s3/app".parse().expect("name");
    let recorded = server.registry.meta().manifest(&app, &md).await;
    let image = recorded.expect("meta").expect("recorded").image;
    assert_eq!(image.and_then(|i| i.arch).as_deref(), Some("amd64"));

    // Nothing of it is on the local disk; all of it is in the bucket.
    let bucket = s3.dir.path().join("data/berth/registry/s3/app");
    assert!(
        bucket.join("index.json").is_file(),
        "index.json in the bucket"
    );
    let berth = s3.dir.path().join("data/berth/registry/.berth");
    let files =
        |dir: &str| -> usize { std::fs::read_dir(berth.join(dir)).map_or(0, |d| d.count()) };
    let pointer = std::fs::read_to_string(berth.join(format!("blobs/sha256/{}", ld.hex())))
        .expect("the digest is recorded as stored");
    assert!(
        pointer.starts_with(&format!("{} .berth/data/", layer.len())),
        "{pointer}"
    );
    assert_eq!(
        std::fs::read_to_string(bucket.join(format!("_links/sha256/{}", ld.hex()))).expect("link"),
        pointer,
        "the repository links to the same bytes"
    );
    let data = s3
        .dir
        .path()
        .join("data/berth/registry")
        .join(pointer.split_once(' ').expect("pointer").1);
    assert!(
        std::fs::read(&data).expect("data") == layer,
        "the upload's bytes stay where the upload put them"
    );
    assert!(!local.path().join("s3").exists(), "nothing stored locally");

    // Pull back: blob (whole and a range), manifest by tag, tags, catalog.
    assert_pulls(&server, "s3/app", (&ld, &layer), &manifest).await;
    let catalog: serde_json::Value = server
        .get("/v2/_catalog")
        .await
        .json()
        .await
        .expect("catalog");
    assert_eq!(catalog["repositories"], json!(["s3/app"]));

    // Mount into another repository (a server-side copy).
    let r = server
        .http
        .post(server.url(&format!(
            "/v2/s3/other/blobs/uploads/?mount={ld}&from=s3/app"
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        (files("data"), files("blobs/sha256")),
        (4, 4),
        "the mount stored no second copy (config, 2 layers, manifest)"
    );

    // Untag and collect: the chunked layer nobody references goes, the
    // image's blobs go with it once the manifest is gone.
    let r = server
        .http
        .delete(server.url(&format!("/v2/s3/app/manifests/{md}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let repo = "s3/app".parse().expect("repo");
    let report = server
        .registry
        .gc_repo(&repo, std::time::Duration::from_secs(1))
        .await
        .expect("gc");
    assert_eq!(
        report.blobs, 3,
        "the chunked layer, the config and the small layer: {report:?}"
    );
    assert_eq!(
        server.get(&format!("/v2/s3/app/blobs/{ld}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(&format!("/v2/s3/other/blobs/{ld}"))
            .await
            .status(),
        StatusCode::OK,
        "the mounted blob stays"
    );
    // An image in s3/other uses the mounted layer, so GC keeps it there.
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = server.push_blob("s3/other", config).await;
    let m = image_manifest(
        desc(OCI_CONFIG, &cd, config.len()),
        vec![desc(OCI_LAYER, &ld, layer.len())],
        None,
    );
    let r = server
        .put_manifest("s3/other", "keep", OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The sweep after a root's GC removes stored blobs nobody links (the
    // first image's config, small layer and manifest); the layer stays.
    let root = &server.registry.roots().all()[0];
    server
        .registry
        .gc_root_with(root, std::time::Duration::from_secs(1), None)
        .await
        .expect("gc root");
    assert_eq!(
        (files("data"), files("blobs/sha256")),
        (3, 3),
        "the layer, the second config and manifest"
    );
    assert!(data.is_file(), "still linked from s3/other");
    let r = server
        .http
        .delete(server.url(&format!("/v2/s3/other/manifests/{}", Digest::sha256(&m))))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    server
        .registry
        .gc_root_with(root, std::time::Duration::from_secs(1), None)
        .await
        .expect("gc root");
    assert_eq!(
        (files("data"), files("blobs/sha256")),
        (0, 0),
        "unlinked, it is swept"
    );

    // Restart on the same bucket with an empty local directory: the
    // metadata is derived again from the bucket.
    server.stop().await;
    let fresh = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        fresh.path(),
        json!({"storageDriver": s3.driver("/registry")}),
    )
    .await;
    let catalog: serde_json::Value = server
        .get("/v2/_catalog")
        .await
        .json()
        .await
        .expect("catalog");
    assert_eq!(catalog["repositories"], json!(["s3/app", "s3/other"]));
    server.stop().await;
}

/// The S3 server goes away in the middle of an upload: the chunk fails,
/// nothing is half-kept, and once it is back the client resends the chunk
/// and completes with the right digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_fails_on_s3_is_sent_again() {
    let mut s3 = S3Server::start();
    let local = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(local.path(), json!({"storageDriver": s3.driver("f")})).await;
    let blob: Vec<u8> = (0..(9 << 20) + 5).map(|i| (i % 241) as u8).collect();
    let location = server.start_upload("flaky").await;
    let half = 6 << 20;
    let r = server.patch_upload(&location, 0, &blob[..half]).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    s3.stop();
    let r = server.patch_upload(&location, half, &blob[half..]).await;
    // An S3 that cannot be reached (after the retries) is a service down
    // for now, not a fault.
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
    s3.restart();
    // Only the chunk that went through counts.
    assert_upload_goes_on(&server, "flaky", &location, &blob, half).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_blob_url_answers_a_presigned_url_that_works() {
    let s3 = S3Server::start();
    let local = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        local.path(),
        json!({"storageDriver": s3.driver("r"), "redirectBlobURL": true}),
    )
    .await;
    let d = server.push_blob("red/x", b"redirected bytes").await;
    let endpoint = s3.endpoint();
    assert_presigned_redirect(
        &server,
        "red/x",
        &d,
        (&endpoint, "X-Amz-Signature"),
        b"redirected bytes",
    )
    .await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // HEAD is answered by Berth itself.
    let r = no_follow
        .head(server.url(&format!("/v2/red/x/blobs/{d}")))
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_path_on_s3_beside_a_local_main_root() {
    let s3 = S3Server::start();
    let local = tempfile::tempdir().expect("tempdir");
    let team = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        local.path(),
        json!({"subPaths": {"/cloud": {
            "rootDirectory": team.path(),
            "storageDriver": s3.driver("sub"),
        }}}),
    )
    .await;
    let (_, local_digest) = server.push_image("here/app", "v1", &[b"local layer"]).await;
    let (_, cloud_digest) = server
        .push_image("cloud/app", "v1", &[b"cloud layer"])
        .await;
    assert!(
        local.path().join("here/app/index.json").is_file(),
        "the main root is the local directory"
    );
    assert!(
        s3.dir
            .path()
            .join("data/berth/sub/cloud/app/index.json")
            .is_file(),
        "the sub-path is in the bucket"
    );
    assert!(
        !team.path().join("cloud").exists(),
        "and not on the local disk"
    );
    for (repo, d) in [("here/app", &local_digest), ("cloud/app", &cloud_digest)] {
        let r = server
            .http
            .get(server.url(&format!("/v2/{repo}/manifests/{d}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{repo}");
    }
    let catalog: serde_json::Value = server
        .get("/v2/_catalog")
        .await
        .json()
        .await
        .expect("catalog");
    assert_eq!(catalog["repositories"], json!(["cloud/app", "here/app"]));
    // A mount across the two roots falls back to an upload (202).
    let layer = Digest::sha256(b"local layer");
    let r = server
        .http
        .post(server.url(&format!(
            "/v2/cloud/app/blobs/uploads/?mount={layer}&from=here/app"
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    server.stop().await;
}

/// A writer whose lock lapsed (two holders at once) cannot undo the other's
/// `index.json`: the write is conditional on the version it read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_write_after_a_lost_lock_is_refused() {
    let s3 = S3Server::start();
    // Two handles with separate locks: as two instances whose shared lock
    // failed.
    crate::storage_conformance::fenced_index_writes(&s3.store("fence"), &s3.store("fence")).await;
}

/// A commit retried after it went through (its reply or its last step
/// lost) keeps the blob readable: the stored bytes are its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_retried_after_it_went_through_keeps_the_blob() {
    let s3 = S3Server::start();
    let store = s3.store("retry");
    let repo: berth_oci::RepoName = "again".parse().expect("repo");
    let g = store.lock_repo(&repo).await.expect("lock");
    store.layout.create_repo(&g).await.expect("create");
    drop(g);
    for len in [1000usize, (5 << 20) + 77] {
        let data: Vec<u8> = (0..len).map(|i| (i % 233) as u8).collect();
        let d = Digest::sha256(&data);
        let id = uuid::Uuid::new_v4().to_string();
        let mut st = store
            .uploads
            .upload_create(&repo, &id)
            .await
            .expect("create");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(bytes::Bytes::from(data.clone()))
            .await
            .expect("send");
        drop(tx);
        store
            .uploads
            .upload_append(&repo, &id, &mut st, rx)
            .await
            .expect("append");
        st.size = len as u64;
        // Reading completes the multipart upload and saves that (as for a
        // sha512 digest): the retry below then starts from a completed
        // upload, as one after a commit that stopped past completion.
        let read = store
            .uploads
            .upload_read(&repo, &id, &mut st)
            .await
            .expect("read");
        let _ = futures_util::StreamExt::collect::<Vec<_>>(read).await;
        store
            .uploads
            .upload_commit(&repo, &id, st.clone(), &d)
            .await
            .expect("commit");
        store
            .uploads
            .upload_commit(&repo, &id, st, &d)
            .await
            .expect("the retry goes through too");
        let got = store
            .blobs
            .read_blob_range(&repo, &d, 0, len as u64)
            .await
            .expect("read")
            .expect("present");
        let got: Vec<u8> = futures_util::StreamExt::collect::<Vec<_>>(got)
            .await
            .into_iter()
            .flat_map(|b| b.expect("chunk").to_vec())
            .collect();
        assert!(got == data, "{len} bytes still read back after the retry");
    }
}

/// A multipart upload a session began but never recorded (the request
/// failed before the state was saved) is still aborted when the session
/// is removed: nothing of it stays in the S3 service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_the_state_never_recorded_are_aborted() {
    let s3 = S3Server::start();
    let store = s3.store("leak");
    let repo: berth_oci::RepoName = "leaky".parse().expect("repo");
    let g = store.lock_repo(&repo).await.expect("lock");
    store.layout.create_repo(&g).await.expect("create");
    drop(g);
    let id = uuid::Uuid::new_v4().to_string();
    let fresh = store
        .uploads
        .upload_create(&repo, &id)
        .await
        .expect("create");
    for _ in 0..2 {
        // A part goes out, but the state saying so is never saved: each
        // round starts again from the state saved at creation.
        let mut st = fresh.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(bytes::Bytes::from(vec![7u8; (5 << 20) + 1]))
            .await
            .expect("send");
        drop(tx);
        store
            .uploads
            .upload_append(&repo, &id, &mut st, rx)
            .await
            .expect("append");
    }
    let parts = |dir: &std::path::Path| -> usize {
        std::fs::read_dir(dir.join("data"))
            .expect("s3 root")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".upload"))
            .count()
    };
    assert!(
        parts(s3.dir.path()) >= 2,
        "two multipart uploads in progress"
    );
    let entries = store.uploads.list_uploads(&repo).await.expect("list");
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.session.as_deref() == Some(id.as_str()))
            .count(),
        3,
        "the state and two markers, all of the session: {entries:?}"
    );
    assert!(
        store
            .uploads
            .upload_remove(&repo, &id)
            .await
            .expect("remove")
    );
    assert_eq!(parts(s3.dir.path()), 0, "both multipart uploads aborted");
    assert!(
        store
            .uploads
            .list_uploads(&repo)
            .await
            .expect("list")
            .is_empty()
    );
}

/// On S3 with dedupe a mount without `from` finds the blob through its
/// links (automatic content discovery); without dedupe nothing records
/// where a blob is, so it is a plain session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_without_from_finds_the_blob_by_its_links() {
    let s3 = S3Server::start();
    for (dedupe, want) in [(true, StatusCode::CREATED), (false, StatusCode::ACCEPTED)] {
        let local = tempfile::tempdir().expect("tempdir");
        let prefix = format!("found-{dedupe}");
        let server = Server::start_with(
            local.path(),
            json!({"storageDriver": s3.driver(&prefix), "dedupe": dedupe}),
        )
        .await;
        let d = server.push_blob("team/src", b"a shared base layer").await;
        let r = server
            .http
            .post(server.url(&format!("/v2/team/dst/blobs/uploads/?mount={d}")))
            .send()
            .await
            .expect("mount");
        assert_eq!(r.status(), want, "dedupe {dedupe}");
        if dedupe {
            let got = server.get(&format!("/v2/team/dst/blobs/{d}")).await;
            assert_eq!(
                got.bytes().await.expect("body").as_ref(),
                b"a shared base layer"
            );
        }
        server.stop().await;
    }
}

/// `skipverify` (zot's MinIO examples use it) reaches an S3 endpoint over
/// TLS with a self-signed certificate, given as `https://host:port` with
/// `secure: false` or as `host:port` with `secure: true`; without it the
/// certificate is refused and the server does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipverify_reaches_an_endpoint_with_a_self_signed_certificate() {
    let s3 = S3Server::start();
    let proxy =
        crate::tls_proxy::TlsProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], s3.port)))
            .await;
    for (endpoint, secure) in [(proxy.endpoint(), false), (proxy.addr.to_string(), true)] {
        let mut driver = s3.driver(&format!("tls-{secure}"));
        driver["regionendpoint"] = json!(endpoint);
        driver["secure"] = json!(secure);
        driver["skipverify"] = json!(true);
        let local = tempfile::tempdir().expect("tempdir");
        let server = Server::start_with(local.path(), json!({"storageDriver": driver})).await;
        let d = server.push_blob("tls/app", b"over tls").await;
        let got = server.get(&format!("/v2/tls/app/blobs/{d}")).await;
        assert_eq!(
            got.bytes().await.expect("body").as_ref(),
            b"over tls",
            "{endpoint}"
        );
        server.stop().await;
    }
    let mut driver = s3.driver("tls-checked");
    driver["regionendpoint"] = json!(proxy.endpoint());
    let local = tempfile::tempdir().expect("tempdir");
    let config = berth_server::config::Config::from_value(json!({
        "storage": {"rootDirectory": local.path(), "storageDriver": driver},
        "http": {"address": "127.0.0.1", "port": 0}
    }))
    .expect("config");
    let refused = berth_server::server::build_state(&config).await;
    assert!(
        refused.is_err(),
        "an unknown certificate is refused without skipverify"
    );
}

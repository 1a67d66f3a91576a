//! Redis and S3 failing under a running server: the probes say so both
//! ways, requests that need the missing service answer 503 within the
//! bound, no acknowledged write is lost, and a Redis that came back empty
//! is rebuilt from storage while serving.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::Server;

/// Polls `path` until it answers `status`, for at most `within`; the
/// last answer's body when it never did.
async fn wait_for(server: &Server, path: &str, status: u16, within: Duration) {
    let start = Instant::now();
    loop {
        let r = server.get(path).await;
        if r.status().as_u16() == status {
            return;
        }
        let body = r.text().await.unwrap_or_default();
        assert!(
            start.elapsed() < within,
            "{path} still answers {body:?}, not {status}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` answers 503 naming `dependency` (and `Retry-After`).
async fn assert_unready(server: &Server, dependency: &str) {
    let r = server.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(crate::support::header(&r, "retry-after"), "1");
    let body = r.text().await.expect("body");
    assert!(body.contains(dependency), "{body}");
}

/// The metrics' line for a dependency's state (`None` without one).
#[cfg(feature = "metrics")]
fn dependency_up(metrics: &str, dependency: &str) -> Option<String> {
    let prefix = format!("berth_dependency_up{{dependency=\"{dependency}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use crate::redis_server::RedisServer;
    use serde_json::json;

    /// The bound of a request that needs Redis, with room for a slow
    /// machine: 1 s of `commandTimeout`, plus one reconnect.
    const BOUND: Duration = Duration::from_secs(3);

    async fn on_redis(redis: &RedisServer, root: &std::path::Path, prefix: &str) -> Server {
        Server::start_with(
            root,
            json!({"cacheDriver": {"name": "redis", "url": redis.url(), "keyprefix": prefix}}),
        )
        .await
    }

    /// Killed, hung and back: readiness flips within seconds both ways,
    /// `/livez` stays up, and what needs Redis answers 503 `UNAVAILABLE`
    /// naming the metadata store within the bound, while blob reads go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readiness_follows_redis_both_ways() {
        let mut redis =
            RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let server = on_redis(&redis, tmp.path(), "ready").await;
        server.push_image("app", "v1", &[b"layer"]).await;
        let blob = server.push_blob("app", b"a blob").await;
        wait_for(&server, "/startupz", 200, Duration::from_secs(5)).await;
        wait_for(&server, "/readyz", 200, Duration::from_secs(5)).await;

        for outage in ["killed", "hung"] {
            if outage == "killed" {
                redis.kill();
            } else {
                redis.pause();
            }
            wait_for(&server, "/readyz", 503, Duration::from_secs(8)).await;
            assert_unready(&server, "metadata store").await;
            assert_eq!(server.get("/livez").await.status(), 200, "{outage}");
            assert_eq!(server.get("/startupz").await.status(), 200, "{outage}");
            let r = server.get(&format!("/v2/app/blobs/{blob}")).await;
            assert_eq!(r.status(), 200, "{outage}: a blob read needs no Redis");
            for path in ["/v2/app/manifests/v1", "/v2/app/tags/list", "/v2/_catalog"] {
                let start = Instant::now();
                let r = server.get(path).await;
                let took = start.elapsed();
                assert_eq!(r.status().as_u16(), 503, "{outage}: {path}");
                assert!(took < BOUND, "{outage}: {path} took {took:?}");
                assert_eq!(crate::support::header(&r, "retry-after"), "1");
                let body: serde_json::Value = r.json().await.expect("json");
                assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
                let message = body["errors"][0]["message"].as_str().expect("message");
                assert!(message.contains("metadata store"), "{message}");
            }
            if outage == "killed" {
                redis.restart();
            } else {
                redis.resume();
            }
            wait_for(&server, "/readyz", 200, Duration::from_secs(8)).await;
            let r = server.get("/v2/app/manifests/v1").await;
            assert_eq!(r.status(), 200, "{outage}: back");
        }
        server.stop().await;
    }

    /// Pushers keep going while Redis is killed and restarted (with its
    /// data, `appendfsync always`): every push that was acknowledged is
    /// there afterwards, by tag and digest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_acknowledged_push_is_lost_when_redis_crashes() {
        let mut redis =
            RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let server = on_redis(&redis, tmp.path(), "crash").await;
        push_through_an_outage(server, move || {
            redis.kill();
            std::thread::sleep(Duration::from_secs(2));
            redis.restart();
            redis
        })
        .await;
    }

    /// Redis restarted without its data: the catalog comes back complete
    /// without a restart of Berth (rebuilt from storage in the
    /// background), tags and manifests answer again, and readiness holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redis_restarted_empty_is_rebuilt_while_serving() {
        let mut redis = RedisServer::start();
        let tmp = tempfile::tempdir().expect("tempdir");
        let server = on_redis(&redis, tmp.path(), "wiped").await;
        let repos = ["a/one", "b", "c/two/three"];
        for r in repos {
            server.push_image(r, "v1", &[r.as_bytes()]).await;
        }
        let catalog = || async {
            let r = server.get("/v2/_catalog").await;
            if r.status() != 200 {
                return None;
            }
            let body: serde_json::Value = r.json().await.expect("json");
            Some(body["repositories"].clone())
        };
        assert_eq!(catalog().await, Some(json!(repos)));

        redis.restart();
        let start = Instant::now();
        while catalog().await != Some(json!(repos)) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the catalog is not complete again: {:?}",
                catalog().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for r in repos {
            let tags = server.get(&format!("/v2/{r}/tags/list")).await;
            assert_eq!(tags.status(), 200);
            let body: serde_json::Value = tags.json().await.expect("json");
            assert_eq!(body["tags"], json!(["v1"]), "{r}");
            assert_eq!(
                server.get(&format!("/v2/{r}/manifests/v1")).await.status(),
                200
            );
        }
        assert_eq!(server.get("/readyz").await.status(), 200);
        server.stop().await;
    }
}

/// Four pushers push small images (each push gives up at its first
/// refusal) while `outage` breaks and mends a service on a blocking
/// thread; then every push that was acknowledged must be there, by tag and
/// digest, and the server ready again.
#[cfg(any(feature = "redis", feature = "s3"))]
async fn push_through_an_outage<T: Send + 'static>(
    server: Server,
    outage: impl FnOnce() -> T + Send + 'static,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let mut pushers = Vec::new();
    for p in 0..4 {
        let (server, stop) = (server.clone(), stop.clone());
        pushers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (repo, tag) = (format!("p{p}"), format!("t{i}"));
                if let Some(d) = try_push(&server, &repo, &tag).await {
                    acknowledged.push((repo, tag, d));
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mended = tokio::task::spawn_blocking(outage).await.expect("outage");
    wait_for(&server, "/readyz", 200, Duration::from_secs(8)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for p in pushers {
        for (repo, tag, digest) in p.await.expect("pusher") {
            total += 1;
            let r = server.get(&format!("/v2/{repo}/manifests/{tag}")).await;
            assert_eq!(r.status(), 200, "{repo}:{tag} was acknowledged");
            assert_eq!(
                crate::support::header(&r, "docker-content-digest"),
                digest.to_string()
            );
        }
    }
    assert!(total > 4, "some pushes went through ({total})");
    match Arc::try_unwrap(server) {
        Ok(server) => {
            server.stop().await;
        }
        Err(_) => panic!("a pusher still holds the server"),
    }
    drop(mended);
}

/// One image push that gives up on the first refusal; its manifest
/// digest when the manifest was acknowledged.
#[cfg(any(feature = "redis", feature = "s3"))]
async fn try_push(server: &Server, repo: &str, tag: &str) -> Option<berth_oci::Digest> {
    use crate::support::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, desc, image_manifest};
    let mut descs = Vec::new();
    for (kind, data) in [
        ("config", format!(r#"{{"os":"linux","tag":"{tag}"}}"#)),
        ("layer", format!("{repo}:{tag}")),
    ] {
        let d = berth_oci::Digest::sha256(data.as_bytes());
        let r = server
            .http
            .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .body(data.clone())
            .send()
            .await
            .ok()?;
        if r.status() != StatusCode::CREATED {
            return None;
        }
        let media = if kind == "config" {
            OCI_CONFIG
        } else {
            OCI_LAYER
        };
        descs.push(desc(media, &d, data.len()));
    }
    let config = descs.remove(0);
    let m = image_manifest(config, descs, None);
    let r = server.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
    (r.status() == StatusCode::CREATED).then(|| berth_oci::Digest::sha256(&m))
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use crate::s3_server::S3Server;
    use serde_json::json;

    /// Pushers keep going while s3s-fs is killed for 3 s and restarted:
    /// every acknowledged push is there afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_acknowledged_push_is_lost_when_s3_goes_away() {
        let mut s3 = S3Server::start();
        let local = tempfile::tempdir().expect("tempdir");
        let server =
            Server::start_with(local.path(), json!({"storageDriver": s3.driver("lost")})).await;
        push_through_an_outage(server, move || {
            s3.stop();
            std::thread::sleep(Duration::from_secs(3));
            s3.restart();
            s3
        })
        .await;
    }

    /// S3 down for 3 s in the middle of a push: the chunk sent meanwhile
    /// is retried until S3 is back and the push completes; readiness says
    /// `storage` is unavailable meanwhile, and is back after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_push_rides_out_an_s3_outage_of_three_seconds() {
        let mut s3 = S3Server::start();
        let local = tempfile::tempdir().expect("tempdir");
        let server =
            Server::start_with(local.path(), json!({"storageDriver": s3.driver("down")})).await;
        wait_for(&server, "/readyz", 200, Duration::from_secs(5)).await;
        let blob: Vec<u8> = (0..(7 << 20) + 3).map(|i| (i % 251) as u8).collect();
        let d = berth_oci::Digest::sha256(&blob);
        let location = server.start_upload("ride").await;
        let half = 5 << 20;
        let r = server.patch_upload(&location, 0, &blob[..half]).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);

        s3.stop();
        let back = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_secs(3));
            s3.restart();
            s3
        });
        // The chunk sent while S3 is down is held until it is back.
        let (r, _) = tokio::join!(server.patch_upload(&location, half, &blob[half..]), async {
            wait_for(&server, "/readyz", 503, Duration::from_secs(5)).await;
            assert_unready(&server, "storage").await;
        });
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let s3 = back.await.expect("restart");
        let r = server.finish_upload(&location, &d).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        let got = server.get(&format!("/v2/ride/blobs/{d}")).await;
        assert!(got.bytes().await.expect("body") == blob);
        wait_for(&server, "/readyz", 200, Duration::from_secs(5)).await;
        server.stop().await;
        drop(s3);
    }
}

/// The metrics show each dependency's state and failed checks, and the
/// probes of a healthy server are up.
#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_each_dependency() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = berth_server::config::Config::from_value(serde_json::json!({
        "storage": {"rootDirectory": tmp.path()},
        "http": {"address": "127.0.0.1", "port": 0},
        "extensions": {"metrics": {}}
    }))
    .expect("config");
    let built = berth_server::server::Server::build(&config, Default::default())
        .await
        .expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(built.run(listener, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    let start = Instant::now();
    while get("/readyz").await.expect("readyz").status() != 200 {
        assert!(start.elapsed() < Duration::from_secs(5), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get("/startupz").await.expect("startupz").status(), 200);
    assert_eq!(get("/livez").await.expect("livez").status(), 200);
    let text = get("/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert_eq!(
        dependency_up(&text, "metadata store").as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        dependency_up(&text, "storage").as_deref(),
        Some("1"),
        "{text}"
    );
    assert!(
        text.contains("berth_dependency_check_failures_total{dependency=\"storage\"} 0"),
        "{text}"
    );
    let _ = stop.send(());
    task.await.expect("join").expect("served");
}

/// A root that is gone (its directory removed under the server) makes
/// the server unready, naming the storage, until it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_that_is_gone_is_unready_until_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let server = Server::start_at(&root).await;
    wait_for(&server, "/readyz", 200, Duration::from_secs(5)).await;
    let moved = tmp.path().join("moved");
    std::fs::rename(&root, &moved).expect("move the root away");
    wait_for(&server, "/readyz", 503, Duration::from_secs(5)).await;
    assert_unready(&server, "storage").await;
    assert_eq!(server.get("/livez").await.status(), 200);
    std::fs::rename(&moved, &root).expect("move the root back");
    wait_for(&server, "/readyz", 200, Duration::from_secs(5)).await;
    server.stop().await;
}

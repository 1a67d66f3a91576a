//! GC at scale: a repository with many manifests, collected while a client
//! keeps pulling from it. Reports GC time and pull latency with and without
//! GC running; asserts nothing.
//!
//! ```sh
//! cargo bench -p berth-server --bench gc            # 10,000 manifests
//! GC_MANIFESTS=2000 cargo bench -p berth-server --bench gc
//! ```
//!
//! Under `cargo test --all-targets` it runs with 50, as a smoke test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_oci::Digest;
use berth_server::config::Config;

const REPO: &str = "gc/big";

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    if samples.is_empty() {
        println!("{name}: no samples");
        return;
    }
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name}: n={} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        samples.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}

/// Pulls the tagged manifest until `stop`, timing each.
async fn pull_until(client: reqwest::Client, url: String, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = client.get(&url).send().await.expect("pull");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
        out.push(t.elapsed());
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("GC_MANIFESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000 } else { 50 });
    let dir = tempfile::tempdir().expect("tmp");
    let config = Config::from_value(serde_json::json!({
        "storage": {"rootDirectory": dir.path(), "gc": false},
        "http": {"address": "127.0.0.1", "port": 0},
        "log": {"level": "warn"}
    }))
    .expect("config");
    let state = berth_server::server::build_state(&config)
        .await
        .expect("state");
    let registry = state.registry.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(berth_server::server::run(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();

    // One config and layer, then n distinct manifests pushed by digest
    // (untagged), plus one tagged manifest that the puller reads.
    let post = |data: Vec<u8>| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let d = Digest::sha256(&data);
            let r = client
                .post(format!("{base}/v2/{REPO}/blobs/uploads/?digest={d}"))
                .body(data)
                .send()
                .await
                .expect("blob");
            assert_eq!(r.status(), 201);
            d
        }
    };
    let cfg = post(b"{}".to_vec()).await;
    let layer = post(b"the one layer".to_vec()).await;
    let manifest = move |i: usize| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cfg}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":13}}],"annotations":{{"n":"{i}"}}}}"#
        )
    };
    let put = {
        let (client, base) = (client.clone(), base.clone());
        move |reference: String, body: String| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let r = client
                    .put(format!("{base}/v2/{REPO}/manifests/{reference}"))
                    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                    .body(body)
                    .send()
                    .await
                    .expect("put");
                assert_eq!(r.status(), 201);
            }
        }
    };
    put("keep".into(), manifest(usize::MAX)).await;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let put = put.clone();
        let manifest = manifest.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(4) {
                let body = manifest(i);
                put(Digest::sha256(body.as_bytes()).to_string(), body).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("push");
    }
    println!(
        "pushed {n} untagged manifests in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    let url = format!("{base}/v2/{REPO}/manifests/keep");
    let name = REPO.parse().expect("name");

    // Pulls alone, for the baseline.
    let stop = Arc::new(AtomicBool::new(false));
    let puller = tokio::spawn(pull_until(client.clone(), url.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(if full { 5 } else { 1 })).await;
    stop.store(true, Ordering::Relaxed);
    percentiles("pull, no GC", puller.await.expect("puller"));

    // GC that scans everything and deletes nothing (all younger than 1h).
    let stop = Arc::new(AtomicBool::new(false));
    let puller = tokio::spawn(pull_until(client.clone(), url.clone(), stop.clone()));
    let t = Instant::now();
    let report = registry
        .gc_repo(&name, Duration::from_secs(3600))
        .await
        .expect("gc");
    let scan = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    println!(
        "gc scan of {} manifests, nothing to delete: {:.2}s ({report:?})",
        n + 1,
        scan.as_secs_f64()
    );
    percentiles("pull during that gc", puller.await.expect("puller"));

    // GC that deletes every untagged manifest.
    let stop = Arc::new(AtomicBool::new(false));
    let puller = tokio::spawn(pull_until(client.clone(), url.clone(), stop.clone()));
    let t = Instant::now();
    let report = registry.gc_repo(&name, Duration::ZERO).await.expect("gc");
    let sweep = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    println!(
        "gc deleting {} manifests: {:.2}s ({report:?})",
        report.manifests,
        sweep.as_secs_f64()
    );
    percentiles("pull during that gc", puller.await.expect("puller"));
}

//! Scale benchmark: a release `berth serve` with many repositories and one
//! repository with many tags. Reports latency percentiles; asserts nothing.
//!
//! ```sh
//! cargo bench -p berth --bench scale                     # 10,000 repos, 10,000 tags
//! SCALE_REPOS=1000 SCALE_TAGS=1000 cargo bench -p berth --bench scale
//! ```
//!
//! Under `cargo test --all-targets` it runs with 20 of each, as a smoke
//! test of the same code.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_oci::Digest;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `berth serve` on `config` and returns it once it answers, with
/// the time that took.
fn start(config: &std::path::Path) -> (Server, Duration) {
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("serve")
        .arg(config)
        .env("RUST_LOG", "warn,berth=info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("berth exited").expect("read");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap_or("").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let base = format!("http://{addr}");
    let client = reqwest::blocking::Client::new();
    while client
        .get(format!("{base}/v2/"))
        .send()
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    (Server { child, base }, t0.elapsed())
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name}: n={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        samples.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
}

fn post_blob(client: &reqwest::blocking::Client, base: &str, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256(data);
    let r = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
        .body(data.to_vec())
        .send()
        .expect("push blob");
    assert_eq!(r.status(), 201);
    d
}

fn manifest(config: &Digest, config_len: usize, layer: &Digest, layer_len: usize) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_len}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_len}}}]}}"#
    )
}

/// Times one manifest PUT.
fn put_manifest(
    client: &reqwest::blocking::Client,
    base: &str,
    repo: &str,
    tag: &str,
    body: &str,
) -> Duration {
    let t = Instant::now();
    let r = client
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.to_string())
        .send()
        .expect("put manifest");
    assert_eq!(r.status(), 201);
    t.elapsed()
}

fn time_get(client: &reqwest::blocking::Client, url: &str, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = client.get(url).send().expect("get");
            assert_eq!(r.status(), 200);
            let _ = r.bytes();
            t.elapsed()
        })
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it, as a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let repos = env_usize("SCALE_REPOS", if full { 10_000 } else { 20 });
    let tags = env_usize("SCALE_TAGS", if full { 10_000 } else { 20 });
    let threads = env_usize("SCALE_THREADS", 4);
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"storage": {"rootDirectory": dir.path().join("root")},
            "http": {"address": "127.0.0.1", "port": "0"}, "log": {"level": "warn"}})
        .to_string(),
    )
    .expect("config");
    let (server, startup) = start(&config);
    println!("start-up, empty root: {:.0}ms", startup.as_secs_f64() * 1e3);

    // Many repositories, one small image each.
    let samples = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let (base, samples) = (server.base.clone(), samples.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for i in (w..repos).step_by(threads) {
                    let repo = format!("scale/r{i:05}");
                    let layer = format!("layer of {repo}");
                    let ld = post_blob(&client, &base, &repo, layer.as_bytes());
                    let cd = post_blob(&client, &base, &repo, b"{}");
                    let m = manifest(&cd, 2, &ld, layer.len());
                    let t = put_manifest(&client, &base, &repo, "v1", &m);
                    samples.lock().expect("samples").push(t);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    println!(
        "pushed {repos} repositories in {:.1}s ({threads} clients)",
        t0.elapsed().as_secs_f64()
    );
    percentiles(
        "manifest PUT, new repository",
        std::mem::take(&mut *samples.lock().expect("s")),
    );

    let client = reqwest::blocking::Client::new();
    percentiles(
        &format!("GET /v2/_catalog (all {repos})"),
        time_get(&client, &format!("{}/v2/_catalog", server.base), 20),
    );
    percentiles(
        "GET /v2/_catalog?n=100",
        time_get(&client, &format!("{}/v2/_catalog?n=100", server.base), 50),
    );

    // Restart with every repository on disk, after a clean shutdown
    // (SIGTERM; after a crash the metadata store is derived again).
    let pid = server.child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let mut server = server;
    server.child.wait().expect("wait");
    drop(server);
    let (server, startup) = start(&config);
    println!(
        "start-up with {repos} repositories: {:.0}ms (until /v2/ answers)",
        startup.as_secs_f64() * 1e3
    );

    // One repository, many tags of one image.
    let repo = "scale/tags";
    let ld = post_blob(&client, &server.base, repo, b"tagged layer");
    let cd = post_blob(&client, &server.base, repo, b"{}");
    let m = manifest(&cd, 2, &ld, 12);
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let mut last_1000 = Vec::new();
    for i in 0..tags {
        let t = put_manifest(&client, &server.base, repo, &format!("t{i:05}"), &m);
        samples.push(t);
        if i + 1000 >= tags {
            last_1000.push(t);
        }
    }
    println!("tagged {tags} times in {:.1}s", t0.elapsed().as_secs_f64());
    percentiles(&format!("manifest PUT, new tag (all {tags})"), samples);
    percentiles(
        &format!("manifest PUT, new tag (last {})", last_1000.len()),
        last_1000,
    );
    percentiles(
        &format!("GET tags/list ({tags} tags)"),
        time_get(&client, &format!("{}/v2/{repo}/tags/list", server.base), 20),
    );
    percentiles(
        "GET tags/list?n=100",
        time_get(
            &client,
            &format!("{}/v2/{repo}/tags/list?n=100", server.base),
            50,
        ),
    );
    percentiles(
        "GET manifest by tag",
        time_get(
            &client,
            &format!("{}/v2/{repo}/manifests/t{:05}", server.base, tags / 2),
            200,
        ),
    );
}

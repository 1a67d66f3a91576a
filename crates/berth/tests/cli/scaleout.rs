//! Several `berth serve` processes sharing one S3 bucket (a real `s3s-fs`)
//! and one Redis (a real `redis-server`): an upload's chunks go round-robin
//! through all of them, what one pushes another serves, GC runs on one
//! while the others push, an instance killed mid-upload loses nothing, and
//! an offline scrub of the bucket afterwards finds nothing affected.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_oci::Digest;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

#[cfg(feature = "redis")]
use crate::redis_server::RedisServer;
use crate::s3_server::S3Server;
use crate::support::{Berth, berth};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A config for one instance: its own local directory, the shared bucket
/// and the shared `cache` driver (Redis or DynamoDB). `gc` on only where
/// asked.
pub(crate) fn write_config(
    dir: &Path,
    s3: &S3Server,
    cache: Value,
    gc: bool,
) -> std::path::PathBuf {
    let root = dir.join("local");
    std::fs::create_dir_all(&root).expect("root");
    let config = dir.join("config.json");
    let mut storage = json!({
        "rootDirectory": root,
        "storageDriver": s3.driver("/shared"),
        "cacheDriver": cache,
        "gc": gc,
    });
    if gc {
        storage["gcDelay"] = json!("10s");
        storage["gcInterval"] = json!("1s");
    }
    std::fs::write(
        &config,
        json!({"storage": storage, "http": {"address": "127.0.0.1", "port": "0"}}).to_string(),
    )
    .expect("config");
    config
}

fn post_upload(http: &Client, base: &Berth, repo: &str) -> String {
    let r = http
        .post(base.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .expect("start upload");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

fn patch(
    http: &Client,
    base: &Berth,
    location: &str,
    offset: usize,
    chunk: &[u8],
) -> reqwest::Result<reqwest::blocking::Response> {
    http.patch(base.url(location))
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{}-{}", offset, offset + chunk.len() - 1),
        )
        .body(chunk.to_vec())
        .send()
}

fn finish(http: &Client, base: &Berth, location: &str, digest: &Digest) -> StatusCode {
    let sep = if location.contains('?') { '&' } else { '?' };
    http.put(base.url(&format!("{location}{sep}digest={digest}")))
        .send()
        .expect("finish")
        .status()
}

pub(crate) fn push_blob(http: &Client, base: &Berth, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256(data);
    let r = http
        .post(base.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(data.to_vec())
        .send()
        .expect("push blob");
    assert_eq!(r.status(), StatusCode::CREATED, "push blob");
    d
}

fn manifest(config: (&Digest, usize), layers: &[(&Digest, usize)]) -> Vec<u8> {
    let desc = |mt: &str, d: &Digest, n: usize| json!({"mediaType": mt, "digest": d.to_string(), "size": n});
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", config.0, config.1),
        "layers": layers.iter().map(|(d, n)| desc("application/vnd.oci.image.layer.v1.tar", d, *n)).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

/// Pushes a small image tagged `tag` through `base`; returns the manifest.
pub(crate) fn push_image(
    http: &Client,
    base: &Berth,
    repo: &str,
    tag: &str,
    seed: usize,
) -> Vec<u8> {
    let config = format!("{{\"seed\":{seed}}}");
    let layer = format!("layer of image {seed} ").repeat(50);
    let cd = push_blob(http, base, repo, config.as_bytes());
    let ld = push_blob(http, base, repo, layer.as_bytes());
    let m = manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let r = http
        .put(base.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", MANIFEST)
        .body(m.clone())
        .send()
        .expect("put manifest");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
    m
}

/// Pulls `tag` through `base` and checks every blob it names.
pub(crate) fn pull_image(http: &Client, base: &Berth, repo: &str, tag: &str) -> Vec<u8> {
    let r = http
        .get(base.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("accept", MANIFEST)
        .send()
        .expect("get manifest");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{repo}:{tag} through {}",
        base.addr
    );
    let body = r.bytes().expect("body").to_vec();
    let m: Value = serde_json::from_slice(&body).expect("json");
    let mut descs = vec![m["config"].clone()];
    descs.extend(m["layers"].as_array().expect("layers").iter().cloned());
    for d in descs {
        let digest = d["digest"].as_str().expect("digest");
        let r = http
            .get(base.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .expect("get blob");
        assert_eq!(r.status(), StatusCode::OK, "{repo}:{tag} blob {digest}");
        let bytes = r.bytes().expect("blob");
        assert_eq!(Digest::sha256(&bytes).to_string(), digest);
    }
    body
}

/// `n` instances, each in a directory of its own, started by `start`
/// (given its index and directory), and a client for them.
pub(crate) fn start_nodes(
    n: usize,
    start: impl Fn(usize, &Path) -> Berth,
) -> (Vec<tempfile::TempDir>, Vec<Option<Berth>>, Client) {
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let nodes = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| Some(start(i, d.path())))
        .collect();
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    (dirs, nodes, http)
}

/// Uploads `blob` to `repo` in chunks of `chunk_mib` MiB: started on the
/// first instance, each chunk sent to the next instance round-robin, and
/// finished on the last one; returns its digest.
pub(crate) fn upload_round_robin(
    http: &Client,
    nodes: &[Option<Berth>],
    repo: &str,
    blob: &[u8],
    chunk_mib: usize,
) -> Digest {
    let digest = Digest::sha256(blob);
    let mut location = post_upload(http, node(nodes, 0), repo);
    let mut offset = 0;
    for (i, chunk) in blob.chunks(chunk_mib << 20).enumerate() {
        let r = patch(
            http,
            node(nodes, (i + 1) % nodes.len()),
            &location,
            offset,
            chunk,
        )
        .expect("patch");
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "chunk {i}: {:?}",
            r.text()
        );
        location = r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        offset += chunk.len();
    }
    let last = node(nodes, nodes.len() - 1);
    assert_eq!(finish(http, last, &location, &digest), StatusCode::CREATED);
    digest
}

pub(crate) fn node(nodes: &[Option<Berth>], i: usize) -> &Berth {
    nodes[i].as_ref().expect("running")
}

#[cfg(feature = "redis")]
#[test]
fn three_instances_share_one_bucket_and_one_redis() {
    let s3 = S3Server::start();
    let redis = RedisServer::start();
    let cache = json!({"name": "redis", "url": format!("redis://127.0.0.1:{}", redis.port), "keyprefix": "scaleout"});
    let (dirs, mut nodes, http) = start_nodes(3, |i, dir| {
        Berth::start_config(&write_config(dir, &s3, cache.clone(), i == 0))
    });

    // One upload, its chunks round-robin over all three instances.
    let blob: Vec<u8> = (0..(12 << 20) + 7).map(|i| (i * 31 % 255) as u8).collect();
    let digest = upload_round_robin(&http, &nodes, "team/app", &blob, 2);
    for i in 0..3 {
        let r = http
            .get(node(&nodes, i).url(&format!("/v2/team/app/blobs/{digest}")))
            .send()
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.bytes().expect("body") == blob,
            "instance {i} serves the whole blob"
        );
    }

    // A manifest pushed through one is pulled through the others.
    let m = push_image(&http, node(&nodes, 1), "team/app", "v1", 1);
    assert_eq!(pull_image(&http, node(&nodes, 2), "team/app", "v1"), m);
    assert_eq!(pull_image(&http, node(&nodes, 0), "team/app", "v1"), m);

    // Instance 0 collects garbage every second while 1 and 2 push; an
    // unreferenced blob old enough goes meanwhile, nothing pushed does.
    let orphan = push_blob(&http, node(&nodes, 2), "team/app", b"nobody needs me");
    let mut pushed = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let tag = format!("t{n}");
        let m = push_image(&http, node(&nodes, 1 + n % 2), "team/app", &tag, 100 + n);
        pushed.push((tag, m));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .head(node(&nodes, 1).url(&format!("/v2/team/app/blobs/{orphan}")))
        .send()
        .expect("head")
        .status()
        == StatusCode::OK
    {
        assert!(
            Instant::now() < deadline,
            "GC on instance 0 never collected the orphan"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (i, (tag, m)) in pushed.iter().enumerate() {
        assert_eq!(
            &pull_image(&http, node(&nodes, i % 3), "team/app", tag),
            m,
            "{tag}"
        );
    }
    assert_eq!(pull_image(&http, node(&nodes, 1), "team/app", "v1"), m);
    let tags: Value = http
        .get(node(&nodes, 2).url("/v2/team/app/tags/list?n=10000"))
        .send()
        .expect("tags")
        .json()
        .expect("json");
    assert_eq!(
        tags["tags"].as_array().expect("tags").len(),
        pushed.len() + 1,
        "every tag pushed through any instance is listed by each"
    );

    // An instance dies mid-upload: the client carries on with another.
    let blob2: Vec<u8> = (0..(6 << 20) + 1).map(|i| (i % 199) as u8).collect();
    let digest2 = Digest::sha256(&blob2);
    let mut location = post_upload(&http, node(&nodes, 2), "team/other");
    let half = blob2.len() / 2;
    let r = patch(&http, node(&nodes, 2), &location, 0, &blob2[..half]).expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let mut dead = nodes[2].take().expect("running");
    dead.child.kill().expect("kill");
    dead.child.wait().expect("wait");
    // The retry asks where the upload stands, then sends the rest.
    let r = http
        .get(node(&nodes, 0).url(&location))
        .send()
        .expect("status");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers()["range"].to_str().expect("range"),
        format!("0-{}", half - 1)
    );
    let r = patch(&http, node(&nodes, 0), &location, half, &blob2[half..]).expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert_eq!(
        finish(&http, node(&nodes, 1), &location, &digest2),
        StatusCode::CREATED
    );
    let got = http
        .get(node(&nodes, 1).url(&format!("/v2/team/other/blobs/{digest2}")))
        .send()
        .expect("get")
        .bytes()
        .expect("body");
    assert!(got == blob2, "the upload completed through the survivors");

    // Stopped, an offline scrub of the bucket finds nothing affected.
    for n in nodes.iter_mut() {
        if let Some(b) = n.take() {
            assert!(b.terminate().success());
        }
    }
    let out = berth()
        .arg("scrub")
        .arg(dirs[1].path().join("config.json"))
        .args(["--format", "json"])
        .output()
        .expect("scrub");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scrub: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_str(&stdout).expect("scrub json");
    assert_eq!(
        rows.as_array().expect("rows").len(),
        pushed.len() + 1,
        "scrub saw every image: {stdout}"
    );
}

/// An S3 service, a Redis or a DynamoDB that cannot be reached at start
/// is one line naming the key, and a non-zero exit.
#[test]
fn unreachable_backends_are_named_at_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut cases = vec![(
        "storage.storageDriver",
        json!({"storageDriver": {"name": "s3", "bucket": "b", "forcepathstyle": true,
            "regionendpoint": format!("http://127.0.0.1:{closed}"),
            "accesskey": "a", "secretkey": "s"}}),
    )];
    #[cfg(feature = "redis")]
    cases.push((
        "storage.cacheDriver",
        json!({"cacheDriver": {"name": "redis", "url": format!("redis://127.0.0.1:{closed}")}}),
    ));
    #[cfg(feature = "dynamodb")]
    cases.push((
        "storage.cacheDriver",
        json!({"remoteCache": true, "cacheDriver": crate::scaleout_dynamodb::zot_cache_driver(
            &format!("http://127.0.0.1:{closed}"))}),
    ));
    for (i, (key, extra)) in cases.into_iter().enumerate() {
        let root = dir.path().join(i.to_string());
        let mut storage = json!({"rootDirectory": root});
        storage
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        let config = dir.path().join(format!("{i}.json"));
        std::fs::write(
            &config,
            json!({"storage": storage, "http": {"address": "127.0.0.1", "port": "0"}}).to_string(),
        )
        .expect("config");
        let out = berth()
            .arg("serve")
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .expect("run");
        assert!(!out.status.success(), "{key}: must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("berth: {key}: ")),
            "{key}: {last}"
        );
    }
}

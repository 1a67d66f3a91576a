//! Quotas and immutable tags with a real client: skopeo pushes refused
//! past a quota or onto an immutable tag (and taken once the config is
//! edited: both reload live), the usage in metrics and in the search API,
//! and two instances on one S3 bucket and one Redis that count one quota:
//! of two pushes racing through them that together exceed it, one is
//! refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::redis_server::RedisServer;
use crate::s3_server::S3Server;
use crate::support::*;

/// An OCI layout at `dir` whose image (tag `v1`) has one layer of `size`
/// bytes that neither compress nor repeat (`seed` picks them).
fn layout(dir: &Path, seed: u64, size: usize) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect();
    let layer = with_media(
        put_blob(dir, &data),
        "application/vnd.oci.image.layer.v1.tar",
    );
    let config = json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}});
    let config_bytes = config.to_string().into_bytes();
    let cfg = with_media(
        put_blob(dir, &config_bytes),
        "application/vnd.oci.image.config.v1+json",
    );
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg, "layers": [layer]});
    let m_bytes = m.to_string().into_bytes();
    let mut top = with_media(
        put_blob(dir, &m_bytes),
        "application/vnd.oci.image.manifest.v1+json",
    );
    top["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [top]}).to_string(),
    )
    .expect("index");
}

/// `skopeo copy` of the layout's `v1` to `docker://{host}/{dest}`.
fn push(dir: &Path, layout: &Path, host: &str, dest: &str) -> Output {
    Command::new("skopeo")
        .arg("--policy")
        .arg(skopeo_policy(dir))
        .args(["copy", "--dest-tls-verify=false", "--retry-times=0"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{host}/{dest}"))
        .output()
        .expect("skopeo is required (the README's test command installs it)")
}

fn host(b: &Berth) -> String {
    b.url("").trim_start_matches("http://").to_string()
}

fn tags(b: &Berth, repo: &str) -> Value {
    reqwest::blocking::get(b.url(&format!("/v2/{repo}/tags/list")))
        .expect("tags")
        .json::<Value>()
        .expect("json")["tags"]
        .clone()
}

/// The bytes of `repo:tag`'s manifest, config and layers, as stored
/// (skopeo may rewrite a manifest it copies).
fn stored_bytes(b: &Berth, repo: &str, tag: &str) -> u64 {
    let m = reqwest::blocking::Client::new()
        .get(b.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("manifest")
        .bytes()
        .expect("bytes");
    let v: Value = serde_json::from_slice(&m).expect("json");
    let layers: u64 = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .sum();
    m.len() as u64 + v["config"]["size"].as_u64().expect("config size") + layers
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_config(path: &Path, root: &Path, max_bytes: u64, immutable: &[&str]) {
    let config = json!({
        "storage": {
            "rootDirectory": root,
            "quotas": [{"repositories": ["limited/**"], "maxBytes": max_bytes}],
            "immutableTags": [{"repositories": ["**"], "patterns": immutable}],
        },
        "http": {"address": "127.0.0.1", "port": "0"},
        "extensions": {
            "metrics": {"enable": true, "prometheus": {"path": "/metrics"}},
            "search": {"enable": true},
        },
    });
    // Written whole and renamed, as editors do: the watcher sees one change.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, config.to_string()).expect("config");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Retries `f` until it holds (the config is re-read in the background).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{what}: not within 30 s");
}

#[test]
fn skopeo_pushes_meet_quotas_and_immutable_tags_which_reload_live() {
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    layout(&a, 1, 200_000);
    layout(&b, 2, 200_000);
    let config = dir.path().join("config.json");
    write_config(&config, &dir.path().join("root"), 300_000, &["v1"]);
    let berth = Berth::start_config(&config);
    let h = host(&berth);

    let ok = push(dir.path(), &a, &h, "limited/app:a");
    assert!(ok.status.success(), "{}", stderr(&ok));
    let refused = push(dir.path(), &b, &h, "limited/app:b");
    assert!(
        !refused.status.success(),
        "a push past the quota went through"
    );
    assert!(stderr(&refused).contains("quota"), "{}", stderr(&refused));
    assert_eq!(tags(&berth, "limited/app"), json!(["a"]));
    // Each repository has its own quota.
    let other = push(dir.path(), &b, &h, "limited/other:b");
    assert!(other.status.success(), "{}", stderr(&other));

    // The usage, in metrics and in the search API.
    let a_bytes = stored_bytes(&berth, "limited/app", "a");
    let text = reqwest::blocking::get(berth.url("/metrics"))
        .expect("scrape")
        .text()
        .expect("text");
    let line = format!("berth_quota_used_bytes{{repo=\"limited/app\"}} {a_bytes}");
    assert!(text.contains(&line), "no {line:?} in\n{text}");
    assert!(
        text.contains("berth_quota_limit_bytes{repo=\"limited/app\"} 300000"),
        "{text}"
    );
    let answer: Value = reqwest::blocking::Client::new()
        .post(berth.url("/v2/_zot/ext/search"))
        .json(&json!({"query": r#"{ ExpandedRepoInfo(repo: "limited/app") { Summary { Name Quota { Rule MaxBytes UsedBytes } } } }"#}))
        .send()
        .expect("search")
        .json()
        .expect("json");
    assert_eq!(
        answer["data"]["ExpandedRepoInfo"]["Summary"]["Quota"],
        json!({"Rule": "storage.quotas[0]", "MaxBytes": "300000", "UsedBytes": a_bytes.to_string()}),
        "{answer}"
    );

    // An immutable tag: pushed again with the same image, fine; moved, no.
    let first = push(dir.path(), &a, &h, "free/app:v1");
    assert!(first.status.success(), "{}", stderr(&first));
    let again = push(dir.path(), &a, &h, "free/app:v1");
    assert!(again.status.success(), "{}", stderr(&again));
    let moved = push(dir.path(), &b, &h, "free/app:v1");
    assert!(!moved.status.success(), "an immutable tag moved");
    assert!(stderr(&moved).contains("immutable"), "{}", stderr(&moved));
    let deleted = reqwest::blocking::Client::new()
        .delete(berth.url("/v2/free/app/manifests/v1"))
        .send()
        .expect("delete");
    assert_eq!(deleted.status(), 403);

    // Both reload with the config.
    write_config(&config, &dir.path().join("root"), 1_000_000, &["v2"]);
    eventually("the raised quota is in force", || {
        push(dir.path(), &b, &h, "limited/app:b").status.success()
    });
    assert_eq!(tags(&berth, "limited/app"), json!(["a", "b"]));
    eventually("v1 is no longer immutable", || {
        push(dir.path(), &b, &h, "free/app:v1").status.success()
    });
    // An invalid edit keeps the rules in force (`v2` stays immutable).
    std::fs::write(
        &config,
        r#"{"storage": {"rootDirectory": "/x", "quotas": [{"repositories": [], "maxBytes": 1}]}}"#,
    )
    .expect("config");
    std::thread::sleep(Duration::from_secs(2));
    let set = push(dir.path(), &a, &h, "free/app:v2");
    assert!(set.status.success(), "{}", stderr(&set));
    let moved = push(dir.path(), &b, &h, "free/app:v2");
    assert!(
        !moved.status.success(),
        "the rules were dropped by an invalid edit"
    );
    let log = berth.log.lock().expect("log").join("\n");
    assert!(log.contains("config changed but is invalid"), "{log}");
}

fn scaleout_config(dir: &Path, s3: &S3Server, redis: &RedisServer) -> PathBuf {
    let root = dir.join("local");
    std::fs::create_dir_all(&root).expect("root");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({
            "storage": {
                "rootDirectory": root,
                "storageDriver": s3.driver("/policies"),
                "cacheDriver": {"name": "redis", "url": format!("redis://127.0.0.1:{}", redis.port), "keyprefix": "policies"},
                "gc": false,
                "quotas": [{"repositories": ["race/**"], "maxBytes": 300_000}],
                "immutableTags": [{"repositories": ["**"], "patterns": ["stable"]}],
            },
            "http": {"address": "127.0.0.1", "port": "0"},
        })
        .to_string(),
    )
    .expect("config");
    config
}

#[test]
fn two_instances_on_s3_and_redis_count_one_quota() {
    let s3 = S3Server::start();
    let redis = RedisServer::start();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let nodes: Vec<Berth> = dirs
        .iter()
        .map(|d| Berth::start_config(&scaleout_config(d.path(), &s3, &redis)))
        .collect();
    let work = tempfile::tempdir().expect("tmp");
    let images: Vec<PathBuf> = (0..2)
        .map(|i| {
            let p = work.path().join(format!("img{i}"));
            layout(&p, 10 + i as u64, 200_000);
            p
        })
        .collect();

    // Two pushes, one through each instance, that fit alone but not
    // together: one goes through, the other is refused.
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (dir, image, h) = (work.path(), &images[i], host(&nodes[i]));
                s.spawn(move || push(dir, image, &h, &format!("race/app:t{i}")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("push thread"))
            .collect()
    });
    let passed = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        passed,
        1,
        "{:?}",
        outputs.iter().map(stderr).collect::<Vec<_>>()
    );
    let refused = outputs
        .iter()
        .find(|o| !o.status.success())
        .expect("refused");
    assert!(stderr(refused).contains("quota"), "{}", stderr(refused));
    for n in &nodes {
        assert_eq!(tags(n, "race/app").as_array().map(Vec::len), Some(1));
    }

    // An immutable tag set through one instance is immutable through the
    // other.
    let set = push(
        work.path(),
        &images[0],
        &host(&nodes[0]),
        "shared/app:stable",
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let moved = push(
        work.path(),
        &images[1],
        &host(&nodes[1]),
        "shared/app:stable",
    );
    assert!(!moved.status.success(), "an immutable tag moved");
    assert!(stderr(&moved).contains("immutable"), "{}", stderr(&moved));
}

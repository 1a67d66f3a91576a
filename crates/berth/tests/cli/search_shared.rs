//! Search on two `berth serve` processes sharing one S3 bucket (a real
//! `s3s-fs`) and one Redis (a real `redis-server`): what one instance
//! records (a push, a star, a pull, a delete) the other's search answers
//! with at its next query, since both read the same metadata store.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_oci::Digest;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::redis_server::RedisServer;
use crate::s3_server::S3Server;
use crate::support::Berth;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const USER: (&str, &str) = ("bob", "builder");

fn write_config(dir: &Path, s3: &S3Server, redis: &RedisServer) -> std::path::PathBuf {
    let root = dir.join("local");
    std::fs::create_dir_all(&root).expect("root");
    let htpasswd = dir.join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("{}:{}\n", USER.0, bcrypt::hash(USER.1, 4).expect("bcrypt")),
    )
    .expect("htpasswd");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({
            "storage": {
                "rootDirectory": root,
                "storageDriver": s3.driver("/shared"),
                "cacheDriver": {"name": "redis", "url": redis.url(), "keyprefix": "search"},
            },
            "http": {"address": "127.0.0.1", "port": "0",
                     "auth": {"htpasswd": {"path": htpasswd}}},
            "extensions": {"search": {}, "ui": {}},
        })
        .to_string(),
    )
    .expect("config");
    config
}

fn push_blob(http: &Client, b: &Berth, repo: &str, data: &[u8]) -> (Digest, usize) {
    let d = Digest::sha256(data);
    let r = http
        .post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .basic_auth(USER.0, Some(USER.1))
        .body(data.to_vec())
        .send()
        .expect("push blob");
    assert_eq!(r.status(), StatusCode::CREATED, "push blob");
    (d, data.len())
}

/// Pushes an image built at `created` through `b`; returns its digest.
fn push_image(http: &Client, b: &Berth, repo: &str, tag: &str, created: &str) -> String {
    let config = json!({"architecture": "amd64", "os": "linux", "created": created,
        "rootfs": {"type": "layers", "diff_ids": []}})
    .to_string();
    let (cd, cl) = push_blob(http, b, repo, config.as_bytes());
    let (ld, ll) = push_blob(http, b, repo, format!("layer of {tag}").as_bytes());
    let m = json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cl},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": ll}]})
    .to_string();
    let r = http
        .put(b.url(&format!("/v2/{repo}/manifests/{tag}")))
        .basic_auth(USER.0, Some(USER.1))
        .header("content-type", MANIFEST)
        .body(m.clone())
        .send()
        .expect("put manifest");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
    Digest::sha256(m.as_bytes()).to_string()
}

fn search(http: &Client, b: &Berth, query: &str) -> Value {
    let r = http
        .post(b.url("/v2/_zot/ext/search"))
        .basic_auth(USER.0, Some(USER.1))
        .json(&json!({ "query": query }))
        .send()
        .expect("search");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().expect("json");
    assert!(v["errors"].is_null(), "{v}");
    v["data"].clone()
}

fn tags(http: &Client, b: &Berth) -> Vec<String> {
    let data = search(
        http,
        b,
        "{ImageList(repo:\"shared/app\"){Results{Tag PushTimestamp}}}",
    );
    let mut tags: Vec<String> = data["ImageList"]["Results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["Tag"].as_str().expect("tag").to_string())
        .collect();
    tags.sort();
    tags
}

#[test]
fn two_instances_sharing_redis_answer_searches_alike() {
    let s3 = S3Server::start();
    let redis = RedisServer::start();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let a = Berth::start_config(&write_config(dirs[0].path(), &s3, &redis));
    let b = Berth::start_config(&write_config(dirs[1].path(), &s3, &redis));
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // Each instance answers at once for what the other pushed.
    push_image(&http, &a, "shared/app", "1.0", "2024-01-01T00:00:00Z");
    assert_eq!(tags(&http, &b), ["1.0"]);
    let newer = push_image(&http, &b, "shared/app", "2.0", "2024-06-01T00:00:00Z");
    assert_eq!(tags(&http, &a), ["1.0", "2.0"]);
    let newest = search(
        &http,
        &a,
        "{ExpandedRepoInfo(repo:\"shared/app\"){Summary{NewestImage{Tag Digest}}}}",
    );
    assert_eq!(
        newest["ExpandedRepoInfo"]["Summary"]["NewestImage"],
        json!({"Tag": "2.0", "Digest": newer})
    );

    // A star given through one instance counts on the other.
    let r = http
        .put(a.url("/v2/_zot/ext/userprefs?action=toggleStar&repo=shared/app"))
        .basic_auth(USER.0, Some(USER.1))
        .send()
        .expect("star");
    assert_eq!(r.status(), StatusCode::OK);
    let starred = search(
        &http,
        &b,
        "{StarredRepos{Results{Name StarCount IsStarred}}}",
    );
    assert_eq!(
        starred["StarredRepos"]["Results"],
        json!([{"Name": "shared/app", "StarCount": 1, "IsStarred": true}])
    );

    // Pulls through one instance are downloads on the other (written in
    // batches, so within a moment).
    for _ in 0..3 {
        let r = http
            .get(a.url("/v2/shared/app/manifests/2.0"))
            .basic_auth(USER.0, Some(USER.1))
            .header("accept", MANIFEST)
            .send()
            .expect("pull");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let d = search(
            &http,
            &b,
            "{GlobalSearch(query:\"shared/app\"){Repos{Name DownloadCount}}}",
        );
        if d["GlobalSearch"]["Repos"][0]["DownloadCount"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "downloads never reached 3: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A delete through one instance is gone from the other's answers.
    let r = http
        .delete(b.url(&format!("/v2/shared/app/manifests/{newer}")))
        .basic_auth(USER.0, Some(USER.1))
        .send()
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(tags(&http, &a), ["1.0"]);
}

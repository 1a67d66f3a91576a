//! zot's `cluster` with three real members, both ways: members with their
//! own directories route each repository to the member its name hashes to
//! (zot's SipHash), over HTTPS with a private CA, the owner authenticating;
//! members sharing a bucket and Redis each serve everything, so any of
//! them still serves an image after the others stop.

use std::hash::Hasher as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;
use crate::tls::make_pki;

const HASH_KEY: &str = "loremipsumdolors";

/// Three ports free now (each bound and let go).
fn free_ports() -> Vec<u16> {
    let sockets: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect()
}

/// zot's owner of `repo` among `n` members, computed here independently.
fn owner(repo: &str, n: usize) -> usize {
    let key = HASH_KEY.as_bytes();
    let k0 = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
    h.write(repo.as_bytes());
    (h.finish() % n as u64) as usize
}

fn write_config(path: &Path, storage: Value, http: Value, cluster: &Value) -> PathBuf {
    std::fs::write(
        path,
        json!({"storage": storage, "http": http, "cluster": cluster}).to_string(),
    )
    .expect("config");
    path.to_path_buf()
}

fn skopeo(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .arg("--policy")
        .arg(skopeo_policy(dir))
        .args(args)
        .output()
        .expect("skopeo")
}

#[test]
fn members_without_shared_storage_route_each_repository_to_its_owner() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    make_pki(&pki, "cluster");
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(pki.join("ca.crt"), certs.join("ca.crt")).expect("copy");
    let htpasswd = htpasswd_file(tmp.path(), &[("alice", "a")]);
    let ports = free_ports();
    let members: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let cluster = json!({"members": members, "hashKey": HASH_KEY,
                         "tls": {"cacert": pki.join("ca.crt")}});
    let roots: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("root{i}")))
        .collect();
    let mut nodes: Vec<Option<Berth>> = (0..3)
        .map(|i| {
            let config = write_config(
                &tmp.path().join(format!("member{i}.json")),
                json!({"rootDirectory": roots[i]}),
                json!({"address": "127.0.0.1", "port": ports[i].to_string(),
                       "tls": {"cert": pki.join("server.crt"), "key": pki.join("server.key")},
                       "auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0}}),
                &cluster,
            );
            Some(Berth::start_config(&config))
        })
        .collect();
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let repos: Vec<String> = (0..6).map(|i| format!("team/app{i}")).collect();
    // Every push goes through member 0, whoever owns the repository.
    for repo in &repos {
        let out = skopeo(
            tmp.path(),
            &[
                "copy",
                "--dest-creds",
                "alice:a",
                "--dest-cert-dir",
                certs.to_str().expect("utf-8"),
                &format!("oci:{}:v1", src.display()),
                &format!("docker://{}/{repo}:v1", members[0]),
            ],
        );
        assert!(
            out.status.success(),
            "{repo}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each repository is stored by its owner alone.
    let owners: Vec<usize> = repos.iter().map(|r| owner(r, 3)).collect();
    assert!(
        owners.iter().any(|&o| o != 0),
        "some repository is owned elsewhere: {owners:?}"
    );
    for (repo, &o) in repos.iter().zip(&owners) {
        for (i, root) in roots.iter().enumerate() {
            assert_eq!(
                root.join(repo).join("index.json").exists(),
                i == o,
                "{repo} in member {i} (owner {o})"
            );
        }
    }
    // Any member serves any repository, and the owner asks for credentials.
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(pki.join("ca.crt")).expect("ca"))
                .expect("ca"),
        )
        .build()
        .expect("client");
    let node = |i: usize| nodes[i].as_ref().expect("running");
    for (repo, &o) in repos.iter().zip(&owners) {
        for i in 0..3 {
            let url = node(i)
                .url(&format!("/v2/{repo}/tags/list"))
                .replace("http://", "https://");
            let r = client.get(&url).send().expect("get");
            assert_eq!(r.status(), 401, "{repo} via {i}: the owner challenges");
            let r = client
                .get(&url)
                .basic_auth("alice", Some("a"))
                .send()
                .expect("get");
            assert_eq!(r.status(), 200, "{repo} via {i}");
            let tags: Value = r.json().expect("json");
            assert_eq!(tags["tags"], json!(["v1"]));
            // A request forwarded once is never forwarded again.
            let looped = client
                .get(&url)
                .basic_auth("alice", Some("a"))
                .header("X-Zot-Cluster-Hop-Count", "1")
                .send()
                .expect("get");
            assert_eq!(
                looped.status().as_u16(),
                if i == o { 200 } else { 508 },
                "{repo} via {i}"
            );
        }
    }
    let out = skopeo(
        tmp.path(),
        &[
            "inspect",
            "--creds",
            "alice:a",
            "--cert-dir",
            certs.to_str().expect("utf-8"),
            &format!("docker://{}/{}:v1", members[2], repos[0]),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An owner that is down: the others answer 503, not 500.
    let (repo, &o) = repos
        .iter()
        .zip(&owners)
        .find(|(_, o)| **o != 0)
        .expect("owned elsewhere");
    nodes[o].take().expect("running").terminate();
    let url = nodes[0]
        .as_ref()
        .expect("running")
        .url(&format!("/v2/{repo}/tags/list"))
        .replace("http://", "https://");
    let r = client
        .get(&url)
        .basic_auth("alice", Some("a"))
        .send()
        .expect("get");
    assert_eq!(r.status(), 503);
    let body: Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
}

#[test]
fn a_member_that_is_not_listed_does_not_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ports = free_ports();
    let config = write_config(
        &tmp.path().join("config.json"),
        json!({"rootDirectory": tmp.path().join("root")}),
        json!({"address": "127.0.0.1", "port": ports[0].to_string()}),
        &json!({"members": [format!("127.0.0.1:{}", ports[1]), format!("127.0.0.1:{}", ports[2])],
                "hashKey": HASH_KEY}),
    );
    let out = berth().arg("serve").arg(&config).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.members"), "{err}");
    // And a key of the wrong size is refused by name.
    let config = write_config(
        &tmp.path().join("bad.json"),
        json!({"rootDirectory": tmp.path().join("root")}),
        json!({"address": "127.0.0.1", "port": "0"}),
        &json!({"members": ["127.0.0.1:1"], "hashKey": "short"}),
    );
    let out = berth().arg("verify").arg(&config).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster.hashKey"));
}

#[cfg(all(feature = "s3", feature = "redis"))]
#[test]
fn members_sharing_storage_each_serve_every_repository() {
    use crate::redis_server::RedisServer;
    use crate::s3_server::S3Server;
    let tmp = tempfile::tempdir().expect("tmp");
    let s3 = S3Server::start();
    let redis = RedisServer::start();
    let ports = free_ports();
    let members: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let cluster = json!({"members": members, "hashKey": HASH_KEY});
    let mut nodes: Vec<Option<Berth>> = (0..3)
        .map(|i| {
            let root = tmp.path().join(format!("local{i}"));
            let config = write_config(
                &tmp.path().join(format!("member{i}.json")),
                json!({"rootDirectory": root, "storageDriver": s3.driver("/cluster"),
                       "cacheDriver": {"name": "redis", "url": format!("redis://127.0.0.1:{}", redis.port)}}),
                json!({"address": "127.0.0.1", "port": ports[i].to_string()}),
                &cluster,
            );
            Some(Berth::start_config(&config))
        })
        .collect();
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let repos: Vec<String> = (0..6).map(|i| format!("shared/app{i}")).collect();
    for repo in &repos {
        let out = skopeo_push(tmp.path(), &src, &format!("{}/{repo}:v1", members[0]), None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let logged = |b: &Berth| b.log.lock().expect("log").join("\n");
    assert!(logged(nodes[0].as_ref().expect("running")).contains("share storage"));
    // With members 0 and 1 gone, member 2 still serves every repository,
    // those its name would not own included: nothing was forwarded.
    nodes[0].take().expect("running").terminate();
    nodes[1].take().expect("running").terminate();
    let last = nodes[2].as_ref().expect("running");
    for repo in &repos {
        let r = reqwest::blocking::get(last.url(&format!("/v2/{repo}/tags/list"))).expect("get");
        assert_eq!(r.status(), 200, "{repo} (owner by hash {})", owner(repo, 3));
    }
}

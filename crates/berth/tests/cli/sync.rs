//! zot's sync extension against real upstreams: the CNCF registry
//! (Debian's `docker-registry`) and a second Berth, on loopback. Periodic
//! sync with each content filter, signatures and referrers carried over,
//! `onlySigned`, an upstream that dies midway, wrong credentials and an
//! untrusted certificate.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_client::Client;
use serde_json::{Value, json};

use crate::images::{
    block_on, push_cosign_signature_tag, push_image, push_multiarch_index, push_random_layer_image,
    push_referrer,
};
use crate::proxy::Proxy;
use crate::support::Berth;
use crate::upstream::{BerthUpstream, DockerRegistry, Upstream, UpstreamOptions};

/// Starts a Berth whose `extensions.sync` is `sync`, its root under `dir`.
pub fn start_mirror(dir: &Path, sync: Value) -> Berth {
    start_mirror_with(dir, sync, json!({}))
}

/// [`start_mirror`] with more top-level `extensions` keys.
pub fn start_mirror_with(dir: &Path, sync: Value, extensions: Value) -> Berth {
    let config = dir.join("mirror.json");
    let mut ext = json!({ "sync": sync });
    if let (Some(o), Value::Object(more)) = (ext.as_object_mut(), extensions) {
        o.extend(more);
    }
    std::fs::write(
        &config,
        json!({
            "storage": {"rootDirectory": dir.join("mirror")},
            "http": {"address": "127.0.0.1", "port": "0"},
            "log": {"level": "info"},
            "extensions": ext,
        })
        .to_string(),
    )
    .expect("write config");
    Berth::start_config(&config)
}

/// Polls `check` (every 100 ms, for at most 60 s) until it gives a value.
pub fn wait_for<T>(berth: &Berth, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "{what} never happened; the mirror's log:\n{}",
                log_of(berth)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn log_of(berth: &Berth) -> String {
    berth.log.lock().expect("log").join("\n")
}

pub fn client_of(berth: &Berth) -> Client {
    Client::new(&berth.addr, None).expect("client")
}

/// The tags of `repo` on the mirror (empty when it has none).
pub fn tags_of(berth: &Berth, repo: &str) -> Vec<String> {
    let mut tags = block_on(client_of(berth).tags(repo)).unwrap_or_default();
    tags.sort();
    tags
}

/// The digest `reference` names in `repo` on `client`, if any.
pub fn digest_at(client: &Client, repo: &str, reference: &str) -> Option<String> {
    block_on(client.get_manifest_raw(repo, reference))
        .ok()
        .flatten()
        .map(|m| m.digest.to_string())
}

/// zot's `credentialsFile` with one login for `host`.
fn write_credentials(dir: &Path, host: &str, user: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join("creds.json");
    std::fs::write(
        &path,
        json!({ host: {"username": user, "password": password} }).to_string(),
    )
    .expect("creds");
    path
}

fn sync_registry(urls: &[String], extra: Value) -> Value {
    let mut r = json!({ "urls": urls, "pollInterval": "1s", "tlsVerify": true });
    if let (Some(o), Value::Object(more)) = (r.as_object_mut(), extra) {
        o.extend(more);
    }
    r
}

#[test]
fn periodic_sync_copies_what_each_content_rule_takes_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new().user("puller", "s3cret"));
    let c = up.client(Some("puller:s3cret"));
    let mut want = std::collections::BTreeMap::new();
    block_on(async {
        for tag in ["1.0.0", "1.2.0", "1.3.0-rc1", "2.0.0", "latest"] {
            let p = push_image(&c, "apps/web", tag, &[tag.as_bytes()]).await;
            want.insert(format!("apps/web:{tag}"), p.digest.to_string());
        }
        for tag in ["v1", "dev"] {
            let p = push_image(&c, "apps/api", tag, &[format!("api {tag}").as_bytes()]).await;
            want.insert(format!("apps/api:{tag}"), p.digest.to_string());
        }
        push_image(&c, "infra/db", "v1", &[b"db"]).await;
    });
    let creds = write_credentials(dir.path(), up.host(), "puller", "s3cret");
    let mirror = start_mirror(
        dir.path(),
        json!({
            "credentialsFile": creds,
            "registries": [sync_registry(&[up.url()], json!({
                "content": [
                    // A semver range and an exclusion, under another name.
                    {"prefix": "apps/web", "destination": "/mirror", "tags": {"semver": ">=1.1, <3", "excludeRegex": "^2\\."}},
                    // A regex, kept under its own name.
                    {"prefix": "apps/api", "tags": {"regex": "^v[0-9]+$"}},
                ]
            }))]
        }),
    );
    let web = wait_for(&mirror, "apps/web synced", || {
        let t = tags_of(&mirror, "mirror/apps/web");
        (!t.is_empty()).then_some(t)
    });
    let api = wait_for(&mirror, "apps/api synced", || {
        let t = tags_of(&mirror, "apps/api");
        (!t.is_empty()).then_some(t)
    });
    // A run is whole before the next starts: give a second run time.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        tags_of(&mirror, "mirror/apps/web"),
        vec!["1.2.0"],
        "{web:?}"
    );
    assert_eq!(api, vec!["v1"]);
    assert!(tags_of(&mirror, "infra/db").is_empty());
    assert!(tags_of(&mirror, "apps/web").is_empty());
    let local = client_of(&mirror);
    assert_eq!(
        digest_at(&local, "mirror/apps/web", "1.2.0").as_deref(),
        Some(want["apps/web:1.2.0"].as_str())
    );
    assert_eq!(
        digest_at(&local, "apps/api", "v1").as_deref(),
        Some(want["apps/api:v1"].as_str())
    );
    // The blobs came along: the whole image can be pulled.
    let raw = block_on(local.get_manifest_raw("apps/api", "v1"))
        .expect("get")
        .expect("found");
    let m: Value = serde_json::from_slice(&raw.bytes).expect("json");
    for l in m["layers"].as_array().expect("layers") {
        let d = l["digest"]
            .as_str()
            .expect("digest")
            .parse()
            .expect("digest");
        assert!(block_on(local.blob_exists("apps/api", &d)).expect("head"));
    }
    let catalog = block_on(local.catalog(None)).expect("catalog");
    assert_eq!(catalog, vec!["apps/api", "mirror/apps/web"]);
}

#[test]
fn signatures_referrers_and_every_platform_come_along_and_only_signed_leaves_unsigned_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = BerthUpstream::start(UpstreamOptions::new());
    let c = up.client(None);
    let (signed, sig, sbom, index, children, unsigned) = block_on(async {
        let signed = push_image(&c, "team/app", "signed", &[b"signed layer"]).await;
        let sig = push_cosign_signature_tag(&c, "team/app", &signed.digest).await;
        let sbom = push_referrer(&c, "team/app", &signed.digest, "application/spdx+json").await;
        let (index, children) = push_multiarch_index(
            &c,
            "team/multi",
            "latest",
            &[
                ("linux", "amd64", None),
                ("linux", "arm64", None),
                ("linux", "arm", Some("v7")),
            ],
        )
        .await;
        push_cosign_signature_tag(&c, "team/multi", &index).await;
        let unsigned = push_image(&c, "team/app", "unsigned", &[b"plain"]).await;
        (signed, sig, sbom, index, children, unsigned)
    });
    let mirror = start_mirror(
        dir.path(),
        json!({"registries": [sync_registry(&[up.url()], json!({
            "onlySigned": true,
            "content": [{"prefix": "team/**"}],
        }))]}),
    );
    let local = client_of(&mirror);
    wait_for(&mirror, "team/app:signed synced", || {
        digest_at(&local, "team/app", "signed")
    });
    wait_for(&mirror, "team/multi:latest synced", || {
        digest_at(&local, "team/multi", "latest")
    });
    let sig_tag = format!("sha256-{}.sig", signed.digest.hex());
    assert_eq!(
        digest_at(&local, "team/app", &sig_tag),
        Some(sig.to_string()),
        "the cosign signature tag"
    );
    let referrers = wait_for(&mirror, "the referrer copied", || {
        let r = block_on(local.referrers("team/app", &signed.digest)).ok()?;
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(referrers[0].digest, sbom);
    assert_eq!(
        digest_at(&local, "team/multi", "latest"),
        Some(index.to_string())
    );
    for child in &children {
        assert!(
            digest_at(&local, "team/multi", &child.to_string()).is_some(),
            "platform {child} of the index"
        );
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        digest_at(&local, "team/app", "unsigned"),
        None,
        "{unsigned:?} is not signed"
    );
    assert!(
        log_of(&mirror).contains("not signed"),
        "{}",
        log_of(&mirror)
    );
}

#[test]
fn a_platform_filter_copies_only_those_platforms_keeping_or_rewriting_the_index() {
    for preserve in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = DockerRegistry::start(UpstreamOptions::new());
        let c = up.client(None);
        let (index, children) = block_on(push_multiarch_index(
            &c,
            "multi",
            "latest",
            &[
                ("linux", "amd64", None),
                ("linux", "arm64", None),
                ("linux", "arm", Some("v7")),
            ],
        ));
        let mirror = start_mirror(
            dir.path(),
            json!({"registries": [sync_registry(&[up.url()], json!({
                "preserveDigest": preserve,
                "content": [{"prefix": "multi", "platforms": ["linux/amd64", "linux/arm64"]}],
            }))]}),
        );
        let local = client_of(&mirror);
        let got = wait_for(&mirror, "multi:latest synced", || {
            block_on(local.get_manifest_raw("multi", "latest"))
                .ok()
                .flatten()
        });
        let doc: Value = serde_json::from_slice(&got.bytes).expect("json");
        let listed = doc["manifests"].as_array().expect("manifests").len();
        if preserve {
            assert_eq!(got.digest, index, "served as upstream signed it");
            assert_eq!(listed, 3);
        } else {
            assert_ne!(got.digest, index, "rewritten");
            assert_eq!(listed, 2);
        }
        assert!(digest_at(&local, "multi", &children[0].to_string()).is_some());
        assert!(digest_at(&local, "multi", &children[1].to_string()).is_some());
        assert_eq!(
            digest_at(&local, "multi", &children[2].to_string()),
            None,
            "linux/arm/v7 left upstream"
        );
        // Scrub knows the index was kept without that platform.
        mirror.terminate();
        let out = crate::support::berth()
            .arg("scrub")
            .arg(dir.path().join("mirror.json"))
            .output()
            .expect("scrub");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_upstream_that_dies_midway_leaves_nothing_tagged_and_the_next_run_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new());
    let c = up.client(None);
    let pushed = block_on(push_random_layer_image(&c, "big", "v1", 4 << 20));
    let proxy = Proxy::start(&up.url());
    proxy.cut_blobs_after(Some(1 << 20));
    let mirror = start_mirror(
        dir.path(),
        json!({"registries": [sync_registry(&[proxy.url()], json!({"content": [{"prefix": "big"}]}))]}),
    );
    let local = client_of(&mirror);
    wait_for(&mirror, "a failed copy", || {
        log_of(&mirror)
            .contains("copying big:v1 failed")
            .then_some(())
    });
    assert_eq!(digest_at(&local, "big", "v1"), None, "nothing tagged");
    assert!(tags_of(&mirror, "big").is_empty());
    proxy.cut_blobs_after(None);
    let d = wait_for(&mirror, "the next run's copy", || {
        digest_at(&local, "big", "v1")
    });
    assert_eq!(d, pushed.digest.to_string());
    let (layer, size) = &pushed.layers[0];
    let mut sink = Vec::new();
    let got = block_on(local.pull_blob_to("big", layer, u64::MAX, &mut sink)).expect("pull");
    assert_eq!(got, *size);
    assert_eq!(berth_oci::Digest::sha256(&sink), *layer);
}

#[test]
fn wrong_credentials_and_an_untrusted_certificate_copy_nothing_and_say_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new().user("puller", "s3cret").tls());
    block_on(push_image(
        &up.client(Some("puller:s3cret")),
        "secret/app",
        "v1",
        &[b"x"],
    ));
    let creds = write_credentials(dir.path(), up.host(), "puller", "wrong");
    // The first registry trusts the CA but has the wrong password; the
    // second (same upstream, no certDir) does not trust the certificate.
    let mirror = start_mirror(
        dir.path(),
        json!({
            "credentialsFile": creds,
            "registries": [
                sync_registry(&[up.url()], json!({"certDir": up.cert_dir().expect("ca"), "content": [{"prefix": "secret/**"}]})),
                sync_registry(&[up.url()], json!({"content": [{"prefix": "secret/**", "destination": "/other"}]})),
            ]
        }),
    );
    wait_for(&mirror, "the credentials refused", || {
        log_of(&mirror).contains("401").then_some(())
    });
    wait_for(&mirror, "the certificate refused", || {
        log_of(&mirror)
            .to_lowercase()
            .contains("certificate")
            .then_some(())
    });
    assert!(
        block_on(client_of(&mirror).catalog(None))
            .expect("catalog")
            .is_empty()
    );
}

#[test]
fn a_bearer_token_upstream_is_reached_through_the_docker_token_flow() {
    use crate::token_server::{SERVICE, Signer, TokenServer};
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::new(dir.path(), "issuer");
    let cert = signer.cert.clone();
    let tokens = TokenServer::start(signer);
    let up = BerthUpstream::start_with(
        UpstreamOptions::new(),
        json!({"auth": {"bearer": {"realm": tokens.realm, "service": SERVICE, "cert": cert}}}),
    );
    // The push itself goes through the token flow.
    let pushed = block_on(push_image(
        &up.client(Some("alice:wonderland")),
        "vendor/tool",
        "1.0",
        &[b"tool layer"],
    ));
    let creds = write_credentials(dir.path(), up.host(), "alice", "wonderland");
    let mirror = start_mirror(
        dir.path(),
        json!({
            "credentialsFile": creds,
            "registries": [sync_registry(&[up.url()], json!({
                "onDemand": true,
                "pollInterval": "1h",
                "content": [{"prefix": "vendor/**"}],
            }))]
        }),
    );
    let local = client_of(&mirror);
    // The periodic run at start copies it (catalog, tags, manifest, blob:
    // each with a token for its scope).
    wait_for(&mirror, "vendor/tool synced", || {
        block_on(local.tags("vendor/tool"))
            .ok()
            .filter(|t| !t.is_empty())
    });
    assert_eq!(
        digest_at(&local, "vendor/tool", "1.0"),
        Some(pushed.digest.to_string())
    );
    // On demand too: a tag pushed after the run.
    let later = block_on(push_image(
        &up.client(Some("alice:wonderland")),
        "vendor/tool",
        "1.1",
        &[b"newer"],
    ));
    assert_eq!(
        digest_at(&local, "vendor/tool", "1.1"),
        Some(later.digest.to_string())
    );
}

#[test]
fn an_mtls_upstream_is_reached_with_the_client_certificate_of_cert_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = BerthUpstream::start(UpstreamOptions::new().mtls());
    let pushed = block_on(push_image(&up.client(None), "secure/app", "v1", &[b"mtls"]));
    let cert_dir = up.cert_dir().expect("cert dir");
    // The same CA without the client certificate: the upstream refuses.
    let ca_only = dir.path().join("ca-only");
    std::fs::create_dir_all(&ca_only).expect("mkdir");
    std::fs::copy(cert_dir.join("ca.crt"), ca_only.join("ca.crt")).expect("copy");
    let mirror = start_mirror(
        dir.path(),
        json!({"registries": [
            sync_registry(&[up.url()], json!({"certDir": cert_dir, "content": [{"prefix": "secure/**"}]})),
            sync_registry(&[up.url()], json!({"certDir": ca_only, "content": [{"prefix": "secure/**", "destination": "/nocert"}]})),
        ]}),
    );
    let local = client_of(&mirror);
    let got = wait_for(&mirror, "secure/app synced over mTLS", || {
        digest_at(&local, "secure/app", "v1")
    });
    assert_eq!(got, pushed.digest.to_string());
    wait_for(
        &mirror,
        "the registry without a client certificate failing",
        || {
            log_of(&mirror)
                .lines()
                .any(|l| l.contains("listing the upstream's repositories failed"))
                .then_some(())
        },
    );
    assert!(tags_of(&mirror, "nocert/secure/app").is_empty());
}

//! On-demand sync against real upstreams: sixteen clients pulling one
//! image cause one upstream fetch, a large layer streams to the first
//! client while it is still arriving, a client that leaves cancels
//! nothing, and a mirrored tag is served when the upstream is gone.

use std::time::{Duration, Instant};

use berth_client::Client;
use futures_util::StreamExt;
use serde_json::json;

use crate::images::{block_on, push_image, push_random_layer_image};
use crate::proxy::Proxy;
use crate::sync::{client_of, digest_at, log_of, start_mirror, wait_for};
use crate::upstream::{DockerRegistry, Upstream, UpstreamOptions};

fn on_demand(url: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut r = json!({"urls": [url], "onDemand": true, "content": [{"prefix": "**"}]});
    if let (Some(o), serde_json::Value::Object(more)) = (r.as_object_mut(), extra) {
        o.extend(more);
    }
    json!({ "registries": [r] })
}

#[test]
fn sixteen_clients_pulling_one_image_at_once_cause_one_upstream_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new());
    let pushed = block_on(push_image(
        &up.client(None),
        "library/app",
        "v1",
        &[&vec![7u8; 3 << 20], b"small layer"],
    ));
    let proxy = Proxy::start(&up.url());
    // Slow enough that the sixteen meet while the fetch is under way.
    proxy.throttle(Some(8 << 20));
    let mirror = start_mirror(dir.path(), on_demand(&proxy.url(), json!({})));
    let addr = mirror.addr.clone();
    let pulls: Vec<_> = (0..16)
        .map(|_| {
            let pushed = pushed.clone();
            let addr = addr.clone();
            std::thread::spawn(move || {
                // A client per thread: each runs its own runtime.
                let local = Client::new(&addr, None).expect("client");
                block_on(async {
                    let m = local
                        .get_manifest_raw("library/app", "v1")
                        .await
                        .expect("manifest")
                        .expect("found");
                    assert_eq!(m.digest, pushed.digest);
                    for (d, size) in &pushed.layers {
                        let mut sink = Vec::new();
                        let got = local
                            .pull_blob_to("library/app", d, u64::MAX, &mut sink)
                            .await
                            .expect("blob");
                        assert_eq!(got, *size);
                        assert_eq!(berth_oci::Digest::sha256(&sink), *d);
                    }
                })
            })
        })
        .collect();
    for p in pulls {
        p.join().expect("pull");
    }
    assert_eq!(
        proxy.count("GET", "/v2/library/app/manifests/v1"),
        1,
        "{:?}",
        proxy.requests()
    );
    for (d, _) in &pushed.layers {
        assert_eq!(
            proxy.count("GET", &format!("/v2/library/app/blobs/{d}")),
            1,
            "{:?}",
            proxy.requests()
        );
    }
    // Stored: the tag is listed once the copy is complete.
    wait_for(&mirror, "the tag stored", || {
        block_on(client_of(&mirror).tags("library/app"))
            .ok()
            .filter(|t| t.contains(&"v1".to_string()))
    });
}

#[test]
fn a_large_layer_streams_to_the_client_while_it_arrives_and_a_client_that_leaves_cancels_nothing() {
    const SIZE: u64 = 100 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new());
    let pushed = block_on(push_random_layer_image(&up.client(None), "big", "v1", SIZE));
    let (layer, _) = pushed.layers[0].clone();
    let proxy = Proxy::start(&up.url());
    // 100 MiB at 25 MiB/s: about four seconds upstream.
    proxy.throttle(Some(25 << 20));
    let mirror = start_mirror(dir.path(), on_demand(&proxy.url(), json!({})));
    let local = client_of(&mirror);
    let blob_path = format!("/v2/big/blobs/{layer}");
    block_on(async {
        let started = Instant::now();
        local
            .get_manifest_raw("big", "v1")
            .await
            .expect("manifest")
            .expect("found");
        let mut stream = local
            .blob_stream("big", &layer)
            .await
            .expect("blob")
            .expect("found")
            .stream;
        let first = stream.next().await.expect("a first chunk").expect("bytes");
        let ttfb = started.elapsed();
        let upstream_sent = proxy.forwarded(&blob_path);
        eprintln!(
            "first {} bytes after {ttfb:?}, when the upstream had sent {upstream_sent} of {SIZE}",
            first.len()
        );
        assert!(
            upstream_sent < SIZE,
            "the client got bytes before the upstream sent them all"
        );
        // The client leaves midway.
        drop(stream);
    });
    // The copy goes on: the tag appears and the whole layer is stored.
    // (The tag list asks no upstream.)
    wait_for(&mirror, "the image stored", || {
        block_on(local.tags("big")).ok().filter(|t| !t.is_empty())
    });
    proxy.refuse(crate::proxy::Refusal::Connection);
    let mut sink = Vec::new();
    let got = block_on(client_of(&mirror).pull_blob_to("big", &layer, u64::MAX, &mut sink))
        .expect("pull");
    assert_eq!(got, SIZE);
    assert_eq!(berth_oci::Digest::sha256(&sink), layer);
    assert_eq!(proxy.count("GET", &blob_path), 1);
}

#[test]
fn a_mirrored_tag_is_served_when_every_upstream_is_gone_and_the_log_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut up = DockerRegistry::start(UpstreamOptions::new());
    let pushed = block_on(push_image(&up.client(None), "app", "v1", &[b"layer"]));
    let mirror = start_mirror(
        dir.path(),
        on_demand(&up.url(), json!({"manifestCheckInterval": "1s"})),
    );
    let local = client_of(&mirror);
    assert_eq!(
        digest_at(&local, "app", "v1"),
        Some(pushed.digest.to_string())
    );
    wait_for(&mirror, "the tag stored", || {
        block_on(local.tags("app")).ok().filter(|t| !t.is_empty())
    });
    // Checked again while the upstream is up and the tag has not moved:
    // nothing is copied again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        digest_at(&local, "app", "v1"),
        Some(pushed.digest.to_string())
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        log_of(&mirror).matches("copied app:v1").count(),
        1,
        "{}",
        log_of(&mirror)
    );
    up.stop();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        digest_at(&local, "app", "v1"),
        Some(pushed.digest.to_string())
    );
    assert!(
        log_of(&mirror).contains("serving the local copy"),
        "{}",
        log_of(&mirror)
    );
    // Something never mirrored is 503 while the upstream is gone, not 404.
    let err = block_on(local.get_manifest_raw("app", "v2")).expect_err("no upstream");
    assert_eq!(
        err.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{err}"
    );
}

#[test]
fn a_repository_no_rule_covers_is_not_fetched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new());
    block_on(push_image(&up.client(None), "private/app", "v1", &[b"x"]));
    let proxy = Proxy::start(&up.url());
    let mut registry = on_demand(&proxy.url(), json!({}));
    registry["registries"][0]["content"] = json!([{"prefix": "public/**"}]);
    let mirror = start_mirror(dir.path(), registry);
    let local: Client = client_of(&mirror);
    let err = block_on(local.get_manifest_raw("private/app", "v1"));
    assert!(matches!(err, Ok(None)), "{err:?}");
    assert_eq!(proxy.total(), 0);
}

#[cfg(all(feature = "metrics", feature = "events"))]
#[test]
fn each_copy_is_counted_in_the_metrics_and_sent_as_an_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new());
    let pushed = block_on(push_image(&up.client(None), "app", "v1", &[b"layer"]));
    let (hook, got) = crate::events::receiver(0, false);
    let mirror = crate::sync::start_mirror_with(
        dir.path(),
        on_demand(&up.url(), json!({})),
        json!({"metrics": {}, "events": {"sinks": [{"type": "http", "address": hook}]}}),
    );
    let local = client_of(&mirror);
    assert_eq!(
        digest_at(&local, "app", "v1"),
        Some(pushed.digest.to_string())
    );
    let event = wait_for(&mirror, "the sync event", || {
        got.lock()
            .expect("events")
            .iter()
            .find(|(h, _)| {
                h.get("ce-type").map(String::as_str) == Some("io.berth.sync.image.synced")
            })
            .cloned()
    });
    assert_eq!(event.1["name"], "app");
    assert_eq!(event.1["reference"], "v1");
    assert_eq!(event.1["outcome"], "copied");
    assert_eq!(event.1["upstream"], up.url());
    let metrics = wait_for(&mirror, "the sync counter", || {
        let text = reqwest::blocking::get(mirror.url("/metrics"))
            .ok()?
            .text()
            .ok()?;
        text.contains("berth_sync_images_total{").then_some(text)
    });
    let line = metrics
        .lines()
        .find(|l| l.starts_with("berth_sync_images_total{"))
        .expect("counter");
    assert!(
        line.contains("outcome=\"copied\"") && line.ends_with(" 1"),
        "{line}"
    );
    // The blobs' bytes: the config's and the layer's, as the manifest says.
    let manifest = block_on(local.get_manifest_raw("app", "v1"))
        .expect("manifest")
        .expect("found");
    let doc: serde_json::Value = serde_json::from_slice(&manifest.bytes).expect("json");
    let expected = doc["config"]["size"].as_u64().expect("config size")
        + doc["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["size"].as_u64().expect("size"))
            .sum::<u64>();
    let counted = wait_for(&mirror, "the byte counter", || {
        let text = reqwest::blocking::get(mirror.url("/metrics"))
            .ok()?
            .text()
            .ok()?;
        let line = text
            .lines()
            .find(|l| l.starts_with("berth_sync_bytes_total{"))?
            .to_string();
        let n: u64 = line.rsplit(' ').next()?.parse().ok()?;
        (n == expected).then_some(line)
    });
    assert!(
        counted.contains(&format!("upstream=\"{}\"", up.url())),
        "{counted}"
    );
}

#[test]
fn an_edited_sync_section_is_put_in_force_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = DockerRegistry::start(UpstreamOptions::new());
    let pushed = block_on(push_image(&up.client(None), "later/app", "v1", &[b"x"]));
    let mut sync = on_demand(&up.url(), json!({}));
    sync["registries"][0]["content"] = json!([{"prefix": "first/**"}]);
    let mirror = start_mirror(dir.path(), sync.clone());
    let local = client_of(&mirror);
    assert_eq!(
        digest_at(&local, "later/app", "v1"),
        None,
        "no rule covers it yet"
    );
    let config_path = dir.path().join("mirror.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("read")).expect("json");
    config["extensions"]["sync"]["registries"][0]["content"] = json!([{"prefix": "later/**"}]);
    std::fs::write(&config_path, config.to_string()).expect("write");
    wait_for(&mirror, "the reload", || {
        log_of(&mirror)
            .contains("sync registries reloaded")
            .then_some(())
    });
    assert_eq!(
        digest_at(&local, "later/app", "v1"),
        Some(pushed.digest.to_string())
    );
}

//! Repository policies over HTTP: byte quotas (refused before the bytes
//! are stored, at the manifest when pushes meet, never for a push that
//! adds nothing), `maxRepos`, and immutable tags (not moved, not deleted,
//! by tag, by digest or as an index's child; kept by retention).

use std::time::Duration;

use berth_server::config::{Config, LintConfig, RetentionConfig, StorageConfig};
use berth_server::registry::Policies;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// `n` bytes that differ with `seed` (so each layer is its own blob).
fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn policies(storage: Value) -> Policies {
    let mut s = json!({"rootDirectory": "/x"});
    if let (Some(o), Value::Object(extra)) = (s.as_object_mut(), storage) {
        o.extend(extra);
    }
    let c: StorageConfig = Config::from_value(json!({ "storage": s }))
        .expect("config")
        .storage;
    Policies::from_config(&c).expect("policies")
}

async fn error_body(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    r.json().await.expect("json error body")
}

#[tokio::test]
async fn a_push_past_the_quota_is_refused_and_its_bytes_not_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start_with(
        tmp.path(),
        json!({"quotas": [{"repositories": ["small/**"], "maxBytes": 100_000}]}),
    )
    .await;
    let (_, first) = s.push_image("small/app", "v1", &[&bytes(1, 60_000)]).await;

    // A monolithic upload past the quota: 403 DENIED naming it, nothing kept.
    let big = bytes(2, 50_000);
    let d = berth_oci::Digest::sha256(&big);
    let r = s
        .http
        .post(s.url(&format!("/v2/small/app/blobs/uploads/?digest={d}")))
        .body(big.clone())
        .send()
        .await
        .expect("post");
    let body = error_body(r, 403).await;
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("storage.quotas[0]"), "{message}");
    assert_eq!(body["errors"][0]["detail"]["limit"], "100000", "{body}");
    let blob = tmp.path().join("small/app/blobs/sha256").join(d.hex());
    assert!(!blob.exists(), "a refused blob was stored");
    let head = s
        .http
        .head(s.url(&format!("/v2/small/app/blobs/{d}")))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::NOT_FOUND);

    // A chunk declared past the quota is refused unread.
    let location = s.start_upload("small/app").await;
    let r = s.patch_upload(&location, 0, &big).await;
    let body = error_body(r, 403).await;
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let r = s.get(&location).await;
    assert_eq!(
        header(&r, "range"),
        "0-0",
        "bytes of a refused chunk were kept"
    );
    // One streamed without a length is cut where it would pass it, nothing
    // past the quota kept.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let r = s
        .http
        .patch(s.url(&location))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("patch");
    let body = error_body(r, 403).await;
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let r = s.get(&location).await;
    let kept: u64 = header(&r, "range")
        .split('-')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("range");
    assert!(kept > 0 && kept < 40_000, "kept {kept} bytes");

    // Elsewhere the same blob is welcome.
    s.push_image("free/app", "v1", &[&big]).await;

    // A push that adds nothing is taken even above a lowered quota (so a
    // repository over it can still be tagged and cleaned up).
    s.registry.set_policies(policies(
        json!({"quotas": [{"repositories": ["small/**"], "maxBytes": 1000}]}),
    ));
    let m = s
        .get(&format!("/v2/small/app/manifests/{first}"))
        .await
        .bytes()
        .await
        .expect("manifest");
    let r = s.put_manifest("small/app", "again", OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.tags("small/app").await, json!(["again", "v1"]));
    let usage = s
        .registry
        .quota_usage(&"small/app".parse().expect("name"))
        .await
        .expect("usage")
        .expect("a quota applies");
    assert_eq!(usage.quota.max_bytes, 1000);
    assert!(usage.used > 60_000, "{usage:?}");
}

#[tokio::test]
async fn uploads_not_yet_referenced_count_and_a_manifest_is_checked_last() {
    let s = Server::start().await;
    s.registry.set_policies(policies(
        json!({"quotas": [{"repositories": ["q"], "maxBytes": 100_000}]}),
    ));
    // Two layers that fit alone but not together: the second upload is
    // refused, the first one counting though no manifest names it yet.
    s.push_blob("q", &bytes(1, 60_000)).await;
    let second = bytes(2, 60_000);
    let d = berth_oci::Digest::sha256(&second);
    let r = s
        .http
        .post(s.url(&format!("/v2/q/blobs/uploads/?digest={d}")))
        .body(second)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);

    // A manifest naming blobs past the quota (pushed while it was higher)
    // is refused under the lock.
    s.registry.set_policies(Policies::default());
    let a = s.push_blob("q", &bytes(3, 60_000)).await;
    let b = s.push_blob("q", &bytes(4, 60_000)).await;
    s.registry.set_policies(policies(
        json!({"quotas": [{"repositories": ["q"], "maxBytes": 100_000}]}),
    ));
    let cfg = s.push_blob("q", b"{}").await;
    let m = image_manifest(
        desc(OCI_CONFIG, &cfg, 2),
        vec![desc(OCI_LAYER, &a, 60_000), desc(OCI_LAYER, &b, 60_000)],
        None,
    );
    let r = s.put_manifest("q", "both", OCI_MANIFEST, &m).await;
    let body = error_body(r, 403).await;
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    assert_eq!(body["errors"][0]["detail"]["quota"], "storage.quotas[0]");
    let r = s.get("/v2/q/manifests/both").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A mount past the quota is refused too.
    s.push_blob("other", &bytes(5, 150_000)).await;
    let big = berth_oci::Digest::sha256(&bytes(5, 150_000));
    let r = s
        .http
        .post(s.url(&format!("/v2/q/blobs/uploads/?mount={big}&from=other")))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn max_repos_refuses_one_more_repository() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start_with(tmp.path(), json!({"maxRepos": 2})).await;
    s.push_image("a", "v1", &[b"a"]).await;
    s.push_image("b", "v1", &[b"b"]).await;
    let r = s
        .http
        .post(s.url("/v2/c/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let body = error_body(r, 429).await;
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS", "{body}");
    assert_eq!(body["errors"][0]["detail"]["limit"], "2", "{body}");
    assert!(
        !tmp.path().join("c").exists(),
        "the refused repository exists"
    );
    // Existing repositories take more.
    s.push_image("a", "v2", &[b"a2"]).await;
}

#[tokio::test]
async fn an_immutable_tag_is_neither_moved_nor_deleted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start_with(
        tmp.path(),
        json!({"immutableTags": [{"repositories": ["prod/**"], "patterns": ["v[0-9.]+"]}]}),
    )
    .await;
    let (m1, d1) = s.push_image("prod/app", "v1", &[b"one"]).await;
    // The same manifest again: fine.
    let r = s.put_manifest("prod/app", "v1", OCI_MANIFEST, &m1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Another: refused, the tag unmoved.
    let (m2, d2) = s.push_image("prod/app", "latest", &[b"two"]).await;
    let r = s.put_manifest("prod/app", "v1", OCI_MANIFEST, &m2).await;
    let body = error_body(r, 403).await;
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("immutable"), "{message}");
    let r = s
        .http
        .head(s.url("/v2/prod/app/manifests/v1"))
        .send()
        .await
        .expect("head");
    assert_eq!(header(&r, "docker-content-digest"), d1.to_string());

    // Not deleted by tag, nor by digest.
    for reference in ["v1".to_string(), d1.to_string()] {
        let r = s
            .http
            .delete(s.url(&format!("/v2/prod/app/manifests/{reference}")))
            .send()
            .await
            .expect("delete");
        let body = error_body(r, 403).await;
        assert_eq!(body["errors"][0]["detail"]["tag"], "v1", "{body}");
    }
    // A mutable tag moves and goes as before; other repositories are free.
    let r = s
        .put_manifest("prod/app", "latest", OCI_MANIFEST, &m1)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .http
        .delete(s.url(&format!("/v2/prod/app/manifests/{d2}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    s.push_image("dev/app", "v1", &[b"one"]).await;
    s.push_image("dev/app", "v1", &[b"two"]).await;

    // Retention that keeps no tag keeps the immutable one.
    let retention: RetentionConfig = Config::from_value(json!({"storage": {"rootDirectory": "/x",
        "retention": {"policies": [{"repositories": ["**"], "keepTags": [{"patterns": ["^none$"]}]}]}}}))
    .expect("config")
    .storage
    .retention
    .expect("retention");
    let name = "prod/app".parse().expect("name");
    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&retention))
        .await
        .expect("gc");
    assert_eq!(report.tags, 1, "{report:?}");
    assert_eq!(s.tags("prod/app").await, json!(["v1"]));

    // Without the rule (a reload), the tag goes.
    s.registry.set_policies(Policies::default());
    let r = s
        .http
        .delete(s.url("/v2/prod/app/manifests/v1"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_immutable_index_pins_its_children() {
    let s = Server::start().await;
    s.registry.set_policies(policies(
        json!({"immutableTags": [{"repositories": ["multi"], "patterns": ["stable"]}]}),
    ));
    let (m, child) = s.push_image("multi", "amd64", &[b"amd64 layer"]).await;
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child.to_string(), "size": m.len(),
            "platform": {"architecture": "amd64", "os": "linux"}}]}))
    .expect("json");
    let r = s.put_manifest("multi", "stable", OCI_INDEX, &index).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .http
        .delete(s.url(&format!("/v2/multi/manifests/{child}")))
        .send()
        .await
        .expect("delete");
    let body = error_body(r, 403).await;
    assert_eq!(body["errors"][0]["detail"]["tag"], "stable", "{body}");
    // Its own mutable tag still goes.
    let r = s
        .http
        .delete(s.url("/v2/multi/manifests/amd64"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_linter_refuses_an_image_missing_a_mandatory_annotation() {
    let s = Server::start().await;
    let lint: LintConfig = serde_json::from_value(json!({
        "mandatoryAnnotations": ["org.opencontainers.image.source", "team"]
    }))
    .expect("lint");
    s.registry
        .set_policies(Policies::default().with_lint(Some(&lint)));
    let mut events = s.registry.subscribe();
    let layer = s.push_blob("lint", b"layer").await;
    let layers = vec![desc(OCI_LAYER, &layer, 5)];
    // The config's labels count as well as the manifest's annotations.
    let labelled = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"team":"core"}}}"#;
    let cfg = s.push_blob("lint", labelled).await;
    let cfg = desc(OCI_CONFIG, &cfg, labelled.len());

    let bare = image_manifest(cfg.clone(), layers.clone(), None);
    let r = s.put_manifest("lint", "v1", OCI_MANIFEST, &bare).await;
    let body = error_body(r, 400).await;
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID", "{body}");
    assert_eq!(
        body["errors"][0]["detail"]["missingAnnotations"],
        json!(["org.opencontainers.image.source"]),
        "{body}"
    );
    assert_eq!(
        s.get("/v2/lint/manifests/v1").await.status(),
        StatusCode::NOT_FOUND
    );
    let refused = loop {
        match events.recv().await.expect("event") {
            berth_server::registry::events::RegistryEvent::LintFailed { reference, .. } => {
                break reference;
            }
            _ => continue,
        }
    };
    assert_eq!(refused, "v1");

    let annotated = image_manifest(
        cfg.clone(),
        layers.clone(),
        Some(json!({"annotations": {"org.opencontainers.image.source": "https://example.com/x"}})),
    );
    let r = s.put_manifest("lint", "v1", OCI_MANIFEST, &annotated).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // A cosign signature tag and an index are not linted.
    let sig_tag = format!("sha256-{}.sig", "a".repeat(64));
    let r = s.put_manifest("lint", &sig_tag, OCI_MANIFEST, &bare).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let d = berth_oci::Digest::sha256(&annotated);
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": annotated.len()}]}))
    .expect("json");
    let r = s.put_manifest("lint", "all", OCI_INDEX, &index).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

//! Concurrent pushes of the same blob, the same tag, and manifests sharing
//! blobs: every request succeeds and nothing is lost.

use std::sync::Arc;

use berth_oci::Digest;
use serde_json::Value;

use crate::support::*;

const N: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_blob_monolithic_and_chunked() {
    let s = Arc::new(Server::start().await);
    let data: Arc<Vec<u8>> = Arc::new((0..1_000_000u32).map(|i| (i * 31 % 256) as u8).collect());
    let d = Digest::sha256(&data);
    let mut tasks = Vec::new();
    for i in 0..N {
        let (s, data, d) = (s.clone(), data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                s.push_blob("same", &data).await;
            } else {
                let r = s
                    .http
                    .post(s.url("/v2/same/blobs/uploads/"))
                    .send()
                    .await
                    .expect("post");
                let loc = header(&r, "location").to_string();
                let r = s
                    .http
                    .patch(s.url(&loc))
                    .header("content-range", "0-499999")
                    .body(data[..500_000].to_vec())
                    .send()
                    .await
                    .expect("patch");
                assert_eq!(r.status(), 202);
                let r = s
                    .http
                    .put(s.url(&format!("{loc}?digest={d}")))
                    .header("content-range", "500000-999999")
                    .body(data[500_000..].to_vec())
                    .send()
                    .await
                    .expect("put");
                assert_eq!(r.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let got = s
        .get(&format!("/v2/same/blobs/{d}"))
        .await
        .bytes()
        .await
        .expect("b");
    assert!(got.as_ref() == &data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_tag_and_shared_blobs() {
    let s = Arc::new(Server::start().await);
    let shared = s.push_blob("tags", b"shared base layer").await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let (s, shared) = (s.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let own = format!("layer {i}");
            let ld = s.push_blob("tags", own.as_bytes()).await;
            let cd = s.push_blob("tags", b"{}").await;
            let m = image_manifest(
                desc(OCI_CONFIG, &cd, 2),
                vec![
                    desc(OCI_LAYER, &shared, 17),
                    desc(OCI_LAYER, &ld, own.len()),
                ],
                None,
            );
            // Every task moves "latest" and adds a tag of its own.
            for tag in ["latest".to_string(), format!("t{i:02}")] {
                let r = s.put_manifest("tags", &tag, OCI_MANIFEST, &m).await;
                assert_eq!(r.status(), 201);
            }
            Digest::sha256(&m)
        }));
    }
    let mut digests = Vec::new();
    for t in tasks {
        digests.push(t.await.expect("task"));
    }
    let v: Value = s.get("/v2/tags/tags/list").await.json().await.expect("j");
    let tags = v["tags"].as_array().expect("tags");
    assert_eq!(tags.len(), N + 1, "no tag lost: {v}");
    let index: Value =
        serde_json::from_slice(&std::fs::read(s.root.join("tags/index.json")).expect("index"))
            .expect("json");
    let latest = index["manifests"]
        .as_array()
        .expect("m")
        .iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "latest")
        .count();
    assert_eq!(latest, 1, "exactly one entry for the tag");
    for d in digests {
        assert_eq!(
            s.get(&format!("/v2/tags/manifests/{d}")).await.status(),
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_repositories_at_once() {
    let s = Arc::new(Server::start().await);
    let mut tasks = Vec::new();
    for i in 0..N {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.push_image(
                &format!("ns/repo{i}"),
                "v1",
                &[b"common layer", format!("own {i}").as_bytes()],
            )
            .await
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(v["repositories"].as_array().expect("r").len(), N);
}

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

/// Pushes into one repository are recorded in batches: each push still
/// gets its own outcome (a manifest naming a missing blob is refused, the
/// others in its batch are recorded), and the tags listed, `index.json`
/// and the manifests served all agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_pushes_get_their_own_outcomes() {
    let s = Arc::new(Server::start().await);
    let cd = s.push_blob("batch", b"{}").await;
    let repo: berth_oci::RepoName = "batch".parse().expect("name");
    let missing = Digest::sha256(b"never pushed");
    // The lock is held until pushes queue behind it, so that a batch must
    // form once it is let go.
    let guard = repo_lock(&s, &repo).await;
    let mut tasks = Vec::new();
    for i in 0..48 {
        let s = s.clone();
        let cd = cd.clone();
        let missing = missing.clone();
        tasks.push(tokio::spawn(async move {
            let own = format!("layer {i}");
            let layer = if i % 4 == 3 {
                missing
            } else {
                s.push_blob("batch", own.as_bytes()).await
            };
            let m = one_layer_image(&cd, &layer, own.len());
            let r = s
                .put_manifest("batch", &format!("t{i:02}"), OCI_MANIFEST, &m)
                .await;
            (i, r.status().as_u16(), Digest::sha256(&m))
        }));
    }
    for _ in 0..1000 {
        if s.registry.queued_pushes(&repo) >= 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let queued = s.registry.queued_pushes(&repo);
    assert!(queued >= 8, "pushes wait behind the lock: {queued}");
    drop(guard);
    let mut expected = Vec::new();
    for t in tasks {
        let (i, status, d) = t.await.expect("task");
        if i % 4 == 3 {
            assert_eq!(status, 400, "push {i} names a missing blob");
        } else {
            assert_eq!(status, 201, "push {i}");
            expected.push((format!("t{i:02}"), d));
        }
    }
    let listed = listed_tags(&s, "batch").await;
    let mut want: Vec<String> = expected.iter().map(|(t, _)| t.clone()).collect();
    want.sort();
    assert_eq!(listed, want);
    let index: Value =
        serde_json::from_slice(&std::fs::read(s.root.join("batch/index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["manifests"].as_array().expect("m").len(), want.len());
    for (tag, d) in expected {
        assert_serves(&s, "batch", &tag, &d).await;
    }
    assert!(
        s.registry.largest_push_batch() >= queued,
        "the pushes queued behind the lock were recorded in one batch: {} < {queued}",
        s.registry.largest_push_batch()
    );
}

/// Pushers whose requests go away while they wait, or while they commit
/// a batch for others, leave no push of the rest unrecorded or waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_cancelled_mid_batch_strand_nobody() {
    let s = Arc::new(Server::start().await);
    let cd = s.push_blob("cancel", b"{}").await;
    let repo: berth_oci::RepoName = "cancel".parse().expect("name");
    for round in 0..8 {
        let mut kept = Vec::new();
        let mut doomed = Vec::new();
        for i in 0..24 {
            let own = format!("layer {round} {i}");
            let layer = s.push_blob("cancel", own.as_bytes()).await;
            let m = one_layer_image(&cd, &layer, own.len());
            let reg = s.registry.clone();
            let repo = repo.clone();
            let tag = format!("r{round}-{i:02}");
            let reference: berth_oci::Reference = tag.parse().expect("tag");
            let task = tokio::spawn(async move {
                reg.put_manifest(&repo, &reference, Some(OCI_MANIFEST), &m)
                    .await
                    .map(|p| p.digest)
            });
            if i % 3 == 0 {
                doomed.push(task);
            } else {
                kept.push((tag, task));
            }
        }
        // Abort a third of them at different points of their work, some
        // while they commit a batch for the others.
        for (n, task) in doomed.into_iter().enumerate() {
            tokio::time::sleep(std::time::Duration::from_micros(150 * n as u64)).await;
            task.abort();
        }
        for (tag, task) in kept {
            assert_serves(&s, "cancel", &tag, &answered(task).await).await;
        }
    }
    // What the metadata store lists is what index.json holds.
    let index: Value =
        serde_json::from_slice(&std::fs::read(s.root.join("cancel/index.json")).expect("index"))
            .expect("json");
    let mut in_index: Vec<String> = index["manifests"]
        .as_array()
        .expect("m")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    in_index.sort();
    assert_eq!(listed_tags(&s, "cancel").await, in_index);
    assert!(s.registry.largest_push_batch() > 1, "batches formed");
}

/// The tags `GET /v2/<repo>/tags/list` answers.
async fn listed_tags(s: &Server, repo: &str) -> Vec<String> {
    let v: Value = s
        .get(&format!("/v2/{repo}/tags/list"))
        .await
        .json()
        .await
        .expect("json");
    v["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t.as_str().expect("tag").to_string())
        .collect()
}

/// The push that commits a batch is cancelled at some point of its
/// commit: the others in its batch are still recorded, and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_committer_cancelled_mid_batch_strands_nobody() {
    let s = Arc::new(Server::start().await);
    let cd = s.push_blob("leader", b"{}").await;
    let repo: berth_oci::RepoName = "leader".parse().expect("name");
    for round in 0..40u64 {
        let mut manifests = Vec::new();
        for i in 0..4 {
            let own = format!("layer {round} {i}");
            let layer = s.push_blob("leader", own.as_bytes()).await;
            manifests.push(one_layer_image(&cd, &layer, own.len()));
        }
        // Hold the lock so that all four queue up; the first to get it
        // commits the batch.
        let guard = repo_lock(&s, &repo).await;
        let mut tasks = Vec::new();
        for (i, m) in manifests.into_iter().enumerate() {
            let reg = s.registry.clone();
            let repo = repo.clone();
            let reference: berth_oci::Reference = format!("r{round}-{i}").parse().expect("tag");
            tasks.push(tokio::spawn(async move {
                reg.put_manifest(&repo, &reference, Some(OCI_MANIFEST), &m)
                    .await
                    .map(|p| p.digest)
            }));
            // In this order at the lock.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(guard);
        tokio::time::sleep(std::time::Duration::from_micros(40 * round)).await;
        let mut tasks = tasks.into_iter();
        tasks.next().expect("first").abort();
        for (i, task) in tasks.enumerate() {
            let tag = format!("r{round}-{}", i + 1);
            assert_serves(&s, "leader", &tag, &answered(task).await).await;
        }
    }
    assert!(
        s.registry.largest_push_batch() >= 3,
        "the pushes queued behind the lock were recorded together"
    );
}

/// A push whose request goes away while it waits for the lock is not
/// recorded later by somebody else's batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_cancelled_while_queued_is_never_recorded() {
    let s = Arc::new(Server::start().await);
    let cd = s.push_blob("ghost", b"{}").await;
    let repo: berth_oci::RepoName = "ghost".parse().expect("name");
    let gone = one_layer_image(&cd, &s.push_blob("ghost", b"layer gone").await, 10);
    let kept = one_layer_image(&cd, &s.push_blob("ghost", b"layer kept").await, 10);
    let guard = repo_lock(&s, &repo).await;
    let gone_blob = s
        .root
        .join("ghost/blobs/sha256")
        .join(Digest::sha256(&gone).hex());
    let task = {
        let (reg, repo) = (s.registry.clone(), repo.clone());
        tokio::spawn(async move {
            let reference: berth_oci::Reference = "gone".parse().expect("tag");
            reg.put_manifest(&repo, &reference, Some(OCI_MANIFEST), &gone)
                .await
        })
    };
    // Its blob is written just before it queues; then its request goes
    // away while it waits behind the lock.
    for _ in 0..500 {
        if gone_blob.is_file() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(gone_blob.is_file(), "the push got as far as the queue");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    drop(guard);
    let r = s.put_manifest("ghost", "kept", OCI_MANIFEST, &kept).await;
    assert_eq!(r.status(), 201);
    assert_eq!(s.get("/v2/ghost/manifests/kept").await.status(), 200);
    assert_eq!(s.get("/v2/ghost/manifests/gone").await.status(), 404);
    assert_eq!(listed_tags(&s, "ghost").await, vec!["kept".to_string()]);
}

/// The repository's lock, as a push would take it.
async fn repo_lock(s: &Server, repo: &berth_oci::RepoName) -> berth_server::storage::RepoGuard {
    s.registry.store(repo).lock_repo(repo).await.expect("lock")
}

/// An image of config `config` (the two bytes `{}`) and one layer.
fn one_layer_image(config: &Digest, layer: &Digest, len: usize) -> Vec<u8> {
    image_manifest(
        desc(OCI_CONFIG, config, 2),
        vec![desc(OCI_LAYER, layer, len)],
        None,
    )
}

/// A push's digest, which must come within 30 s.
async fn answered(
    task: tokio::task::JoinHandle<Result<Digest, berth_server::registry::RegistryError>>,
) -> Digest {
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("no push is left waiting")
        .expect("task")
        .expect("push")
}

/// `repo` serves the manifest `digest` as `tag`.
async fn assert_serves(s: &Server, repo: &str, tag: &str, digest: &Digest) {
    let r = s.get(&format!("/v2/{repo}/manifests/{tag}")).await;
    assert_eq!(r.status(), 200, "{repo}:{tag}");
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
}

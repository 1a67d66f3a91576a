//! Garbage collection: what goes, what stays, and pushes racing with it.

use std::sync::Arc;
use std::time::Duration;

use berth_oci::Digest;
use berth_server::registry::GcReport;
use serde_json::json;

use crate::support::*;

const HOUR: Duration = Duration::from_secs(3600);

async fn status(s: &Server, path: &str) -> u16 {
    s.get(path).await.status().as_u16()
}

#[tokio::test]
async fn collects_only_what_nothing_needs() {
    let s = Server::start().await;
    let r = "gc/repo";
    let (a, a_d) = s.push_image(r, "v1", &[b"a layer", b"shared layer"]).await;
    let orphan = s.push_blob(r, b"orphan blob").await;
    // An untagged image that nothing needs.
    let u_layer = s.push_blob(r, b"untagged only layer").await;
    let cfg = s.push_blob(r, b"{}").await;
    let u_m = image_manifest(
        desc(OCI_CONFIG, &cfg, 2),
        vec![desc(OCI_LAYER, &u_layer, 19)],
        None,
    );
    let u2 = Digest::sha256(&u_m);
    assert_eq!(
        s.put_manifest(r, &u2.to_string(), OCI_MANIFEST, &u_m)
            .await
            .status(),
        201
    );
    // A child manifest listed by a tagged index (pushed by digest).
    let c_layer = s.push_blob(r, b"child layer").await;
    let c_m = image_manifest(
        desc(OCI_CONFIG, &cfg, 2),
        vec![desc(OCI_LAYER, &c_layer, 11)],
        None,
    );
    let c_d = Digest::sha256(&c_m);
    assert_eq!(
        s.put_manifest(r, &c_d.to_string(), OCI_MANIFEST, &c_m)
            .await
            .status(),
        201
    );
    let idx = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[desc(OCI_MANIFEST,&c_d,c_m.len())]})).expect("j");
    assert_eq!(
        s.put_manifest(r, "multi", OCI_INDEX, &idx).await.status(),
        201
    );
    // Referrers: one of a tagged image, one of an untagged subject, one
    // whose subject is not there.
    let referrer = |subject: &Digest, note: &str| {
        image_manifest(
            desc("application/vnd.oci.empty.v1+json", &cfg, 2),
            vec![],
            Some(
                json!({"artifactType":"application/vnd.example","subject":{"mediaType":OCI_MANIFEST,"digest":subject.to_string(),"size":1},"annotations":{"n":note}}),
            ),
        )
    };
    let s_layer = s.push_blob(r, b"subject layer").await;
    let s_m = image_manifest(
        desc(OCI_CONFIG, &cfg, 2),
        vec![desc(OCI_LAYER, &s_layer, 13)],
        None,
    );
    let s_d = Digest::sha256(&s_m);
    assert_eq!(
        s.put_manifest(r, &s_d.to_string(), OCI_MANIFEST, &s_m)
            .await
            .status(),
        201
    );
    let mut keep = vec![a_d.clone(), c_d.clone(), s_d.clone()];
    for (subject, note) in [(&a_d, "of a"), (&s_d, "of s")] {
        let m = referrer(subject, note);
        let d = Digest::sha256(&m);
        assert_eq!(
            s.put_manifest(r, &d.to_string(), OCI_MANIFEST, &m)
                .await
                .status(),
            201
        );
        keep.push(d);
    }
    let dangling = referrer(&Digest::sha256(b"no such subject"), "dangling");
    let dangling_d = Digest::sha256(&dangling);
    assert_eq!(
        s.put_manifest(r, &dangling_d.to_string(), OCI_MANIFEST, &dangling)
            .await
            .status(),
        201
    );
    // An abandoned upload.
    let up = s
        .http
        .post(s.url(&format!("/v2/{r}/blobs/uploads/")))
        .send()
        .await
        .expect("post");
    let loc = header(&up, "location").to_string();
    s.http
        .patch(s.url(&loc))
        .body(b"half".to_vec())
        .send()
        .await
        .expect("patch");
    let id = loc.rsplit('/').next().expect("id");
    for f in [id.to_string(), format!("{id}.state")] {
        let p = s.root.join(r).join(".uploads").join(f);
        let file = std::fs::File::options()
            .write(true)
            .open(&p)
            .expect("upload file");
        file.set_modified(std::time::SystemTime::now() - 2 * HOUR)
            .expect("age it");
    }

    // Within an hour only the upload, made old above, goes.
    let name = r.parse().expect("name");
    let report = s.registry.gc_repo(&name, HOUR).await.expect("gc");
    assert_eq!(
        report,
        GcReport {
            uploads: 2,
            ..Default::default()
        }
    );
    assert_error(s.get(&loc).await, 404, "BLOB_UPLOAD_UNKNOWN").await;

    let report = s.registry.gc_repo(&name, Duration::ZERO).await.expect("gc");
    // The untagged image, with its own blobs and the orphan. The referrer
    // whose subject is missing stays (deleteReferrers is off by default).
    assert_eq!((report.manifests, report.uploads), (1, 0), "{report:?}");
    assert_eq!(
        status(&s, &format!("/v2/{r}/manifests/{dangling_d}")).await,
        200
    );
    for d in [&u2] {
        assert_eq!(
            status(&s, &format!("/v2/{r}/manifests/{d}")).await,
            404,
            "{d} collected"
        );
    }
    for d in [&orphan, &u_layer] {
        assert_eq!(
            status(&s, &format!("/v2/{r}/blobs/{d}")).await,
            404,
            "{d} collected"
        );
    }
    for d in &keep {
        assert_eq!(
            status(&s, &format!("/v2/{r}/manifests/{d}")).await,
            200,
            "{d} kept"
        );
    }
    for d in [&c_layer, &s_layer, &cfg, &Digest::sha256(b"shared layer")] {
        assert_eq!(
            status(&s, &format!("/v2/{r}/blobs/{d}")).await,
            200,
            "{d} kept"
        );
    }
    assert_eq!(status(&s, "/v2/gc/repo/manifests/v1").await, 200);
    assert_eq!(status(&s, "/v2/gc/repo/manifests/multi").await, 200);
    assert_eq!(
        s.get(&format!("/v2/{r}/manifests/v1"))
            .await
            .bytes()
            .await
            .expect("b")
            .as_ref(),
        &a[..]
    );
}

#[tokio::test]
async fn a_blob_checked_with_head_stays_for_the_delay() {
    let s = Server::start().await;
    let d = s.push_blob("gc/head", b"old layer").await;
    let name = "gc/head".parse().expect("name");
    // Young by mtime would protect it anyway, so collect with a zero delay
    // after the HEAD, but a HEAD inside a long delay window protects it.
    let r = s
        .http
        .head(s.url(&format!("/v2/gc/head/blobs/{d}")))
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), 200);
    std::fs::File::options()
        .write(true)
        .open(s.root.join("gc/head/blobs/sha256").join(d.hex()))
        .expect("open")
        .set_modified(std::time::SystemTime::now() - 2 * HOUR)
        .expect("age the file");
    s.registry.gc_repo(&name, HOUR).await.expect("gc");
    assert_eq!(
        status(&s, &format!("/v2/gc/head/blobs/{d}")).await,
        200,
        "recently HEADed"
    );
    s.registry.gc_repo(&name, Duration::ZERO).await.expect("gc");
    assert_eq!(status(&s, &format!("/v2/gc/head/blobs/{d}")).await, 404);
}

/// Makes a blob look old to GC.
fn age(s: &Server, repo: &str, d: &Digest) {
    std::fs::File::options()
        .write(true)
        .open(s.root.join(repo).join("blobs/sha256").join(d.hex()))
        .expect("blob")
        .set_modified(std::time::SystemTime::now() - 2 * HOUR)
        .expect("age it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_during_gc_never_leave_a_manifest_without_its_blobs() {
    const REPO: &str = "race/gc";
    let s = Arc::new(Server::start().await);
    // An old base layer that pushers find with HEAD and reuse without
    // uploading it: only the HEAD keeps GC from taking it before the first
    // manifest names it.
    let base = s.push_blob(REPO, b"old shared base layer").await;
    age(&s, REPO, &base);
    // A client finds it (an old unreferenced blob nobody asked about is fair
    // game for GC, so the first look comes before GC starts).
    let r = s
        .http
        .head(s.url(&format!("/v2/{REPO}/blobs/{base}")))
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), 200);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let (s, stop) = (s.clone(), stop.clone());
        tokio::spawn(async move {
            let name = REPO.parse().expect("name");
            let mut collected = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                collected += s.registry.gc_repo(&name, HOUR).await.expect("gc").blobs;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            collected
        })
    };
    // Garbage made old as it is made, for GC to collect while pushes run.
    let litter = {
        let (s, stop) = (s.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let d = s.push_blob(REPO, format!("garbage {i}").as_bytes()).await;
                age(&s, REPO, &d);
                i += 1;
            }
        })
    };
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (s, base) = (s.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..10 {
                let r = s
                    .http
                    .head(s.url(&format!("/v2/{REPO}/blobs/{base}")))
                    .send()
                    .await
                    .expect("head");
                assert_eq!(r.status(), 200, "the base layer is there");
                let layer = format!("layer {t}-{i}");
                let ld = s.push_blob(REPO, layer.as_bytes()).await;
                let cd = s.push_blob(REPO, b"{}").await;
                let m = image_manifest(
                    desc(OCI_CONFIG, &cd, 2),
                    vec![
                        desc(OCI_LAYER, &base, 21),
                        desc(OCI_LAYER, &ld, layer.len()),
                    ],
                    None,
                );
                let tag = format!("t{t}-{i}");
                let r = s.put_manifest(REPO, &tag, OCI_MANIFEST, &m).await;
                assert_eq!(r.status(), 201, "{tag}: {:?}", r.text().await);
                acked.push((tag, vec![cd, ld, base.clone()]));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("pushes"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    litter.await.expect("litter");
    let collected = gc.await.expect("gc");
    assert!(collected > 0, "GC deleted garbage while pushes ran");
    assert_eq!(acked.len(), 40);
    for (tag, blobs) in acked {
        assert_eq!(
            status(&s, &format!("/v2/{REPO}/manifests/{tag}")).await,
            200,
            "{tag}"
        );
        for b in blobs {
            assert_eq!(
                status(&s, &format!("/v2/{REPO}/blobs/{b}")).await,
                200,
                "{tag}: blob {b}"
            );
        }
    }
}

#[tokio::test]
async fn an_unreadable_manifest_stops_blob_collection() {
    let s = Server::start().await;
    let (_, d) = s
        .push_image("gc/unreadable", "v1", &[b"precious layer"])
        .await;
    let orphan = s.push_blob("gc/unreadable", b"orphan").await;
    // The tagged manifest's bytes are lost: what it needs is unknown now.
    std::fs::write(
        s.root.join("gc/unreadable/blobs/sha256").join(d.hex()),
        b"garbage",
    )
    .expect("damage");
    let name = "gc/unreadable".parse().expect("name");
    let report = s.registry.gc_repo(&name, Duration::ZERO).await.expect("gc");
    assert_eq!(report.blobs, 0, "{report:?}");
    let layer = Digest::sha256(b"precious layer");
    assert_eq!(
        status(&s, &format!("/v2/gc/unreadable/blobs/{layer}")).await,
        200
    );
    assert_eq!(
        status(&s, &format!("/v2/gc/unreadable/blobs/{orphan}")).await,
        200
    );
}

#[tokio::test]
async fn gc_waits_for_a_place_among_the_background_workers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = berth_server::config::Config::from_value(serde_json::json!({
        "storage": {"rootDirectory": tmp.path()},
        "scheduler": {"numWorkers": 1}
    }))
    .expect("config");
    assert_eq!(config.background_workers(), 1);
    let state = berth_server::server::build_state(&config)
        .await
        .expect("state");
    let registry = state.registry.clone();
    registry
        .start_upload(&"a".parse().expect("name"))
        .await
        .expect("a repository");
    // The one place is taken: GC waits for it.
    let slot = registry.background_slot().await;
    let gc = tokio::spawn({
        let registry = registry.clone();
        async move {
            let root = &registry.roots().all()[0];
            registry
                .gc_root_with(root, std::time::Duration::ZERO, None)
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!gc.is_finished(), "GC ran without a worker's place");
    drop(slot);
    tokio::time::timeout(std::time::Duration::from_secs(10), gc)
        .await
        .expect("GC ran once the place was free")
        .expect("task")
        .expect("gc");
}

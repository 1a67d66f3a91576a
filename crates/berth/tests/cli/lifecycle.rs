//! Serving, the access log, and graceful shutdown with an upload in flight.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use berth_oci::Digest;

use crate::support::*;

#[test]
fn serves_and_logs_each_request() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let r = reqwest::blocking::get(b.url("/v2/")).expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let log = b.log.clone();
    let status = b.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let lines = log.lock().expect("log").clone();
    assert!(
        lines.iter().any(|l| l.contains("method=GET")
            && l.contains("path=\"/v2/\"")
            && l.contains("status=200")
            && l.contains("latency_ms=")),
        "access log line for GET /v2/: {lines:#?}"
    );
}

/// A body that sends `first`, tells the test, waits for the gate, then
/// sends `rest`.
struct GatedBody {
    parts: Vec<Vec<u8>>,
    started: Option<mpsc::Sender<()>>,
    /// Taken on first use: the body waits once.
    gate: Option<mpsc::Receiver<()>>,
}

impl Read for GatedBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.parts.is_empty() {
            return Ok(0);
        }
        if self.parts.len() == 1 {
            if let Some(tx) = self.started.take() {
                let _ = tx.send(());
            }
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv();
            }
        }
        let part = &mut self.parts[0];
        let n = part.len().min(buf.len());
        buf[..n].copy_from_slice(&part[..n]);
        part.drain(..n);
        if part.is_empty() {
            self.parts.remove(0);
        }
        Ok(n)
    }
}

#[test]
fn sigterm_lets_an_upload_finish_and_it_resumes_after_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let b = Berth::start(&root);
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(b.url("/v2/shut/down/blobs/uploads/"))
        .send()
        .expect("post");
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().expect("loc").to_string();

    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel();
    let body = GatedBody {
        parts: vec![data[..100_000].to_vec(), data[100_000..200_000].to_vec()],
        started: Some(started_tx),
        gate: Some(gate_rx),
    };
    let url = b.url(&loc);
    let patch = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .patch(url)
            .body(reqwest::blocking::Body::new(body))
            .send()
            .map(|r| r.status().as_u16())
    });
    started_rx.recv().expect("body started");
    // Give the server time to dispatch the request before the signal.
    std::thread::sleep(Duration::from_millis(500));
    let pid = b.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    gate_tx.send(()).expect("open gate");
    let status = patch
        .join()
        .expect("join")
        .expect("in-flight PATCH completes");
    assert_eq!(
        status, 202,
        "the in-flight chunk is accepted during shutdown"
    );
    let exit = b.terminate_wait();
    assert!(exit.success(), "{exit:?}");

    // After a restart the session is still there, with what it received.
    let b = Berth::start(&root);
    let r = client.get(b.url(&loc)).send().expect("status");
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-199999");
    let d = Digest::sha256(&data);
    let r = client
        .put(b.url(&format!("{loc}?digest={d}")))
        .header("content-range", "200000-299999")
        .body(data[200_000..].to_vec())
        .send()
        .expect("put");
    assert_eq!(r.status(), 201);
    let got = client
        .get(b.url(&format!("/v2/shut/down/blobs/{d}")))
        .send()
        .expect("get")
        .bytes()
        .expect("b");
    assert!(got.as_ref() == &data[..]);
}

#[test]
fn kill_9_mid_push_leaves_no_partial_blob() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let mut b = Berth::start(&root);
    let data: Vec<u8> = (0..400_000u32).map(|i| (i % 241) as u8).collect();
    let d = Digest::sha256(&data);
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let body = GatedBody {
        parts: vec![data[..200_000].to_vec(), data[200_000..].to_vec()],
        started: Some(started_tx),
        gate: Some(gate_rx),
    };
    let url = b.url(&format!("/v2/crash/test/blobs/uploads/?digest={d}"));
    let push = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .body(reqwest::blocking::Body::new(body))
            .send()
            .map(|r| r.status().as_u16())
    });
    started_rx.recv().expect("body started");
    std::thread::sleep(Duration::from_millis(300));
    b.child.kill().expect("kill -9");
    b.child.wait().expect("reap");
    drop(gate_tx);
    assert!(
        push.join().expect("join").is_err(),
        "the push was never acknowledged"
    );

    let blob = root.join("crash/test/blobs/sha256").join(d.hex());
    assert!(!blob.exists(), "no partial blob in place");
    let b = Berth::start(&root);
    let r = reqwest::blocking::get(b.url(&format!("/v2/crash/test/blobs/{d}"))).expect("get");
    assert_eq!(r.status(), 404);
    // Pushing again after the crash works.
    let r = reqwest::blocking::Client::new()
        .post(b.url(&format!("/v2/crash/test/blobs/uploads/?digest={d}")))
        .body(data.clone())
        .send()
        .expect("push");
    assert_eq!(r.status(), 201);
    let got = reqwest::blocking::get(b.url(&format!("/v2/crash/test/blobs/{d}")))
        .expect("get")
        .bytes()
        .expect("b");
    assert!(got.as_ref() == &data[..]);
}

#[test]
fn background_gc_collects_and_logs_why() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start_with(
        &tmp.path().join("root"),
        serde_json::json!({"gc": true, "gcDelay": "0s", "gcInterval": "1s"}),
    );
    let data = b"nothing will reference this";
    let d = Digest::sha256(data);
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(b.url(&format!("/v2/gc/bg/blobs/uploads/?digest={d}")))
        .body(data.to_vec())
        .send()
        .expect("push");
    assert_eq!(r.status(), 201);
    // Wait (bounded) for a GC run to take it.
    let url = b.url(&format!("/v2/gc/bg/blobs/{d}"));
    let mut gone = false;
    for _ in 0..300 {
        if client.head(&url).send().expect("head").status() == 404 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "background GC removed the unreferenced blob");
    let lines = b.log.lock().expect("log").clone();
    assert!(
        lines.iter().any(|l| l.contains("berth::gc")
            && l.contains("blob no manifest references")
            && l.contains(&d.to_string())),
        "{lines:#?}"
    );
}

/// Pushes one small image (config, layer, manifest) with blocking HTTP;
/// returns whether the manifest push was acknowledged.
fn push_small_image(
    client: &reqwest::blocking::Client,
    base: &str,
    repo: &str,
    tag: &str,
) -> Option<Vec<Digest>> {
    let layer = format!("{repo}:{tag} layer ").repeat(200).into_bytes();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).into_bytes();
    let mut digests = Vec::new();
    for blob in [&config, &layer] {
        let d = Digest::sha256(blob);
        let r = client
            .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
            .body(blob.clone())
            .send()
            .ok()?;
        if r.status() != 201 {
            return None;
        }
        digests.push(d);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0].to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[1].to_string(), "size": layer.len()}]
    })
    .to_string();
    let r = client
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .ok()?;
    (r.status() == 201).then(|| {
        digests.push(Digest::sha256(manifest.as_bytes()));
        digests
    })
}

#[test]
fn sigkill_during_concurrent_pushes_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let b = Berth::start_with(&root, serde_json::json!({"commit": true}));
    let base = b.url("");
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel::<()>();
    let mut pushers = Vec::new();
    for t in 0..6 {
        let (base, acked, tx) = (base.clone(), acked.clone(), tx.clone());
        pushers.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for i in 0..10_000 {
                let (repo, tag) = (format!("crash/r{}", t % 3), format!("t{t}-{i}"));
                match push_small_image(&client, &base, &repo, &tag) {
                    Some(digests) => {
                        acked.lock().expect("acked").push((repo, tag, digests));
                        let _ = tx.send(());
                    }
                    None => return, // the server is gone
                }
            }
        }));
    }
    drop(tx);
    // Kill once a fair number of pushes have been acknowledged.
    for _ in 0..60 {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("pushes are acknowledged");
    }
    let mut b = b;
    b.child.kill().expect("SIGKILL");
    b.child.wait().expect("reap");
    for p in pushers {
        p.join().expect("pusher");
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() >= 60);

    let b = Berth::start(&root);
    let client = reqwest::blocking::Client::new();
    for (repo, tag, digests) in &acked {
        let r = client
            .get(b.url(&format!("/v2/{repo}/manifests/{tag}")))
            .send()
            .expect("get");
        assert_eq!(r.status(), 200, "{repo}:{tag} acknowledged, then lost");
        for d in &digests[..2] {
            let r = client
                .head(b.url(&format!("/v2/{repo}/blobs/{d}")))
                .send()
                .expect("head");
            assert_eq!(r.status(), 200, "{repo}:{tag} blob {d}");
        }
    }
    drop(b);
    let cfg = root.with_extension("json");
    let out = berth()
        .args(["scrub", "--format", "json"])
        .arg(&cfg)
        .output()
        .expect("scrub");
    assert!(
        out.status.success(),
        "scrub finds damage after SIGKILL: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn force_reparse_rebuilds_the_catalog_from_storage() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let catalog = |b: &Berth| -> serde_json::Value {
        reqwest::blocking::get(b.url("/v2/_catalog"))
            .expect("get")
            .json()
            .expect("json")
    };
    let b = Berth::start(&root);
    let client = reqwest::blocking::Client::new();
    for repo in ["keep/me", "drop/me"] {
        let d = Digest::sha256(repo.as_bytes());
        let r = client
            .post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .body(repo.as_bytes().to_vec())
            .send()
            .expect("push");
        assert_eq!(r.status(), 201);
    }
    assert!(b.terminate().success());
    std::fs::remove_dir_all(root.join("drop")).expect("remove behind berth's back");
    // Start-up reads nothing: the catalog still lists what it knew.
    let b = Berth::start(&root);
    assert_eq!(
        catalog(&b)["repositories"],
        serde_json::json!(["drop/me", "keep/me"])
    );
    assert!(b.terminate().success());
    let b = Berth::start_with_args(&root, serde_json::json!({}), &["--force-reparse"]);
    assert_eq!(catalog(&b)["repositories"], serde_json::json!(["keep/me"]));
}

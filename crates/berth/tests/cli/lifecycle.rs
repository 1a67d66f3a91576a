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

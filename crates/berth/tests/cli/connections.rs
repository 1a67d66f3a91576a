//! The real binary under a low open-files limit: a flood of idle and
//! half-sent connections neither starves the server of file descriptors
//! nor stays open; and the soft limit is raised to the hard one at start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_oci::Digest;
use serde_json::json;

use crate::support::*;

/// Starts `berth serve` on a config for `root` with `http` keys, through
/// `sh` after `limits` (shell `ulimit` commands).
fn start_limited(root: &Path, http: serde_json::Value, limits: &str) -> Berth {
    let config = root.with_extension("json");
    let mut http_obj = json!({"address": "127.0.0.1", "port": "0"});
    if let (Some(o), serde_json::Value::Object(extra)) = (http_obj.as_object_mut(), http) {
        o.extend(extra);
    }
    let storage = json!({"rootDirectory": root, "gcInterval": "1s"});
    std::fs::write(
        &config,
        json!({"storage": storage, "http": http_obj}).to_string(),
    )
    .expect("config");
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{limits} && exec \"$0\" serve \"$1\""))
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg(&config)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    Berth::attach(child)
}

/// The (soft, hard) open-files limits of process `pid`.
fn open_files(pid: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

/// A body sent in `pieces` pieces of `size` bytes, one every `every`;
/// says when the first is out.
struct Trickle {
    pieces: usize,
    size: usize,
    every: Duration,
    /// What is left of the piece being sent.
    left: usize,
    started: Option<mpsc::Sender<()>>,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            if self.pieces == 0 {
                return Ok(0);
            }
            match self.started.take() {
                Some(tx) => {
                    let _ = tx.send(());
                }
                None => std::thread::sleep(self.every),
            }
            self.pieces -= 1;
            self.left = self.size;
        }
        let n = self.left.min(buf.len());
        buf[..n].fill(7);
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_flood_of_idle_connections_neither_starves_nor_stays() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start_limited(
        &tmp.path().join("root"),
        json!({"readTimeout": "2s", "idleTimeout": "2s"}),
        "ulimit -n 256",
    );
    let pid = b.child.id().to_string();
    assert_eq!(open_files(&pid), (256, 256), "the limit the test set");
    let said = b.log.lock().expect("log").join("\n");
    // (256 - 64 kept for files) / 2.
    assert!(
        said.contains("serving at most 96 connections"),
        "the cap sized from the limit: {said}"
    );

    // An upload that keeps sending for longer than readTimeout, begun
    // before the flood and writing files all through it.
    let (started_tx, started_rx) = mpsc::channel();
    let body = Trickle {
        pieces: 50,
        size: 64 * 1024,
        every: Duration::from_millis(100),
        left: 0,
        started: Some(started_tx),
    };
    let whole = vec![7u8; 50 * 64 * 1024];
    let d = Digest::sha256(&whole);
    let url = b.url(&format!("/v2/flood/blobs/uploads/?digest={d}"));
    let upload = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .body(reqwest::blocking::Body::new(body))
            .send()
            .map(|r| r.status().as_u16())
    });
    started_rx.recv().expect("upload started");

    // The flood: more connections than the process has descriptors, one
    // in six sending half a header, the others nothing.
    let mut flood = Vec::new();
    for i in 0..300 {
        let Ok(mut s) = TcpStream::connect(&b.addr) else {
            continue;
        };
        if i % 6 == 0 {
            let _ = s.write_all(b"GET /v2/ HTTP/1.1\r\nhost: berth\r\n");
        }
        flood.push(s);
    }
    assert!(flood.len() > 256, "connected {}", flood.len());

    let status = upload.join().expect("join").unwrap_or_else(|e| {
        let log = b.log.lock().expect("log").join("\n");
        panic!("upload answered: {e}\n{log}")
    });
    assert_eq!(status, 201, "the upload went through the flood");

    // Every flood connection is closed by the server: at once past the
    // cap, after readTimeout within it. The test keeps its ends open.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut told = 0;
    for s in &mut flood {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("timeout");
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("a flood connection still open after 60 s")
            }
            Err(_) => {} // reset: closed
        }
        told += usize::from(got.starts_with(b"HTTP/1.1 503"));
    }
    eprintln!("{told} of {} refused connections got a 503", flood.len());

    // New clients are served, with their own descriptors to spare.
    let client = reqwest::blocking::Client::new();
    let r = client.get(b.url("/v2/")).send().expect("get");
    assert_eq!(r.status(), 200);
    let got = client
        .get(b.url(&format!("/v2/flood/blobs/{d}")))
        .send()
        .expect("pull")
        .bytes()
        .expect("bytes");
    assert!(got.as_ref() == whole.as_slice(), "the blob, whole");
    // GC kept running (every second), and nothing ran out of files.
    std::thread::sleep(Duration::from_millis(1500));
    let lines = b.log.lock().expect("log").clone();
    assert!(
        lines.iter().any(|l| l.contains("gc run finished")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("Too many open files") || l.contains("gc run failed")),
        "{lines:#?}"
    );
    drop(flood);
    let exit = b.terminate();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, hard) = open_files("self");
    let hard = hard.min(4096);
    let b = start_limited(
        &tmp.path().join("root"),
        json!({}),
        &format!("ulimit -Sn 200 && ulimit -Hn {hard}"),
    );
    assert_eq!(open_files(&b.child.id().to_string()), (hard, hard));
    let said = b.log.lock().expect("log").join("\n");
    assert!(
        said.contains(&format!(
            "open files limit raised from 200 to the hard limit, {hard}"
        )),
        "{said}"
    );
}

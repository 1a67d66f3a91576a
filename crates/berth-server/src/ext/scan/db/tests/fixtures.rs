//! Real-shaped OSV records in `all.zip` dumps, a source directory of
//! them, and a small HTTP source on `127.0.0.1:0` that can fail.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use zip::write::{SimpleFileOptions, ZipWriter};

/// A DSA, naming the source package, with one upstream CVE.
pub(super) const DSA: &str = r#"{
  "id": "DSA-5532-1",
  "summary": "openssl - security update",
  "details": "Several vulnerabilities were discovered in OpenSSL.",
  "upstream": ["CVE-2023-5363"],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}]
  }],
  "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2023/dsa-5532"}]
}"#;

/// Another release's advisory for the same package.
pub(super) const DLA: &str = r#"{
  "id": "DLA-3530-1",
  "summary": "openssl - security update",
  "upstream": ["CVE-2023-2650"],
  "affected": [{
    "package": {"ecosystem": "Debian:11", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1n-0+deb11u5"}]}]
  }]
}"#;

pub(super) const DEBIAN_CVE: &str = r#"{
  "id": "DEBIAN-CVE-2023-5678",
  "upstream": ["CVE-2023-5678"],
  "details": "Issue summary: Generating excessively long X9.42 DH keys may be very slow.",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}],
    "ecosystem_specific": {"urgency": "low"}
  }]
}"#;

pub(super) const ALPINE: &str = r#"{
  "id": "ALPINE-CVE-2024-0727",
  "upstream": ["CVE-2024-0727"],
  "details": "Processing a maliciously formatted PKCS12 file may lead OpenSSL to crash.",
  "affected": [{
    "package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r5"}]}]
  }]
}"#;

pub(super) const ALPINE_OLD: &str = r#"{
  "id": "ALPINE-CVE-2023-0464",
  "upstream": ["CVE-2023-0464"],
  "details": "Excessive resource use verifying X.509 policy constraints.",
  "affected": [{
    "package": {"ecosystem": "Alpine:v3.17", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.8-r1"}]}]
  }]
}"#;

pub(super) const GHSA: &str = r#"{
  "id": "GHSA-h5c8-rqwp-cp95",
  "aliases": ["CVE-2024-22195"],
  "summary": "Jinja vulnerable to HTML attribute injection",
  "details": "The `xmlattr` filter in affected versions of Jinja accepts keys containing spaces.",
  "affected": [{
    "package": {"ecosystem": "PyPI", "name": "jinja2"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.3"}]}]
  }],
  "database_specific": {"severity": "MODERATE"}
}"#;

/// The same CVE from the PyPA database, the name spelled otherwise.
pub(super) const PYSEC: &str = r#"{
  "id": "PYSEC-2024-1",
  "aliases": ["CVE-2024-22195", "GHSA-h5c8-rqwp-cp95"],
  "details": "Jinja is an extensible templating engine.",
  "affected": [{
    "package": {"ecosystem": "PyPI", "name": "Jinja2"},
    "versions": ["3.1.0", "3.1.1", "3.1.2"]
  }]
}"#;

pub(super) const WITHDRAWN: &str = r#"{
  "id": "GHSA-xxxx-withdrawn",
  "withdrawn": "2024-01-01T00:00:00Z",
  "aliases": ["CVE-2024-0001"],
  "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "versions": ["2.0.0"]}]
}"#;

/// A later PyPI advisory, for a changed dump.
pub(super) const GHSA_REQUESTS: &str = r#"{
  "id": "GHSA-9wx4-h78v-vm56",
  "aliases": ["CVE-2024-35195"],
  "summary": "Requests session verify=False persists",
  "affected": [{
    "package": {"ecosystem": "PyPI", "name": "requests"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]
  }]
}"#;

/// A dump of `records` (file name, body).
pub(super) fn zip_of(records: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in records {
        zip.start_file(*name, SimpleFileOptions::default())
            .expect("start");
        zip.write_all(body.as_bytes()).expect("write");
    }
    zip.finish().expect("finish").into_inner()
}

/// The three dumps of the tests, by ecosystem.
pub(super) fn dumps() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "Alpine",
            zip_of(&[("a.json", ALPINE), ("b.json", ALPINE_OLD)]),
        ),
        (
            "Debian",
            zip_of(&[
                ("DSA-5532-1.json", DSA),
                ("DLA-3530-1.json", DLA),
                ("DEBIAN-CVE-2023-5678.json", DEBIAN_CVE),
            ]),
        ),
        (
            "PyPI",
            zip_of(&[
                ("GHSA-h5c8-rqwp-cp95.json", GHSA),
                ("PYSEC-2024-1.json", PYSEC),
                ("GHSA-xxxx-withdrawn.json", WITHDRAWN),
                ("broken.json", "{\"id\": "),
            ]),
        ),
    ]
}

/// Writes dumps as OSV lays them out: `<dir>/<Ecosystem>/all.zip`.
pub(super) fn write_dir(dir: &Path, dumps: &[(&str, Vec<u8>)]) {
    for (ecosystem, bytes) in dumps {
        std::fs::create_dir_all(dir.join(ecosystem)).expect("mkdir");
        std::fs::write(dir.join(ecosystem).join("all.zip"), bytes).expect("write");
    }
}

/// What the HTTP source serves, and how it misbehaves.
#[derive(Default)]
pub(super) struct Served {
    /// Path → body.
    pub(super) files: Mutex<HashMap<String, Vec<u8>>>,
    /// Paths whose body is cut after half its bytes (the full length
    /// declared), the connection then dropped.
    pub(super) cut: Mutex<HashSet<String>>,
    /// Requests answered 500 before any is served.
    pub(super) fail_first: AtomicUsize,
    /// Requests seen.
    pub(super) requests: AtomicUsize,
}

impl Served {
    /// Serves `dumps` and an `ecosystems.txt` listing them.
    pub(super) fn set(&self, dumps: &[(&str, Vec<u8>)]) {
        let mut files = self.files.lock().expect("lock");
        files.clear();
        let list: String = dumps.iter().map(|(e, _)| format!("{e}\n")).collect();
        files.insert("/ecosystems.txt".into(), list.into_bytes());
        for (ecosystem, bytes) in dumps {
            files.insert(format!("/{ecosystem}/all.zip"), bytes.clone());
        }
    }
}

/// Starts the source; its base URL.
pub(super) async fn serve(served: Arc<Served>) -> String {
    let app = axum::Router::new().fallback(answer).with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn answer(State(served): State<Arc<Served>>, uri: Uri) -> Response {
    served.requests.fetch_add(1, Ordering::SeqCst);
    let failing = served
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if failing.is_ok() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let path = uri.path().to_owned();
    let Some(body) = served.files.lock().expect("lock").get(&path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !served.cut.lock().expect("lock").contains(&path) {
        return body.into_response();
    }
    let len = body.len();
    let half = bytes::Bytes::from(body[..len / 2].to_vec());
    // The head and the first half go out; a moment later the
    // connection is dropped.
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(half)]);
    let cut = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Err(std::io::Error::other("connection cut by the test"))
    });
    Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(first.chain(cut)))
        .expect("response")
}

//! The GCS driver's keys acting. No emulator installable from the
//! project's registries serves the XML API that `object_store`'s GCS
//! client speaks (gcp-storage-emulator answers neither `HEAD` nor XML
//! listings, and sends no `Last-Modified`; fake-gcs-server's wheel routes a
//! plain XML `PUT` to its JSON upload): so these tests stand in for the
//! service with a socket that records the request and answers 404, and
//! show where the driver's keys send it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use berth_server::storage::{BucketSettings, BucketStore, GcsOptions, RepoLocks};

/// A socket answering one request with 404; the request's head.
fn one_request() -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line.trim().is_empty() {
                break;
            }
            head.push(line.trim().to_string());
        }
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .expect("answer");
        head
    });
    (port, handle)
}

fn options(key_file: std::path::PathBuf) -> GcsOptions {
    GcsOptions {
        settings: BucketSettings {
            root_directory: "/zot".into(),
            redirect_blob_url: false,
            dedupe: true,
        },
        bucket: "zot-storage".into(),
        key_file: Some(key_file),
        key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_files_endpoint_gets_the_requests_under_rootdirectory() {
    let (port, request) = one_request();
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key.json");
    std::fs::write(
        &key_file,
        serde_json::json!({
            "private_key": "", "private_key_id": "", "client_email": "",
            "gcs_base_url": format!("http://127.0.0.1:{port}"),
            "disable_oauth": true,
        })
        .to_string(),
    )
    .expect("key file");
    let store = BucketStore::open_gcs(&options(key_file), RepoLocks::default())
        .expect("open")
        .into_store();
    store
        .layout
        .reachable()
        .await
        .expect("a 404 is an answer: reachable");
    let head = request.join().expect("request");
    // object_store's GCS client percent-encodes the whole object name.
    assert_eq!(
        head[0],
        "HEAD /zot%2Dstorage/zot%2F%2Eberth%2Freachable HTTP/1.1"
    );
    assert!(
        !head.iter().any(|h| h
            .to_ascii_lowercase()
            .starts_with("authorization: bearer ey")),
        "disable_oauth sends no token: {head:?}"
    );
}

#[test]
fn a_missing_key_file_is_named() {
    let missing = std::path::PathBuf::from("/nonexistent/berth-gcs-key.json");
    let Err(err) = BucketStore::open_gcs(&options(missing), RepoLocks::default()) else {
        panic!("a key file that is not there must be refused");
    };
    let text = err.to_string();
    assert!(
        text.contains("gs://zot-storage/zot") && text.contains("/nonexistent/berth-gcs-key.json"),
        "{text}"
    );
}

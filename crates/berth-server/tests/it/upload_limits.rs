//! The caps on upload sessions open at once, per repository and per
//! client address: past one, 429 `TOOMANYREQUESTS` with `Retry-After`;
//! a session that ends (completed, cancelled, removed by GC) frees its
//! place; other repositories and clients are not held back.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_oci::Digest;
use berth_server::config::Config;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Capped {
    base: String,
    registry: std::sync::Arc<berth_server::registry::Registry>,
    root: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A server with at most `per_repository` and `per_client` sessions open.
async fn start(per_repository: usize, per_client: usize) -> Capped {
    let root = tempfile::tempdir().expect("tmp");
    let config = Config::from_value(json!({
        "storage": {"rootDirectory": root.path()},
        "http": {"address": "127.0.0.1", "port": 0,
            "maxUploadsPerRepository": per_repository, "maxUploadsPerClient": per_client}
    }))
    .expect("config");
    let state = berth_server::server::build_state(&config)
        .await
        .expect("state");
    let registry = state.registry.clone();
    // On all of 127.0.0.0/8, so clients can come from several addresses.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(berth_server::server::run(listener, state, async {
        let _ = rx.await;
    }));
    Capped {
        base,
        registry,
        root,
        stop: Some(tx),
        task,
    }
}

/// A client whose connections come from `ip` (a loopback address).
fn client_from(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

impl Capped {
    async fn open(&self, c: &Client, repo: &str) -> Response {
        c.post(format!("{}/v2/{repo}/blobs/uploads/", self.base))
            .send()
            .await
            .expect("post")
    }

    /// Opens a session and answers its location.
    async fn opened(&self, c: &Client, repo: &str) -> String {
        let r = self.open(c, repo).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
        r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.expect("join").expect("served");
    }
}

/// Asserts `r` is the 429 of a cap on `scope`.
async fn refused(r: Response, scope: &str) {
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.expect("OCI error body");
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(scope), "{message}");
}

#[tokio::test]
async fn sessions_past_a_cap_are_refused_and_an_ended_one_frees_its_place() {
    let s = start(3, 5).await;
    let a = client_from("127.0.0.1");
    let b = client_from("127.0.0.2");

    // Repository `one`: three sessions, then no more.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(s.opened(&a, "one").await);
    }
    refused(s.open(&a, "one").await, "repository").await;
    // Another client may not exceed the repository's cap either...
    refused(s.open(&b, "one").await, "repository").await;
    // ...but other repositories are open to both.
    let two = s.opened(&a, "two").await;
    s.opened(&a, "two").await;
    s.opened(&b, "two").await;
    // Client `a` holds five now, its cap; `b` is not held back by it.
    refused(s.open(&a, "three").await, "client").await;
    s.opened(&b, "three").await;
    // A monolithic upload ends with its request: never capped.
    let data = b"whole in one go";
    let d = Digest::sha256(data);
    let r = a
        .post(format!("{}/v2/one/blobs/uploads/?digest={d}", s.base))
        .body(data.to_vec())
        .send()
        .await
        .expect("monolithic");
    assert_eq!(r.status(), 201);

    // Completing a session frees its place in the repository and for
    // its client.
    let loc = held.pop().expect("held");
    let r = a
        .put(format!("{}{loc}?digest={d}", s.base))
        .body(data.to_vec())
        .send()
        .await
        .expect("complete");
    assert_eq!(r.status(), 201);
    let again = s.opened(&a, "one").await;
    refused(s.open(&a, "one").await, "repository").await;

    // Cancelling one does too.
    let r = a
        .delete(format!("{}{again}", s.base))
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status(), 204);
    held.push(s.opened(&a, "one").await);
    refused(s.open(&a, "four").await, "client").await;

    // A session whose digest does not match ends as well.
    let r = a
        .put(format!("{}{two}?digest={d}", s.base))
        .body(b"something else".to_vec())
        .send()
        .await
        .expect("complete");
    assert_eq!(r.status(), 400);
    s.opened(&a, "two").await;
    s.stop().await;
}

/// Makes the files of the upload at `location` look idle for two hours.
fn age(root: &Path, repo: &str, location: &str) {
    let id = location.rsplit('/').next().expect("id");
    let dir = root.join(repo).join(".uploads");
    let mut aged = 0;
    for entry in std::fs::read_dir(&dir).expect("uploads") {
        let entry = entry.expect("entry");
        if entry.file_name().to_string_lossy().starts_with(id) {
            std::fs::File::options()
                .write(true)
                .open(entry.path())
                .expect("upload file")
                .set_modified(SystemTime::now() - Duration::from_secs(7200))
                .expect("age it");
            aged += 1;
        }
    }
    assert!(aged > 0, "no files for {id} in {}", dir.display());
}

#[tokio::test]
async fn sessions_gc_removes_free_their_places() {
    let s = start(2, 0).await;
    let a = client_from("127.0.0.1");
    let first = s.opened(&a, "idle").await;
    s.opened(&a, "idle").await;
    refused(s.open(&a, "idle").await, "repository").await;
    assert_eq!(s.registry.uploads_counted(), 2);

    age(s.root.path(), "idle", &first);
    let name = "idle".parse().expect("name");
    let report = s
        .registry
        .gc_repo(&name, Duration::from_secs(3600))
        .await
        .expect("gc");
    assert!(report.uploads >= 1, "{report:?}");
    assert_eq!(s.registry.uploads_counted(), 1);
    s.opened(&a, "idle").await;
    refused(s.open(&a, "idle").await, "repository").await;
    s.stop().await;
}

#[tokio::test]
async fn zero_means_no_cap() {
    let s = start(0, 0).await;
    let a = client_from("127.0.0.1");
    for _ in 0..50 {
        s.opened(&a, "many").await;
    }
    s.stop().await;
}

//! Starting a server on a temporary root and small push helpers.

use std::path::{Path, PathBuf};

use berth_oci::Digest;
use berth_server::config::Config;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub struct Server {
    pub base: String,
    /// The server's registry, for calling domain operations (GC) directly.
    pub registry: std::sync::Arc<berth_server::registry::Registry>,
    pub http: Client,
    pub root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// A server on a fresh temporary root.
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = Self::start_at(tmp.path()).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing root.
    pub async fn start_at(root: &Path) -> Self {
        Self::start_with(root, json!({})).await
    }

    /// A server on an existing root with more `storage` keys.
    pub async fn start_with(root: &Path, storage: Value) -> Self {
        let mut storage_obj = json!({ "rootDirectory": root });
        if let (Some(o), Value::Object(extra)) = (storage_obj.as_object_mut(), storage) {
            o.extend(extra);
        }
        let config = Config::from_value(json!({
            "storage": storage_obj,
            "http": {"address": "127.0.0.1", "port": 0}
        }))
        .expect("config");
        let state = berth_server::server::build_state(&config)
            .await
            .expect("state");
        let registry = state.registry.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(berth_server::server::run(listener, state, async {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            registry,
            http: Client::new(),
            root: root.to_path_buf(),
            _tmp: None,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops gracefully and waits; keeps the root if it was temporary.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("server result");
        }
        // Writes the requests left running hold the metadata store open.
        self.registry.settle().await;
        self._tmp.take()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// The tags `/tags/list` names for `repo` (JSON `null` when none).
    pub async fn tags(&self, repo: &str) -> Value {
        self.get(&format!("/v2/{repo}/tags/list"))
            .await
            .json::<Value>()
            .await
            .expect("json")["tags"]
            .clone()
    }

    /// Pushes a blob monolithically and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256(data);
        let r = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .body(data.to_vec())
            .send()
            .await
            .expect("push blob");
        assert_eq!(r.status(), StatusCode::CREATED, "push blob");
        d
    }

    /// Starts an upload session; its location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .expect("start upload");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "start upload");
        r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string()
    }

    /// Sends `data` as the chunk at `from` of the upload at `location`.
    pub async fn patch_upload(&self, location: &str, from: usize, data: &[u8]) -> Response {
        self.http
            .patch(self.url(location))
            .header("content-range", format!("{from}-{}", from + data.len() - 1))
            .body(data.to_vec())
            .send()
            .await
            .expect("patch")
    }

    /// Completes the upload at `location` as `digest`.
    #[cfg(any(feature = "s3", feature = "azure"))]
    pub async fn finish_upload(&self, location: &str, digest: &Digest) -> Response {
        let sep = if location.contains('?') { '&' } else { '?' };
        self.http
            .put(self.url(&format!("{location}{sep}digest={digest}")))
            .send()
            .await
            .expect("finish upload")
    }

    /// Pushes a manifest and returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.http
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("put manifest")
    }

    /// Pushes a config and layers, then an image manifest tagged `reference`.
    /// Returns the manifest bytes and digest.
    pub async fn push_image(
        &self,
        repo: &str,
        reference: &str,
        layers: &[&[u8]],
    ) -> (Vec<u8>, Digest) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","layers":{}}}"#,
            layers.len()
        );
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let mut descs = Vec::new();
        for l in layers {
            let d = self.push_blob(repo, l).await;
            descs.push(desc(OCI_LAYER, &d, l.len()));
        }
        let m = image_manifest(desc(OCI_CONFIG, &cd, config.len()), descs, None);
        let r = self.put_manifest(repo, reference, OCI_MANIFEST, &m).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "push manifest: {:?}",
            r.text().await
        );
        let d = Digest::sha256(&m);
        (m, d)
    }
}

/// Reads blob `digest` of `repo` without following redirects: a 307 to a
/// URL of `endpoint`, presigned (holding `signature`), that serves `body`.
#[cfg(any(feature = "s3", feature = "azure"))]
pub async fn assert_presigned_redirect(
    server: &Server,
    repo: &str,
    digest: &Digest,
    (endpoint, signature): (&str, &str),
    body: &[u8],
) {
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_follow
        .get(server.url(&format!("/v2/{repo}/blobs/{digest}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    let to = r.headers()["location"].to_str().expect("location");
    assert!(to.starts_with(endpoint), "{to}");
    assert!(to.contains(signature), "presigned: {to}");
    let got = reqwest::get(to)
        .await
        .expect("fetch")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&got[..], body);
}

/// Pulls back what was pushed to `repo`: the `layer` (whole and a range),
/// the `manifest` by its tag `v1`, the tag list.
#[cfg(any(feature = "s3", feature = "azure"))]
pub async fn assert_pulls(server: &Server, repo: &str, layer: (&Digest, &[u8]), manifest: &[u8]) {
    let (ld, layer) = layer;
    let r = server.get(&format!("/v2/{repo}/blobs/{ld}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.bytes().await.expect("body") == layer,
        "the layer reads back"
    );
    let r = server
        .http
        .get(server.url(&format!("/v2/{repo}/blobs/{ld}")))
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.bytes().await.expect("body").to_vec(),
        layer[10..20].to_vec()
    );
    let r = server
        .http
        .get(server.url(&format!("/v2/{repo}/manifests/v1")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("manifest");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("body").to_vec(), manifest);
    assert_eq!(server.tags(repo).await, serde_json::json!(["v1"]));
}

/// Goes on with the upload of `blob` at `location` of which the first
/// `sent` bytes were received: its range says so, the rest completes it,
/// and `blob` reads back from `repo`.
#[cfg(any(feature = "s3", feature = "azure"))]
pub async fn assert_upload_goes_on(
    server: &Server,
    repo: &str,
    location: &str,
    blob: &[u8],
    sent: usize,
) {
    let d = Digest::sha256(blob);
    let r = server.get(location).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers()["range"].to_str().expect("range"),
        format!("0-{}", sent - 1)
    );
    let r = server.patch_upload(location, sent, &blob[sent..]).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    let r = server.finish_upload(location, &d).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let got = server.get(&format!("/v2/{repo}/blobs/{d}")).await;
    assert!(got.bytes().await.expect("body") == blob);
}

/// Pushes `blob` in chunks of `chunk` bytes; its digest.
#[cfg(any(feature = "s3", feature = "azure"))]
pub async fn push_chunked(server: &Server, repo: &str, blob: &[u8], chunk: usize) -> Digest {
    let d = Digest::sha256(blob);
    let mut location = server.start_upload(repo).await;
    for (i, part) in blob.chunks(chunk).enumerate() {
        let r = server.patch_upload(&location, i * chunk, part).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
        location = r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
    }
    let r = server.finish_upload(&location, &d).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    d
}

pub fn desc(media_type: &str, digest: &Digest, size: usize) -> Value {
    json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
}

pub fn image_manifest(config: Value, layers: Vec<Value>, extra: Option<Value>) -> Vec<u8> {
    let mut m =
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers});
    if let (Some(Value::Object(extra)), Some(obj)) = (extra, m.as_object_mut()) {
        obj.extend(extra);
    }
    serde_json::to_vec(&m).expect("json")
}

/// Asserts status and OCI error code of a response.
pub async fn assert_error(r: Response, status: u16, code: &str) {
    assert_eq!(r.status().as_u16(), status, "status");
    let body: Value = r.json().await.expect("json error body");
    assert_eq!(body["errors"][0]["code"], code, "body {body}");
    assert!(body["errors"][0]["message"].is_string(), "body {body}");
}

pub fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("missing header {name}"))
}

//! An OCI distribution client over HTTP(S): what the bench, the
//! command-line client and sync share. Each call is one registry
//! operation; a refusal comes back as [`ClientError::Status`] with the
//! status, so callers can count answers by class.
//!
//! Authentication: Basic credentials, sent with every request.

use std::time::{Duration, Instant};

use berth_oci::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry answered, but not as hoped.
    #[error("{method} {path}: {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: StatusCode,
        body: String,
    },
    /// No answer (connection, timeout, a body cut short).
    #[error("{0}")]
    Transport(String),
    /// An answer that breaks the protocol.
    #[error("{0}")]
    Protocol(String),
    /// Writing what was downloaded failed.
    #[error("writing the download: {0}")]
    Write(#[source] std::io::Error),
}

impl ClientError {
    /// The status, when the registry answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// A transport error with its causes on one line (reqwest's own says
/// only "error sending request for url (...)").
fn transport(e: reqwest::Error) -> ClientError {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    ClientError::Transport(text)
}

/// What a download measured.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    pub bytes: u64,
    /// From sending the request to the first byte of the body.
    pub ttfb: Duration,
}

/// How a [`Client`] connects, beyond its base URL and credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientOptions {
    /// Accept any TLS certificate and host name: a registry with a
    /// self-signed certificate (`--insecure`, skopeo's
    /// `--tls-verify=false`).
    pub accept_invalid_certs: bool,
    /// Give up on a connection not made within this time.
    pub connect_timeout: Option<Duration>,
    /// Give up on an answer (or a body) from which nothing arrives for
    /// this long.
    pub read_timeout: Option<Duration>,
}

/// A registry at one base URL.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
}

impl Client {
    /// A client for `base` (`http://host:port`, or just `host:port` for
    /// plain HTTP); `auth` is `user:password`.
    pub fn new(base: &str, auth: Option<&str>) -> ClientResult<Self> {
        Self::with_options(base, auth, ClientOptions::default())
    }

    /// [`Client::new`] with `options`.
    pub fn with_options(
        base: &str,
        auth: Option<&str>,
        options: ClientOptions,
    ) -> ClientResult<Self> {
        let base = if base.contains("://") {
            base.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", base.trim_end_matches('/'))
        };
        let auth = auth.map(|a| match a.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (a.to_string(), String::new()),
        });
        let mut builder = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .tls_danger_accept_invalid_certs(options.accept_invalid_certs)
            .tls_danger_accept_invalid_hostnames(options.accept_invalid_certs);
        if let Some(timeout) = options.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = options.read_timeout {
            builder = builder.read_timeout(timeout);
        }
        let http = builder.build().map_err(transport)?;
        Ok(Self { http, base, auth })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let req = self.http.request(method, url);
        match &self.auth {
            Some((u, p)) => req.basic_auth(u, Some(p)),
            None => req,
        }
    }

    /// Sends `method path` (as `build` shapes it) and checks the answer
    /// is one of `want`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        want: &[StatusCode],
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> ClientResult<reqwest::Response> {
        let name = match method {
            reqwest::Method::GET => "GET",
            reqwest::Method::HEAD => "HEAD",
            reqwest::Method::POST => "POST",
            reqwest::Method::PUT => "PUT",
            reqwest::Method::PATCH => "PATCH",
            reqwest::Method::DELETE => "DELETE",
            _ => "request",
        };
        let resp = build(self.request(method, path))
            .send()
            .await
            .map_err(transport)?;
        Self::check(name, path, resp, want).await
    }

    async fn check(
        method: &'static str,
        path: &str,
        resp: reqwest::Response,
        want: &[StatusCode],
    ) -> ClientResult<reqwest::Response> {
        if want.contains(&resp.status()) {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(ClientError::Status {
            method,
            path: path.to_string(),
            status,
            body: body.chars().take(300).collect(),
        })
    }

    /// `GET /v2/`.
    pub async fn ping(&self) -> ClientResult<()> {
        self.call(reqwest::Method::GET, "/v2/", &[StatusCode::OK], |r| r)
            .await?;
        Ok(())
    }

    /// One page of the catalog (`n` entries at most).
    pub async fn catalog(&self, n: Option<usize>) -> ClientResult<Vec<String>> {
        let path = match n {
            Some(n) => format!("/v2/_catalog?n={n}"),
            None => "/v2/_catalog".to_string(),
        };
        let resp = self
            .call(reqwest::Method::GET, &path, &[StatusCode::OK], |r| r)
            .await?;
        let body: serde_json::Value = resp.json().await.map_err(transport)?;
        Ok(strings(&body["repositories"]))
    }

    /// The repository's tags (first page).
    pub async fn tags(&self, repo: &str) -> ClientResult<Vec<String>> {
        let path = format!("/v2/{repo}/tags/list");
        let resp = self
            .call(reqwest::Method::GET, &path, &[StatusCode::OK], |r| r)
            .await?;
        let body: serde_json::Value = resp.json().await.map_err(transport)?;
        Ok(strings(&body["tags"]))
    }

    /// Opens an upload session; returns its `Location`.
    async fn open_session(&self, repo: &str) -> ClientResult<String> {
        let start = format!("/v2/{repo}/blobs/uploads/");
        let resp = self
            .call(
                reqwest::Method::POST,
                &start,
                &[StatusCode::ACCEPTED],
                |r| r,
            )
            .await?;
        location(&resp, &start)
    }

    /// Pushes a blob whose digest is `digest` monolithically: `POST` for a
    /// session, then one `PUT ?digest=` with the whole blob (what every
    /// registry supports; the spec's single-`POST` form is optional).
    pub async fn push_blob_monolithic(
        &self,
        repo: &str,
        data: Bytes,
        digest: &Digest,
    ) -> ClientResult<()> {
        let location = self.open_session(repo).await?;
        let close = with_digest(&location, digest);
        self.call(reqwest::Method::PUT, &close, &[StatusCode::CREATED], |r| {
            r.header("content-type", "application/octet-stream")
                .body(data)
        })
        .await?;
        Ok(())
    }

    /// Pushes a blob as a session: `POST`, one streamed `PATCH` per
    /// `chunk` bytes, then `PUT ?digest=`.
    pub async fn push_blob_chunked(
        &self,
        repo: &str,
        data: Bytes,
        digest: &Digest,
        chunk: usize,
    ) -> ClientResult<()> {
        let mut location = self.open_session(repo).await?;
        let mut offset = 0;
        while offset < data.len() {
            let end = (offset + chunk.max(1)).min(data.len());
            let part = data.slice(offset..end);
            // Streamed: the body goes out in 64 KiB frames, without a
            // length known up front.
            let frames: Vec<Result<Bytes, std::io::Error>> = part
                .chunks(64 * 1024)
                .map(|c| Ok(part.slice_ref(c)))
                .collect();
            let range = format!("{offset}-{}", end - 1);
            let resp = self
                .call(
                    reqwest::Method::PATCH,
                    &location,
                    &[StatusCode::ACCEPTED],
                    |r| {
                        r.header("content-type", "application/octet-stream")
                            .header("content-range", range)
                            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                                frames,
                            )))
                    },
                )
                .await?;
            location = crate::location(&resp, &location)?;
            offset = end;
        }
        let close = with_digest(&location, digest);
        self.call(reqwest::Method::PUT, &close, &[StatusCode::CREATED], |r| r)
            .await?;
        Ok(())
    }

    /// Whether the repository has the blob (`HEAD`).
    pub async fn blob_exists(&self, repo: &str, digest: &Digest) -> ClientResult<bool> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self
            .request(reqwest::Method::HEAD, &path)
            .send()
            .await
            .map_err(transport)?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Self::check("HEAD", &path, resp, &[]).await.map(|_| false),
        }
    }

    /// Downloads a blob, reading and dropping its bytes.
    pub async fn pull_blob(&self, repo: &str, digest: &Digest) -> ClientResult<Download> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        self.download(&path).await
    }

    /// Downloads a blob into `out` as it arrives (never whole in memory),
    /// checking its digest at the end; returns its length. A blob longer
    /// than `max` bytes is refused when its length says so, or as soon as
    /// more arrives; a digest that does not match is a
    /// [`ClientError::Protocol`] (`out` then holds the bad bytes).
    pub async fn pull_blob_to<W>(
        &self,
        repo: &str,
        digest: &Digest,
        max: u64,
        out: &mut W,
    ) -> ClientResult<u64>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::AsyncWriteExt;
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self
            .call(reqwest::Method::GET, &path, &[StatusCode::OK], |r| r)
            .await?;
        let too_large = |n: u64| ClientError::Protocol(format!("{path}: over {max} bytes ({n})"));
        if let Some(n) = resp.content_length().filter(|n| *n > max) {
            return Err(too_large(n));
        }
        let mut hasher = berth_oci::DigestHasher::new(digest.algorithm());
        let mut stream = resp.bytes_stream();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
            bytes += chunk.len() as u64;
            if bytes > max {
                return Err(too_large(bytes));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(ClientError::Write)?;
        }
        out.flush().await.map_err(ClientError::Write)?;
        let got = hasher.finish();
        if &got != digest {
            return Err(ClientError::Protocol(format!(
                "{path}: the blob's digest is {got}"
            )));
        }
        Ok(bytes)
    }

    async fn download(&self, path: &str) -> ClientResult<Download> {
        let start = Instant::now();
        let resp = self
            .call(reqwest::Method::GET, path, &[StatusCode::OK], |r| r)
            .await?;
        let mut stream = resp.bytes_stream();
        let mut bytes = 0u64;
        let mut ttfb = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
            ttfb.get_or_insert_with(|| start.elapsed());
            bytes += chunk.len() as u64;
        }
        Ok(Download {
            bytes,
            ttfb: ttfb.unwrap_or_else(|| start.elapsed()),
        })
    }

    /// Stores a manifest; returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> ClientResult<Digest> {
        let digest = Digest::sha256(&body);
        let path = format!("/v2/{repo}/manifests/{reference}");
        self.call(reqwest::Method::PUT, &path, &[StatusCode::CREATED], |r| {
            r.header("content-type", media_type).body(body)
        })
        .await?;
        Ok(digest)
    }

    /// `HEAD` a manifest; returns the time to the answer.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> ClientResult<Duration> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let start = Instant::now();
        self.call(reqwest::Method::HEAD, &path, &[StatusCode::OK], |r| {
            r.header("accept", ACCEPT_MANIFESTS)
        })
        .await?;
        Ok(start.elapsed())
    }

    /// `GET` a manifest: its bytes and the time to its first byte.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> ClientResult<(Bytes, Duration)> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let start = Instant::now();
        let resp = self
            .call(reqwest::Method::GET, &path, &[StatusCode::OK], |r| {
                r.header("accept", ACCEPT_MANIFESTS)
            })
            .await?;
        let ttfb = start.elapsed();
        let body = resp.bytes().await.map_err(transport)?;
        Ok((body, ttfb))
    }

    /// The extension endpoints the registry lists at
    /// `/v2/_oci/ext/discover` (none where it has no such route).
    pub async fn extension_endpoints(&self) -> ClientResult<Vec<String>> {
        let path = "/v2/_oci/ext/discover";
        let resp = match self
            .call(reqwest::Method::GET, path, &[StatusCode::OK], |r| r)
            .await
        {
            Ok(r) => r,
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let body: serde_json::Value = resp.json().await.map_err(transport)?;
        Ok(body["extensions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| strings(&e["endpoints"]))
            .collect())
    }

    /// Sends a GraphQL document to zot's search extension and returns the
    /// answer as it came, undecoded (what a benchmark times).
    pub async fn search_raw(&self, query: &str) -> ClientResult<Bytes> {
        let body = serde_json::json!({ "query": query });
        let resp = self
            .call(
                reqwest::Method::POST,
                "/v2/_zot/ext/search",
                &[StatusCode::OK],
                |r| r.json(&body),
            )
            .await?;
        resp.bytes().await.map_err(transport)
    }

    /// Sends a GraphQL document to zot's search extension
    /// (`POST /v2/_zot/ext/search`) and returns the answer's `data`; an
    /// answer with errors is a [`ClientError::Protocol`] naming the first.
    pub async fn search(&self, query: &str) -> ClientResult<serde_json::Value> {
        let path = "/v2/_zot/ext/search";
        let body = serde_json::json!({ "query": query });
        let resp = self
            .call(reqwest::Method::POST, path, &[StatusCode::OK], |r| {
                r.json(&body)
            })
            .await?;
        let mut answer: serde_json::Value = resp.json().await.map_err(transport)?;
        if let Some(e) = answer["errors"].as_array().and_then(|e| e.first()) {
            return Err(ClientError::Protocol(format!(
                "{path}: {}",
                e["message"]
                    .as_str()
                    .unwrap_or("an error without a message")
            )));
        }
        Ok(answer["data"].take())
    }

    /// Deletes a manifest by digest (or a tag, where the registry allows).
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> ClientResult<()> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        self.call(
            reqwest::Method::DELETE,
            &path,
            &[StatusCode::ACCEPTED, StatusCode::OK],
            |r| r,
        )
        .await?;
        Ok(())
    }
}

/// Every manifest type a pull accepts.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// An upload `Location` with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// The `Location` of an upload answer.
fn location(resp: &reqwest::Response, asked: &str) -> ClientResult<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ClientError::Protocol(format!("{asked}: no Location in the answer")))
}

/// An OCI image manifest naming `config` and `layers` (digest, size).
pub fn image_manifest(config: (&Digest, u64), layers: &[(&Digest, u64)]) -> Bytes {
    image_manifest_annotated(config, layers, &[])
}

/// [`image_manifest`] with `annotations` (which make otherwise equal
/// manifests distinct).
pub fn image_manifest_annotated(
    config: (&Digest, u64),
    layers: &[(&Digest, u64)],
    annotations: &[(&str, &str)],
) -> Bytes {
    let layer = |(d, s): &(&Digest, u64)| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                           "digest": d.to_string(), "size": s})
    };
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.0.to_string(), "size": config.1},
        "layers": layers.iter().map(layer).collect::<Vec<_>>(),
    });
    if !annotations.is_empty() {
        m["annotations"] = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    Bytes::from(m.to_string())
}

/// The media type [`image_manifest`] writes.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

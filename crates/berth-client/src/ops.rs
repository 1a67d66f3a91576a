//! The calls of the bench, the command line and `berth scan`: ping, one
//! page of the catalog or tags, monolithic and chunked blob pushes, blob
//! and manifest pulls with their time to first byte, manifest put and
//! delete, the extension list and the search extension.

use std::time::{Duration, Instant};

use berth_oci::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, StatusCode};

use crate::{ACCEPT_MANIFESTS, Client, ClientError, ClientResult};

/// What a download measured.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    /// The body's length.
    pub bytes: u64,
    /// From sending the request to the first byte of the body.
    pub ttfb: Duration,
}

impl Client {
    /// `GET /v2/`.
    pub async fn ping(&self) -> ClientResult<()> {
        self.call(Method::GET, "/v2/", &[StatusCode::OK], |r| r)
            .await?;
        Ok(())
    }

    /// One page of the catalog (`n` entries at most).
    pub async fn catalog(&self, n: Option<usize>) -> ClientResult<Vec<String>> {
        let path = match n {
            Some(n) => format!("/v2/_catalog?n={n}"),
            None => "/v2/_catalog".to_string(),
        };
        let body = self
            .call(Method::GET, &path, &[StatusCode::OK], |r| r)
            .await?
            .json(&path)
            .await?;
        Ok(strings(&body["repositories"]))
    }

    /// The repository's tags (first page).
    pub async fn tags(&self, repo: &str) -> ClientResult<Vec<String>> {
        let path = format!("/v2/{repo}/tags/list");
        let body = self
            .call(Method::GET, &path, &[StatusCode::OK], |r| r)
            .await?
            .json(&path)
            .await?;
        Ok(strings(&body["tags"]))
    }

    /// Opens an upload session; returns its `Location`.
    pub(crate) async fn open_session(&self, repo: &str) -> ClientResult<String> {
        let start = format!("/v2/{repo}/blobs/uploads/");
        let answer = self
            .call(Method::POST, &start, &[StatusCode::ACCEPTED], |r| r)
            .await?;
        location(answer.header("location"), &start)
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
        self.call(Method::PUT, &close, &[StatusCode::CREATED], |r| {
            r.header("content-type", "application/octet-stream")
                .body(data.clone())
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
            let range = format!("{offset}-{}", end - 1);
            let answer = self
                .call(Method::PATCH, &location, &[StatusCode::ACCEPTED], |r| {
                    // Streamed: the body goes out in 64 KiB frames, without
                    // a length known up front.
                    let frames: Vec<Result<Bytes, std::io::Error>> = part
                        .chunks(64 * 1024)
                        .map(|c| Ok(part.slice_ref(c)))
                        .collect();
                    r.header("content-type", "application/octet-stream")
                        .header("content-range", &range)
                        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                            frames,
                        )))
                })
                .await?;
            location = crate::ops::location(answer.header("location"), &location)?;
            offset = end;
        }
        let close = with_digest(&location, digest);
        self.call(Method::PUT, &close, &[StatusCode::CREATED], |r| r)
            .await?;
        Ok(())
    }

    /// Whether the repository has the blob (`HEAD`).
    pub async fn blob_exists(&self, repo: &str, digest: &Digest) -> ClientResult<bool> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let answer = self
            .call(
                Method::HEAD,
                &path,
                &[StatusCode::OK, StatusCode::NOT_FOUND],
                |r| r,
            )
            .await?;
        Ok(answer.status() == StatusCode::OK)
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
        let answer = self
            .call(Method::GET, &path, &[StatusCode::OK], |r| r)
            .await?;
        let too_large = |n: u64| ClientError::Protocol(format!("{path}: over {max} bytes ({n})"));
        if let Some(n) = answer.declared_length().filter(|n| *n > max) {
            return Err(too_large(n));
        }
        let mut hasher = berth_oci::DigestHasher::new(digest.algorithm());
        let mut stream = answer.into_stream();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
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
        let mut stream = self
            .call(Method::GET, path, &[StatusCode::OK], |r| r)
            .await?
            .into_stream();
        let mut bytes = 0u64;
        let mut ttfb = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
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
        self.call(Method::PUT, &path, &[StatusCode::CREATED], |r| {
            r.header("content-type", media_type).body(body.clone())
        })
        .await?;
        Ok(digest)
    }

    /// `HEAD` a manifest; returns the time to the answer.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> ClientResult<Duration> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let start = Instant::now();
        self.call(Method::HEAD, &path, &[StatusCode::OK], |r| {
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
        let answer = self
            .call(Method::GET, &path, &[StatusCode::OK], |r| {
                r.header("accept", ACCEPT_MANIFESTS)
            })
            .await?;
        let ttfb = start.elapsed();
        Ok((answer.bytes().await?, ttfb))
    }

    /// The extension endpoints the registry lists at
    /// `/v2/_oci/ext/discover` (none where it has no such route).
    pub async fn extension_endpoints(&self) -> ClientResult<Vec<String>> {
        let path = "/v2/_oci/ext/discover";
        let answer = self
            .call(
                Method::GET,
                path,
                &[StatusCode::OK, StatusCode::NOT_FOUND],
                |r| r,
            )
            .await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let body = answer.json(path).await?;
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
        self.call(
            Method::POST,
            "/v2/_zot/ext/search",
            &[StatusCode::OK],
            |r| r.json(&body),
        )
        .await?
        .bytes()
        .await
    }

    /// Sends a GraphQL document to zot's search extension
    /// (`POST /v2/_zot/ext/search`) and returns the answer's `data`; an
    /// answer with errors is a [`ClientError::Protocol`] naming the first.
    pub async fn search(&self, query: &str) -> ClientResult<serde_json::Value> {
        let path = "/v2/_zot/ext/search";
        let body = serde_json::json!({ "query": query });
        let mut answer = self
            .call(Method::POST, path, &[StatusCode::OK], |r| r.json(&body))
            .await?
            .json(path)
            .await?;
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
            Method::DELETE,
            &path,
            &[StatusCode::ACCEPTED, StatusCode::OK],
            |r| r,
        )
        .await?;
        Ok(())
    }
}

/// The strings of a JSON array (none if it is not one).
pub(crate) fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// An upload `Location` with `digest=` added to its query.
pub(crate) fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// The `Location` of an upload answer.
pub(crate) fn location(value: Option<&str>, asked: &str) -> ClientResult<String> {
    value
        .map(str::to_string)
        .ok_or_else(|| ClientError::Protocol(format!("{asked}: no Location in the answer")))
}

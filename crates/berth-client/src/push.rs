//! Pushing a blob from a stream (what a copy does): a cross-repository
//! mount first when the blob may already be on the registry, then one
//! streamed `PUT` for a small blob, or `PATCH`es of a bounded size for a
//! large one, so nothing is ever held whole in memory.

use std::sync::Arc;

use berth_oci::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{Method, StatusCode};

use crate::ops::{location, with_digest};
use crate::{Client, ClientError, ClientResult};

/// A blob's bytes as they arrive.
pub type ByteStream = BoxStream<'static, Result<Bytes, ClientError>>;

/// What a mount attempt came to.
#[derive(Debug)]
pub enum Mount {
    /// The registry linked the blob in: nothing to send.
    Mounted,
    /// It did not; an upload session was opened at this `Location`.
    Session(String),
}

impl Client {
    /// Asks the registry to mount `digest` from `from` into `repo`
    /// (`POST ?mount=&from=`); a registry that cannot answers with an
    /// upload session, which the blob is then sent to.
    pub async fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> ClientResult<Mount> {
        let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        let answer = self
            .call(
                Method::POST,
                &path,
                &[StatusCode::CREATED, StatusCode::ACCEPTED],
                |r| r,
            )
            .await?;
        if answer.status() == StatusCode::CREATED {
            return Ok(Mount::Mounted);
        }
        Ok(Mount::Session(location(answer.header("location"), &path)?))
    }

    /// Opens an upload session in `repo`; returns its `Location`.
    pub async fn start_upload(&self, repo: &str) -> ClientResult<String> {
        self.open_session(repo).await
    }

    /// Sends a blob of `size` bytes from `data` to the session at
    /// `location`: one streamed `PUT ?digest=` when it is at most `chunk`
    /// bytes, else a streamed `PATCH` per `chunk` bytes and a closing
    /// `PUT`. The registry checks the digest.
    pub async fn upload_stream(
        &self,
        location: String,
        digest: &Digest,
        size: u64,
        data: ByteStream,
        chunk: u64,
    ) -> ClientResult<()> {
        let chunk = chunk.max(1);
        if size <= chunk {
            let body = OnceBody::new(data);
            let close = with_digest(&location, digest);
            self.call(Method::PUT, &close, &[StatusCode::CREATED], |r| {
                r.header("content-type", "application/octet-stream")
                    .header("content-length", size)
                    .body(body.take())
            })
            .await?;
            return Ok(());
        }
        let shared = Arc::new(tokio::sync::Mutex::new(Carry {
            stream: data,
            left: Bytes::new(),
        }));
        let mut location = location;
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let body = OnceBody::new(take(shared.clone(), len));
            let answer = self
                .call(Method::PATCH, &location, &[StatusCode::ACCEPTED], |r| {
                    r.header("content-type", "application/octet-stream")
                        .header("content-range", &range)
                        .header("content-length", len)
                        .body(body.take())
                })
                .await?;
            location = crate::ops::location(answer.header("location"), &location)?;
            offset += len;
        }
        let close = with_digest(&location, digest);
        self.call(Method::PUT, &close, &[StatusCode::CREATED], |r| r)
            .await?;
        Ok(())
    }
}

/// A stream and the bytes of its last item not yet sent.
struct Carry {
    stream: ByteStream,
    left: Bytes,
}

/// The next `len` bytes of `shared`, as a stream (a chunk's body).
fn take(shared: Arc<tokio::sync::Mutex<Carry>>, len: u64) -> ByteStream {
    futures_util::stream::unfold((shared, len), |(shared, want)| async move {
        if want == 0 {
            return None;
        }
        let mut carry = shared.lock().await;
        if carry.left.is_empty() {
            match carry.stream.next().await {
                Some(Ok(b)) => carry.left = b,
                Some(Err(e)) => return Some((Err(e), (shared.clone(), 0))),
                None => {
                    return Some((
                        Err(ClientError::Transport(
                            "the source ended before the blob did".to_string(),
                        )),
                        (shared.clone(), 0),
                    ));
                }
            }
        }
        let n = carry
            .left
            .len()
            .min(usize::try_from(want).unwrap_or(usize::MAX));
        let part = carry.left.split_to(n);
        drop(carry);
        Some((Ok(part), (shared, want - n as u64)))
    })
    .boxed()
}

/// A streamed body that can be sent once (a request is built again only
/// after a `401`, by which time the session's token is cached, so the
/// second build is never sent with a spent body in practice).
struct OnceBody(std::sync::Mutex<Option<ByteStream>>);

impl OnceBody {
    fn new(stream: ByteStream) -> Self {
        Self(std::sync::Mutex::new(Some(stream)))
    }

    fn take(&self) -> reqwest::Body {
        let stream = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| futures_util::stream::empty().boxed());
        reqwest::Body::wrap_stream(stream)
    }
}

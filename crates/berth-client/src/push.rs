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

    /// Sends a blob of `size` bytes to the session at `location`, its
    /// bytes from `open(offset)` (a stream from that offset on): one
    /// streamed `PUT ?digest=` when it is at most `chunk` bytes, else a
    /// streamed `PATCH` per `chunk` bytes and a closing `PUT`. A chunk
    /// whose connection drops (or that a gateway answers 502, 503, 504) is
    /// resumed: the registry is asked how much of the upload it holds
    /// (the session's status), and the source is opened again there, at
    /// most [`MAX_RESUMES`] times. The registry checks the digest.
    pub async fn upload_stream(
        &self,
        location: String,
        digest: &Digest,
        size: u64,
        chunk: u64,
        open: &Reopen<'_>,
    ) -> ClientResult<()> {
        let chunk = chunk.max(1);
        if size <= chunk {
            let body = OnceBody::new(open(0).await?);
            let close = with_digest(&location, digest);
            self.call(Method::PUT, &close, &[StatusCode::CREATED], |r| {
                r.header("content-type", "application/octet-stream")
                    .header("content-length", size)
                    .body(body.take())
            })
            .await?;
            return Ok(());
        }
        let carry = |stream| {
            Arc::new(tokio::sync::Mutex::new(Carry {
                stream,
                left: Bytes::new(),
            }))
        };
        let mut shared = carry(open(0).await?);
        let mut location = location;
        let mut offset = 0;
        let mut resumes = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let body = OnceBody::new(take(shared.clone(), len));
            let sent = self
                .call(Method::PATCH, &location, &[StatusCode::ACCEPTED], |r| {
                    r.header("content-type", "application/octet-stream")
                        .header("content-range", &range)
                        .header("content-length", len)
                        .body(body.take())
                })
                .await;
            match sent {
                Ok(answer) => {
                    location = crate::ops::location(answer.header("location"), &location)?;
                    offset += len;
                }
                Err(e) if resumes < MAX_RESUMES && resumable(&e) => {
                    resumes += 1;
                    tokio::time::sleep(RESUME_PAUSE * resumes).await;
                    let (held, at) = self.upload_status(&location).await?;
                    if held > size {
                        return Err(e);
                    }
                    location = at;
                    offset = held;
                    shared = carry(open(held).await?);
                }
                Err(e) => return Err(e),
            }
        }
        let close = with_digest(&location, digest);
        self.call(Method::PUT, &close, &[StatusCode::CREATED], |r| r)
            .await?;
        Ok(())
    }

    /// How many bytes the upload session at `location` holds (its `Range`,
    /// `0-<last byte>`; `0-0` or none read as empty), and its `Location`.
    pub async fn upload_status(&self, location: &str) -> ClientResult<(u64, String)> {
        let answer = self
            .call(Method::GET, location, &[StatusCode::NO_CONTENT], |r| r)
            .await?;
        let held = answer
            .header("range")
            .and_then(|r| r.split_once('-'))
            .and_then(|(_, end)| end.trim().parse::<u64>().ok())
            .map_or(0, |end| if end == 0 { 0 } else { end + 1 });
        let at = answer
            .header("location")
            .map_or_else(|| location.to_string(), str::to_string);
        Ok((held, at))
    }
}

/// How many times one blob's upload is resumed.
pub const MAX_RESUMES: u32 = 3;
/// The pause before a resume (times the resume's number).
const RESUME_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Opens a blob's bytes again from an offset: how an upload resumes.
pub type Reopen<'a> =
    dyn Fn(u64) -> futures_util::future::BoxFuture<'a, ClientResult<ByteStream>> + Send + Sync + 'a;

/// Whether a chunk's failure is worth resuming: the connection broke, or
/// a gateway in front of the registry answered for it, or the registry
/// holds another offset than the chunk's.
fn resumable(e: &ClientError) -> bool {
    match e {
        ClientError::Transport(_) => true,
        ClientError::Status { status, .. } => matches!(status.as_u16(), 416 | 502..=504),
        _ => false,
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

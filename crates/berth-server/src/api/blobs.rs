//! Blob reads and deletes.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use berth_oci::range::{RangeRequest, parse_range};
use berth_oci::{Digest, RepoName};
use http::{HeaderMap, StatusCode, header};

use super::authz::Caller;
use super::error::ApiError;
use super::{ApiResult, set_header};
use crate::config::Action;
use crate::registry::{MirroredBlob, Registry, RegistryError};

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`, with single `Range` support;
/// `caller` is who asks, for `hydrateBlobOnRead`.
pub(crate) async fn get(
    reg: &Registry,
    name: &RepoName,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
    mirror: Option<&dyn crate::registry::Mirror>,
    caller: &Caller,
) -> ApiResult {
    let mut source = name.clone();
    let len = match reg.blob_len(name, digest).await {
        Err(RegistryError::BlobUnknown(d)) => match hydrate(reg, name, digest, caller).await {
            Some((from, len)) => {
                source = from;
                len
            }
            None => {
                let Some(mirror) = mirror else {
                    return Err(RegistryError::BlobUnknown(d).into());
                };
                return match mirror.blob(name, digest).await? {
                    Some(blob) => Ok(mirrored(blob, digest, head)),
                    None => Err(RegistryError::BlobUnknown(d).into()),
                };
            }
        },
        found => found?,
    };
    let name = &source;
    if !head && let Some(url) = reg.blob_url(name, digest).await? {
        // `storage.redirectBlobURL`: the client fetches from the object
        // store directly.
        let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
        set_header(&mut resp, "location", &url);
        set_header(&mut resp, "docker-content-digest", &digest.to_string());
        set_header(&mut resp, "content-length", "0");
        return Ok(resp);
    }
    if head {
        // A HEAD is how a pushing client learns it need not upload a blob.
        reg.touch_blob(name, digest);
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(RangeRequest::Full, |r| parse_range(r, len));
    let (status, start, count) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            return Err(ApiError::new(
                berth_oci::ErrorCode::BlobUnknown,
                "requested range not satisfiable",
            )
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .with_header(header::CONTENT_RANGE, &format!("bytes */{len}")));
        }
    };
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(reg.read_blob_range(name, digest, start, count).await?)
    };
    let mut resp = (status, body).into_response();
    set_header(&mut resp, "content-type", "application/octet-stream");
    set_header(&mut resp, "content-length", &count.to_string());
    set_header(&mut resp, "docker-content-digest", &digest.to_string());
    set_header(&mut resp, "etag", &format!("\"{digest}\""));
    set_header(&mut resp, "accept-ranges", "bytes");
    set_header(&mut resp, "cache-control", "max-age=31536000");
    if status == StatusCode::PARTIAL_CONTENT {
        set_header(
            &mut resp,
            "content-range",
            &format!("bytes {start}-{}/{len}", start + count - 1),
        );
    }
    Ok(resp)
}

/// `hydrateBlobOnRead`: the repository the missed blob is read from and
/// its length, when the root hydrates and another of its repositories that
/// the caller may read holds it. A caller who may push to `name` gets the
/// blob linked there first (as a mount), and it is read from `name`.
async fn hydrate(
    reg: &Registry,
    name: &RepoName,
    digest: &Digest,
    caller: &Caller,
) -> Option<(RepoName, u64)> {
    if !reg.policies().hydrates(name) {
        return None;
    }
    let holder = reg
        .blob_holders(name, digest)
        .await
        .into_iter()
        .find(|h| caller.may(h, Action::Read))?;
    if caller.may(name, Action::Create) {
        match reg.mount_blob(name, &holder, digest).await {
            Ok(true) => {
                if let Ok(len) = reg.blob_len(name, digest).await {
                    return Some((name.clone(), len));
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::info!(repo = %name, %digest, "blob not hydrated, read from {holder}: {e}")
            }
        }
    }
    let len = reg.blob_len(&holder, digest).await.ok()?;
    Some((holder, len))
}

/// A blob the mirror is fetching: its bytes as they arrive (a `Range` is
/// not honoured until the copy is stored; the whole blob is a valid
/// answer to one).
fn mirrored(blob: MirroredBlob, digest: &Digest, head: bool) -> Response {
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(blob.stream)
    };
    let mut resp = (StatusCode::OK, body).into_response();
    set_header(&mut resp, "content-type", "application/octet-stream");
    if let Some(len) = blob.len {
        set_header(&mut resp, "content-length", &len.to_string());
    }
    set_header(&mut resp, "docker-content-digest", &digest.to_string());
    set_header(&mut resp, "etag", &format!("\"{digest}\""));
    resp
}

/// `DELETE /v2/<name>/blobs/<digest>`.
pub(crate) async fn delete(reg: &Registry, name: &RepoName, digest: &Digest) -> ApiResult {
    reg.delete_blob(name, digest).await?;
    Ok(accepted_empty())
}

pub(crate) fn accepted_empty() -> Response {
    let mut resp = StatusCode::ACCEPTED.into_response();
    set_header(&mut resp, "content-length", "0");
    resp
}

//! Upload sessions: start (plain, monolithic, mount), status, chunks,
//! completion and cancellation.

use std::net::IpAddr;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use berth_oci::digest::DigestError;
use berth_oci::range::parse_content_range;
use berth_oci::{Digest, ErrorCode, RepoName};
use http::{HeaderMap, StatusCode, header};

use super::error::{ApiError, upload_range};
use super::params::Params;
use super::{ApiResult, set_header};
use crate::registry::{Registry, RegistryError, UploadId};

fn digest_param(q: &Params, key: &str) -> Result<Option<Digest>, ApiError> {
    q.get(key)
        .map(|s| {
            s.parse::<Digest>().map_err(|e| match e {
                DigestError::Invalid(p) => ApiError::new(ErrorCode::DigestInvalid, p.to_string()),
                DigestError::Unsupported(a) => ApiError::new(
                    ErrorCode::DigestInvalid,
                    format!("unsupported digest algorithm {a:?}"),
                ),
            })
        })
        .transpose()
}

/// 201 with the blob's location and digest.
fn created(name: &RepoName, digest: &Digest) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    set_header(&mut resp, "location", &format!("/v2/{name}/blobs/{digest}"));
    set_header(&mut resp, "docker-content-digest", &digest.to_string());
    set_header(&mut resp, "content-length", "0");
    resp
}

/// A session's location and progress, with `status`.
fn session(status: StatusCode, name: &RepoName, id: UploadId, size: u64) -> Response {
    let mut resp = status.into_response();
    set_header(
        &mut resp,
        "location",
        &format!("/v2/{name}/blobs/uploads/{id}"),
    );
    set_header(&mut resp, "range", &upload_range(size));
    set_header(&mut resp, "content-length", "0");
    set_header(&mut resp, "docker-upload-uuid", &id.to_string());
    set_header(&mut resp, "blob-upload-session-id", &id.to_string());
    resp
}

/// The chunk's `Content-Range`, checked against `Content-Length`. A bad
/// header is a 416, as the spec asks.
fn chunk_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = |m: String| {
        ApiError::new(ErrorCode::BlobUploadInvalid, m)
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
    };
    let text = v
        .to_str()
        .map_err(|_| bad("Content-Range is not text".into()))?;
    let (start, end) = parse_content_range(text).map_err(|e| bad(e.to_string()))?;
    if let Some(len) = content_length(headers)
        && len != end - start + 1
    {
        return Err(bad(format!(
            "Content-Range {start}-{end} does not match Content-Length {len}"
        )));
    }
    Ok(Some((start, end)))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `POST /v2/<name>/blobs/uploads/`: a new session, a monolithic upload
/// (`?digest=`), or a cross-repository mount (`?mount=&from=`) from
/// `mount_from`, the source authorization found the caller may read. A
/// session counts against the caps on sessions open per repository and
/// per `client` address (429 past one).
pub(crate) async fn start(
    reg: &Registry,
    name: &RepoName,
    q: &Params,
    body: Body,
    mount_from: Option<RepoName>,
    client: Option<IpAddr>,
) -> ApiResult {
    if q.get("mount").is_some() {
        // A mount that cannot happen (bad digest, bad, unknown or
        // unreadable source) falls back to a plain session, as the spec
        // asks.
        let digest = q.get("mount").and_then(|d| d.parse::<Digest>().ok());
        if let (Some(digest), Some(from)) = (digest, mount_from)
            && reg.mount_blob(name, &from, &digest).await?
        {
            return Ok(created(name, &digest));
        }
    } else if let Some(digest) = digest_param(q, "digest")? {
        reg.put_blob(name, &digest, body.into_data_stream()).await?;
        return Ok(created(name, &digest));
    }
    let id = reg.open_upload(name, client).await?;
    Ok(session(StatusCode::ACCEPTED, name, id, 0))
}

/// `GET /v2/<name>/blobs/uploads/<id>`: progress.
pub(crate) async fn status(reg: &Registry, name: &RepoName, id: UploadId) -> ApiResult {
    let size = reg.upload_size(name, id).await?;
    Ok(session(StatusCode::NO_CONTENT, name, id, size))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: a chunk, or a stream without
/// `Content-Range`.
pub(crate) async fn patch(
    reg: &Registry,
    name: &RepoName,
    id: UploadId,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    // A refused chunk (416) says where the session stands, as the spec's
    // example shows.
    let refused = |e: ApiError, size: u64| {
        e.with_header(header::LOCATION, &format!("/v2/{name}/blobs/uploads/{id}"))
            .with_header(header::RANGE, &upload_range(size))
            .with_header(
                header::HeaderName::from_static("blob-upload-session-id"),
                &id.to_string(),
            )
    };
    let range = match chunk_range(headers) {
        Ok(r) => r,
        Err(e) => return Err(refused(e, reg.upload_size(name, id).await?)),
    };
    match reg
        .append_chunk(name, id, range, body.into_data_stream())
        .await
    {
        Ok(size) => Ok(session(StatusCode::ACCEPTED, name, id, size)),
        Err(RegistryError::UploadOutOfOrder { size }) => Err(refused(
            RegistryError::UploadOutOfOrder { size }.into(),
            size,
        )),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: completion, with an
/// optional last chunk.
pub(crate) async fn put(
    reg: &Registry,
    name: &RepoName,
    id: UploadId,
    q: &Params,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let digest = digest_param(q, "digest")?.ok_or_else(|| {
        ApiError::new(ErrorCode::DigestInvalid, "the digest parameter is required")
    })?;
    let range = chunk_range(headers)?;
    reg.finish_upload(name, id, &digest, range, body.into_data_stream())
        .await?;
    Ok(created(name, &digest))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`: cancel.
pub(crate) async fn cancel(reg: &Registry, name: &RepoName, id: UploadId) -> ApiResult {
    reg.cancel_upload(name, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

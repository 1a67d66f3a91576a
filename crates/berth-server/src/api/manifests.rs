//! Manifests, tags, the catalog and referrers.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use berth_oci::manifest::bare_media_type;
use berth_oci::media::OCI_INDEX;
use berth_oci::{Digest, ErrorCode, Reference, RepoName};
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;

use super::blobs::accepted_empty;
use super::error::ApiError;
use super::params::Params;
use super::{ApiResult, body_response, set_header};
use crate::registry::{Registry, RegistryError};

/// The largest manifest accepted, as zot and the CNCF registry.
pub(crate) const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Whom a manifest read asks besides storage.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ask<'a> {
    /// An extension's rule on pulls.
    pub gate: Option<&'a dyn crate::registry::PullGate>,
    /// Where a miss is fetched from.
    pub mirror: Option<&'a dyn crate::registry::Mirror>,
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`.
pub(crate) async fn get(
    reg: &Registry,
    name: &RepoName,
    reference: &Reference,
    head: bool,
    ask: Ask<'_>,
) -> ApiResult {
    let m = match (reg.get_manifest(name, reference).await, ask.mirror) {
        (Ok(local), Some(mirror)) => match reference {
            Reference::Tag(t) if mirror.recheck_due(name, t.as_str()) => mirror
                .manifest(name, reference, Some(&local.digest))
                .await?
                .unwrap_or(local),
            _ => local,
        },
        (Err(RegistryError::ManifestUnknown(r)), Some(mirror)) => mirror
            .manifest(name, reference, None)
            .await?
            .ok_or(RegistryError::ManifestUnknown(r))?,
        (found, _) => found?,
    };
    if let Some(gate) = ask.gate {
        use crate::registry::PullRefusal;
        match gate.check(name, reference, &m.digest, &m.bytes).await {
            Ok(()) => {}
            Err(PullRefusal::Denied(message)) => {
                return Err(ApiError::new(berth_oci::ErrorCode::Denied, message));
            }
            Err(PullRefusal::Failed(e)) => return Err(e.into()),
        }
    }
    if head {
        if let Reference::Digest(d) = reference {
            // A client checking before it pushes an index: GC spares it.
            reg.touch_blob(name, d);
        }
    } else {
        reg.record_pull(name, &m.digest);
    }
    let len = m.bytes.len();
    let body = if head {
        Body::empty()
    } else {
        Body::from(m.bytes)
    };
    let mut resp = (StatusCode::OK, body).into_response();
    set_header(&mut resp, "content-type", &m.media_type);
    set_header(&mut resp, "content-length", &len.to_string());
    set_header(&mut resp, "docker-content-digest", &m.digest.to_string());
    set_header(&mut resp, "etag", &format!("\"{}\"", m.digest));
    Ok(resp)
}

/// Reads a body of at most `limit` bytes, answering 413 past it.
/// The most of a refused body read and dropped before the answer.
const DRAIN_BOUND: u64 = 16 << 20;
/// The longest that takes.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads `body` to its end and drops it, for at most [`DRAIN_TIME`] (the
/// caller checked its declared length against [`DRAIN_BOUND`]).
async fn drain(body: Body) {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(_frame)) = body.frame().await {}
    })
    .await;
}

pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        // Read what the client sends on (within a bound) before answering:
        // a client that writes its whole body before it reads would
        // otherwise see the connection closed under it, not the 413.
        if n <= DRAIN_BOUND {
            drain(body).await;
        }
        return Err(ApiError::too_large(limit));
    }
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::new(
            ErrorCode::ManifestInvalid,
            format!("reading the body failed: {e}"),
        )),
    }
}

/// `PUT /v2/<name>/manifests/<reference>`, by `pushed_by` (the caller's
/// name; `None` for an anonymous caller), recorded with the manifest.
pub(crate) async fn put(
    reg: &Registry,
    name: &RepoName,
    reference: &Reference,
    headers: &HeaderMap,
    body: Body,
    create_only: bool,
    pushed_by: Option<&str>,
) -> ApiResult {
    let bytes = read_limited(headers, body, MAX_MANIFEST_BYTES).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(bare_media_type);
    let put = reg
        .put_manifest_as(
            name,
            reference,
            content_type,
            &bytes,
            create_only,
            pushed_by,
        )
        .await?;
    let mut resp = StatusCode::CREATED.into_response();
    set_header(
        &mut resp,
        "location",
        &format!("/v2/{name}/manifests/{}", put.digest),
    );
    set_header(&mut resp, "docker-content-digest", &put.digest.to_string());
    set_header(&mut resp, "content-length", "0");
    if let Some(subject) = put.subject {
        set_header(&mut resp, "oci-subject", &subject.to_string());
    }
    Ok(resp)
}

/// `DELETE /v2/<name>/manifests/<reference>`.
pub(crate) async fn delete(
    reg: &Registry,
    name: &RepoName,
    reference: &Reference,
    detect_collision: bool,
) -> ApiResult {
    reg.delete_manifest_checked(name, reference, detect_collision)
        .await?;
    Ok(accepted_empty())
}

/// One page of a sorted list: entries after `last`, at most `n`, and the
/// `Link` to the next page when more remain.
fn paginate(
    all: Vec<String>,
    q: &Params,
    path: &str,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let n = match q.get("n") {
        None | Some("") => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(
                ErrorCode::Unsupported,
                format!("n must be a non-negative integer, got {s:?}"),
            )
            .with_status(StatusCode::BAD_REQUEST)
        })?),
    };
    let start = match q.get("last") {
        Some(last) if !last.is_empty() => all.partition_point(|x| x.as_str() <= last),
        _ => 0,
    };
    let rest = &all[start..];
    let Some(n) = n else {
        return Ok((rest.to_vec(), None));
    };
    let page: Vec<String> = rest.iter().take(n).cloned().collect();
    let link = match page.last() {
        Some(last) if rest.len() > n => Some(format!("<{path}?n={n}&last={last}>; rel=\"next\"")),
        _ => None,
    };
    Ok((page, link))
}

fn list_response(
    key: &str,
    name: Option<&RepoName>,
    page: Vec<String>,
    link: Option<String>,
) -> Response {
    let body = match name {
        Some(n) => json!({ "name": n.as_str(), key: page }),
        None => json!({ key: page }),
    };
    let mut resp = body_response(
        StatusCode::OK,
        "application/json",
        body.to_string().into_bytes(),
    );
    if let Some(link) = link {
        set_header(&mut resp, "link", &link);
    }
    resp
}

/// `GET /v2/<name>/tags/list`.
pub(crate) async fn tags(reg: &Registry, name: &RepoName, q: &Params) -> ApiResult {
    let all = reg.tags(name).await?;
    let (page, link) = paginate(all, q, &format!("/v2/{name}/tags/list"))?;
    Ok(list_response("tags", Some(name), page, link))
}

/// `GET /v2/_catalog`.
pub(crate) async fn catalog(
    reg: &Registry,
    q: &Params,
    caller: &super::authz::Caller,
) -> ApiResult {
    // Only what the caller may read.
    let all = reg
        .catalog()
        .await?
        .into_iter()
        .filter(|n| caller.sees_in_catalog(n))
        .map(|n| n.to_string())
        .collect();
    let (page, link) = paginate(all, q, "/v2/_catalog")?;
    Ok(list_response("repositories", None, page, link))
}

/// `GET /v2/<name>/referrers/<digest>`.
pub(crate) async fn referrers(
    reg: &Registry,
    name: &RepoName,
    digest: &Digest,
    q: &Params,
) -> ApiResult {
    let filter = q.get("artifactType").filter(|t| !t.is_empty());
    let manifests = reg.referrers(name, digest, filter).await?;
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut resp = body_response(StatusCode::OK, OCI_INDEX, body.to_string().into_bytes());
    if filter.is_some() {
        set_header(&mut resp, "oci-filters-applied", "artifactType");
    }
    Ok(resp)
}

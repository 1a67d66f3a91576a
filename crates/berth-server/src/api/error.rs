//! The one place where errors become HTTP responses with the OCI error body.

use axum::response::{IntoResponse, Response};
use berth_oci::{ErrorBody, ErrorCode};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use super::endpoint::PathError;
use crate::meta::MetaError;
use crate::registry::RegistryError;
use crate::storage::StorageError;

/// The `Retry-After` of a 503: long enough for a restart of Redis or of
/// an S3 endpoint to be noticed, short enough for a client to wait.
const RETRY_AFTER_SECS: &str = "1";

/// The `Retry-After` of a 429 for too many upload sessions: a session
/// ends when its client completes or cancels it, which takes a while.
const UPLOADS_RETRY_AFTER_SECS: &str = "5";

/// A response-extension carrying the real cause of a 500, for the access
/// log; the client only sees a generic message.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

/// An error answered to the client. Boxed: it travels in every handler's
/// `Result`, and most results are not errors.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    detail: serde_json::Value,
    headers: HeaderMap,
    internal: Option<String>,
}

impl ApiError {
    /// An error with the code's default status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status: StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
            headers: HeaderMap::new(),
            internal: None,
        }))
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.0.detail = detail;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.0.headers.insert(name, v);
        }
        self
    }

    /// A server fault: logged with its cause, answered generically.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(ErrorCode::Unknown, "internal server error")
            .with_status(StatusCode::INTERNAL_SERVER_ERROR);
        e.0.internal = Some(cause.to_string());
        e
    }

    /// `503` with `Retry-After` for a service that is down for now:
    /// `message` (naming the service) for the client, `cause` for the log.
    pub fn unavailable(message: &str, cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(ErrorCode::Unavailable, format!("{message}; retry later"))
            .with_header(header::RETRY_AFTER, RETRY_AFTER_SECS);
        e.0.internal = Some(cause.to_string());
        e
    }

    /// `400` for a request the route cannot take (a missing or bad
    /// parameter, a body that is no key), saying why.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unsupported, message).with_status(StatusCode::BAD_REQUEST)
    }

    /// `405` for a method the route does not have.
    pub fn method_not_allowed() -> Self {
        Self::new(ErrorCode::Unsupported, "method not allowed on this route")
    }

    /// `404` for a path that is no route.
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NameUnknown, "no such route")
    }

    /// `413` for a body over a limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::SizeInvalid,
            format!("body larger than {limit} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }
}

/// The `Range` value for an upload holding `size` bytes: `0-<last byte>`,
/// and `0-0` when empty, as the spec's examples show.
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as R;
        let msg = e.to_string();
        match e {
            R::NameUnknown(_) => Self::new(ErrorCode::NameUnknown, msg),
            R::BlobUnknown(d) => {
                Self::new(ErrorCode::BlobUnknown, msg).with_detail(json!({ "digest": d }))
            }
            R::UploadUnknown => Self::new(ErrorCode::BlobUploadUnknown, msg),
            R::UploadOutOfOrder { size } => Self::new(ErrorCode::BlobUploadInvalid, msg)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header(header::RANGE, &upload_range(size)),
            R::UploadInvalid(_) => Self::new(ErrorCode::BlobUploadInvalid, msg),
            R::DigestMismatch { expected, actual } => Self::new(ErrorCode::DigestInvalid, msg)
                .with_detail(json!({ "expected": expected, "actual": actual })),
            R::DigestInvalid(_) => Self::new(ErrorCode::DigestInvalid, msg),
            R::Unsupported(_) => Self::new(ErrorCode::Unsupported, msg),
            R::ManifestUnknown(r) => {
                Self::new(ErrorCode::ManifestUnknown, msg).with_detail(json!({ "reference": r }))
            }
            R::ManifestInvalid(_) => Self::new(ErrorCode::ManifestInvalid, msg),
            R::ManifestBlobUnknown(d) => {
                Self::new(ErrorCode::ManifestBlobUnknown, msg).with_detail(json!({ "digest": d }))
            }
            R::SizeInvalid(_) => Self::new(ErrorCode::SizeInvalid, msg),
            R::TagExists(_) => Self::new(ErrorCode::Denied, msg),
            R::BodyRead(_) => Self::new(ErrorCode::BlobUploadInvalid, msg),
            R::TooManyUploads { .. } => Self::new(ErrorCode::TooManyRequests, msg)
                .with_header(header::RETRY_AFTER, UPLOADS_RETRY_AFTER_SECS),
            // zot's answer to a push past `maxRepos`, with its detail.
            R::TooManyRepos { count, limit } => Self::new(ErrorCode::TooManyRequests, msg)
                .with_detail(json!({
                    "current": count.to_string(),
                    "projected": (count + 1).to_string(),
                    "limit": limit.to_string(),
                })),
            R::QuotaExceeded {
                rule,
                limit,
                used,
                projected,
            } => Self::new(ErrorCode::Denied, msg).with_detail(json!({
                "quota": rule,
                "current": used.to_string(),
                "projected": projected.to_string(),
                "limit": limit.to_string(),
            })),
            // zot's answer: 400 MANIFEST_INVALID naming the reference.
            R::LintFailed { reference, missing } => Self::new(ErrorCode::ManifestInvalid, msg)
                .with_detail(json!({ "reference": reference, "missingAnnotations": missing })),
            R::TagImmutable { tag, rule } => {
                Self::new(ErrorCode::Denied, msg).with_detail(json!({ "tag": tag, "rule": rule }))
            }
            // zot's answer to a deletion its `detectManifestCollision` stops.
            R::ManifestCollision { digest, tags } => Self::new(ErrorCode::ManifestInvalid, msg)
                .with_status(StatusCode::CONFLICT)
                .with_detail(json!({ "digest": digest, "tags": tags })),
            R::Storage(StorageError::NameConflict(m)) => Self::new(ErrorCode::NameInvalid, m),
            R::Storage(StorageError::Unavailable { service, .. })
            | R::Meta(MetaError::Unavailable { service, .. }) => {
                Self::unavailable(&format!("{service} is unavailable"), msg)
            }
            R::Storage(StorageError::LockBusy { .. }) | R::Meta(MetaError::Contended(_)) => {
                Self::unavailable("the repository is busy", msg)
            }
            R::Root { source, .. } => Self::from(R::Storage(source)),
            R::Storage(e) => Self::internal(e),
            R::Meta(e) => Self::internal(e),
            R::Internal(e) => Self::internal(e),
        }
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::NotFound => Self::not_found(),
            PathError::NameInvalid(m) => Self::new(ErrorCode::NameInvalid, m),
            PathError::DigestInvalid(m) => Self::new(ErrorCode::DigestInvalid, m),
            PathError::DigestUnsupported(a) => Self::new(
                ErrorCode::DigestInvalid,
                format!("unsupported digest algorithm {a:?}"),
            ),
            PathError::TagInvalid(m) => Self::new(ErrorCode::ManifestInvalid, m),
            PathError::UploadUnknown => {
                Self::new(ErrorCode::BlobUploadUnknown, "upload session is not known")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = *self.0;
        let body = ErrorBody::single(e.code, e.message, e.detail);
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (e.status, bytes).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().extend(e.headers);
        if let Some(cause) = e.internal {
            resp.extensions_mut().insert(InternalCause(cause));
        }
        resp
    }
}

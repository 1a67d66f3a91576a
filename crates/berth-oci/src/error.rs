//! The distribution spec's error codes and their JSON body,
//! `{"errors":[{"code","message","detail"}]}`.

use serde::Serialize;

/// An error code of the distribution spec (plus `TOOMANYREQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not in the spec's table: the CNCF registry's code for a server
    /// fault (500), which has no code of its own in the spec.
    Unknown,
    /// Not in the spec's table: the CNCF registry's code for a service
    /// that is down for now (503): retry later.
    Unavailable,
}

impl ErrorCode {
    /// The code as written in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
            Self::Unknown => "UNKNOWN",
            Self::Unavailable => "UNAVAILABLE",
        }
    }

    /// The spec's short description of the code.
    pub fn message(self) -> &'static str {
        match self {
            Self::BlobUnknown => "blob unknown to registry",
            Self::BlobUploadInvalid => "blob upload invalid",
            Self::BlobUploadUnknown => "blob upload unknown to registry",
            Self::DigestInvalid => "provided digest did not match uploaded content",
            Self::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            Self::ManifestInvalid => "manifest invalid",
            Self::ManifestUnknown => "manifest unknown to registry",
            Self::NameInvalid => "invalid repository name",
            Self::NameUnknown => "repository name not known to registry",
            Self::SizeInvalid => "provided length did not match content length",
            Self::Unauthorized => "authentication required",
            Self::Denied => "requested access to the resource is denied",
            Self::Unsupported => "the operation is unsupported",
            Self::TooManyRequests => "too many requests",
            Self::Unknown => "unknown error",
            Self::Unavailable => "service unavailable",
        }
    }

    /// The HTTP status the spec pairs with the code by default.
    pub fn status(self) -> u16 {
        match self {
            Self::BlobUnknown
            | Self::BlobUploadUnknown
            | Self::ManifestUnknown
            | Self::NameUnknown => 404,
            Self::Unauthorized => 401,
            Self::Denied => 403,
            Self::Unsupported => 405,
            Self::TooManyRequests => 429,
            Self::BlobUploadInvalid
            | Self::DigestInvalid
            | Self::ManifestBlobUnknown
            | Self::ManifestInvalid
            | Self::NameInvalid
            | Self::SizeInvalid => 400,
            Self::Unknown => 500,
            Self::Unavailable => 503,
        }
    }
}

/// One entry of an error body.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEntry {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// The body `{"errors":[...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub errors: Vec<ErrorEntry>,
}

impl ErrorBody {
    /// A body with one error.
    pub fn single(code: ErrorCode, message: impl Into<String>, detail: serde_json::Value) -> Self {
        Self {
            errors: vec![ErrorEntry {
                code: code.as_str(),
                message: message.into(),
                detail,
            }],
        }
    }
}

//! The trust material's routes. zot's: `POST /v2/_zot/ext/cosign` with a
//! PEM public key, `POST /v2/_zot/ext/notation?truststoreType=ca|signingAuthority`
//! (default `ca`) with certificates; Berth's, on the same paths: `GET`
//! lists what is uploaded (JSON), `DELETE ?id=sha256:…` removes a file.
//! Who may call them was decided by authorization (`Access::Admin`); a
//! body that is no key or certificate (a private key sent by mistake
//! included) is refused with 400 and never stored.

use axum::response::{IntoResponse, Response};
use berth_trust::TrustStoreType;
use http::{HeaderMap, StatusCode, header};

use super::Trust;
use super::material::{self, UploadError};
use crate::api::error::ApiError;
use crate::api::manifests::read_limited;
use crate::api::params::Params;
use crate::config::SigningTool;
use crate::registry::RegistryError;

/// The largest upload: keys and certificate chains are a few KiB.
const MAX_UPLOAD: usize = 256 << 10;

fn refused(e: UploadError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn stored(e: crate::storage::StorageError) -> ApiError {
    RegistryError::from(e).into()
}

/// `201` with the stored file's id.
fn created(id: &str) -> Response {
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "id": id }).to_string(),
    )
        .into_response()
}

/// `POST /v2/_zot/ext/cosign`.
pub(crate) async fn upload_cosign(
    trust: &Trust,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    if !trust.tools.contains(&SigningTool::Cosign) {
        return Err(ApiError::bad_request(
            "cosign verification is off (extensions.trust.cosign)",
        ));
    }
    let bytes = read_limited(headers, body, MAX_UPLOAD).await?;
    material::parse_cosign(&bytes).map_err(refused)?;
    let files = trust.files().map_err(stored)?;
    let id = material::store_upload(files.as_ref(), SigningTool::Cosign, None, &bytes)
        .await
        .map_err(stored)?;
    trust.material_written().await.map_err(stored)?;
    tracing::info!(id, "trust: cosign public key uploaded");
    Ok(created(&id))
}

/// `POST /v2/_zot/ext/notation?truststoreType=ca|signingAuthority`.
pub(crate) async fn upload_notation(
    trust: &Trust,
    q: &Params,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    if !trust.tools.contains(&SigningTool::Notation) {
        return Err(ApiError::bad_request(
            "notation verification is off (extensions.trust.notation)",
        ));
    }
    let store = match q.get("truststoreType") {
        None | Some("") | Some("ca") => TrustStoreType::Ca,
        Some("signingAuthority") => TrustStoreType::SigningAuthority,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "truststoreType {other:?}: expected ca or signingAuthority"
            )));
        }
    };
    let bytes = read_limited(headers, body, MAX_UPLOAD).await?;
    material::parse_notation(&bytes, store).map_err(refused)?;
    let files = trust.files().map_err(stored)?;
    let id = material::store_upload(files.as_ref(), SigningTool::Notation, Some(store), &bytes)
        .await
        .map_err(stored)?;
    trust.material_written().await.map_err(stored)?;
    tracing::info!(
        id,
        truststore = store.as_str(),
        "trust: notation certificate uploaded"
    );
    Ok(created(&id))
}

/// `GET` on either path: every uploaded file of that tool.
pub(crate) async fn list(trust: &Trust, tool: SigningTool) -> Result<Response, ApiError> {
    let material = trust.material();
    let files: Vec<_> = material
        .files
        .iter()
        .filter(|f| f.tool == tool.as_str())
        .collect();
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "files": files }).to_string(),
    )
        .into_response())
}

/// `DELETE ?id=sha256:…` on either path: removes an uploaded file.
pub(crate) async fn delete(trust: &Trust, q: &Params) -> Result<Response, ApiError> {
    let id = q
        .get("id")
        .filter(|id| {
            id.strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .ok_or_else(|| ApiError::bad_request("give the file's id: ?id=sha256:<hex>"))?;
    let files = trust.files().map_err(stored)?;
    if !material::remove(files.as_ref(), id).await.map_err(stored)? {
        return Err(ApiError::new(
            berth_oci::ErrorCode::NameUnknown,
            format!("no key or certificate {id}"),
        )
        .with_status(StatusCode::NOT_FOUND));
    }
    trust.material_written().await.map_err(stored)?;
    tracing::info!(id, "trust: key or certificate removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

//! `/zot/auth/apikey` (with `http.auth.apikey`): a logged-in user lists
//! (`GET`), makes (`POST {label, scopes, expirationDate}`) and revokes
//! (`DELETE ?id=`) their API keys. Bodies follow zot's.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use berth_oci::ErrorCode;
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::error::ApiError;
use crate::auth::apikeys::{ApiKey, ApiKeys};
use crate::auth::{Identity, Login};

/// The largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024;
/// zot's "no time" in key details.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339(t: Option<i64>) -> String {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

fn details(k: &ApiKey) -> Value {
    json!({
        "uuid": k.uuid,
        "label": k.label,
        "scopes": k.scopes,
        "createdAt": rfc3339(Some(k.created_at)),
        "expirationDate": rfc3339(k.expires_at),
        "isExpired": k.is_expired(crate::auth::apikeys::now()),
        "lastUsed": rfc3339(k.last_used),
        "creatorUa": k.creator_ua,
        "generatedBy": "manual",
    })
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unsupported, msg).with_status(StatusCode::BAD_REQUEST)
}

/// The store and the user a request acts for (authorization let only a
/// user logged in with a password through).
fn owner<'a>(
    state: &'a AppState,
    login: Option<&Login>,
) -> Result<(&'a ApiKeys, String), ApiError> {
    let keys = state
        .auth
        .as_ref()
        .and_then(|a| a.apikeys())
        .ok_or_else(ApiError::not_found)?;
    match login.map(|l| &l.identity) {
        Some(Identity::User { name, .. }) => Ok((keys, name.clone())),
        _ => Err(ApiError::new(
            ErrorCode::Denied,
            "API keys are managed by a user logged in with a password",
        )),
    }
}

/// The groups an OpenID user's new key keeps (`None` for a user of
/// htpasswd or LDAP, whom the key finds again at each use).
pub(crate) fn openid_groups(login: Option<&Login>) -> Option<Vec<String>> {
    match login {
        Some(Login {
            identity: Identity::User { groups, .. },
            method: crate::auth::LoginMethod::OpenId,
            ..
        }) => Some(groups.clone()),
        _ => None,
    }
}

/// Runs a handler body on a blocking thread: the key store's reads and
/// durable commits wait for the disk.
async fn blocking(f: impl FnOnce() -> Result<Response, ApiError> + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(e)))
        .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn list(
    State(state): State<AppState>,
    login: Option<Extension<Login>>,
) -> Response {
    blocking(move || -> Result<Response, ApiError> {
        let (keys, user) = owner(&state, login.as_deref())?;
        let list: Vec<Value> = keys
            .list(&user)
            .map_err(ApiError::internal)?
            .iter()
            .map(details)
            .collect();
        Ok(Json(json!({ "apiKeys": list })).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewKey {
    #[serde(default)]
    label: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expiration_date: String,
}

pub(super) async fn create(
    State(state): State<AppState>,
    login: Option<Extension<Login>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || -> Result<Response, ApiError> {
        let (keys, user) = owner(&state, login.as_deref())?;
        let openid_groups = openid_groups(login.as_deref());
        if body.len() > BODY_LIMIT {
            return Err(ApiError::too_large(BODY_LIMIT));
        }
        let req: NewKey = serde_json::from_slice(&body)
            .map_err(|e| bad_request(format!("invalid request body: {e}")))?;
        for s in &req.scopes {
            globset::Glob::new(s)
                .map_err(|e| bad_request(format!("scope {s:?} is not a repository glob: {e}")))?;
        }
        let expires_at = match req.expiration_date.trim() {
            "" => None,
            d => {
                let t = OffsetDateTime::parse(d, &Rfc3339).map_err(|e| {
                    bad_request(format!("expirationDate {d:?} is not RFC 3339: {e}"))
                })?;
                if t <= OffsetDateTime::now_utc() {
                    return Err(bad_request(format!("expirationDate {d:?} is in the past")));
                }
                Some(t.unix_timestamp())
            }
        };
        let ua = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (record, key) = keys
            .create_for(
                &user,
                openid_groups,
                &req.label,
                &req.scopes,
                expires_at,
                ua,
            )
            .map_err(ApiError::internal)?;
        tracing::info!(user, uuid = %record.uuid, label = %record.label, "api key created");
        let mut body = details(&record);
        body["apiKey"] = json!(key);
        Ok((StatusCode::CREATED, Json(body)).into_response())
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct DeleteQuery {
    id: Option<String>,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    login: Option<Extension<Login>>,
    Query(q): Query<DeleteQuery>,
) -> Response {
    blocking(move || -> Result<Response, ApiError> {
        let (keys, user) = owner(&state, login.as_deref())?;
        let id =
            q.id.filter(|i| !i.is_empty())
                .ok_or_else(|| bad_request("the id parameter names the key to delete"))?;
        if keys.delete(&user, &id).map_err(ApiError::internal)? {
            tracing::info!(user, uuid = %id, "api key revoked");
            Ok(StatusCode::OK.into_response())
        } else {
            Err(ApiError::new(ErrorCode::NameUnknown, "no such API key")
                .with_status(StatusCode::NOT_FOUND))
        }
    })
    .await
}

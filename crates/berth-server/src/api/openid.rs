//! zot's OpenID login routes (`http.auth.openid`): `GET /zot/auth/login?
//! provider=…&callback_ui=…` sends the browser to the provider;
//! `GET /zot/auth/callback/<provider>` takes it back, starts a session and
//! sends it to `callback_ui` (302). What they check is
//! [`crate::auth::openid`]'s; here is how it is answered.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use berth_oci::ErrorCode;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use crate::auth::Auth;
use crate::auth::openid::{CallbackQuery, OpenId, OpenIdError};
use crate::auth::session::Sessions;

#[derive(Debug, Default, Deserialize)]
pub(super) struct LoginQuery {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    callback_ui: Option<String>,
}

fn answer(e: OpenIdError) -> ApiError {
    match &e {
        OpenIdError::UnknownProvider(_) | OpenIdError::CallbackNotAllowed(_) => {
            tracing::info!(error = %e, "openid login refused");
            ApiError::bad_request(e.to_string())
        }
        OpenIdError::Refused(_) => {
            tracing::info!(error = %e, "openid login refused");
            ApiError::new(ErrorCode::Unauthorized, e.to_string())
        }
        OpenIdError::Provider { .. } => {
            tracing::warn!(error = %e, "openid login failed");
            ApiError::new(ErrorCode::Unavailable, e.to_string())
                .with_status(StatusCode::BAD_GATEWAY)
        }
        OpenIdError::Session(s) => ApiError::unavailable("the session store", s),
    }
}

/// The authentication, its OpenID login and its sessions (404 where
/// OpenID is not configured).
fn parts(state: &AppState) -> Result<(&Auth, &OpenId, &Sessions), ApiError> {
    let auth = state.auth.as_deref().ok_or_else(ApiError::not_found)?;
    let openid = auth.openid().ok_or_else(ApiError::not_found)?;
    let sessions = auth
        .sessions()
        .ok_or_else(|| ApiError::unavailable("the session store", "sessions are not open"))?;
    Ok((auth, openid, sessions))
}

/// A `302` to `location`, no caching, with `cookies`.
fn redirect(location: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let run = async {
        let (_, openid, sessions) = parts(&state)?;
        let provider = q
            .provider
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("provider: missing"))?;
        let start = openid
            .start_login(sessions, &headers, provider, q.callback_ui.as_deref())
            .await
            .map_err(answer)?;
        Ok::<_, ApiError>(redirect(&start.location, start.cookie))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let run = async {
        let (auth, openid, sessions) = parts(&state)?;
        match openid.finish_login(sessions, &headers, &provider, &q).await {
            Ok(done) => Ok(redirect(&done.location, done.cookies)),
            Err(e) => {
                // Whatever failed, the login cookie is spent.
                let mut resp = answer(e).into_response();
                if let Some(c) = sessions.login_cleared() {
                    resp.headers_mut().append(header::SET_COOKIE, c);
                }
                if matches!(resp.status(), StatusCode::UNAUTHORIZED) {
                    tokio::time::sleep(auth.fail_delay()).await;
                }
                Ok::<_, ApiError>(resp)
            }
        }
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

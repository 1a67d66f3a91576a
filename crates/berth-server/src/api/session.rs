//! `POST /zot/auth/logout`: ends the browser session the request's cookie
//! names and clears its cookies. Answers `200` with zot's JSON: `{}`, or
//! `{"endSessionUrl": …}` when the session came from an OpenID provider
//! that names an end-session endpoint (zot's web UI sends the browser
//! there).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::AppState;
use super::error::ApiError;

pub(super) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(auth) = &state.auth else {
        return ApiError::not_found().into_response();
    };
    if !super::browser::same_origin(&state, &headers) {
        return super::browser::cross_origin().into_response();
    }
    #[cfg_attr(not(feature = "openid"), allow(unused_mut))]
    let mut body = serde_json::json!({});
    let cookies = match auth.session_login(&headers).await {
        Some(Ok(login)) => {
            #[cfg(feature = "openid")]
            if let (Some(openid), Some(provider)) = (
                auth.openid(),
                login.session.as_ref().and_then(|s| s.provider.as_deref()),
            ) && let Some(url) = openid.end_session_url(provider, &headers, "/login").await
            {
                body = serde_json::json!({ "endSessionUrl": url });
            }
            auth.end_session(&login).await
        }
        _ => auth.sessions().map(|s| s.cleared()).unwrap_or_default(),
    };
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

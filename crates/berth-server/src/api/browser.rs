//! What the API does for browsers: which requests a session cookie may
//! authenticate, and the origin check that keeps other sites from using
//! it (cross-site request forgery).
//!
//! A session cookie authenticates API requests only when they carry zot's
//! `X-ZOT-API-CLIENT` header (as zot decides): a page of another site
//! cannot add a header to a cross-origin request without this server's
//! CORS consent. On top of that, a request that changes something and
//! comes with a session must come from this registry's own origin (its
//! `Origin`, or without one its `Referer`): the address it was sent to,
//! `http.externalUrl`'s, or `http.allowOrigin`'s when that names one.

use http::{HeaderMap, Method, StatusCode};

use super::AppState;
use super::error::ApiError;
use crate::auth::session::UI_CLIENT_HEADER;

/// Whether a session cookie may authenticate this request.
pub(super) fn cookie_allowed(headers: &HeaderMap) -> bool {
    headers.contains_key(UI_CLIENT_HEADER) && !headers.contains_key(http::header::AUTHORIZATION)
}

/// Whether the method changes nothing.
pub(super) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<url::Url> {
    url::Url::parse(url).ok().filter(|u| u.host_str().is_some())
}

/// Whether a browser request comes from this registry's pages (or from
/// no page at all: a request with neither `Origin` nor `Referer` is no
/// cross-site form or script of a current browser).
pub(super) fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let claimed = headers
        .get(http::header::ORIGIN)
        .or_else(|| headers.get(http::header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(claimed) = claimed else {
        return true;
    };
    let Some(from) = origin_of(claimed) else {
        return false;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The address the request was sent to (whatever scheme a proxy in
    // front ended TLS with).
    let from_authority = match from.port() {
        Some(p) => format!("{}:{p}", from.host_str().unwrap_or("")),
        None => from.host_str().unwrap_or("").to_string(),
    };
    if !host.is_empty() && from_authority.eq_ignore_ascii_case(host) {
        return true;
    }
    let from = from.origin();
    [state.external_url.as_deref(), state.allow_origin.as_deref()]
        .into_iter()
        .flatten()
        .filter(|o| *o != "*")
        .filter_map(origin_of)
        .any(|o| o.origin() == from)
}

/// The answer to a state-changing request with a session from another
/// origin.
pub(super) fn cross_origin() -> ApiError {
    tracing::info!("request refused: a session's change from another origin");
    ApiError::new(
        berth_oci::ErrorCode::Denied,
        "a request with a session cookie must come from this registry's own pages",
    )
    .with_status(StatusCode::FORBIDDEN)
}

//! The health probes, answered from what the background checks
//! ([`crate::health`]) last found, never by reaching a service per probe:
//! `/livez` is up while the process serves; `/readyz` is 503 while the
//! metadata store or a storage root cannot be reached, naming which;
//! `/startupz` is 503 until one round of checks has found everything up.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `GET /livez`.
pub(super) async fn livez() -> Response {
    (StatusCode::OK, "ok").into_response()
}

/// `GET /readyz`.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let health = &state.health;
    if health.is_ready() {
        return (StatusCode::OK, "ok").into_response();
    }
    let down: Vec<&str> = health.unavailable().iter().map(|d| d.name()).collect();
    if down.is_empty() {
        unavailable("starting: the dependencies were not checked yet".into())
    } else {
        unavailable(format!("unavailable: {}", down.join(", ")))
    }
}

/// `GET /startupz`.
pub(super) async fn startupz(State(state): State<AppState>) -> Response {
    if state.health.is_started() {
        return (StatusCode::OK, "ok").into_response();
    }
    let down: Vec<&str> = state
        .health
        .unavailable()
        .iter()
        .map(|d| d.name())
        .collect();
    if down.is_empty() {
        unavailable("starting: the dependencies were not checked yet".into())
    } else {
        unavailable(format!("starting: unavailable: {}", down.join(", ")))
    }
}

/// 503 with `Retry-After: 1` and `text`.
fn unavailable(text: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        text,
    )
        .into_response()
}

//! One log line per request: method, path, status, bytes, latency.

use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::header;

use super::error::InternalCause;

pub(crate) async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let bytes = if method == http::Method::HEAD {
        0
    } else {
        resp.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| resp.body().size_hint().exact())
            .unwrap_or(0)
    };
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    if let Some(InternalCause(cause)) = resp.extensions().get::<InternalCause>() {
        tracing::error!(target: "berth::access", %method, path, status, bytes, latency_ms, cause, "request failed");
    } else {
        tracing::info!(target: "berth::access", %method, path, status, bytes, latency_ms, "request");
    }
    resp
}

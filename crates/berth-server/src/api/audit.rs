//! The audit log (`log.audit`): one JSON line per mutating request (`POST`,
//! `PUT`, `PATCH`, `DELETE`) saying who (the authenticated subject), what
//! (method and path with query), from where (client address) and the
//! result (status). Unlike zot, which records only successes, refused and
//! failed attempts are recorded too: they are what an audit is read for.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;

use super::AppState;
use crate::config::ConfigError;

/// The authenticated subject of a request, left on its response by the
/// authentication middleware for the audit.
#[derive(Clone)]
pub(crate) struct AuditSubject(pub(crate) String);

/// Where audit lines go.
pub struct AuditLog {
    out: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Opens `path` for appending; the error names the key.
    pub fn open(path: &Path) -> Result<Self, ConfigError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                ConfigError::key("log.audit", format!("cannot open {}: {e}", path.display()))
            })?;
        Ok(Self {
            out: Mutex::new(file),
        })
    }

    fn write(&self, entry: &serde_json::Value) {
        let mut line = entry.to_string();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line: appends from concurrent requests never
        // interleave within a line.
        if let Err(e) = out.write_all(line.as_bytes()) {
            tracing::error!("log.audit: cannot write: {e}");
        }
    }
}

fn mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

pub(crate) async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(audit) = state.audit.clone().filter(|_| mutating(req.method())) else {
        return next.run(req).await;
    };
    let method = req.method().to_string();
    let object = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    let subject = resp
        .extensions()
        .get::<AuditSubject>()
        .map(|s| s.0.clone())
        .unwrap_or_default();
    let entry = serde_json::json!({
        "level": "info",
        "time": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "component": "audit",
        "clientIP": client,
        "subject": subject,
        "action": method,
        "object": object,
        "status": resp.status().as_u16(),
        "message": "HTTP API Audit",
    });
    audit.write(&entry);
    resp
}

/// For `AppState`: the audit log of a config, if it asks for one.
pub fn from_config(log: &crate::config::LogConfig) -> Result<Option<Arc<AuditLog>>, ConfigError> {
    log.audit
        .as_deref()
        .map(|p| AuditLog::open(p).map(Arc::new))
        .transpose()
}

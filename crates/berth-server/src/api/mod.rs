//! The HTTP API: every route of the distribution spec v1.1 plus health
//! checks.
//!
//! A request's path goes through [`endpoint::parse_path`] once; the
//! `(method, endpoint)` pair picks a handler; handlers call the registry
//! and build responses; errors become OCI bodies only in [`error`].

mod access_log;
mod apikeys;
pub mod audit;
mod authz;
mod blobs;
pub mod cors;
pub mod endpoint;
pub mod error;
mod manifests;
mod params;
mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, Method, StatusCode, header};

use endpoint::{Endpoint, parse_path};
use error::ApiError;
use params::Params;

use crate::registry::Registry;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// `http.auth`, when configured.
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// `http.allowOrigin`, when set.
    pub allow_origin: Option<String>,
    /// `log.audit`, when configured.
    pub audit: Option<Arc<audit::AuditLog>>,
    /// `extensions.metrics`, when on.
    #[cfg(feature = "metrics")]
    pub metrics: Option<Arc<crate::ext::metrics::Metrics>>,
    /// `http.ratelimit`, when set.
    #[cfg(feature = "ratelimit")]
    pub ratelimit: Option<Arc<crate::ext::ratelimit::RateLimits>>,
    /// `http.accessControl`, swapped when the config file changes.
    pub access: Arc<std::sync::RwLock<Option<Arc<crate::auth::access::AccessControl>>>>,
}

impl AppState {
    /// The access control in force now.
    pub fn access_control(&self) -> Option<Arc<crate::auth::access::AccessControl>> {
        self.access
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts new access control in force.
    pub fn set_access_control(&self, access: Option<crate::auth::access::AccessControl>) {
        *self.access.write().unwrap_or_else(|p| p.into_inner()) = access.map(Arc::new);
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// The routes open without credentials.
const HEALTH_PATHS: [&str; 3] = ["/livez", "/readyz", "/startupz"];
/// zot's API key route.
const APIKEY_PATH: &str = "/zot/auth/apikey";

/// Every `(method, route template)` the `/v2` dispatcher serves (others
/// get 405): what the API documentation must cover, and what a test holds
/// the dispatcher to.
pub const V2_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v2/"),
    ("HEAD", "/v2/"),
    ("GET", "/v2/_catalog"),
    ("GET", "/v2/_oci/ext/discover"),
    ("GET", "/v2/{name}/tags/list"),
    ("GET", "/v2/{name}/manifests/{reference}"),
    ("HEAD", "/v2/{name}/manifests/{reference}"),
    ("PUT", "/v2/{name}/manifests/{reference}"),
    ("DELETE", "/v2/{name}/manifests/{reference}"),
    ("GET", "/v2/{name}/blobs/{digest}"),
    ("HEAD", "/v2/{name}/blobs/{digest}"),
    ("DELETE", "/v2/{name}/blobs/{digest}"),
    ("POST", "/v2/{name}/blobs/uploads/"),
    ("GET", "/v2/{name}/blobs/uploads/{uuid}"),
    ("PATCH", "/v2/{name}/blobs/uploads/{uuid}"),
    ("PUT", "/v2/{name}/blobs/uploads/{uuid}"),
    ("DELETE", "/v2/{name}/blobs/uploads/{uuid}"),
    ("GET", "/v2/{name}/referrers/{digest}"),
];

/// The application router, without a socket: tests may drive it directly.
pub fn app(state: AppState) -> Router {
    let health = || async { (StatusCode::OK, "ok") };
    let mut router = Router::new();
    for path in HEALTH_PATHS {
        router = router.route(path, get(health));
    }
    if state.auth.as_ref().is_some_and(|a| a.apikeys().is_some()) {
        router = router.route(
            APIKEY_PATH,
            get(apikeys::list)
                .post(apikeys::create)
                .delete(apikeys::delete),
        );
    }
    #[cfg(feature = "metrics")]
    if let Some(m) = &state.metrics {
        router = router.route(m.path(), get(crate::ext::metrics::serve));
    }
    #[cfg(feature = "openapi")]
    {
        router = router.merge(crate::ext::openapi::router());
    }
    let router = router
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ));
    #[cfg(feature = "ratelimit")]
    let router = router.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::ext::ratelimit::limit,
    ));
    #[cfg(feature = "metrics")]
    let router = router.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::ext::metrics::track,
    ));
    let cors = state
        .allow_origin
        .as_deref()
        .and_then(|o| match cors::layer(o) {
            Ok(l) => Some(l),
            Err(e) => {
                // Refused when the config is loaded; never half-applied.
                tracing::error!("{e}");
                None
            }
        });
    let router = router.with_state(state);
    let router = match cors {
        Some(layer) => router.layer(layer),
        None => router,
    };
    router.layer(axum::middleware::from_fn(access_log::log_request))
}

/// Whether `path` is a health check.
pub fn is_health_route(path: &str) -> bool {
    HEALTH_PATHS.contains(&path)
}

/// Whether `path` is one of the fixed routes beside `/v2` (health checks,
/// API keys): for naming routes in metrics.
pub fn is_fixed_route(path: &str) -> bool {
    HEALTH_PATHS.contains(&path) || path == APIKEY_PATH
}

/// With `http.auth`, lets a `/v2` request through only with good
/// credentials, attaching the caller's identity; a failed login is
/// answered after `failDelay`. Health checks stay open.
async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = &state.auth else {
        return next.run(req).await;
    };
    // Deny by default: only the health checks are open. (Matching the
    // raw path against "/v2" would let "/%76%32/..." through, which the
    // router decodes to a /v2 route.)
    if HEALTH_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let anonymous_allowed = state
        .access_control()
        .is_some_and(|a| a.has_anonymous_access());
    let tls = req
        .extensions()
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .cloned();
    let peer_cert = tls
        .as_ref()
        .and_then(|t| t.peer_certificates.first())
        .map(Vec::as_slice);
    match auth.authenticate(req.headers(), peer_cert).await {
        Ok(login) => {
            let subject = audit::AuditSubject(login.identity.name().to_string());
            req.extensions_mut().insert(login);
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(subject);
            resp
        }
        // No credentials where some repositories are open to anonymous
        // callers, or where a token must be asked for with the scope of
        // the route: let the route's rule decide.
        Err(crate::auth::AuthFailure::Missing) if anonymous_allowed || auth.uses_bearer() => {
            req.extensions_mut()
                .insert(crate::auth::Login::from(crate::auth::Identity::Anonymous));
            next.run(req).await
        }
        Err(failure) => {
            if failure == crate::auth::AuthFailure::Rejected {
                tokio::time::sleep(auth.fail_delay()).await;
            }
            let mut resp = ApiError::new(
                berth_oci::ErrorCode::Unauthorized,
                "authentication required",
            )
            .with_header(header::WWW_AUTHENTICATE, &auth.challenge(None, false))
            .into_response();
            resp.headers_mut().insert(
                "Docker-Distribution-API-Version",
                HeaderValue::from_static("registry/2.0"),
            );
            resp
        }
    }
}

/// Routes every `/v2` request by its parsed endpoint.
async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let caller = authz::Caller::new(&state, parts.extensions.get::<crate::auth::Login>());
    let result = match parse_path(parts.uri.path()) {
        Ok(ep) => match authz::authorize(&caller, &state.registry, &parts.method, &ep).await {
            Ok(()) => {
                let params = Params::parse(parts.uri.query());
                route(
                    &state,
                    &caller,
                    &parts.method,
                    ep,
                    &params,
                    &parts.headers,
                    body,
                )
                .await
            }
            Err(e) => Err(e),
        },
        // A malformed tag names no manifest: only a push is told it is
        // invalid, a read or delete is told it is unknown.
        Err(endpoint::PathError::TagInvalid(m)) if parts.method != Method::PUT => {
            Err(ApiError::new(berth_oci::ErrorCode::ManifestUnknown, m))
        }
        Err(e) => Err(e.into()),
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn route(
    state: &AppState,
    caller: &authz::Caller,
    method: &Method,
    ep: Endpoint,
    q: &Params,
    headers: &http::HeaderMap,
    body: Body,
) -> ApiResult {
    let reg = &state.registry;
    let head = method == Method::HEAD;
    match (method.clone(), ep) {
        (Method::GET | Method::HEAD, Endpoint::Base) => Ok(body_response(
            StatusCode::OK,
            "application/json",
            b"{}".to_vec(),
        )),
        (Method::GET, Endpoint::Catalog) => manifests::catalog(reg, q, caller).await,
        (Method::GET, Endpoint::Discover) => Ok(body_response(
            StatusCode::OK,
            "application/json",
            br#"{"extensions":[]}"#.to_vec(),
        )),
        (Method::GET, Endpoint::Tags { name }) => manifests::tags(reg, &name, q).await,
        (Method::GET | Method::HEAD, Endpoint::Manifest { name, reference }) => {
            manifests::get(reg, &name, &reference, head).await
        }
        (Method::PUT, Endpoint::Manifest { name, reference }) => {
            // Authorized to create but not to update: the tag must still
            // be new when the repository is locked.
            let create_only = !caller.may(&name, crate::config::Action::Update);
            manifests::put(reg, &name, &reference, headers, body, create_only).await
        }
        (Method::DELETE, Endpoint::Manifest { name, reference }) => {
            manifests::delete(reg, &name, &reference).await
        }
        (Method::GET, Endpoint::Referrers { name, digest }) => {
            manifests::referrers(reg, &name, &digest, q).await
        }
        (Method::GET | Method::HEAD, Endpoint::Blob { name, digest }) => {
            blobs::get(reg, &name, &digest, headers, head).await
        }
        (Method::DELETE, Endpoint::Blob { name, digest }) => {
            blobs::delete(reg, &name, &digest).await
        }
        (Method::POST, Endpoint::UploadStart { name }) => {
            uploads::start(reg, &name, q, body, caller).await
        }
        (Method::GET, Endpoint::Upload { name, id }) => uploads::status(reg, &name, id).await,
        (Method::PATCH, Endpoint::Upload { name, id }) => {
            uploads::patch(reg, &name, id, headers, body).await
        }
        (Method::PUT, Endpoint::Upload { name, id }) => {
            uploads::put(reg, &name, id, q, headers, body).await
        }
        (Method::DELETE, Endpoint::Upload { name, id }) => uploads::cancel(reg, &name, id).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// A response with a body and its content type.
fn body_response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// Sets a header from a string, skipping values that are not valid header
/// text (never the case for the digests, names and numbers used here).
fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

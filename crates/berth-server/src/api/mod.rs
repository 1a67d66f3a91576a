//! The HTTP API: every route of the distribution spec v1.1 plus health
//! checks, metrics, API keys and the API document.
//!
//! Every route is a row of [`routes::ROUTES`]. A request's path is parsed
//! into a typed [`endpoint::Endpoint`], authorized once by the access its
//! row declares (`authz`), then the `(method, endpoint)` pair picks a
//! handler; handlers call the registry and build responses; errors become
//! OCI bodies only in [`error`].

mod access_log;
pub(crate) mod apikeys;
pub mod audit;
pub(crate) mod authz;
mod blobs;
mod browser;
pub mod cors;
pub mod endpoint;
pub mod error;
mod health;
pub(crate) mod manifests;
#[cfg(feature = "openid")]
mod openid;
pub(crate) mod params;
pub mod routes;
mod session;
mod token;
mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on};
use http::{HeaderValue, Method, StatusCode, header};

use endpoint::{Endpoint, Mounted, parse_path};
use error::ApiError;
use params::Params;
use routes::{Access, Kind, ROUTES};

use crate::registry::Registry;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// `http.auth`, when configured.
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// `http.allowOrigin`, when set.
    pub allow_origin: Option<String>,
    /// `http.externalUrl`, when set.
    pub external_url: Option<String>,
    /// `http.ReadOnly`: no push, tag move or delete through the API.
    pub read_only: bool,
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
    /// `extensions.search`, when on.
    #[cfg(feature = "search")]
    pub search: Option<Arc<crate::ext::search::Search>>,
    /// What the background checks found of the metadata store and the
    /// storage roots (the probes answer from it).
    pub health: Arc<crate::health::Health>,
    /// `extensions.trust`, when on.
    #[cfg(feature = "trust")]
    pub trust: Option<Arc<crate::ext::trust::Trust>>,
    /// An extension's rule on pulls (the trust extension's
    /// `requireSigned`), asked before a manifest is served.
    pub pull_gate: Option<Arc<dyn crate::registry::PullGate>>,
    /// Where a miss is fetched from (the sync extension's on-demand
    /// mirroring), asked before a 404.
    pub mirror: Option<Arc<dyn crate::registry::Mirror>>,
    /// `extensions.sync`, when on (reloaded with the config file).
    #[cfg(feature = "sync")]
    pub sync: Option<Arc<crate::ext::sync::Sync>>,
    /// `cluster`, when its members do not share storage: who owns which
    /// repository.
    #[cfg(feature = "cluster")]
    pub cluster: Option<Arc<crate::ext::cluster::Cluster>>,
}

impl AppState {
    /// The access control in force now.
    pub fn access_control(&self) -> Option<Arc<crate::auth::access::AccessControl>> {
        self.access
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The optional routes this server has.
    pub fn mounted(&self) -> Mounted<'_> {
        Mounted {
            #[cfg(feature = "metrics")]
            metrics: self.metrics.as_ref().map(|m| m.path()),
            #[cfg(not(feature = "metrics"))]
            metrics: None,
            apikeys: self.auth.as_ref().is_some_and(|a| a.apikeys().is_some()),
            token: self.auth.as_ref().is_some_and(|a| a.exchanges_tokens()),
            #[cfg(feature = "openid")]
            openid: self.auth.as_ref().is_some_and(|a| a.openid().is_some()),
            #[cfg(not(feature = "openid"))]
            openid: false,
            logout: self.auth.as_ref().is_some_and(|a| a.wants_sessions()),
            docs: cfg!(feature = "openapi"),
            #[cfg(feature = "search")]
            search: self.search.is_some(),
            #[cfg(feature = "search")]
            mgmt: self.search.as_ref().is_some_and(|s| s.mgmt()),
            #[cfg(feature = "search")]
            userprefs: self.search.as_ref().is_some_and(|s| s.userprefs()),
            #[cfg(not(feature = "search"))]
            search: false,
            #[cfg(not(feature = "search"))]
            mgmt: false,
            #[cfg(not(feature = "search"))]
            userprefs: false,
            #[cfg(feature = "trust")]
            trust: self.trust.is_some(),
            #[cfg(not(feature = "trust"))]
            trust: false,
            #[cfg(feature = "ui")]
            ui: self.search.as_ref().is_some_and(|s| s.ui()),
            #[cfg(not(feature = "ui"))]
            ui: false,
        }
    }

    /// Puts new access control in force.
    pub fn set_access_control(&self, access: Option<crate::auth::access::AccessControl>) {
        *self.access.write().unwrap_or_else(|p| p.into_inner()) = access.map(Arc::new);
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Every `(method, route template)` the `/v2` dispatcher serves (others
/// get 405), from the route table.
pub fn v2_routes() -> Vec<(&'static str, &'static str)> {
    routes::v2_routes().collect()
}

/// The handler of a route beside `/v2` for `method`, if it has one here
/// (the API document's routes come with their own router).
fn fixed_handler(kind: Kind, method: &str) -> Option<MethodRouter<AppState>> {
    let filter = MethodFilter::try_from(Method::from_bytes(method.as_bytes()).ok()?).ok()?;
    Some(match kind {
        Kind::Livez => on(filter, health::livez),
        Kind::Readyz => on(filter, health::readyz),
        Kind::Startupz => on(filter, health::startupz),
        #[cfg(feature = "metrics")]
        Kind::Metrics => on(filter, crate::ext::metrics::serve),
        Kind::ApiKeys => match method {
            "GET" => get(apikeys::list),
            "POST" => on(filter, apikeys::create),
            "DELETE" => on(filter, apikeys::delete),
            _ => return None,
        },
        Kind::Token => on(filter, token::exchange),
        #[cfg(feature = "openid")]
        Kind::OpenIdLogin => on(filter, openid::login),
        #[cfg(feature = "openid")]
        Kind::OpenIdCallback => on(filter, openid::callback),
        Kind::Logout => on(filter, session::logout),
        #[cfg(feature = "ui")]
        Kind::UiHome | Kind::UiAsset | Kind::Ui => crate::ext::ui::handler(kind, filter),
        _ => return None,
    })
}

/// The application router, without a socket: tests may drive it directly.
pub fn app(state: AppState) -> Router {
    let mounted = state.mounted();
    let mut fixed: Vec<(&str, MethodRouter<AppState>)> = Vec::new();
    for r in ROUTES.iter().filter(|r| !r.kind.is_v2()) {
        // The route's path on this server: the metrics' is configured.
        let path = match r.kind {
            Kind::Metrics => mounted.metrics,
            Kind::ApiKeys => mounted.apikeys.then_some(r.template),
            Kind::Token => mounted.token.then_some(r.template),
            Kind::OpenIdLogin | Kind::OpenIdCallback => mounted.openid.then_some(r.template),
            Kind::Logout => mounted.logout.then_some(r.template),
            Kind::UiHome | Kind::UiAsset | Kind::Ui => mounted.ui.then_some(r.template),
            _ => Some(r.template),
        };
        let (Some(path), Some(handler)) = (path, fixed_handler(r.kind, r.method)) else {
            continue;
        };
        match fixed.iter_mut().find(|(p, _)| *p == path) {
            Some((_, m)) => *m = std::mem::take(m).merge(handler),
            None => fixed.push((path, handler)),
        }
    }
    let mut router = Router::new();
    for (path, handler) in fixed {
        router = router.route(path, handler);
    }
    #[cfg(feature = "openapi")]
    {
        router = router.merge(crate::ext::openapi::router());
    }
    let router = router
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authz::authorize_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ));
    // Outside authentication and audit: the owner does both.
    #[cfg(feature = "cluster")]
    let router = router.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::ext::cluster::route_to_owner,
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
    endpoint::health_probe(path).is_some()
}

/// With `http.auth`, lets a request through only with good credentials
/// (or none, for the anonymous caller `authorize` then judges), attaching
/// the caller's identity; a failed login is answered after `failDelay`.
/// Health checks stay open.
async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = &state.auth else {
        return next.run(req).await;
    };
    // Deny by default: only the public routes are open, and the table has
    // no others than the health probes, zot's management route, the web
    // UI's stylesheet and script, OpenID login and logout, and the token
    // endpoint, which judges its own credentials (its tests hold it to
    // that). (Matching the raw path against "/v2" would
    // let "/%76%32/..." through, which the router decodes to a /v2 route.)
    if endpoint::parse(req.uri().path(), &state.mounted())
        .is_ok_and(|ep| routes::access(req.method().as_str(), ep.kind()) == Access::Public)
    {
        return next.run(req).await;
    }
    let anonymous_allowed = state
        .access_control()
        .is_some_and(|a| a.has_anonymous_access());
    // The web UI's pages: authentication optional (see `Access::Page`).
    let page = endpoint::parse(req.uri().path(), &state.mounted())
        .is_ok_and(|ep| routes::access(req.method().as_str(), ep.kind()) == Access::Page);
    let tls = req
        .extensions()
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .cloned();
    let peer_cert = tls
        .as_ref()
        .and_then(|t| t.peer_certificates.first())
        .map(Vec::as_slice);
    // zot's web UI: its session cookie, or a password login that starts
    // one.
    let ui_client = req
        .headers()
        .contains_key(crate::auth::session::UI_CLIENT_HEADER);
    let mut cleared = Vec::new();
    // The web UI's pages always take their session cookie (unless the
    // request has other credentials); the API only from zot's web UI.
    let cookie = browser::cookie_allowed(req.headers())
        || (page && !req.headers().contains_key(header::AUTHORIZATION));
    let verdict = match cookie {
        true => match auth.session_login(req.headers()).await {
            Some(Err(crate::auth::AuthFailure::Rejected)) => {
                // A stale or forged cookie: dropped, as if never sent.
                cleared = auth.sessions().map(|s| s.cleared()).unwrap_or_default();
                Err(crate::auth::AuthFailure::Missing)
            }
            Some(verdict) => verdict,
            None => auth.authenticate(req.headers(), peer_cert).await,
        },
        false => auth.authenticate(req.headers(), peer_cert).await,
    };
    let mut resp = match verdict {
        Ok(login) => {
            if login.session.is_some()
                && !browser::is_safe(req.method())
                && !browser::same_origin(&state, req.headers())
            {
                drain_small_body(req).await;
                return browser::cross_origin().into_response();
            }
            let start = ui_client
                && login.session.is_none()
                && login.method == crate::auth::LoginMethod::Password
                && auth.sessions_enabled();
            let cookies = match start {
                true => auth.start_session(&login).await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "session not started");
                    Vec::new()
                }),
                false => Vec::new(),
            };
            let subject = audit::AuditSubject(login.identity.name().to_string());
            req.extensions_mut().insert(login);
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(subject);
            for c in cookies {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        // No credentials where some repositories are open to anonymous
        // callers, or where a token must be asked for with the scope of
        // the route: let the route's rule decide.
        Err(crate::auth::AuthFailure::Missing)
            if anonymous_allowed || auth.uses_bearer() || page =>
        {
            req.extensions_mut()
                .insert(crate::auth::Login::from(crate::auth::Identity::Anonymous));
            next.run(req).await
        }
        // A page with credentials that fail (a stale cookie, a wrong
        // password in the address): shown as to an anonymous caller,
        // after `failDelay` when a password was tried, so pages are no
        // faster way to guess one than the API.
        Err(crate::auth::AuthFailure::Rejected) if page => {
            if req.headers().contains_key(header::AUTHORIZATION) {
                tokio::time::sleep(auth.fail_delay()).await;
            }
            req.extensions_mut()
                .insert(crate::auth::Login::from(crate::auth::Identity::Anonymous));
            next.run(req).await
        }
        Err(failure) => {
            drain_small_body(req).await;
            let mut resp = match failure {
                // What checks the token is down: 503, as for any backend.
                crate::auth::AuthFailure::Unavailable(service) => ApiError::unavailable(
                    &format!("{service} is unavailable"),
                    "bearer token not checked",
                ),
                crate::auth::AuthFailure::Rejected => {
                    tokio::time::sleep(auth.fail_delay()).await;
                    authz::unauthorized(auth, None)
                }
                crate::auth::AuthFailure::Missing => authz::unauthorized(auth, None),
            }
            .into_response();
            resp.headers_mut().insert(
                "Docker-Distribution-API-Version",
                HeaderValue::from_static("registry/2.0"),
            );
            resp
        }
    };
    for c in cleared {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// The largest request body read and dropped before a refusal.
const DRAINED: u64 = 1 << 20;
/// How long reading it may take.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and drops a small request body (at most [`DRAINED`] declared,
/// for at most [`DRAIN_FOR`]) before the request is refused unread:
/// closing a connection with the body still unread makes the kernel reset
/// it, and a client can then lose the answer (a 401 or 403 read as a
/// broken connection). A larger or endless body is left, and the
/// connection closed, as before.
pub(crate) async fn drain_small_body(req: Request) {
    let small = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > 0 && n <= DRAINED);
    if small {
        let body = req.into_body();
        let _ = tokio::time::timeout(
            DRAIN_FOR,
            axum::body::to_bytes(body, usize::try_from(DRAINED).unwrap_or(usize::MAX)),
        )
        .await;
    }
}

/// Routes every `/v2` request by its endpoint, which authorization
/// parsed and let through; a path that is no route is answered with its
/// parse error.
async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let result = match parts.extensions.remove::<authz::Authorized>() {
        Some(ok) => {
            let params = Params::parse(parts.uri.query());
            // The client's address, for the caps on upload sessions.
            let client = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip());
            route(
                &state,
                ok,
                &parts.method,
                &params,
                &parts.headers,
                body,
                client,
            )
            .await
        }
        None => match parse_path(parts.uri.path()) {
            // A malformed tag names no manifest: only a push is told it
            // is invalid, a read or delete is told it is unknown.
            Err(endpoint::PathError::TagInvalid(m)) if parts.method != Method::PUT => {
                Err(ApiError::new(berth_oci::ErrorCode::ManifestUnknown, m))
            }
            Err(e) => Err(e.into()),
            // Every route passes authorization before it gets here.
            Ok(ep) => Err(ApiError::internal(format!(
                "{} reached the dispatcher unauthorized",
                ep.template()
            ))),
        },
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
    ok: authz::Authorized,
    method: &Method,
    q: &Params,
    headers: &http::HeaderMap,
    body: Body,
    client: Option<std::net::IpAddr>,
) -> ApiResult {
    let reg = &state.registry;
    let head = method == Method::HEAD;
    if routes::find(method.as_str(), ok.endpoint.kind()).is_none() {
        return Err(ApiError::method_not_allowed());
    }
    match ok.endpoint {
        Endpoint::Base => Ok(body_response(
            StatusCode::OK,
            "application/json",
            b"{}".to_vec(),
        )),
        Endpoint::Catalog => manifests::catalog(reg, q, &ok.caller).await,
        #[cfg(feature = "search")]
        Endpoint::Discover => Ok(crate::ext::search::http::discover(state.search.as_deref())),
        #[cfg(not(feature = "search"))]
        Endpoint::Discover => Ok(body_response(
            StatusCode::OK,
            "application/json",
            br#"{"extensions":[]}"#.to_vec(),
        )),
        #[cfg(feature = "search")]
        Endpoint::Search | Endpoint::Mgmt | Endpoint::UserPrefs => {
            let Some(search) = state.search.as_deref() else {
                return Err(ApiError::not_found());
            };
            use crate::ext::search::http;
            match ok.endpoint {
                Endpoint::Search => {
                    http::graphql(search, &ok.caller, method, q, headers, body).await
                }
                Endpoint::Mgmt => {
                    let anonymous = state
                        .access_control()
                        .is_some_and(|a| a.has_anonymous_access());
                    http::mgmt(search, q, anonymous)
                }
                _ => http::userprefs(search, &ok.caller, q).await,
            }
        }
        #[cfg(not(feature = "search"))]
        Endpoint::Search | Endpoint::Mgmt | Endpoint::UserPrefs => Err(ApiError::not_found()),
        #[cfg(feature = "trust")]
        Endpoint::Cosign | Endpoint::Notation => {
            let Some(trust) = state.trust.as_deref() else {
                return Err(ApiError::not_found());
            };
            use crate::config::SigningTool;
            use crate::ext::trust;
            let tool = if ok.endpoint == Endpoint::Cosign {
                SigningTool::Cosign
            } else {
                SigningTool::Notation
            };
            match (method.as_str(), tool) {
                ("POST", SigningTool::Cosign) => trust::upload_cosign(trust, headers, body).await,
                ("POST", SigningTool::Notation) => {
                    trust::upload_notation(trust, q, headers, body).await
                }
                ("DELETE", _) => trust::delete_material(trust, q).await,
                _ => trust::list_material(trust, tool).await,
            }
        }
        #[cfg(not(feature = "trust"))]
        Endpoint::Cosign | Endpoint::Notation => Err(ApiError::not_found()),
        Endpoint::Tags { name } => manifests::tags(reg, &name, q).await,
        Endpoint::Manifest { name, reference } => match *method {
            Method::PUT => {
                // Anonymous callers have no name ("").
                let by = Some(ok.caller.identity.name()).filter(|n| !n.is_empty());
                manifests::put(reg, &name, &reference, headers, body, ok.create_only, by).await
            }
            Method::DELETE => {
                // zot's `detectManifestCollision`: held only where access
                // rules grant it.
                let detect = ok.caller.access.is_some()
                    && ok
                        .caller
                        .may(&name, crate::config::Action::DetectManifestCollision);
                manifests::delete(reg, &name, &reference, detect).await
            }
            _ => {
                let ask = manifests::Ask {
                    gate: state.pull_gate.as_deref(),
                    mirror: state.mirror.as_deref(),
                };
                manifests::get(reg, &name, &reference, head, ask).await
            }
        },
        Endpoint::Referrers { name, digest } => {
            if let Some(mirror) = &state.mirror {
                mirror.referrers(&name, &digest).await;
            }
            manifests::referrers(reg, &name, &digest, q).await
        }
        Endpoint::Blob { name, digest } => match *method {
            Method::DELETE => blobs::delete(reg, &name, &digest).await,
            _ => {
                let mirror = state.mirror.as_deref();
                blobs::get(reg, &name, &digest, headers, head, mirror, &ok.caller).await
            }
        },
        Endpoint::UploadStart { name } => {
            uploads::start(reg, &name, q, body, ok.mount_from, client).await
        }
        Endpoint::Upload { name, id } => match *method {
            Method::PATCH => uploads::patch(reg, &name, id, headers, body).await,
            Method::PUT => uploads::put(reg, &name, id, q, headers, body).await,
            Method::DELETE => uploads::cancel(reg, &name, id).await,
            _ => uploads::status(reg, &name, id).await,
        },
        // Served by their own routes, never by the dispatcher.
        Endpoint::Livez
        | Endpoint::Readyz
        | Endpoint::Startupz
        | Endpoint::Metrics
        | Endpoint::ApiKeys
        | Endpoint::Token
        | Endpoint::OpenIdLogin
        | Endpoint::OpenIdCallback
        | Endpoint::Logout
        | Endpoint::ApiDoc
        | Endpoint::SwaggerUi
        | Endpoint::UiHome
        | Endpoint::UiAsset
        | Endpoint::Ui => Err(ApiError::not_found()),
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

//! The web UI (`extensions.ui`, feature `ui`): pages rendered on the
//! server with maud (which escapes whatever it is given), served at `/`
//! and under `/ui/`, working without JavaScript; a small script only
//! enhances them (search as you type, copy buttons). The stylesheet and
//! the script are in the binary (`assets/`), no Node toolchain builds or
//! runs anything.
//!
//! Every page reads search in-process as its caller
//! (`Search::query`, the path the GraphQL route
//! takes), so a user sees in the UI exactly what they could pull; a
//! repository they may not read is the same "not found" page as one that
//! is not there. The routes are rows of the route table with
//! [`Access::Page`](crate::api::routes::Access::Page): authentication is
//! optional, and a page that needs a login sends the browser to the login
//! page. Forms that change something carry the session's CSRF token.
//!
//! - `pages`: the path below `/ui/` parsed into a `pages::Page` (pure);
//! - `layout`: the HTML shell and the pieces pages share;
//! - `browse`: home, the repository list, a repository, an image;
//! - `account`: logging in and out, stars and bookmarks, API keys;
//! - `data`: the GraphQL documents and the answers' types;
//! - `assets`: the stylesheet and script, named by their content's hash.

mod account;
mod assets;
mod browse;
mod data;
mod layout;
mod pages;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use http::{HeaderValue, Method, StatusCode, header};

use crate::api::AppState;
use crate::api::authz::{Authorized, Caller};
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::routes::Kind;
use crate::auth::{Identity, Login, LoginMethod};
use pages::Page;

/// The largest form accepted.
const FORM_LIMIT: usize = 64 * 1024;

/// Why a page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// No such page, or one the caller may not see (the same answer).
    #[error("not found")]
    NotFound,
    /// A form without the session's CSRF token, or from another site.
    #[error("{0}")]
    Forbidden(String),
    /// A form that makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// The page needs a logged-in user: the login page, then back here.
    #[error("log in first")]
    Login(String),
    #[error("{0}")]
    Internal(String),
    /// What the API layer refused or failed with (its body is for API
    /// clients: a page says it in its own words).
    #[error("{0:?}")]
    Api(ApiError),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// The handler of a UI route.
pub(crate) fn handler(kind: Kind, filter: MethodFilter) -> MethodRouter<AppState> {
    match kind {
        Kind::UiAsset => on(filter, assets::serve),
        _ => on(filter, serve),
    }
}

/// What every page knows of its request.
pub(crate) struct Ctx {
    pub(crate) caller: Caller,
    pub(crate) login: Option<Login>,
    /// The caller's name, when it has one (stars, bookmarks, the header).
    pub(crate) user: Option<String>,
    /// The session's CSRF token, put in every form that changes something.
    pub(crate) csrf: String,
    /// The `Host` the browser asked (for pull commands).
    pub(crate) host: String,
    /// Whether authentication is configured (a login link is offered).
    pub(crate) auth: bool,
    /// Whether this caller may manage API keys here.
    pub(crate) apikeys: bool,
    /// Whether stars and bookmarks are kept.
    pub(crate) userprefs: bool,
    /// The request's path and query (where a login comes back to).
    pub(crate) here: String,
}

impl Ctx {
    fn new(
        state: &AppState,
        caller: Caller,
        login: Option<Login>,
        req: &http::request::Parts,
    ) -> Self {
        let user = match &caller.identity {
            Identity::Anonymous => None,
            other => Some(other.name().to_string()).filter(|n| !n.is_empty()),
        };
        let csrf = login
            .as_ref()
            .and_then(|l| l.session.as_ref())
            .map(|s| s.csrf.clone())
            .unwrap_or_default();
        let apikeys = state.auth.as_ref().is_some_and(|a| a.apikeys().is_some())
            && login.as_ref().is_some_and(may_manage_keys);
        Self {
            user,
            csrf,
            host: req
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
                .to_string(),
            auth: state.auth.is_some(),
            apikeys,
            userprefs: state.search.as_ref().is_some_and(|s| s.userprefs()),
            here: req
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            caller,
            login,
        }
    }
}

/// API keys are managed by a user who logged in with a password (Basic,
/// or the login form's session), never with a key, a certificate or a
/// token; as the API's own rule.
fn may_manage_keys(login: &Login) -> bool {
    matches!(login.identity, Identity::User { .. })
        && (login.method == LoginMethod::Password || login.session.is_some())
}

/// Every page and form: parsed, checked, rendered; errors as pages.
async fn serve(
    State(state): State<AppState>,
    authorized: Option<Extension<Authorized>>,
    login: Option<Extension<Login>>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Some(Extension(ok)) = authorized else {
        return ApiError::internal("a UI page reached its handler unauthorized").into_response();
    };
    let ctx = Ctx::new(&state, ok.caller, login.map(|Extension(l)| l), &parts);
    let mut resp = match route(&state, &ctx, &parts, body).await {
        Ok(r) => r,
        Err(e) => layout::error_page(&ctx, e),
    };
    let h = resp.headers_mut();
    // Pages show what one caller may see: never kept by a shared cache.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("X-Frame-Options", HeaderValue::from_static("DENY"));
    h.insert("Referrer-Policy", HeaderValue::from_static("same-origin"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    resp
}

async fn route(
    state: &AppState,
    ctx: &Ctx,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response, UiError> {
    let search = state.search.as_deref().ok_or(UiError::NotFound)?;
    let page = if parts.uri.path() == "/" {
        Page::Home
    } else {
        pages::parse(parts.uri.path()).ok_or(UiError::NotFound)?
    };
    let q = Params::parse(parts.uri.query());
    if parts.method == Method::POST {
        let form = read_form(parts, body).await?;
        // Only the login form may come without a session; every other
        // form must carry its token and come from this site.
        same_site(parts)?;
        if page != Page::Login
            && !ctx.login.as_ref().is_none_or(|l| {
                crate::auth::session::csrf_matches(l, form.get("csrf").unwrap_or(""))
            })
        {
            return Err(UiError::Forbidden(
                "the form's security token does not match your session: reload the page and try again"
                    .into(),
            ));
        }
        return match page {
            Page::Login => account::login_post(state, ctx, &form).await,
            Page::Logout => account::logout(state, ctx, &parts.headers).await,
            Page::Prefs => account::toggle_pref(search, ctx, &form).await,
            Page::ApiKeys => account::create_key(state, ctx, parts, &form).await,
            Page::RevokeKey => account::revoke_key(state, ctx, &form).await,
            _ => Err(UiError::NotFound),
        };
    }
    match page {
        Page::Home => browse::home(search, ctx).await,
        Page::Repos => browse::repos(search, ctx, &q).await,
        Page::Repo(name) => browse::repo(search, ctx, &name).await,
        Page::Image(name, tag) => browse::image(search, ctx, &name, &tag, &q).await,
        Page::Login => account::login_page(state, ctx, &q, None),
        Page::ApiKeys => account::keys_page(state, ctx, None).await,
        Page::Logout | Page::Prefs | Page::RevokeKey => Err(UiError::NotFound),
    }
}

/// A form's fields (`application/x-www-form-urlencoded`).
async fn read_form(parts: &http::request::Parts, body: Body) -> Result<Params, UiError> {
    let bytes = crate::api::manifests::read_limited(&parts.headers, body, FORM_LIMIT).await?;
    let text = String::from_utf8(bytes)
        .map_err(|_| UiError::BadRequest("the form is not UTF-8".into()))?;
    Ok(Params::parse(Some(&text)))
}

/// Refuses a form posted from another site: its `Origin` (or, without
/// one, `Sec-Fetch-Site`) must be this one's. Beside the CSRF token, for
/// a browser that sends Basic credentials it remembers.
fn same_site(parts: &http::request::Parts) -> Result<(), UiError> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| *o != "null");
    let cross = match (origin, host) {
        (Some(o), Some(h)) => {
            let authority = o.split_once("://").map_or(o, |(_, a)| a);
            authority != h
        }
        _ => parts
            .headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site"),
    };
    if cross {
        return Err(UiError::Forbidden(
            "a form from another site was refused".into(),
        ));
    }
    Ok(())
}

/// A redirect after a form (`303 See Other`: the browser then `GET`s).
fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let loc = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    resp.headers_mut().insert(header::LOCATION, loc);
    resp
}

/// A local path to come back to after logging in: it starts with one `/`
/// (not `//` or `/\`, which a browser reads as another host), else `/`.
pub(crate) fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(|c| c.is_control()) =>
        {
            p
        }
        _ => "/",
    }
}

/// `s` percent-encoded for a query value or a path segment.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_come_back_to() {
        for (next, want) in [
            (Some("/ui/repos?q=a"), "/ui/repos?q=a"),
            (Some("/"), "/"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("ui/repos"), "/"),
            (Some("/a\nb"), "/"),
            (None, "/"),
        ] {
            assert_eq!(local_path(next), want, "{next:?}");
        }
    }

    #[test]
    fn encoding_keeps_paths_readable() {
        assert_eq!(encode("team/app:v1"), "team/app:v1");
        assert_eq!(encode("a b&c=d?"), "a%20b%26c%3Dd%3F");
    }
}

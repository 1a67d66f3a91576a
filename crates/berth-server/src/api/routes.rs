//! The route table: every route the server answers, once.
//!
//! Each row is a method, a path template, the [`Kind`] of endpoint
//! [`super::endpoint::parse_path`] gives for it and the [`Access`] a
//! caller needs for it. The router, the dispatcher's `405` decision,
//! authorization, the metrics' route labels and the API document are all
//! derived from [`ROUTES`]; a new route (search, user preferences, the UI,
//! OpenID login) is a new row, a new [`Kind`] and its handler.

use crate::config::Action;

/// The shape of a path, without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/livez`
    Livez,
    /// `/readyz`
    Readyz,
    /// `/startupz`
    Startupz,
    /// The Prometheus metrics (`extensions.metrics`, path configurable).
    Metrics,
    /// zot's API key route (`http.auth.apikey`).
    ApiKeys,
    /// zot's token endpoint (`http.auth.bearer` with API keys or `oidc`).
    Token,
    /// zot's OpenID login: to the provider (`http.auth.openid`).
    OpenIdLogin,
    /// zot's OpenID login: back from the provider.
    OpenIdCallback,
    /// zot's logout: ends the browser session.
    Logout,
    /// The OpenAPI document (feature `openapi`).
    ApiDoc,
    /// Swagger UI and its assets (feature `openapi`).
    SwaggerUi,
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/_oci/ext/discover`
    Discover,
    /// `/v2/<name>/tags/list`
    Tags,
    /// `/v2/<name>/manifests/<reference>`
    Manifest,
    /// `/v2/<name>/blobs/<digest>`
    Blob,
    /// `/v2/<name>/blobs/uploads/`
    UploadStart,
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload,
    /// `/v2/<name>/referrers/<digest>`
    Referrers,
    /// `/v2/_zot/ext/search`: zot's GraphQL search (`extensions.search`).
    Search,
    /// `/v2/_zot/ext/mgmt`: how to log in, for zot's web UI.
    Mgmt,
    /// `/v2/_zot/ext/userprefs`: stars and bookmarks.
    UserPrefs,
    /// `/v2/_zot/ext/cosign`: cosign public keys (`extensions.trust`).
    Cosign,
    /// `/v2/_zot/ext/notation`: notation certificates (`extensions.trust`).
    Notation,
    /// `/`: the web UI's home page (`extensions.ui`, feature `ui`).
    UiHome,
    /// `/ui/assets/{file}`: the web UI's stylesheet and script.
    UiAsset,
    /// `/ui/{*page}`: the web UI's other pages and forms.
    Ui,
}

impl Kind {
    /// Whether the kind is a route of the distribution API, under `/v2`.
    pub fn is_v2(self) -> bool {
        self.template().starts_with("/v2/")
    }

    /// The route's template, e.g. `/v2/{name}/manifests/{reference}`:
    /// what metrics and documentation name it by, never the raw path.
    /// (The metrics' own path is configurable; this is its default.)
    pub fn template(self) -> &'static str {
        ROUTES
            .iter()
            .find(|r| r.kind == self)
            .map_or("other", |r| r.template)
    }
}

/// What a caller needs to be let through to a route. Checked once, by
/// `authz::authorize`, before any handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open to everyone, even with authentication configured (the health
    /// probes).
    Public,
    /// Whoever authentication let through (the API document).
    Authenticated,
    /// A caller who logged in; an anonymous one is challenged, so clients
    /// pinging `/v2/` learn how to send credentials.
    Login,
    /// The catalog: filtered per repository by its handler, but a bearer
    /// registry asks for the catalog scope first.
    Catalog,
    /// The action on the route's repository.
    Repo(Action),
    /// A manifest push: creating, or updating when it moves an existing
    /// tag (a caller who may create but not update pushes create-only).
    Push,
    /// Reading the metrics: `http.accessControl.metrics`.
    Metrics,
    /// Managing one's API keys: a user logged in with a password.
    ApiKeys,
    /// Search: whoever authentication let through, anonymous callers
    /// included; the handler shows each only what it may read.
    Search,
    /// A caller with a name (a user or a token's subject), never an
    /// anonymous one: user preferences.
    User,
    /// An admin (`accessControl.adminPolicy` names the user or one of
    /// its groups); without access control, whoever authentication let
    /// through (anyone, without authentication): the trust material.
    Admin,
    /// The web UI's pages: authentication optional. Good credentials (a
    /// session cookie, or Basic) make the caller that user; missing or
    /// bad ones make it anonymous, never a 401 challenge (a page that
    /// needs a login sends the browser to the login page). Each page
    /// shows only what its caller may read, through search.
    Page,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The method, upper case.
    pub method: &'static str,
    /// The path template, as the API document spells it.
    pub template: &'static str,
    pub kind: Kind,
    pub access: Access,
}

const fn row(method: &'static str, template: &'static str, kind: Kind, access: Access) -> Route {
    Route {
        method,
        template,
        kind,
        access,
    }
}

const READ: Access = Access::Repo(Action::Read);
const CREATE: Access = Access::Repo(Action::Create);
const DELETE: Access = Access::Repo(Action::Delete);

/// Every route. A method not listed for a path is answered `405`.
pub const ROUTES: &[Route] = &[
    row("GET", "/livez", Kind::Livez, Access::Public),
    row("GET", "/readyz", Kind::Readyz, Access::Public),
    row("GET", "/startupz", Kind::Startupz, Access::Public),
    row("GET", "/metrics", Kind::Metrics, Access::Metrics),
    row("GET", "/zot/auth/apikey", Kind::ApiKeys, Access::ApiKeys),
    row("POST", "/zot/auth/apikey", Kind::ApiKeys, Access::ApiKeys),
    row("DELETE", "/zot/auth/apikey", Kind::ApiKeys, Access::ApiKeys),
    // The credentials are the request's content: judged by the handler.
    row("GET", "/zot/auth/token", Kind::Token, Access::Public),
    row("POST", "/zot/auth/token", Kind::Token, Access::Public),
    // A browser on its way to log in has no credentials yet; the
    // callback's proof is its `state` and code, the logout's its cookie.
    row("GET", "/zot/auth/login", Kind::OpenIdLogin, Access::Public),
    row(
        "GET",
        "/zot/auth/callback/{provider}",
        Kind::OpenIdCallback,
        Access::Public,
    ),
    row("POST", "/zot/auth/logout", Kind::Logout, Access::Public),
    row("GET", "/openapi.json", Kind::ApiDoc, Access::Authenticated),
    row(
        "GET",
        "/swagger/v2/{*rest}",
        Kind::SwaggerUi,
        Access::Authenticated,
    ),
    row("GET", "/v2/", Kind::Base, Access::Login),
    row("HEAD", "/v2/", Kind::Base, Access::Login),
    row("GET", "/v2/_catalog", Kind::Catalog, Access::Catalog),
    row(
        "GET",
        "/v2/_oci/ext/discover",
        Kind::Discover,
        Access::Login,
    ),
    row("GET", "/v2/{name}/tags/list", Kind::Tags, READ),
    row(
        "GET",
        "/v2/{name}/manifests/{reference}",
        Kind::Manifest,
        READ,
    ),
    row(
        "HEAD",
        "/v2/{name}/manifests/{reference}",
        Kind::Manifest,
        READ,
    ),
    row(
        "PUT",
        "/v2/{name}/manifests/{reference}",
        Kind::Manifest,
        Access::Push,
    ),
    row(
        "DELETE",
        "/v2/{name}/manifests/{reference}",
        Kind::Manifest,
        DELETE,
    ),
    row("GET", "/v2/{name}/blobs/{digest}", Kind::Blob, READ),
    row("HEAD", "/v2/{name}/blobs/{digest}", Kind::Blob, READ),
    row("DELETE", "/v2/{name}/blobs/{digest}", Kind::Blob, DELETE),
    row(
        "POST",
        "/v2/{name}/blobs/uploads/",
        Kind::UploadStart,
        CREATE,
    ),
    row(
        "GET",
        "/v2/{name}/blobs/uploads/{uuid}",
        Kind::Upload,
        CREATE,
    ),
    row(
        "PATCH",
        "/v2/{name}/blobs/uploads/{uuid}",
        Kind::Upload,
        CREATE,
    ),
    row(
        "PUT",
        "/v2/{name}/blobs/uploads/{uuid}",
        Kind::Upload,
        CREATE,
    ),
    row(
        "DELETE",
        "/v2/{name}/blobs/uploads/{uuid}",
        Kind::Upload,
        CREATE,
    ),
    row(
        "GET",
        "/v2/{name}/referrers/{digest}",
        Kind::Referrers,
        READ,
    ),
    row("GET", "/v2/_zot/ext/search", Kind::Search, Access::Search),
    row("POST", "/v2/_zot/ext/search", Kind::Search, Access::Search),
    // zot's web UI reads it before anyone logs in, to offer the ways to.
    row("GET", "/v2/_zot/ext/mgmt", Kind::Mgmt, Access::Public),
    row(
        "PUT",
        "/v2/_zot/ext/userprefs",
        Kind::UserPrefs,
        Access::User,
    ),
    row("POST", "/v2/_zot/ext/cosign", Kind::Cosign, Access::Admin),
    row("GET", "/v2/_zot/ext/cosign", Kind::Cosign, Access::Admin),
    row("DELETE", "/v2/_zot/ext/cosign", Kind::Cosign, Access::Admin),
    row(
        "POST",
        "/v2/_zot/ext/notation",
        Kind::Notation,
        Access::Admin,
    ),
    row(
        "GET",
        "/v2/_zot/ext/notation",
        Kind::Notation,
        Access::Admin,
    ),
    row(
        "DELETE",
        "/v2/_zot/ext/notation",
        Kind::Notation,
        Access::Admin,
    ),
    row("GET", "/", Kind::UiHome, Access::Page),
    row("GET", "/ui/assets/{file}", Kind::UiAsset, Access::Public),
    row("GET", "/ui/{*page}", Kind::Ui, Access::Page),
    // The forms: logging in and out, stars, bookmarks, API keys.
    row("POST", "/ui/{*page}", Kind::Ui, Access::Page),
];

/// The row for `method` on a path of `kind`, if the route has that method.
pub fn find(method: &str, kind: Kind) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.kind == kind && r.method == method)
}

/// The access a request needs. `HEAD` needs what `GET` needs where it
/// has no row of its own (the router answers it with the `GET` handler
/// beside `/v2`). A method the route does not have is answered `405`
/// after authorization; until then it is judged as the most a path can
/// need (a repository's `Delete`, an upload's `Create`, the ping's
/// login), so that nothing slips through. Beside `/v2`, such a method is
/// left to authentication, and the router answers `405`.
pub fn access(method: &str, kind: Kind) -> Access {
    let row = find(method, kind).or_else(|| match method {
        "HEAD" => find("GET", kind),
        _ => None,
    });
    if let Some(r) = row {
        return r.access;
    }
    match kind {
        Kind::Base | Kind::Discover => Access::Login,
        Kind::Search | Kind::Mgmt => Access::Search,
        Kind::UserPrefs => Access::User,
        Kind::Cosign | Kind::Notation => Access::Admin,
        Kind::Catalog => Access::Catalog,
        Kind::UploadStart | Kind::Upload => CREATE,
        Kind::Tags | Kind::Manifest | Kind::Blob | Kind::Referrers => DELETE,
        Kind::Livez
        | Kind::Readyz
        | Kind::Startupz
        | Kind::OpenIdLogin
        | Kind::OpenIdCallback
        | Kind::Logout
        | Kind::UiAsset => Access::Public,
        Kind::UiHome | Kind::Ui => Access::Page,
        Kind::Metrics | Kind::ApiKeys | Kind::Token | Kind::ApiDoc | Kind::SwaggerUi => {
            Access::Authenticated
        }
    }
}

/// The `/v2` routes, `(method, template)`: what the dispatcher serves.
pub fn v2_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES
        .iter()
        .filter(|r| r.kind.is_v2())
        .map(|r| (r.method, r.template))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_row_and_rows_are_unique() {
        use std::collections::HashSet;
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.template)), "{r:?} twice");
            assert_eq!(r.kind.template(), r.template, "{r:?}: one template a kind");
        }
    }

    #[test]
    fn only_health_probes_and_the_login_methods_are_public() {
        for r in ROUTES {
            let open = matches!(
                r.kind,
                Kind::Livez
                    | Kind::Readyz
                    | Kind::Startupz
                    | Kind::Mgmt
                    | Kind::Token
                    | Kind::OpenIdLogin
                    | Kind::OpenIdCallback
                    | Kind::Logout
                    | Kind::UiAsset
            );
            assert_eq!(r.access == Access::Public, open, "{r:?}");
        }
    }

    #[test]
    fn unlisted_methods_need_the_most() {
        assert_eq!(access("PATCH", Kind::Manifest), DELETE);
        assert_eq!(access("POST", Kind::Tags), DELETE);
        assert_eq!(access("OPTIONS", Kind::Upload), CREATE);
        assert_eq!(access("DELETE", Kind::Base), Access::Login);
        assert_eq!(access("PUT", Kind::Metrics), Access::Authenticated);
        assert_eq!(access("PUT", Kind::Manifest), Access::Push);
        // HEAD is judged as GET where it has no row of its own.
        assert_eq!(access("HEAD", Kind::Tags), READ);
        assert_eq!(access("HEAD", Kind::Metrics), Access::Metrics);
        assert_eq!(access("HEAD", Kind::Livez), Access::Public);
        assert_eq!(access("HEAD", Kind::Catalog), Access::Catalog);
    }
}

//! A request path parsed into a typed [`Endpoint`], by a pure function.
//!
//! The routes beside `/v2` (health probes, metrics, API keys, the API
//! document) are matched on the raw path, exactly. Under `/v2` the path
//! is percent-decoded, and since repository names may contain `/` it is
//! read from its end: the trailing keywords (`manifests/<ref>`,
//! `blobs/uploads/<id>`, ...) decide the endpoint and everything before
//! them is the name. Names, digests, references and upload ids are
//! validated here, so handlers only ever see typed values. Which
//! [`Kind`] each endpoint is, and so its template and the access it
//! needs, is in the route table ([`super::routes`]).

use berth_oci::digest::DigestError;
use berth_oci::{Digest, Reference, RepoName};

use super::routes::Kind;
use crate::registry::UploadId;

/// The API document's path (feature `openapi`).
pub const DOC_PATH: &str = "/openapi.json";
/// Swagger UI's path; its assets are below it (feature `openapi`).
pub const UI_PATH: &str = "/swagger/v2";

/// The routes a server has beside `/v2` and the health probes, which
/// depend on its config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mounted<'a> {
    /// Where the metrics are served, when they are on.
    pub metrics: Option<&'a str>,
    /// Whether `/zot/auth/apikey` is served (`http.auth.apikey`).
    pub apikeys: bool,
    /// Whether `/zot/auth/token` is served.
    pub token: bool,
    /// Whether `/zot/auth/login` and `/zot/auth/callback/<provider>` are
    /// served (`http.auth.openid`).
    pub openid: bool,
    /// Whether `/zot/auth/logout` is served (browser sessions).
    pub logout: bool,
    /// Whether the API document and Swagger UI are served.
    pub docs: bool,
    /// Whether `/v2/_zot/ext/search` is served (`extensions.search`).
    pub search: bool,
    /// Whether `/v2/_zot/ext/mgmt` is served.
    pub mgmt: bool,
    /// Whether `/v2/_zot/ext/userprefs` is served.
    pub userprefs: bool,
    /// Whether `/v2/_zot/ext/cosign` and `/v2/_zot/ext/notation` are
    /// served (`extensions.trust`).
    pub trust: bool,
    /// Whether the web UI is served (`/`, `/ui/...`; `extensions.ui`).
    pub ui: bool,
}

/// A route the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/livez`
    Livez,
    /// `/readyz`
    Readyz,
    /// `/startupz`
    Startupz,
    /// The metrics, at their configured path.
    Metrics,
    /// `/zot/auth/apikey`
    ApiKeys,
    /// `/zot/auth/token`
    Token,
    /// `/zot/auth/login`
    OpenIdLogin,
    /// `/zot/auth/callback/<provider>`
    OpenIdCallback,
    /// `/zot/auth/logout`
    Logout,
    /// `/openapi.json`
    ApiDoc,
    /// `/swagger/v2` and below.
    SwaggerUi,
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/_oci/ext/discover`
    Discover,
    /// `/v2/<name>/tags/list`
    Tags { name: RepoName },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        name: RepoName,
        reference: Reference,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: RepoName, digest: Digest },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { name: RepoName },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: RepoName, id: UploadId },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: RepoName, digest: Digest },
    /// `/v2/_zot/ext/search`
    Search,
    /// `/v2/_zot/ext/mgmt`
    Mgmt,
    /// `/v2/_zot/ext/userprefs`
    UserPrefs,
    /// `/v2/_zot/ext/cosign`
    Cosign,
    /// `/v2/_zot/ext/notation`
    Notation,
    /// `/`: the web UI's home page.
    UiHome,
    /// `/ui/assets/<file>`
    UiAsset,
    /// `/ui/<page>`: the UI's other pages (parsed by the UI).
    Ui,
}

impl Endpoint {
    /// The endpoint's kind: its row in the route table.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Livez => Kind::Livez,
            Self::Readyz => Kind::Readyz,
            Self::Startupz => Kind::Startupz,
            Self::Metrics => Kind::Metrics,
            Self::ApiKeys => Kind::ApiKeys,
            Self::Token => Kind::Token,
            Self::OpenIdLogin => Kind::OpenIdLogin,
            Self::OpenIdCallback => Kind::OpenIdCallback,
            Self::Logout => Kind::Logout,
            Self::ApiDoc => Kind::ApiDoc,
            Self::SwaggerUi => Kind::SwaggerUi,
            Self::Base => Kind::Base,
            Self::Catalog => Kind::Catalog,
            Self::Discover => Kind::Discover,
            Self::Tags { .. } => Kind::Tags,
            Self::Manifest { .. } => Kind::Manifest,
            Self::Blob { .. } => Kind::Blob,
            Self::UploadStart { .. } => Kind::UploadStart,
            Self::Upload { .. } => Kind::Upload,
            Self::Referrers { .. } => Kind::Referrers,
            Self::Search => Kind::Search,
            Self::Mgmt => Kind::Mgmt,
            Self::UserPrefs => Kind::UserPrefs,
            Self::Cosign => Kind::Cosign,
            Self::Notation => Kind::Notation,
            Self::UiHome => Kind::UiHome,
            Self::UiAsset => Kind::UiAsset,
            Self::Ui => Kind::Ui,
        }
    }

    /// The route's template, e.g. `/v2/{name}/manifests/{reference}`:
    /// what metrics and documentation name it by, never the raw path.
    pub fn template(&self) -> &'static str {
        self.kind().template()
    }

    /// The repository the route is about, if any.
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Self::Tags { name }
            | Self::Manifest { name, .. }
            | Self::Blob { name, .. }
            | Self::UploadStart { name }
            | Self::Upload { name, .. }
            | Self::Referrers { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Why a path is not an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// No route has this shape.
    NotFound,
    /// The route is right but the repository name breaks the grammar.
    NameInvalid(String),
    /// The digest is malformed.
    DigestInvalid(String),
    /// The digest uses an algorithm Berth does not support.
    DigestUnsupported(String),
    /// The tag is malformed.
    TagInvalid(String),
    /// The upload id cannot be one Berth issued.
    UploadUnknown,
}

fn name(segments: &[&str]) -> Result<RepoName, PathError> {
    let joined = segments.join("/");
    joined
        .parse()
        .map_err(|e: berth_oci::ParseError| PathError::NameInvalid(e.to_string()))
}

fn digest(s: &str) -> Result<Digest, PathError> {
    s.parse().map_err(|e: DigestError| match e {
        DigestError::Invalid(p) => PathError::DigestInvalid(p.to_string()),
        DigestError::Unsupported(a) => PathError::DigestUnsupported(a),
    })
}

fn reference(s: &str) -> Result<Reference, PathError> {
    if s.contains(':') {
        return digest(s).map(Reference::Digest);
    }
    s.parse()
        .map(Reference::Tag)
        .map_err(|e: berth_oci::ParseError| PathError::TagInvalid(e.to_string()))
}

/// Decodes `%XX` escapes (clients sometimes send `sha256%3A...`).
fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_string());
    }
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The health probe at `path` (the raw path), if it is one.
pub fn health_probe(path: &str) -> Option<Endpoint> {
    match path {
        "/livez" => Some(Endpoint::Livez),
        "/readyz" => Some(Endpoint::Readyz),
        "/startupz" => Some(Endpoint::Startupz),
        _ => None,
    }
}

/// Parses a request path (without the query) into an endpoint of a
/// server with the optional routes of `mounted`.
pub fn parse(path: &str, mounted: &Mounted<'_>) -> Result<Endpoint, PathError> {
    // Matched before /v2 and on the raw path, as the router matches them.
    if mounted.metrics == Some(path) {
        return Ok(Endpoint::Metrics);
    }
    if mounted.apikeys && path == "/zot/auth/apikey" {
        return Ok(Endpoint::ApiKeys);
    }
    if mounted.token && path == "/zot/auth/token" {
        return Ok(Endpoint::Token);
    }
    if mounted.openid && path == "/zot/auth/login" {
        return Ok(Endpoint::OpenIdLogin);
    }
    if mounted.openid
        && path
            .strip_prefix("/zot/auth/callback/")
            .is_some_and(|p| !p.is_empty() && !p.contains('/'))
    {
        return Ok(Endpoint::OpenIdCallback);
    }
    if mounted.logout && path == "/zot/auth/logout" {
        return Ok(Endpoint::Logout);
    }
    // zot's extensions, where this server has them (no repository name
    // can start with `_`, so none is shadowed).
    match path {
        "/v2/_zot/ext/search" if mounted.search => return Ok(Endpoint::Search),
        "/v2/_zot/ext/mgmt" if mounted.mgmt => return Ok(Endpoint::Mgmt),
        "/v2/_zot/ext/userprefs" if mounted.userprefs => return Ok(Endpoint::UserPrefs),
        "/v2/_zot/ext/cosign" if mounted.trust => return Ok(Endpoint::Cosign),
        "/v2/_zot/ext/notation" if mounted.trust => return Ok(Endpoint::Notation),
        _ => {}
    }
    if mounted.ui {
        if path == "/" {
            return Ok(Endpoint::UiHome);
        }
        if let Some(page) = path.strip_prefix("/ui/") {
            // One file name (what the router's `{file}` matches).
            return Ok(match page.strip_prefix("assets/") {
                Some(file) if !file.is_empty() && !file.contains('/') => Endpoint::UiAsset,
                _ => Endpoint::Ui,
            });
        }
    }
    if mounted.docs {
        if path == DOC_PATH {
            return Ok(Endpoint::ApiDoc);
        }
        if path
            .strip_prefix(UI_PATH)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return Ok(Endpoint::SwaggerUi);
        }
    }
    parse_path(path)
}

/// Parses a request path (without the query) into an endpoint: a health
/// probe or a route of the distribution API.
pub fn parse_path(path: &str) -> Result<Endpoint, PathError> {
    if let Some(probe) = health_probe(path) {
        return Ok(probe);
    }
    let path = percent_decode(path).ok_or(PathError::NotFound)?;
    let rest = match path.strip_prefix("/v2") {
        Some("") | Some("/") => return Ok(Endpoint::Base),
        Some(r) => r.strip_prefix('/').ok_or(PathError::NotFound)?,
        None => return Err(PathError::NotFound),
    };
    match rest {
        "_catalog" => return Ok(Endpoint::Catalog),
        "_oci/ext/discover" => return Ok(Endpoint::Discover),
        _ => {}
    }
    let seg: Vec<&str> = rest.split('/').collect();
    let n = seg.len();
    let tail = |k: usize| &seg[n - k..];
    if n >= 3 && tail(2) == ["tags", "list"] {
        return Ok(Endpoint::Tags {
            name: name(&seg[..n - 2])?,
        });
    }
    if n >= 3 && tail(2)[0] == "manifests" {
        return Ok(Endpoint::Manifest {
            name: name(&seg[..n - 2])?,
            reference: reference(seg[n - 1])?,
        });
    }
    if n >= 4 && tail(3)[..2] == ["blobs", "uploads"] {
        let name = name(&seg[..n - 3])?;
        if seg[n - 1].is_empty() {
            return Ok(Endpoint::UploadStart { name });
        }
        let id = seg[n - 1].parse().map_err(|()| PathError::UploadUnknown)?;
        return Ok(Endpoint::Upload { name, id });
    }
    if n >= 3 && tail(2) == ["blobs", "uploads"] {
        return Ok(Endpoint::UploadStart {
            name: name(&seg[..n - 2])?,
        });
    }
    if n >= 3 && tail(2)[0] == "blobs" {
        return Ok(Endpoint::Blob {
            name: name(&seg[..n - 2])?,
            digest: digest(seg[n - 1])?,
        });
    }
    if n >= 3 && tail(2)[0] == "referrers" {
        return Ok(Endpoint::Referrers {
            name: name(&seg[..n - 2])?,
            digest: digest(seg[n - 1])?,
        });
    }
    Err(PathError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ID: &str = "0b8a6a3e-3c7e-4a53-8b5c-8f1e7b6a9d10";

    fn n(s: &str) -> RepoName {
        s.parse().expect("name")
    }

    #[test]
    fn table() {
        let d: Digest = D.parse().expect("digest");
        let id: UploadId = ID.parse().expect("id");
        let cases: Vec<(String, Result<Endpoint, PathError>)> = vec![
            ("/v2/".into(), Ok(Endpoint::Base)),
            ("/v2".into(), Ok(Endpoint::Base)),
            ("/v2/_catalog".into(), Ok(Endpoint::Catalog)),
            ("/v2/_oci/ext/discover".into(), Ok(Endpoint::Discover)),
            (
                "/v2/library/alpine/tags/list".into(),
                Ok(Endpoint::Tags {
                    name: n("library/alpine"),
                }),
            ),
            (
                "/v2/a/b/c/manifests/latest".into(),
                Ok(Endpoint::Manifest {
                    name: n("a/b/c"),
                    reference: Reference::Tag("latest".parse().expect("tag")),
                }),
            ),
            (
                format!("/v2/a/manifests/{D}"),
                Ok(Endpoint::Manifest {
                    name: n("a"),
                    reference: Reference::Digest(d.clone()),
                }),
            ),
            (
                format!("/v2/a/manifests/sha256%3A{}", &D[7..]),
                Ok(Endpoint::Manifest {
                    name: n("a"),
                    reference: Reference::Digest(d.clone()),
                }),
            ),
            (
                format!("/v2/a/blobs/{D}"),
                Ok(Endpoint::Blob {
                    name: n("a"),
                    digest: d.clone(),
                }),
            ),
            (
                "/v2/a/blobs/uploads/".into(),
                Ok(Endpoint::UploadStart { name: n("a") }),
            ),
            (
                "/v2/a/blobs/uploads".into(),
                Ok(Endpoint::UploadStart { name: n("a") }),
            ),
            (
                format!("/v2/a/blobs/uploads/{ID}"),
                Ok(Endpoint::Upload { name: n("a"), id }),
            ),
            (
                format!("/v2/a/referrers/{D}"),
                Ok(Endpoint::Referrers {
                    name: n("a"),
                    digest: d.clone(),
                }),
            ),
            // A name may contain the keywords as components.
            (
                "/v2/manifests/manifests/x".into(),
                Ok(Endpoint::Manifest {
                    name: n("manifests"),
                    reference: Reference::Tag("x".parse().expect("tag")),
                }),
            ),
            (
                "/v2/blobs/tags/list".into(),
                Ok(Endpoint::Tags { name: n("blobs") }),
            ),
            // Errors.
            ("/".into(), Err(PathError::NotFound)),
            ("/v3/".into(), Err(PathError::NotFound)),
            ("/v2x".into(), Err(PathError::NotFound)),
            ("/v2/a".into(), Err(PathError::NotFound)),
            ("/v2/a/unknown/x".into(), Err(PathError::NotFound)),
            ("/v2/tags/list".into(), Err(PathError::NotFound)),
            (
                "/v2/a/blobs/uploads/not-a-uuid".into(),
                Err(PathError::UploadUnknown),
            ),
            (
                "/v2/a/blobs/sha256:abc".into(),
                Err(PathError::DigestInvalid(
                    "digest: encoded part must be lower-case hex of the right length".into(),
                )),
            ),
            (
                "/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e".into(),
                Err(PathError::DigestUnsupported("md5".into())),
            ),
            (
                "/v2/a/manifests/-bad".into(),
                Err(PathError::TagInvalid(
                    "tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}".into(),
                )),
            ),
            ("/v2/%ZZ/tags/list".into(), Err(PathError::NotFound)),
            // Health probes, on the raw path only.
            ("/livez".into(), Ok(Endpoint::Livez)),
            ("/readyz".into(), Ok(Endpoint::Readyz)),
            ("/startupz".into(), Ok(Endpoint::Startupz)),
            ("/%6civez".into(), Err(PathError::NotFound)),
            ("/livez/".into(), Err(PathError::NotFound)),
            // Optional routes are not routes unless mounted.
            ("/metrics".into(), Err(PathError::NotFound)),
            ("/zot/auth/apikey".into(), Err(PathError::NotFound)),
            ("/zot/auth/token".into(), Err(PathError::NotFound)),
            ("/openapi.json".into(), Err(PathError::NotFound)),
        ];
        for (path, want) in cases {
            assert_eq!(parse_path(&path), want, "{path}");
        }
        for bad in [
            "/v2/A/tags/list",
            "/v2/../etc/tags/list",
            "/v2/a/../../b/tags/list",
            "/v2//a/tags/list",
            "/v2/a%2F..%2F..%2Fx/tags/list",
        ] {
            assert!(
                matches!(parse_path(bad), Err(PathError::NameInvalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn mounted_routes() {
        let all = Mounted {
            metrics: Some("/custom/metrics"),
            apikeys: true,
            token: true,
            openid: true,
            logout: true,
            docs: true,
            search: true,
            mgmt: true,
            userprefs: true,
            trust: true,
            ui: true,
        };
        let cases = [
            ("/custom/metrics", Ok(Endpoint::Metrics)),
            ("/metrics", Err(PathError::NotFound)),
            ("/zot/auth/apikey", Ok(Endpoint::ApiKeys)),
            ("/zot/auth/token", Ok(Endpoint::Token)),
            ("/zot/auth/login", Ok(Endpoint::OpenIdLogin)),
            ("/zot/auth/callback/oidc", Ok(Endpoint::OpenIdCallback)),
            ("/zot/auth/callback/", Err(PathError::NotFound)),
            ("/zot/auth/callback/a/b", Err(PathError::NotFound)),
            ("/zot/auth/logout", Ok(Endpoint::Logout)),
            ("/v2/_zot/ext/search", Ok(Endpoint::Search)),
            ("/v2/_zot/ext/mgmt", Ok(Endpoint::Mgmt)),
            ("/v2/_zot/ext/userprefs", Ok(Endpoint::UserPrefs)),
            ("/v2/_zot/ext/cosign", Ok(Endpoint::Cosign)),
            ("/v2/_zot/ext/notation", Ok(Endpoint::Notation)),
            ("/zot/auth/apikey/", Err(PathError::NotFound)),
            ("/openapi.json", Ok(Endpoint::ApiDoc)),
            ("/swagger/v2", Ok(Endpoint::SwaggerUi)),
            ("/swagger/v2/", Ok(Endpoint::SwaggerUi)),
            ("/swagger/v2/index.css", Ok(Endpoint::SwaggerUi)),
            ("/swagger/v2x", Err(PathError::NotFound)),
            ("/livez", Ok(Endpoint::Livez)),
            ("/v2/", Ok(Endpoint::Base)),
            ("/", Ok(Endpoint::UiHome)),
            ("/ui/repos", Ok(Endpoint::Ui)),
            ("/ui/repo/team/app", Ok(Endpoint::Ui)),
            ("/ui/assets/app-1.css", Ok(Endpoint::UiAsset)),
            ("/ui/assets/a/b.css", Ok(Endpoint::Ui)),
            ("/ui/assets/", Ok(Endpoint::Ui)),
            ("/ui", Err(PathError::NotFound)),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path, &all), want, "{path}");
        }
        // A metrics path under /v2 is the metrics, as the router has it.
        let v2 = Mounted {
            metrics: Some("/v2/_catalog"),
            ..Mounted::default()
        };
        assert_eq!(parse("/v2/_catalog", &v2), Ok(Endpoint::Metrics));
        // Without the UI, its paths are no routes.
        assert_eq!(parse("/", &v2), Err(PathError::NotFound));
        assert_eq!(parse("/ui/repos", &v2), Err(PathError::NotFound));
    }

    /// Every template of the route table parses, with sample parameters,
    /// to an endpoint of the row's kind.
    #[test]
    fn every_template_parses_to_its_kind() {
        let all = Mounted {
            metrics: Some("/metrics"),
            apikeys: true,
            token: true,
            openid: true,
            logout: true,
            docs: true,
            search: true,
            mgmt: true,
            userprefs: true,
            trust: true,
            ui: true,
        };
        for r in super::super::routes::ROUTES {
            let path = r
                .template
                .replace("{name}", "team/app")
                .replace("{reference}", "v1")
                .replace("{digest}", D)
                .replace("{uuid}", ID)
                .replace("{*rest}", "index.html")
                .replace("{provider}", "oidc")
                .replace("{file}", "app.css")
                .replace("{*page}", "repos");
            let ep = parse(&path, &all).expect(r.template);
            assert_eq!(ep.kind(), r.kind, "{path}");
            assert_eq!(ep.template(), r.template, "{path}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "/v2/.*") {
            let _ = parse_path(&s);
        }

        #[test]
        fn never_panics_anywhere(s in "\\PC*") {
            let all = Mounted { metrics: Some("/metrics"), apikeys: true, token: true, openid: true, logout: true, docs: true, search: true, mgmt: true, userprefs: true, trust: true, ui: true };
            let _ = parse(&s, &all);
        }
    }
}

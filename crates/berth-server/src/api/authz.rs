//! Authorization: every request to a route of the table is judged here,
//! once, before any handler runs ([`authorize_request`]), by the
//! [`Access`] its row declares. The decisions handlers act on are made
//! here too and handed to them in [`Authorized`]: whether a manifest push
//! may only create its tag, and whether a mount may read its source. The
//! catalog is filtered by its handler with the same [`Caller`]. The 401
//! challenge is built in one place, [`unauthorized`].

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_oci::{ErrorCode, Reference, RepoName};
use http::{HeaderValue, Method, header};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::AppState;
use super::endpoint::{Endpoint, parse};
use super::error::ApiError;
use super::params::Params;
use super::routes::{self, Access};
use crate::auth::access::{AccessControl, Asking, Verdict};
use crate::auth::bearer::{CATALOG_SCOPE, repo_scope};
use crate::auth::conditions::RequestFacts;
use crate::auth::{Auth, Identity, Login, LoginMethod};
use crate::config::Action;
use crate::registry::Registry;
use crate::tls::TlsVersion;

/// The `401 UNAUTHORIZED` answer with the challenge of `auth` (for a
/// token, with `scope`): the one place it is built.
pub(crate) fn unauthorized(auth: &Auth, scope: Option<&str>) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "authentication required")
        .with_header(header::WWW_AUTHENTICATE, &auth.challenge(scope, false))
}

/// Who is calling and the rules they are judged by.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) identity: Identity,
    /// `None`: no access control; whoever got past authentication may do
    /// everything (zot's behaviour).
    pub(crate) access: Option<Arc<AccessControl>>,
    /// The authentication in force, for its challenges.
    pub(crate) auth: Option<Arc<Auth>>,
    /// An API key's scopes: repository globs outside which it grants
    /// nothing (`None`: no limit).
    pub(crate) scopes: Option<GlobSet>,
    /// How the caller logged in (`None`: no authentication configured).
    pub(crate) method: Option<LoginMethod>,
    /// What the access-control conditions see of the request.
    pub(crate) facts: Arc<RequestFacts>,
    /// `http.ReadOnly`: no action but reading is granted, whatever the
    /// rules say (a blob hydrated on read is then not linked in either).
    pub(crate) read_only: bool,
}

impl Caller {
    /// The caller of a request that authentication let through with
    /// `login` (`None`: no authentication configured).
    pub(crate) fn new(state: &AppState, login: Option<&Login>, mut facts: RequestFacts) -> Self {
        // A workload identity token's claims, for `req.claims`.
        facts.claims = login.and_then(|l| l.claims.clone());
        // A scope that is no valid glob (refused when keys are made)
        // leaves the key limited to nothing, not unlimited.
        let scopes = login.filter(|l| !l.scopes.is_empty()).map(|l| {
            let mut set = GlobSetBuilder::new();
            for s in &l.scopes {
                if let Ok(g) = GlobBuilder::new(s).literal_separator(true).build() {
                    set.add(g);
                }
            }
            set.build().unwrap_or_else(|_| GlobSet::empty())
        });
        Self {
            identity: login
                .map(|l| l.identity.clone())
                .unwrap_or(Identity::Anonymous),
            access: state.access_control(),
            auth: state.auth.clone(),
            scopes,
            method: login.map(|l| l.method),
            facts: Arc::new(facts),
            read_only: state.read_only,
        }
    }

    fn uses_bearer(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| a.uses_bearer())
    }

    /// Whether any rule applies at all: access control, or bearer tokens
    /// (whose grants are the rules).
    fn restricted(&self) -> bool {
        self.access.is_some()
            || self.uses_bearer()
            || self.scopes.is_some()
            || (self.auth.is_some() && self.identity == Identity::Anonymous)
    }

    pub(crate) fn may(&self, repo: &RepoName, action: Action) -> bool {
        self.verdict(repo, action, None).allowed
    }

    /// Whether the caller may do `action` on `repo` (at `reference`, for
    /// the conditions), and why not when a condition says so.
    fn verdict(&self, repo: &RepoName, action: Action, reference: Option<&Reference>) -> Verdict {
        let plain = |allowed| Verdict {
            allowed,
            reason: None,
        };
        if self.read_only && action != Action::Read {
            return plain(false);
        }
        if let Some(scopes) = &self.scopes
            && !scopes.is_match(repo.as_str())
        {
            return plain(false);
        }
        let asking = Asking {
            facts: &self.facts,
            reference,
        };
        let decide =
            |a: &Arc<AccessControl>| a.decide(&self.identity, repo.as_str(), action, asking);
        match (&self.identity, &self.access) {
            (Identity::Token(grant), _) => plain(grant.allows_repo(repo.as_str(), action)),
            (_, Some(access)) => decide(access),
            // Anonymous where authentication is configured: only what the
            // access rules give anonymous callers, never "no rules, so
            // everything".
            (Identity::Anonymous, None) => plain(self.auth.is_none()),
            (_, None) => plain(true),
        }
    }

    /// Whether the catalog shows `repo` to this caller.
    pub(crate) fn sees_in_catalog(&self, repo: &RepoName) -> bool {
        match &self.identity {
            Identity::Token(grant) if grant.allows_catalog() => true,
            _ => self.may(repo, Action::Read),
        }
    }

    /// 401 with the challenge for a caller who could still log in (or get
    /// a token with `scope`), 403 `DENIED` for one who has (with the
    /// challenge for `scope` when the caller holds a token).
    fn deny(&self, scope: Option<&str>) -> ApiError {
        match (&self.identity, &self.auth) {
            (Identity::Anonymous, Some(auth)) => unauthorized(auth, scope),
            // RFC 6750 §3.1: a token without the scope gets 403 with the
            // scope to ask for (oras-py fetches a new token on exactly
            // that; clients that ask for push and pull up front never see
            // it).
            (Identity::Token(_), Some(auth)) => ApiError::new(
                ErrorCode::Denied,
                "the token does not grant this; ask for the scope in the challenge",
            )
            .with_header(header::WWW_AUTHENTICATE, &auth.challenge(scope, true)),
            _ => ApiError::new(
                ErrorCode::Denied,
                "requested access to the resource is denied",
            ),
        }
    }

    fn require(
        &self,
        repo: &RepoName,
        action: Action,
        reference: Option<&Reference>,
    ) -> Result<(), ApiError> {
        let verdict = self.verdict(repo, action, reference);
        if verdict.allowed {
            return Ok(());
        }
        let denied = self.deny(Some(&repo_scope(repo.as_str(), action)));
        match verdict.reason {
            // A condition's message, for a caller who is logged in (one
            // who is not is asked to, as without conditions).
            Some(reason) if denied.code() == ErrorCode::Denied => {
                Err(denied.with_detail(serde_json::json!({ "reason": reason })))
            }
            _ => Err(denied),
        }
    }

    /// The base and discovery routes: an anonymous caller is challenged
    /// even where some repositories are open to it, because clients ping
    /// `/v2/` to learn whether and how to send their credentials (a client
    /// told 200 would push without them); one without credentials goes on
    /// anonymously after the challenge.
    fn require_login(&self) -> Result<(), ApiError> {
        if self.auth.is_some() && self.identity == Identity::Anonymous {
            Err(self.deny(None))
        } else {
            Ok(())
        }
    }

    /// The catalog: filtered per repository, but a bearer registry asks
    /// for the catalog scope first.
    fn require_catalog(&self) -> Result<(), ApiError> {
        match &self.identity {
            Identity::Anonymous if self.uses_bearer() => Err(self.deny(Some(CATALOG_SCOPE))),
            _ => Ok(()),
        }
    }

    /// The metrics: for those `accessControl.metrics` lets read them
    /// (everyone authenticated without access control; everyone without
    /// authentication).
    fn require_metrics(&self) -> Result<(), ApiError> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let allowed = match &self.access {
            Some(access) => access.may_read_metrics(&self.identity),
            None => self.identity != Identity::Anonymous,
        };
        match (allowed, &self.identity) {
            (true, _) => Ok(()),
            (false, Identity::Anonymous) => Err(unauthorized(auth, None)),
            (false, _) => Err(ApiError::new(
                ErrorCode::Denied,
                "reading the metrics is not allowed",
            )),
        }
    }

    /// A caller with a name: anyone but an anonymous one.
    fn require_name(&self) -> Result<(), ApiError> {
        match (&self.identity, &self.auth) {
            (Identity::Anonymous, Some(auth)) => Err(unauthorized(auth, None)),
            (Identity::Anonymous, None) => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "this needs a logged-in user, and no authentication is configured",
            )),
            _ => Ok(()),
        }
    }

    /// The registry's own settings (the trust material): an admin of the
    /// access rules; without rules, whoever authentication let through
    /// (anyone, without authentication); never a token's grant or an API
    /// key limited to some repositories.
    fn require_admin(&self) -> Result<(), ApiError> {
        let allowed = match (&self.identity, &self.access) {
            (_, _) if self.scopes.is_some() => false,
            (Identity::Token(_), _) => false,
            (Identity::Anonymous, _) if self.auth.is_some() => false,
            (identity, Some(access)) => access.is_admin(identity),
            (_, None) => true,
        };
        match (allowed, &self.identity, &self.auth) {
            (true, _, _) => Ok(()),
            (false, Identity::Anonymous, Some(auth)) => Err(unauthorized(auth, None)),
            (false, _, _) => Err(ApiError::new(
                ErrorCode::Denied,
                "only an admin (accessControl.adminPolicy) may do this",
            )),
        }
    }

    /// API keys: managed by a user logged in with a password (or in a
    /// browser through an OpenID provider), never with a key, a
    /// certificate or a token.
    fn require_password_login(&self) -> Result<(), ApiError> {
        match (&self.identity, self.method, &self.auth) {
            (Identity::User { .. }, Some(LoginMethod::Password | LoginMethod::OpenId), _) => Ok(()),
            (Identity::User { .. }, _, _) => Err(ApiError::new(
                ErrorCode::Denied,
                "API keys are managed after logging in with a password (not a key or a certificate)",
            )),
            (_, _, Some(auth)) => Err(unauthorized(auth, None)),
            (_, _, None) => Err(ApiError::not_found()),
        }
    }
}

/// A request authorization let through: its endpoint, its caller and the
/// decisions its handler acts on. Left in the request's extensions.
#[derive(Clone)]
pub(crate) struct Authorized {
    pub(crate) endpoint: Endpoint,
    pub(crate) caller: Caller,
    /// A manifest push by a caller who may create but not update: the
    /// tag must still be new when the repository is locked.
    pub(crate) create_only: bool,
    /// A mount's source (`?mount=&from=`), when the caller may read it; a
    /// caller who may not gets a plain upload session.
    pub(crate) mount_from: Option<RepoName>,
}

/// The middleware that authorizes every request to a route of the table
/// before the router sees it. A path that is no route passes through, to
/// be answered 404 (or its parse error) by the dispatcher.
pub(crate) async fn authorize_request(
    State(state): State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(endpoint) = parse(req.uri().path(), &state.mounted()) else {
        return next.run(req).await;
    };
    let access = routes::access(req.method().as_str(), endpoint.kind());
    // The public routes beside `/v2` (health probes) need no caller; the
    // one under it (zot's management route) is dispatched as any other.
    if access == Access::Public && !endpoint.kind().is_v2() {
        return next.run(req).await;
    }
    let writes = matches!(
        access,
        Access::Push | Access::Repo(Action::Create | Action::Update | Action::Delete)
    );
    if state.read_only && writes {
        super::drain_small_body(req).await;
        return ApiError::new(
            ErrorCode::Denied,
            "this registry is read-only (http.ReadOnly): nothing can be pushed, moved or deleted",
        )
        .with_status(http::StatusCode::FORBIDDEN)
        .into_response();
    }
    // Only access rules read the facts (their conditions): a registry
    // without them does not gather them on every request.
    let facts = if state.access_control().is_some() {
        RequestFacts::from_request(
            req.method(),
            req.headers(),
            req.extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
            req.extensions().get::<TlsVersion>().map(|v| v.0.clone()),
        )
    } else {
        RequestFacts::default()
    };
    let caller = Caller::new(&state, req.extensions().get::<Login>(), facts);
    match authorize(
        &caller,
        &state.registry,
        req.method(),
        &endpoint,
        access,
        req.uri().query(),
    )
    .await
    {
        Ok((create_only, mount_from)) => {
            req.extensions_mut().insert(Authorized {
                endpoint,
                caller,
                create_only,
                mount_from,
            });
            next.run(req).await
        }
        Err(e) => {
            super::drain_small_body(req).await;
            let mut resp = e.into_response();
            if endpoint.kind().is_v2() {
                resp.headers_mut().insert(
                    "Docker-Distribution-API-Version",
                    HeaderValue::from_static("registry/2.0"),
                );
            }
            resp
        }
    }
}

/// Checks that `caller` may call this route with `access`, and decides
/// what the handler needs decided: `(create_only, mount_from)` (`query`
/// is the request's, for a mount's source).
pub(crate) async fn authorize(
    caller: &Caller,
    reg: &Registry,
    method: &Method,
    ep: &Endpoint,
    access: Access,
    query: Option<&str>,
) -> Result<(bool, Option<RepoName>), ApiError> {
    use Endpoint as E;
    let reference = match ep {
        E::Manifest { reference, .. } => Some(reference),
        _ => None,
    };
    // Decided whether or not rules apply; without rules they allow all.
    let create_only = match ep {
        E::Manifest { name, .. } if access == Access::Push => {
            !caller.verdict(name, Action::Update, reference).allowed
        }
        _ => false,
    };
    let mount_from = match ep {
        E::UploadStart { name } if *method == Method::POST => {
            let params = Params::parse(query);
            match (params.get("mount"), params.get("from")) {
                (Some(_), Some(from)) => from
                    .parse::<RepoName>()
                    .ok()
                    .filter(|f| caller.may(f, Action::Read)),
                // Automatic content discovery: a repository the store
                // knows to hold the blob, among those the caller may read
                // (never another).
                (Some(mount), None) => match mount.parse::<berth_oci::Digest>() {
                    Ok(digest) => reg
                        .blob_holders(name, &digest)
                        .await
                        .into_iter()
                        .find(|h| caller.may(h, Action::Read)),
                    Err(_) => None,
                },
                _ => None,
            }
        }
        _ => None,
    };
    let decided = Ok((create_only, mount_from));
    match access {
        // Pages show each caller what search shows it; those that need a
        // login send an anonymous one to the login page.
        Access::Public | Access::Authenticated | Access::Search | Access::Page => return decided,
        Access::User => return caller.require_name().and(decided),
        Access::Metrics => return caller.require_metrics().and(decided),
        Access::ApiKeys => return caller.require_password_login().and(decided),
        Access::Admin => return caller.require_admin().and(decided),
        _ if !caller.restricted() => return decided,
        _ => {}
    }
    match (access, ep.repo()) {
        (Access::Login, _) => caller.require_login()?,
        (Access::Catalog, _) => caller.require_catalog()?,
        (Access::Repo(action), Some(name)) => caller.require(name, action, reference)?,
        (Access::Push, Some(name)) => {
            // Moving an existing tag is an update; anything else creates.
            let moves_tag = match ep {
                E::Manifest {
                    reference: Reference::Tag(t),
                    ..
                } => reg.tag_exists(name, t.as_str()).await?,
                _ => false,
            };
            caller.require(
                name,
                if moves_tag {
                    Action::Update
                } else {
                    Action::Create
                },
                reference,
            )?
        }
        // A repository's access on a route without one: the table is
        // wrong; refuse rather than let it through.
        (Access::Repo(_) | Access::Push, None) => {
            return Err(ApiError::internal(format!(
                "route {} needs a repository it does not have",
                ep.template()
            )));
        }
        (
            Access::Public
            | Access::Authenticated
            | Access::Metrics
            | Access::ApiKeys
            | Access::Search
            | Access::User
            | Access::Admin
            | Access::Page,
            _,
        ) => {}
    }
    decided
}

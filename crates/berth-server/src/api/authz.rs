//! Authorization: the action each route needs, checked once per request
//! before the handler runs (the catalog is filtered and a mount's source
//! checked in their handlers, with the same [`Caller`]).

use std::sync::Arc;

use berth_oci::{ErrorCode, Reference, RepoName};
use http::{Method, header};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::AppState;
use super::endpoint::Endpoint;
use super::error::ApiError;
use crate::auth::access::AccessControl;
use crate::auth::bearer::{CATALOG_SCOPE, repo_scope};
use crate::auth::{Auth, Identity, Login};
use crate::config::Action;
use crate::registry::Registry;

/// Who is calling and the rules they are judged by.
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
}

impl Caller {
    /// The caller of a request that authentication let through with
    /// `login` (`None`: no authentication configured).
    pub(crate) fn new(state: &AppState, login: Option<&Login>) -> Self {
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
        if let Some(scopes) = &self.scopes
            && !scopes.is_match(repo.as_str())
        {
            return false;
        }
        match &self.identity {
            Identity::Token(grant) => grant.allows_repo(repo.as_str(), action),
            // Anonymous where authentication is configured: only what the
            // access rules give anonymous callers, never "no rules, so
            // everything".
            Identity::Anonymous if self.auth.is_some() => self
                .access
                .as_ref()
                .is_some_and(|a| a.allowed(&self.identity, repo.as_str(), action)),
            _ => self
                .access
                .as_ref()
                .is_none_or(|a| a.allowed(&self.identity, repo.as_str(), action)),
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
            (Identity::Anonymous, Some(auth)) => {
                ApiError::new(ErrorCode::Unauthorized, "authentication required")
                    .with_header(header::WWW_AUTHENTICATE, &auth.challenge(scope, false))
            }
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

    fn require(&self, repo: &RepoName, action: Action) -> Result<(), ApiError> {
        if self.may(repo, action) {
            Ok(())
        } else {
            Err(self.deny(Some(&repo_scope(repo.as_str(), action))))
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
}

/// Checks that `caller` may call this route.
pub(crate) async fn authorize(
    caller: &Caller,
    reg: &Registry,
    method: &Method,
    ep: &Endpoint,
) -> Result<(), ApiError> {
    if !caller.restricted() {
        return Ok(());
    }
    use Endpoint as E;
    match (method, ep) {
        (_, E::Base | E::Discover) => caller.require_login(),
        (_, E::Catalog) => caller.require_catalog(),
        (
            &Method::GET | &Method::HEAD,
            E::Tags { name }
            | E::Manifest { name, .. }
            | E::Blob { name, .. }
            | E::Referrers { name, .. },
        ) => caller.require(name, Action::Read),
        (&Method::PUT, E::Manifest { name, reference }) => {
            // Moving an existing tag is an update; anything else creates.
            let moves_tag = match reference {
                Reference::Tag(t) => reg.tag_exists(name, t.as_str()).await?,
                Reference::Digest(_) => false,
            };
            caller.require(
                name,
                if moves_tag {
                    Action::Update
                } else {
                    Action::Create
                },
            )
        }
        (&Method::DELETE, E::Manifest { name, .. } | E::Blob { name, .. }) => {
            caller.require(name, Action::Delete)
        }
        (_, E::UploadStart { name } | E::Upload { name, .. }) => {
            caller.require(name, Action::Create)
        }
        // Other methods are refused by the router with 405; ask for the
        // most a route can need so nothing slips through.
        (
            _,
            E::Tags { name }
            | E::Manifest { name, .. }
            | E::Blob { name, .. }
            | E::Referrers { name, .. },
        ) => caller.require(name, Action::Delete),
    }
}

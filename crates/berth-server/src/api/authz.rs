//! Authorization: the action each route needs, checked once per request
//! before the handler runs (the catalog is filtered and a mount's source
//! checked in their handlers, with the same [`Caller`]).

use std::sync::Arc;

use berth_oci::{ErrorCode, Reference, RepoName};
use http::{Method, header};

use super::endpoint::Endpoint;
use super::error::ApiError;
use crate::auth::Identity;
use crate::auth::access::AccessControl;
use crate::config::Action;
use crate::registry::Registry;

/// Who is calling and the rules they are judged by.
pub(crate) struct Caller {
    pub(crate) identity: Identity,
    /// `None`: no access control; whoever got past authentication may do
    /// everything (zot's behaviour).
    pub(crate) access: Option<Arc<AccessControl>>,
    /// The authentication challenge, when authentication is configured.
    pub(crate) challenge: Option<String>,
}

impl Caller {
    pub(crate) fn may(&self, repo: &RepoName, action: Action) -> bool {
        self.access
            .as_ref()
            .is_none_or(|a| a.allowed(&self.identity, repo.as_str(), action))
    }

    /// 401 with the challenge for a caller who could still log in, 403
    /// `DENIED` for one who has.
    fn deny(&self) -> ApiError {
        match (&self.identity, &self.challenge) {
            (Identity::Anonymous, Some(challenge)) => {
                ApiError::new(ErrorCode::Unauthorized, "authentication required")
                    .with_header(header::WWW_AUTHENTICATE, challenge)
            }
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
            Err(self.deny())
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
    if caller.access.is_none() {
        return Ok(());
    }
    use Endpoint as E;
    match (method, ep) {
        (_, E::Base | E::Discover | E::Catalog) => Ok(()),
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

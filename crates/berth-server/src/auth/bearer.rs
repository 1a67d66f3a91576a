//! Bearer tokens (`http.auth.bearer`): JWTs issued by an external token
//! server following the Docker registry token specification.
//!
//! A client without a token is answered 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; it asks the realm
//! for a token with that scope and retries. Berth checks the token's
//! signature against the public key of `cert`, its expiry and not-before
//! times, and that its audience is `service`; the token's `access` claim is
//! then all the caller may do (`pull` reads, `push` creates and updates,
//! `delete` deletes, `*` everything). The certificate is re-read when it or
//! the config file changes, so a signing key can be rotated live.

use std::path::Path;

use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;

use super::AuthConfigError;
use crate::config::{Action, BearerConfig};

/// What a verified token lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's `sub`.
    pub subject: String,
    pub access: Vec<AccessEntry>,
}

/// One entry of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

impl Grant {
    /// Whether the token grants `action` on repository `repo`.
    pub fn allows_repo(&self, repo: &str, action: Action) -> bool {
        self.access
            .iter()
            .filter(|e| e.kind == "repository" && e.name == repo)
            .flat_map(|e| e.actions.iter())
            .any(|a| match a.as_str() {
                "*" => true,
                "pull" => action == Action::Read,
                "push" => matches!(action, Action::Create | Action::Update),
                "delete" => action == Action::Delete,
                _ => false,
            })
    }

    /// Whether the token grants the catalog (`registry:catalog:*`).
    pub fn allows_catalog(&self) -> bool {
        self.access.iter().any(|e| {
            e.kind == "registry" && e.name == "catalog" && e.actions.iter().any(|a| a == "*")
        })
    }
}

/// The scope a client must ask for to do `action` on `repo`.
pub fn repo_scope(repo: &str, action: Action) -> String {
    let actions = match action {
        Action::Read => "pull",
        Action::Create | Action::Update | Action::DetectManifestCollision => "pull,push",
        Action::Delete => "delete",
    };
    format!("repository:{repo}:{actions}")
}

/// The scope of the catalog.
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    access: Vec<AccessEntry>,
}

/// The token verifier.
pub struct Bearer {
    cert: std::path::PathBuf,
    realm: String,
    service: String,
    key: DecodingKey,
    validation: Validation,
}

impl Bearer {
    /// Reads the public key of `cert` (a PEM certificate or public key,
    /// RSA, EC or Ed25519). Errors name the key.
    pub fn load(config: &BearerConfig) -> Result<Self, AuthConfigError> {
        let key = read_key(&config.cert)?;
        let mut validation = Validation::new_for_family(key.family());
        validation.set_audience(&[&config.service]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.validate_nbf = true;
        Ok(Self {
            cert: config.cert.clone(),
            realm: config.realm.clone(),
            service: config.service.clone(),
            key,
            validation,
        })
    }

    /// The certificate file the key came from.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The grant of a token, or `None` when it does not verify.
    pub fn verify(&self, token: &str) -> Option<Grant> {
        match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) => Some(Grant {
                subject: data.claims.sub,
                access: data.claims.access,
            }),
            Err(e) => {
                tracing::info!(error = %e, "bearer token rejected");
                None
            }
        }
    }

    /// The `WWW-Authenticate` value asking for `scope` (none for `/v2/`);
    /// `insufficient` marks a token that lacks the scope.
    pub fn challenge(&self, scope: Option<&str>, insufficient: bool) -> String {
        let mut v = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            quote_safe(&self.realm),
            quote_safe(&self.service)
        );
        if let Some(scope) = scope {
            v.push_str(&format!(",scope=\"{}\"", quote_safe(scope)));
        }
        if insufficient {
            v.push_str(",error=\"insufficient_scope\"");
        }
        v
    }
}

fn quote_safe(s: &str) -> String {
    s.replace(['"', '\\'], "")
}

/// The public key in `path`; the error names `http.auth.bearer.cert`.
fn read_key(path: &Path) -> Result<DecodingKey, AuthConfigError> {
    const KEY: &str = "http.auth.bearer.cert";
    let pem = std::fs::read(path).map_err(|e| AuthConfigError::bad_file(KEY, path, e))?;
    DecodingKey::from_ec_pem(&pem)
        .or_else(|_| DecodingKey::from_rsa_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| {
            AuthConfigError::bad_file(
                KEY,
                path,
                "no RSA, EC or Ed25519 public key or certificate in the file",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(access: serde_json::Value) -> Grant {
        Grant {
            subject: "s".into(),
            access: serde_json::from_value(access).expect("access"),
        }
    }

    #[test]
    fn access_claim_maps_to_actions() {
        use Action::*;
        let g = grant(serde_json::json!([
            {"type": "repository", "name": "a", "actions": ["pull"]},
            {"type": "repository", "name": "b", "actions": ["pull", "push"]},
            {"type": "repository", "name": "c", "actions": ["delete"]},
            {"type": "repository", "name": "d", "actions": ["*"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ]));
        let cases = [
            ("a", Read, true),
            ("a", Create, false),
            ("b", Create, true),
            ("b", Update, true),
            ("b", Delete, false),
            ("c", Delete, true),
            ("c", Read, false),
            ("d", Delete, true),
            ("d", Update, true),
            ("e", Read, false),
            ("a/b", Read, false),
        ];
        for (repo, action, want) in cases {
            assert_eq!(g.allows_repo(repo, action), want, "{repo} {action:?}");
        }
        assert!(g.allows_catalog());
        assert!(!grant(serde_json::json!([])).allows_catalog());
        // Only `*` grants the catalog, as in distribution: another action
        // leaves it filtered to what the token may pull.
        for actions in [
            serde_json::json!(["pull"]),
            serde_json::json!(["push", "delete"]),
            serde_json::json!([]),
        ] {
            let g = grant(
                serde_json::json!([{"type": "registry", "name": "catalog", "actions": actions}]),
            );
            assert!(!g.allows_catalog(), "{actions}");
        }
    }

    #[test]
    fn scopes_and_challenges() {
        assert_eq!(repo_scope("x/y", Action::Read), "repository:x/y:pull");
        assert_eq!(repo_scope("x", Action::Update), "repository:x:pull,push");
        assert_eq!(repo_scope("x", Action::Delete), "repository:x:delete");
    }
}

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
//!
//! Instead of `cert`, the keys may come from AWS Secrets Manager
//! (`awsSecretsManager`, `secrets.rs`): then a token names its key
//! with `kid`. Workload identity tokens (`oidc`) are [`super::oidc`]'s.

use std::path::Path;

use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;

use super::{AuthConfigError, TokenError};
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

/// Where the verifying keys come from.
enum Keys {
    /// `cert`, re-read on a reload.
    Cert {
        path: std::path::PathBuf,
        key: DecodingKey,
    },
    /// `awsSecretsManager`: keys by `kid`, read and refreshed lazily.
    #[cfg(feature = "secretsmanager")]
    Secret(std::sync::Arc<super::secrets::SecretKeys>),
}

/// The challenge and, for classic tokens, their verifier.
pub struct Bearer {
    realm: String,
    service: String,
    /// `None`: only workload identity tokens (`oidc`) are accepted.
    keys: Option<Keys>,
    /// Where the token endpoint forwards what it does not own.
    upstream: Option<crate::config::UpstreamTokenEndpoint>,
}

impl Bearer {
    /// The verifier of `config`: reads the public key of `cert` (a PEM
    /// certificate or public key, RSA, EC or Ed25519) or sets up the
    /// client of `awsSecretsManager`. Errors name the key.
    pub fn load(config: &BearerConfig) -> Result<Self, AuthConfigError> {
        let keys = match (&config.cert, &config.aws_secrets_manager) {
            (Some(cert), _) => Some(Keys::Cert {
                path: cert.clone(),
                key: read_key(cert)?,
            }),
            #[cfg(feature = "secretsmanager")]
            (None, Some(asm)) => Some(Keys::Secret(std::sync::Arc::new(
                super::secrets::SecretKeys::new(asm)?,
            ))),
            #[cfg(not(feature = "secretsmanager"))]
            (None, Some(_)) => {
                return Err(AuthConfigError::Invalid {
                    key: "http.auth.bearer.awsSecretsManager",
                    message: "this berth was built without the \"secretsmanager\" feature".into(),
                });
            }
            (None, None) => None,
        };
        Ok(Self {
            realm: config.realm.clone().unwrap_or_default(),
            service: config.service.clone().unwrap_or_default(),
            keys,
            upstream: config.upstream_token_endpoint.clone(),
        })
    }

    /// `upstreamTokenEndpoint`.
    pub fn upstream(&self) -> Option<&crate::config::UpstreamTokenEndpoint> {
        self.upstream.as_ref()
    }

    /// The certificate file the key came from, if it came from one.
    pub fn cert_path(&self) -> Option<&Path> {
        match &self.keys {
            Some(Keys::Cert { path, .. }) => Some(path),
            _ => None,
        }
    }

    /// Whether classic tokens are verified (`cert` or `awsSecretsManager`).
    pub fn classic(&self) -> bool {
        self.keys.is_some()
    }

    /// Whether a realm is configured for the challenge.
    pub fn has_realm(&self) -> bool {
        !self.realm.is_empty()
    }

    /// The grant of a classic token.
    pub async fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::invalid)?;
        let key = match &self.keys {
            None => {
                return Err(TokenError::invalid(
                    "no classic bearer tokens are configured",
                ));
            }
            Some(Keys::Cert { key, .. }) => key.clone(),
            #[cfg(feature = "secretsmanager")]
            Some(Keys::Secret(secret)) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| TokenError::invalid("the token names no key (kid)"))?;
                secret.key(kid).await?
            }
        };
        let mut validation = Validation::new_for_family(key.family());
        validation.set_audience(&[&self.service]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.validate_nbf = true;
        if !validation.algorithms.contains(&header.alg) {
            return Err(TokenError::invalid(format!(
                "{:?} does not fit the key",
                header.alg
            )));
        }
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| Grant {
                subject: data.claims.sub,
                access: data.claims.access,
            })
            .map_err(TokenError::invalid)
    }

    /// The `WWW-Authenticate` value asking for `scope` (none for `/v2/`);
    /// `insufficient` marks a token that lacks the scope. `fallback_realm`
    /// (`http.realm`) stands in when only `oidc` is configured.
    pub fn challenge(
        &self,
        scope: Option<&str>,
        insufficient: bool,
        fallback_realm: &str,
    ) -> String {
        let mut v = match self.has_realm() {
            true => format!(
                "Bearer realm=\"{}\",service=\"{}\"",
                quote_safe(&self.realm),
                quote_safe(&self.service)
            ),
            false => format!("Bearer realm=\"{}\"", quote_safe(fallback_realm)),
        };
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
    pem_key(&pem).ok_or_else(|| {
        AuthConfigError::bad_file(
            KEY,
            path,
            "no RSA, EC or Ed25519 public key or certificate in the file",
        )
    })
}

/// The RSA, EC or Ed25519 public key of a PEM public key or certificate.
pub(crate) fn pem_key(pem: &[u8]) -> Option<DecodingKey> {
    DecodingKey::from_ec_pem(pem)
        .or_else(|_| DecodingKey::from_rsa_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .ok()
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

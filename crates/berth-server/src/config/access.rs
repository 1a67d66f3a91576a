//! `http.accessControl`: zot's schema.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// An action a policy grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    /// zot's: may see that a digest push collides. Accepted; Berth has no
    /// collision check to guard.
    DetectManifestCollision,
}

/// A list of users and groups granted actions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub actions: Vec<Action>,
    /// zot's CEL conditions: the entry grants only when all hold
    /// (`auth/conditions.rs` says what they see).
    #[serde(default)]
    pub conditions: Vec<ConditionConfig>,
}

/// One access-control condition: a CEL expression over `req` and the
/// message a refusal carries when it is false.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    pub expression: String,
    #[serde(default)]
    pub message: String,
}

/// The rules of one repository glob.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepoAccess {
    #[serde(default)]
    pub policies: Vec<Policy>,
    /// Actions every authenticated user has.
    #[serde(default)]
    pub default_policy: Vec<Action>,
    /// Actions callers without credentials have.
    #[serde(default)]
    pub anonymous_policy: Vec<Action>,
}

/// A named group of users.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[serde(default)]
    pub users: Vec<String>,
}

/// `http.accessControl`. Re-read from the config file when it changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessControlConfig {
    /// Rules by repository glob; the longest glob that matches applies; a
    /// repository no glob matches is closed to everyone but admins.
    #[serde(default)]
    pub repositories: BTreeMap<String, RepoAccess>,
    /// Granted on every repository.
    #[serde(default)]
    pub admin_policy: Option<Policy>,
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    /// Who may read the metrics (without it: admins only).
    #[serde(default)]
    pub metrics: Option<MetricsAccess>,
}

/// `http.accessControl.metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsAccess {
    /// Users who may read the metrics.
    #[serde(default)]
    pub users: Vec<String>,
    /// `["read"]` lets callers without credentials read them.
    #[serde(default)]
    pub anonymous_policy: Vec<Action>,
}

impl AccessControlConfig {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        for glob in self.repositories.keys() {
            globset::Glob::new(glob).map_err(|e| {
                ConfigError::key(
                    format!("http.accessControl.repositories.{glob}"),
                    format!("bad glob: {e}"),
                )
            })?;
        }
        for (glob, rule) in &self.repositories {
            for (i, policy) in rule.policies.iter().enumerate() {
                check_conditions(
                    &format!("http.accessControl.repositories.{glob}.policies[{i}]"),
                    &policy.conditions,
                )?;
            }
        }
        if let Some(admin) = &self.admin_policy {
            check_conditions("http.accessControl.adminPolicy", &admin.conditions)?;
        }
        Ok(())
    }
}

/// Each condition compiles (its key named if not).
fn check_conditions(at: &str, conditions: &[ConditionConfig]) -> Result<(), ConfigError> {
    for (j, c) in conditions.iter().enumerate() {
        crate::auth::conditions::compile(&c.expression).map_err(|e| {
            ConfigError::key(
                format!("{at}.conditions[{j}].expression"),
                format!("bad CEL expression: {e}"),
            )
        })?;
    }
    Ok(())
}

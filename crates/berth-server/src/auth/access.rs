//! Access control (`http.accessControl`): may this identity do this action
//! on this repository?
//!
//! The longest repository glob that matches applies (a repository no glob
//! matches is closed to all but admins). A user has an action if the
//! admin policy grants it, or a policy of the matching rule names the user
//! or one of their groups with it, or the rule's `defaultPolicy` has it.
//! A caller without credentials has what `anonymousPolicy` grants.

use std::collections::HashSet;

use globset::{GlobBuilder, GlobMatcher};

use super::Identity;
use crate::config::{AccessControlConfig, Action, Policy, RepoAccess};

pub struct AccessControl {
    config: AccessControlConfig,
    /// Each repository glob, compiled, with its length for "longest wins".
    globs: Vec<(String, GlobMatcher)>,
    /// A hash of the rules (see [`AccessControl::fingerprint`]).
    fingerprint: u64,
}

impl AccessControl {
    pub fn new(config: AccessControlConfig) -> Self {
        let globs = config
            .repositories
            .keys()
            .filter_map(|g| {
                GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .ok()
                    .map(|m| (g.clone(), m.compile_matcher()))
            })
            .collect();
        let fingerprint = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            format!("{config:?}").hash(&mut h);
            h.finish()
        };
        Self {
            config,
            globs,
            fingerprint,
        }
    }

    /// A hash of the rules: equal rules give equal fingerprints, so what
    /// was worked out under some rules (a search answer) can be told from
    /// what other rules would give, across reloads.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether any rule lets anonymous callers do anything (then requests
    /// without credentials are let through to be judged per route).
    pub fn has_anonymous_access(&self) -> bool {
        self.config
            .repositories
            .values()
            .any(|r| !r.anonymous_policy.is_empty())
            || self
                .config
                .metrics
                .as_ref()
                .is_some_and(|m| m.anonymous_policy.contains(&Action::Read))
    }

    /// Whether `identity` may read the metrics: the users
    /// `accessControl.metrics` names (or, with `anonymousPolicy: [read]`,
    /// anyone), and admins. Without a `metrics` section, admins only.
    pub fn may_read_metrics(&self, identity: &Identity) -> bool {
        let rules = self.config.metrics.as_ref();
        if rules.is_some_and(|m| m.anonymous_policy.contains(&Action::Read)) {
            return true;
        }
        let Identity::User {
            name,
            groups: directory_groups,
        } = identity
        else {
            return false;
        };
        if rules.is_some_and(|m| m.users.iter().any(|u| u == name)) {
            return true;
        }
        let mut groups = self.groups_of(name);
        groups.extend(directory_groups.iter().map(String::as_str));
        self.config
            .admin_policy
            .as_ref()
            .is_some_and(|p| Self::grants(p, name, &groups, Action::Read))
    }

    /// Whether `identity` is an admin: a user `adminPolicy` names, by
    /// name or by one of its groups (configured or from the directory).
    pub fn is_admin(&self, identity: &Identity) -> bool {
        let Identity::User {
            name,
            groups: directory_groups,
        } = identity
        else {
            return false;
        };
        let Some(policy) = self.config.admin_policy.as_ref() else {
            return false;
        };
        let mut groups = self.groups_of(name);
        groups.extend(directory_groups.iter().map(String::as_str));
        policy.users.iter().any(|u| u == name)
            || policy.groups.iter().any(|g| groups.contains(g.as_str()))
    }

    fn rule_for(&self, repo: &str) -> Option<&RepoAccess> {
        self.globs
            .iter()
            .filter(|(_, m)| m.is_match(repo))
            .max_by_key(|(g, _)| g.len())
            .and_then(|(g, _)| self.config.repositories.get(g))
    }

    fn groups_of(&self, user: &str) -> HashSet<&str> {
        self.config
            .groups
            .iter()
            .filter(|(_, g)| g.users.iter().any(|u| u == user))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    fn grants(policy: &Policy, user: &str, groups: &HashSet<&str>, action: Action) -> bool {
        policy.actions.contains(&action)
            && (policy.users.iter().any(|u| u == user)
                || policy.groups.iter().any(|g| groups.contains(g.as_str())))
    }

    /// Whether `identity` may do `action` on `repo`.
    pub fn allowed(&self, identity: &Identity, repo: &str, action: Action) -> bool {
        match identity {
            Identity::Anonymous => self
                .rule_for(repo)
                .is_some_and(|r| r.anonymous_policy.contains(&action)),
            // A token's grant is judged by the token, not by these rules.
            Identity::Token(_) => false,
            Identity::User {
                name: user,
                groups: directory_groups,
            } => {
                let mut groups = self.groups_of(user);
                groups.extend(directory_groups.iter().map(String::as_str));
                if self
                    .config
                    .admin_policy
                    .as_ref()
                    .is_some_and(|p| Self::grants(p, user, &groups, action))
                {
                    return true;
                }
                self.rule_for(repo).is_some_and(|r| {
                    r.default_policy.contains(&action)
                        || r.policies
                            .iter()
                            .any(|p| Self::grants(p, user, &groups, action))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ac() -> AccessControl {
        let config: AccessControlConfig = serde_json::from_value(serde_json::json!({
            "repositories": {
                "**": {"defaultPolicy": ["read"], "anonymousPolicy": ["read"]},
                "ci/**": {"policies": [{"users": ["ci"], "actions": ["read", "create", "update", "delete"]},
                                       {"groups": ["devs"], "actions": ["read", "create"]}]},
                "secret/*": {"policies": [{"users": ["spy"], "actions": ["read"]}]}
            },
            "adminPolicy": {"users": ["root"], "actions": ["read", "create", "update", "delete"]},
            "groups": {"devs": {"users": ["dana"]}}
        }))
        .expect("config");
        AccessControl::new(config)
    }

    #[test]
    fn matrix() {
        use Action::*;
        let ac = ac();
        let anon = Identity::Anonymous;
        let user = |u: &str| Identity::user(u);
        let cases = [
            (&anon, "public/app", Read, true),
            (&anon, "public/app", Create, false),
            (&user("eve"), "public/app", Read, true),
            (&user("eve"), "public/app", Delete, false),
            // The longer glob wins: ci/** has no default or anonymous read.
            (&anon, "ci/app", Read, false),
            (&user("eve"), "ci/app", Read, false),
            (&user("ci"), "ci/app", Delete, true),
            (&user("dana"), "ci/app", Create, true),
            (&user("dana"), "ci/app", Update, false),
            (&user("spy"), "secret/plans", Read, true),
            (&user("spy"), "secret/plans/deeper", Read, true), // only ** matches that
            (&user("spy"), "secret/plans", Create, false),
            (&user("root"), "secret/plans", Delete, true),
            (&user("root"), "anything", Update, true),
        ];
        for (who, repo, action, want) in cases {
            assert_eq!(
                ac.allowed(who, repo, action),
                want,
                "{who:?} {action:?} {repo}"
            );
        }
        assert!(ac.has_anonymous_access());
    }
}

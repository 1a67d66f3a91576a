//! Access control (`http.accessControl`): may this identity do this action
//! on this repository?
//!
//! The longest repository glob that matches applies (a repository no glob
//! matches is closed to all but admins). A user has an action if the
//! admin policy grants it, or a policy of the matching rule names the user
//! or one of their groups with it, or the rule's `defaultPolicy` has it.
//! A caller without credentials has what `anonymousPolicy` grants.

use std::collections::{HashMap, HashSet};

use berth_oci::Reference;
use globset::{GlobBuilder, GlobMatcher};

use super::Identity;
use super::conditions::{self, Asked, Condition, RequestFacts, Unmet};
use crate::config::{AccessControlConfig, Action, Policy, RepoAccess};

pub struct AccessControl {
    config: AccessControlConfig,
    /// Each repository glob, compiled (`None` for one with `${username}`,
    /// matched per caller), with its text for "longest wins".
    globs: Vec<(String, Option<GlobMatcher>)>,
    /// The compiled conditions of each rule's policies, by glob, in the
    /// order of its `policies`.
    conditions: HashMap<String, Vec<Vec<Condition>>>,
    /// The compiled conditions of `adminPolicy`.
    admin_conditions: Vec<Condition>,
    /// A hash of the rules (see [`AccessControl::fingerprint`]).
    fingerprint: u64,
}

/// zot's placeholder in a repository glob for the caller's name
/// (`${username}/**`: each user's own namespace).
const USERNAME: &str = "${username}";

/// The answer to "may this caller do this?", with why not when a
/// condition's message says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The `message` of the last condition that was false, if any.
    pub reason: Option<String>,
}

/// What the conditions see of a request beyond caller, repository and
/// action.
#[derive(Clone, Copy)]
pub struct Asking<'a> {
    pub facts: &'a RequestFacts,
    pub reference: Option<&'a Reference>,
}

fn compile_glob(glob: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

fn compile_all(policy: &Policy) -> Vec<Condition> {
    policy
        .conditions
        .iter()
        .filter_map(Condition::new)
        .collect()
}

impl AccessControl {
    pub fn new(config: AccessControlConfig) -> Self {
        let globs = config
            .repositories
            .keys()
            .filter_map(|g| {
                if g.contains(USERNAME) {
                    Some((g.clone(), None))
                } else {
                    compile_glob(g).map(|m| (g.clone(), Some(m)))
                }
            })
            .collect();
        let conditions = config
            .repositories
            .iter()
            .map(|(g, r)| (g.clone(), r.policies.iter().map(compile_all).collect()))
            .collect();
        let admin_conditions = config
            .admin_policy
            .as_ref()
            .map(compile_all)
            .unwrap_or_default();
        let fingerprint = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            format!("{config:?}").hash(&mut h);
            h.finish()
        };
        Self {
            config,
            globs,
            conditions,
            admin_conditions,
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
            .is_some_and(|p| Self::names(p, name, &groups, Action::Read))
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

    /// The rule of the longest glob matching `repo` for `user` (`""`:
    /// anonymous, whom no `${username}` glob matches), with the glob.
    fn rule_for(&self, repo: &str, user: &str) -> Option<(&str, &RepoAccess)> {
        self.globs
            .iter()
            .filter(|(g, m)| match m {
                Some(m) => m.is_match(repo),
                None if user.is_empty() => false,
                // The name stands for itself: its glob characters escaped.
                None => compile_glob(&g.replace(USERNAME, &globset::escape(user)))
                    .is_some_and(|m| m.is_match(repo)),
            })
            .max_by_key(|(g, _)| g.len())
            .and_then(|(g, _)| self.config.repositories.get_key_value(g))
            .map(|(g, r)| (g.as_str(), r))
    }

    fn groups_of(&self, user: &str) -> HashSet<&str> {
        self.config
            .groups
            .iter()
            .filter(|(_, g)| g.users.iter().any(|u| u == user))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    fn names(policy: &Policy, user: &str, groups: &HashSet<&str>, action: Action) -> bool {
        policy.actions.contains(&action)
            && (Self::names_user(policy, user) || Self::names_group(policy, groups))
    }

    fn names_user(policy: &Policy, user: &str) -> bool {
        policy.users.iter().any(|u| u == user)
    }

    fn names_group(policy: &Policy, groups: &HashSet<&str>) -> bool {
        policy.groups.iter().any(|g| groups.contains(g.as_str()))
    }

    /// Whether `identity` may do `action` on `repo`, with the conditions
    /// seeing no request (a check made outside one).
    pub fn allowed(&self, identity: &Identity, repo: &str, action: Action) -> bool {
        let facts = RequestFacts::default();
        let asking = Asking {
            facts: &facts,
            reference: None,
        };
        self.decide(identity, repo, action, asking).allowed
    }

    /// Whether `identity` may do `action` on `repo` in the request
    /// `asking` describes. In zot's order: the policies naming the user,
    /// those naming one of their groups (each granting only if all its
    /// conditions hold), `defaultPolicy` (a user) or `anonymousPolicy`,
    /// then `adminPolicy` (its conditions too).
    pub fn decide(
        &self,
        identity: &Identity,
        repo: &str,
        action: Action,
        asking: Asking<'_>,
    ) -> Verdict {
        let grant = Verdict {
            allowed: true,
            reason: None,
        };
        let (user, directory_groups) = match identity {
            Identity::Anonymous => ("", &[][..]),
            Identity::User { name, groups } => (name.as_str(), groups.as_slice()),
            // A token's grant is judged by the token, not by these rules.
            Identity::Token(_) => {
                return Verdict {
                    allowed: false,
                    reason: None,
                };
            }
        };
        let mut groups = if user.is_empty() {
            HashSet::new()
        } else {
            self.groups_of(user)
        };
        groups.extend(directory_groups.iter().map(String::as_str));
        let admin = self.config.admin_policy.as_ref().filter(|p| {
            !user.is_empty() && (Self::names_user(p, user) || Self::names_group(p, &groups))
        });
        let asked = Asked {
            facts: asking.facts,
            repo,
            action,
            reference: asking.reference,
            user,
            groups: groups.iter().copied().collect(),
            admin: admin.is_some(),
        };
        let mut reason = None;
        let mut holds = |conditions: &[Condition]| match conditions::check(conditions, &asked) {
            Ok(()) => true,
            Err(Unmet::False(message)) => {
                if !message.is_empty() {
                    reason = Some(message);
                }
                false
            }
            Err(Unmet::Failed) => false,
        };
        if let Some((glob, rule)) = self.rule_for(repo, user) {
            let compiled = self.conditions.get(glob);
            let conditions_of = |i: usize| {
                compiled
                    .and_then(|c| c.get(i))
                    .map(Vec::as_slice)
                    .unwrap_or_default()
            };
            // Entries naming the user, then those naming a group of theirs.
            for by_group in [false, true] {
                for (i, p) in rule.policies.iter().enumerate() {
                    let named = p.actions.contains(&action)
                        && if by_group {
                            Self::names_group(p, &groups)
                        } else {
                            Self::names_user(p, user)
                        };
                    if named && holds(conditions_of(i)) {
                        return grant;
                    }
                }
            }
            let open = if user.is_empty() {
                &rule.anonymous_policy
            } else {
                &rule.default_policy
            };
            if open.contains(&action) {
                return grant;
            }
        }
        if admin.is_some_and(|p| p.actions.contains(&action)) && holds(&self.admin_conditions) {
            return grant;
        }
        Verdict {
            allowed: false,
            reason,
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

    fn facts() -> RequestFacts {
        RequestFacts {
            method: "GET".into(),
            ..Default::default()
        }
    }

    #[test]
    fn conditions_gate_their_entry_and_say_why() {
        let config: AccessControlConfig = serde_json::from_value(serde_json::json!({
            "repositories": {
                "**": {
                    "policies": [
                        {"users": ["ana"], "actions": ["read", "create"],
                         "conditions": [{"expression": "req.action == 'read'", "message": "read only"}]},
                        {"groups": ["ops"], "actions": ["create"],
                         "conditions": [{"expression": "req.referenceType == 'tag' && req.tag.startsWith('v')",
                                         "message": "release tags only"}]},
                        {"users": ["bad"], "actions": ["read"],
                         "conditions": [{"expression": "req.claims.missing == 1", "message": "never shown"}]}
                    ],
                    "anonymousPolicy": []
                },
                "${username}/**": {"defaultPolicy": ["read", "create"]}
            },
            "adminPolicy": {"users": ["root"], "actions": ["delete"],
                            "conditions": [{"expression": "req.method == 'DELETE'", "message": "admins delete with DELETE"}]},
            "groups": {"ops": {"users": ["ana"]}}
        }))
        .expect("config");
        let ac = AccessControl::new(config);
        let facts = facts();
        let v1: Reference = "v1".parse().expect("tag");
        let latest: Reference = "latest".parse().expect("tag");
        let at = |reference| Asking {
            facts: &facts,
            reference,
        };
        let ana = Identity::user("ana");
        assert!(ac.decide(&ana, "x", Action::Read, at(None)).allowed);
        // ana's own entry refuses create; her group's grants it for v*.
        assert!(ac.decide(&ana, "x", Action::Create, at(Some(&v1))).allowed);
        let no = ac.decide(&ana, "x", Action::Create, at(Some(&latest)));
        assert_eq!(
            no,
            Verdict {
                allowed: false,
                reason: Some("release tags only".into())
            }
        );
        // A failing expression grants nothing and says nothing.
        let bad = ac.decide(&Identity::user("bad"), "x", Action::Read, at(None));
        assert_eq!(
            bad,
            Verdict {
                allowed: false,
                reason: None
            }
        );
        // The admin's conditions apply, and their message wins.
        let root = Identity::user("root");
        let no = ac.decide(&root, "x", Action::Delete, at(None));
        assert_eq!(no.reason.as_deref(), Some("admins delete with DELETE"));
        let delete = RequestFacts {
            method: "DELETE".into(),
            ..Default::default()
        };
        let asking = Asking {
            facts: &delete,
            reference: None,
        };
        assert!(ac.decide(&root, "x", Action::Delete, asking).allowed);
        // `${username}`: each user's namespace, nobody else's; the name
        // stands for itself even with glob characters in it.
        assert!(ac.allowed(&ana, "ana/tools", Action::Create));
        assert!(!ac.allowed(&Identity::user("bob"), "ana/tools", Action::Create));
        assert!(!ac.allowed(&Identity::Anonymous, "ana/tools", Action::Read));
        assert!(!ac.allowed(&Identity::user("*"), "ana/tools", Action::Create));
    }
}

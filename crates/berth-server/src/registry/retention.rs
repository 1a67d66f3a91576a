//! Retention: which tags a policy keeps (zot's `storage.retention`).
//!
//! The first policy whose `repositories` globs match a repository applies;
//! a repository no policy matches keeps every tag. A tag is kept when any
//! `keepTags` rule keeps it: a rule considers the tags matching one of its
//! `patterns` (every tag when it has none) and keeps those meeting any of
//! its criteria, or all of them when it sets none.

use std::collections::HashSet;
use std::time::Duration;

use berth_oci::RepoName;
use globset::GlobBuilder;

use crate::config::{KeepTagsRule, RetentionConfig, RetentionPolicy};

/// What retention knows of one tag.
#[derive(Debug, Clone)]
pub(super) struct TagFacts {
    pub tag: String,
    /// Seconds since the epoch.
    pub pushed_at: u64,
    pub last_pulled: Option<u64>,
}

/// The policy that applies to `repo`, if any.
pub(super) fn policy_for<'a>(
    retention: &'a RetentionConfig,
    repo: &RepoName,
) -> Option<&'a RetentionPolicy> {
    retention.policies.iter().find(|p| {
        p.repositories.iter().any(|g| {
            GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .is_ok_and(|g| g.compile_matcher().is_match(repo.as_str()))
        })
    })
}

fn within(at: Option<u64>, window: Duration, now: u64) -> bool {
    at.is_some_and(|t| now.saturating_sub(t) <= window.as_secs())
}

/// The tags (or, for `keepUntagged`, the digests) one rule keeps.
pub(super) fn kept_by(rule: &KeepTagsRule, tags: &[TagFacts], now: u64) -> HashSet<String> {
    let patterns: Vec<regex::Regex> = rule
        .patterns
        .iter()
        .filter_map(|p| regex::Regex::new(p).ok())
        .collect();
    let candidates: Vec<&TagFacts> = tags
        .iter()
        .filter(|t| patterns.is_empty() || patterns.iter().any(|p| p.is_match(&t.tag)))
        .collect();
    let no_criteria = rule.pulled_within.is_none()
        && rule.pushed_within.is_none()
        && rule.most_recently_pushed_count.is_none()
        && rule.most_recently_pulled_count.is_none();
    if no_criteria {
        return candidates.iter().map(|t| t.tag.clone()).collect();
    }
    let mut keep = HashSet::new();
    if let Some(w) = rule.pulled_within {
        keep.extend(
            candidates
                .iter()
                .filter(|t| within(t.last_pulled, w.0, now))
                .map(|t| t.tag.clone()),
        );
    }
    if let Some(w) = rule.pushed_within {
        keep.extend(
            candidates
                .iter()
                .filter(|t| within(Some(t.pushed_at), w.0, now))
                .map(|t| t.tag.clone()),
        );
    }
    if let Some(n) = rule.most_recently_pushed_count {
        let mut by_push = candidates.clone();
        by_push.sort_by(|a, b| {
            b.pushed_at
                .cmp(&a.pushed_at)
                .then_with(|| a.tag.cmp(&b.tag))
        });
        keep.extend(by_push.iter().take(n).map(|t| t.tag.clone()));
    }
    if let Some(n) = rule.most_recently_pulled_count {
        let mut by_pull: Vec<&&TagFacts> = candidates
            .iter()
            .filter(|t| t.last_pulled.is_some())
            .collect();
        by_pull.sort_by(|a, b| {
            b.last_pulled
                .cmp(&a.last_pulled)
                .then_with(|| a.tag.cmp(&b.tag))
        });
        keep.extend(by_pull.iter().take(n).map(|t| t.tag.clone()));
    }
    keep
}

/// The tags `policy` does not keep, sorted.
pub(super) fn tags_to_remove(policy: &RetentionPolicy, tags: &[TagFacts], now: u64) -> Vec<String> {
    if policy.keep_tags.is_empty() {
        return Vec::new();
    }
    let mut keep = HashSet::new();
    for rule in &policy.keep_tags {
        keep.extend(kept_by(rule, tags, now));
    }
    let mut out: Vec<String> = tags
        .iter()
        .filter(|t| !keep.contains(&t.tag))
        .map(|t| t.tag.clone())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DurationValue;

    const NOW: u64 = 1_700_000_000;
    const DAY: u64 = 86_400;

    fn facts() -> Vec<TagFacts> {
        // v1 oldest push; v3 newest. v1 pulled yesterday, v2 never.
        vec![
            TagFacts {
                tag: "v1".into(),
                pushed_at: NOW - 30 * DAY,
                last_pulled: Some(NOW - DAY),
            },
            TagFacts {
                tag: "v2".into(),
                pushed_at: NOW - 20 * DAY,
                last_pulled: None,
            },
            TagFacts {
                tag: "v3".into(),
                pushed_at: NOW - 2 * DAY,
                last_pulled: Some(NOW - 10 * DAY),
            },
            TagFacts {
                tag: "dev-1".into(),
                pushed_at: NOW - 40 * DAY,
                last_pulled: None,
            },
        ]
    }

    fn policy(rules: Vec<KeepTagsRule>) -> RetentionPolicy {
        RetentionPolicy {
            repositories: vec!["**".into()],
            delete_referrers: false,
            delete_untagged: true,
            keep_tags: rules,
            keep_untagged: None,
        }
    }

    fn days(n: u64) -> Option<DurationValue> {
        Some(DurationValue(Duration::from_secs(n * DAY)))
    }

    #[test]
    fn each_rule() {
        let cases: Vec<(KeepTagsRule, Vec<&str>)> = vec![
            // Patterns alone keep what they match.
            (
                KeepTagsRule {
                    patterns: vec!["^v".into()],
                    ..Default::default()
                },
                vec!["dev-1"],
            ),
            (
                KeepTagsRule {
                    pulled_within: days(7),
                    ..Default::default()
                },
                vec!["dev-1", "v2", "v3"],
            ),
            (
                KeepTagsRule {
                    pushed_within: days(7),
                    ..Default::default()
                },
                vec!["dev-1", "v1", "v2"],
            ),
            (
                KeepTagsRule {
                    most_recently_pushed_count: Some(2),
                    ..Default::default()
                },
                vec!["dev-1", "v1"],
            ),
            (
                KeepTagsRule {
                    most_recently_pulled_count: Some(1),
                    ..Default::default()
                },
                vec!["dev-1", "v2", "v3"],
            ),
            // Criteria apply within the pattern's tags only.
            (
                KeepTagsRule {
                    patterns: vec!["^dev".into()],
                    pushed_within: days(7),
                    ..Default::default()
                },
                vec!["dev-1", "v1", "v2", "v3"],
            ),
            // Criteria in one rule are OR-ed.
            (
                KeepTagsRule {
                    pulled_within: days(7),
                    pushed_within: days(7),
                    ..Default::default()
                },
                vec!["dev-1", "v2"],
            ),
        ];
        for (rule, want) in cases {
            let got = tags_to_remove(&policy(vec![rule.clone()]), &facts(), NOW);
            assert_eq!(got, want, "{rule:?}");
        }
    }

    #[test]
    fn rules_are_or_ed_and_no_rules_keep_everything() {
        let p = policy(vec![
            KeepTagsRule {
                patterns: vec!["^v".into()],
                most_recently_pushed_count: Some(1),
                ..Default::default()
            },
            KeepTagsRule {
                patterns: vec!["^dev".into()],
                ..Default::default()
            },
        ]);
        assert_eq!(tags_to_remove(&p, &facts(), NOW), vec!["v1", "v2"]);
        assert!(tags_to_remove(&policy(vec![]), &facts(), NOW).is_empty());
    }

    #[test]
    fn first_matching_policy_applies() {
        let retention = RetentionConfig {
            dry_run: false,
            delay: None,
            policies: vec![
                RetentionPolicy {
                    repositories: vec!["ci/*".into()],
                    ..policy(vec![])
                },
                RetentionPolicy {
                    repositories: vec!["ci/**".into(), "other".into()],
                    delete_referrers: true,
                    ..policy(vec![])
                },
            ],
        };
        let name = |s: &str| s.parse::<RepoName>().expect("name");
        assert!(
            !policy_for(&retention, &name("ci/app"))
                .expect("p")
                .delete_referrers
        );
        assert!(
            policy_for(&retention, &name("ci/a/b"))
                .expect("p")
                .delete_referrers,
            "* stays in one component"
        );
        assert!(policy_for(&retention, &name("other")).is_some());
        assert!(policy_for(&retention, &name("prod/app")).is_none());
    }
}

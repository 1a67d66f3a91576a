//! `storage.retention` (and each sub-path's): zot's schema.

use serde::Deserialize;

use super::ConfigError;
use super::value::DurationValue;

/// `retention`: which tags to keep; the rest are untagged by GC, and their
/// manifests then collected like any untagged manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetentionConfig {
    /// Only log what would be removed.
    #[serde(default)]
    pub dry_run: bool,
    /// Minimum age of an untagged manifest before it goes (default: the
    /// root's `gcDelay`).
    #[serde(default)]
    pub delay: Option<DurationValue>,
    /// The first policy whose `repositories` match a repository applies;
    /// a repository no policy matches keeps everything.
    #[serde(default)]
    pub policies: Vec<RetentionPolicy>,
}

/// One policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// Repository globs (`*` within a path component, `**` across).
    pub repositories: Vec<String>,
    /// Remove referrers whose subject is gone (default false: kept).
    #[serde(default)]
    pub delete_referrers: bool,
    /// Remove untagged manifests (default true).
    #[serde(default = "yes")]
    pub delete_untagged: bool,
    /// Tags kept: a tag is kept if any rule keeps it. No rules: every tag
    /// is kept.
    #[serde(default)]
    pub keep_tags: Vec<KeepTagsRule>,
    /// Untagged manifests kept although `deleteUntagged` would remove
    /// them: those meeting any of the criteria (all of them when it sets
    /// none).
    #[serde(default)]
    pub keep_untagged: Option<KeepUntaggedRule>,
}

/// zot's `keepUntagged`: `keepTags`' criteria, for manifests without a
/// tag (so without `patterns`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeepUntaggedRule {
    #[serde(default)]
    pub pulled_within: Option<DurationValue>,
    #[serde(default)]
    pub pushed_within: Option<DurationValue>,
    #[serde(default)]
    pub most_recently_pushed_count: Option<usize>,
    #[serde(default)]
    pub most_recently_pulled_count: Option<usize>,
}

impl KeepUntaggedRule {
    /// The same criteria as a `keepTags` rule matching every name.
    pub fn as_rule(&self) -> KeepTagsRule {
        KeepTagsRule {
            patterns: Vec::new(),
            pulled_within: self.pulled_within,
            pushed_within: self.pushed_within,
            most_recently_pushed_count: self.most_recently_pushed_count,
            most_recently_pulled_count: self.most_recently_pulled_count,
        }
    }
}

fn yes() -> bool {
    true
}

/// A `keepTags` rule: the tags matching `patterns` (every tag when empty)
/// are kept if they meet any of the criteria, or all of them when the rule
/// sets no criterion.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeepTagsRule {
    /// Regular expressions (matched against the whole tag).
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub pulled_within: Option<DurationValue>,
    #[serde(default)]
    pub pushed_within: Option<DurationValue>,
    #[serde(default)]
    pub most_recently_pushed_count: Option<usize>,
    #[serde(default)]
    pub most_recently_pulled_count: Option<usize>,
}

impl RetentionConfig {
    /// Checks globs and patterns; `at` is the config path of this section.
    pub(crate) fn check(&self, at: &str) -> Result<(), ConfigError> {
        for (i, p) in self.policies.iter().enumerate() {
            let here = format!("{at}.policies[{i}]");
            if p.repositories.is_empty() {
                return Err(ConfigError::key(
                    format!("{here}.repositories"),
                    "must name at least one glob",
                ));
            }
            for g in &p.repositories {
                globset::Glob::new(g).map_err(|e| {
                    ConfigError::key(
                        format!("{here}.repositories"),
                        format!("bad glob {g:?}: {e}"),
                    )
                })?;
            }
            for (j, r) in p.keep_tags.iter().enumerate() {
                for pat in &r.patterns {
                    regex::Regex::new(pat).map_err(|e| {
                        ConfigError::key(
                            format!("{here}.keepTags[{j}].patterns"),
                            format!(
                                "bad regular expression {pat:?}: {}",
                                e.to_string().replace('\n', " ")
                            ),
                        )
                    })?;
                }
            }
        }
        Ok(())
    }
}

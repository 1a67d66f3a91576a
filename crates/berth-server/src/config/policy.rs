//! Repository policies beyond zot's retention: byte quotas
//! (`storage.quotas`, and zot's `storage.maxRepoBytes`), a cap on the
//! number of repositories (zot's `storage.maxRepos`) and immutable tags
//! (`storage.immutableTags`). Checked here; enforced by the registry
//! (`registry::policy`).

use serde::Deserialize;

use super::ConfigError;

/// One `storage.quotas` entry: the repositories matching `repositories`
/// may each reference at most `maxBytes` (the first entry matching a
/// repository applies).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaConfig {
    /// Repository globs (`*` within a path component, `**` across).
    pub repositories: Vec<String>,
    /// The most bytes the blobs and manifests of one such repository may
    /// add up to (a blob shared with another repository counts in each).
    pub max_bytes: u64,
}

/// One `storage.immutableTags` entry: in the repositories matching
/// `repositories`, a tag matching one of `patterns` (every tag when
/// empty), once pushed, can be neither moved nor deleted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImmutableTagsConfig {
    /// Repository globs, as in `quotas`.
    pub repositories: Vec<String>,
    /// Regular expressions matched against the whole tag.
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// zot's `extensions.lint`: an image manifest missing one of
/// `mandatoryAnnotations` (in its annotations or its config's labels) is
/// refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LintConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default)]
    pub mandatory_annotations: Vec<String>,
    /// zot's newer signature requirement; not supported (Berth's
    /// `extensions.trust.requireSigned` does the like at pull time).
    #[serde(default)]
    pub mandatory_signatures: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

impl LintConfig {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let set = |v: &serde_json::Value| {
            !(v.is_null()
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(serde_json::Map::is_empty))
        };
        if self.mandatory_signatures.as_ref().is_some_and(set) {
            return Err(ConfigError::key(
                "extensions.lint.mandatorySignatures",
                "zot key not supported by this version of berth (extensions.trust.requireSigned refuses unsigned images at pull time)",
            ));
        }
        if let Some(a) = self.mandatory_annotations.iter().find(|a| a.is_empty()) {
            return Err(ConfigError::key(
                "extensions.lint.mandatoryAnnotations",
                format!("{a:?}: an annotation name must not be empty"),
            ));
        }
        Ok(())
    }
}

/// Checks repository globs; `at` is the key of the list.
pub(crate) fn check_globs(at: &str, globs: &[String]) -> Result<(), ConfigError> {
    if globs.is_empty() {
        return Err(ConfigError::key(at, "must name at least one glob"));
    }
    for g in globs {
        globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| ConfigError::key(at, format!("bad glob {g:?}: {e}")))?;
    }
    Ok(())
}

/// Checks `storage.quotas` and `storage.immutableTags`.
pub(crate) fn check(
    quotas: &[QuotaConfig],
    immutable: &[ImmutableTagsConfig],
) -> Result<(), ConfigError> {
    for (i, q) in quotas.iter().enumerate() {
        check_globs(
            &format!("storage.quotas[{i}].repositories"),
            &q.repositories,
        )?;
        if q.max_bytes == 0 {
            return Err(ConfigError::key(
                format!("storage.quotas[{i}].maxBytes"),
                "must be more than 0",
            ));
        }
    }
    for (i, rule) in immutable.iter().enumerate() {
        check_globs(
            &format!("storage.immutableTags[{i}].repositories"),
            &rule.repositories,
        )?;
        for p in &rule.patterns {
            anchored(p).map_err(|e| {
                ConfigError::key(
                    format!("storage.immutableTags[{i}].patterns"),
                    format!(
                        "bad regular expression {p:?}: {}",
                        e.to_string().replace('\n', " ")
                    ),
                )
            })?;
        }
    }
    Ok(())
}

/// A pattern matched against the whole tag.
pub fn anchored(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

//! `extensions.search`, `extensions.ui` and `extensions.mgmt`: zot's
//! search extension and the routes its clients read beside it.

use serde::Deserialize;

use super::ConfigError;

fn yes() -> bool {
    true
}

/// `extensions.search`. Its `cve` section (vulnerability scanning) is
/// refused by name until scanning exists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
    /// Vulnerability scanning.
    #[serde(default)]
    pub cve: Option<super::scan::CveConfig>,
}

/// `extensions.ui`: with search on, Berth's web UI at `/` (feature `ui`;
/// a build without it refuses the key) and user preferences (stars and
/// bookmarks), as in zot. zot's own web UI also works against Berth's API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
}

/// `extensions.mgmt`: `/v2/_zot/ext/mgmt`, which is on whenever search
/// is (and refused without it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MgmtConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
}

impl super::ExtensionsConfig {
    /// Whether search (`/v2/_zot/ext/search`) is on.
    pub fn search_enabled(&self) -> bool {
        self.search.as_ref().is_some_and(|s| s.enable)
    }

    /// Whether `extensions.ui` is on.
    pub fn ui_enabled(&self) -> bool {
        self.ui.as_ref().is_some_and(|u| u.enable)
    }

    /// Whether stars and bookmarks are kept: search and ui on, as in zot.
    pub fn userprefs_enabled(&self) -> bool {
        self.search_enabled() && self.ui_enabled()
    }

    /// Whether `/v2/_zot/ext/mgmt` is served: asked for, or search on.
    pub fn mgmt_enabled(&self) -> bool {
        self.mgmt.as_ref().is_some_and(|m| m.enable) || self.search_enabled()
    }

    /// `extensions.search.cve`, when scanning is on.
    pub fn cve(&self) -> Option<&super::scan::CveConfig> {
        self.search
            .as_ref()
            .filter(|s| s.enable)
            .and_then(|s| s.cve.as_ref())
            .filter(|c| c.enable)
    }

    pub(super) fn check_search(&self) -> Result<(), ConfigError> {
        if let Some(c) = self.cve() {
            c.check()?;
        }
        if self.ui_enabled() && !self.search_enabled() {
            return Err(ConfigError::key(
                "extensions.ui",
                "needs extensions.search (the UI reads only the search API)",
            ));
        }
        if self.mgmt.as_ref().is_some_and(|m| m.enable) && !self.search_enabled() {
            return Err(ConfigError::key(
                "extensions.mgmt",
                "needs extensions.search (Berth serves it with search)",
            ));
        }
        Ok(())
    }
}

//! `extensions.search.cve`: vulnerability scanning. zot's
//! `updateInterval`; Berth's `osv` (where the OSV advisories come from)
//! in place of zot's `trivy`, which is refused by name.
//!

use serde::Deserialize;

use super::ConfigError;
use super::value::DurationValue;

/// OSV's public dumps: `<source>/<Ecosystem>/all.zip`, and
/// `<source>/ecosystems.txt` listing the ecosystems.
pub const OSV_PUBLIC: &str = "https://osv-vulnerabilities.storage.googleapis.com";

fn one_day() -> DurationValue {
    DurationValue(std::time::Duration::from_secs(24 * 3600))
}

/// `extensions.search.cve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CveConfig {
    /// `false` turns scanning off as if the section were absent (zot's
    /// `config-ui-no-cve` example); default true.
    #[serde(default = "enabled")]
    pub enable: bool,
    /// How often the advisories are fetched again (zot's key; default
    /// 24h, at least 2h as in zot).
    #[serde(default = "one_day", rename = "updateInterval")]
    pub update_interval: DurationValue,
    /// Where the advisories come from (Berth's key).
    #[serde(default)]
    pub osv: OsvConfig,
    /// zot's trivy settings: refused with a message naming Berth's keys.
    #[serde(default)]
    trivy: Option<serde_json::Value>,
}

/// `extensions.search.cve.osv`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsvConfig {
    /// A directory, or an `http(s)` base URL, laid out as OSV publishes
    /// its data: `<source>/<Ecosystem>/all.zip`.
    #[serde(default = "osv_public")]
    pub source: String,
    /// The ecosystems to load (`Debian`, `Alpine`, `PyPI`…); empty: every
    /// one the source has (its folders, or its `ecosystems.txt`).
    #[serde(default)]
    pub ecosystems: Vec<String>,
}

fn enabled() -> bool {
    true
}

fn osv_public() -> String {
    OSV_PUBLIC.into()
}

impl Default for OsvConfig {
    fn default() -> Self {
        Self {
            source: osv_public(),
            ecosystems: Vec::new(),
        }
    }
}

impl CveConfig {
    /// Checks the section; errors name the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        let at = "extensions.search.cve";
        if self.trivy.is_some() {
            return Err(ConfigError::key(
                format!("{at}.trivy"),
                "berth scans with OSV advisories, not trivy's database: set extensions.search.cve.osv.source (a directory or URL of OSV dumps) and extensions.search.cve.osv.ecosystems",
            ));
        }
        if self.update_interval.0 < std::time::Duration::from_secs(2 * 3600) {
            return Err(ConfigError::key(
                format!("{at}.updateInterval"),
                "must be at least 2h",
            ));
        }
        let source = self.osv.source.as_str();
        if source.is_empty() {
            return Err(ConfigError::key(
                format!("{at}.osv.source"),
                "must not be empty",
            ));
        }
        if source.contains("://")
            && !(source.starts_with("http://") || source.starts_with("https://"))
        {
            return Err(ConfigError::key(
                format!("{at}.osv.source"),
                "a directory, or an http(s) URL",
            ));
        }
        if let Some(bad) = self
            .osv
            .ecosystems
            .iter()
            .find(|e| e.is_empty() || e.contains('/') || e.contains(".."))
        {
            return Err(ConfigError::key(
                format!("{at}.osv.ecosystems"),
                format!("{bad:?} is no ecosystem name"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> CveConfig {
        serde_json::from_value(v).expect("parses")
    }

    #[test]
    fn defaults_and_checks() {
        let c = parse(serde_json::json!({}));
        assert_eq!(c.update_interval.0, std::time::Duration::from_secs(86_400));
        assert_eq!(c.osv.source, OSV_PUBLIC);
        assert!(c.osv.ecosystems.is_empty());
        assert!(c.enable);
        assert!(c.check().is_ok());
        let cases = [
            (
                serde_json::json!({"trivy": {"dbRepository": "ghcr.io/aquasecurity/trivy-db"}}),
                "extensions.search.cve.trivy: berth scans with OSV",
            ),
            (
                serde_json::json!({"updateInterval": "1h"}),
                "extensions.search.cve.updateInterval: must be at least 2h",
            ),
            (
                serde_json::json!({"osv": {"source": "ftp://x"}}),
                "extensions.search.cve.osv.source: a directory, or an http(s) URL",
            ),
            (
                serde_json::json!({"osv": {"source": "/data/osv", "ecosystems": ["../etc"]}}),
                "extensions.search.cve.osv.ecosystems:",
            ),
        ];
        for (v, want) in cases {
            let got = parse(v).check().expect_err("refused").to_string();
            assert!(got.starts_with(want), "{got}");
        }
        let local = parse(
            serde_json::json!({"updateInterval": "2h", "osv": {"source": "/data/osv", "ecosystems": ["Debian", "PyPI"]}}),
        );
        assert!(local.check().is_ok());
    }
}

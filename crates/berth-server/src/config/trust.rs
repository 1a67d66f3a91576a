//! `extensions.trust`: zot's signature verification (`enable`, `cosign`,
//! `notation`) and Berth's `requireSigned`, the repositories whose images
//! may be pulled only with a trusted signature.

use serde::Deserialize;

use super::ConfigError;

fn yes() -> bool {
    true
}

/// A signing tool zot verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningTool {
    Cosign,
    Notation,
}

impl SigningTool {
    /// zot's name of the tool.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cosign => "cosign",
            Self::Notation => "notation",
        }
    }
}

/// `extensions.trust`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
    /// Verify cosign signatures against uploaded public keys.
    #[serde(default)]
    pub cosign: bool,
    /// Verify notation signatures against uploaded certificates.
    #[serde(default)]
    pub notation: bool,
    /// Berth's: repositories whose manifests are served only with a
    /// trusted signature (the first rule whose globs match applies).
    #[serde(default, rename = "requireSigned")]
    pub require_signed: Vec<RequireSigned>,
}

/// One rule of `extensions.trust.requireSigned`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireSigned {
    /// Repository globs (`**` across `/`, as in `accessControl`).
    pub repositories: Vec<String>,
    /// Whose signature counts; default: every tool turned on.
    #[serde(default)]
    pub tools: Vec<SigningTool>,
}

impl TrustConfig {
    /// The tools turned on.
    pub fn tools(&self) -> Vec<SigningTool> {
        let mut tools = Vec::new();
        if self.cosign {
            tools.push(SigningTool::Cosign);
        }
        if self.notation {
            tools.push(SigningTool::Notation);
        }
        tools
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !self.enable {
            return Ok(());
        }
        if !self.cosign && !self.notation {
            return Err(ConfigError::key(
                "extensions.trust",
                "turn on cosign, notation or both (nothing would be verified)",
            ));
        }
        for (i, rule) in self.require_signed.iter().enumerate() {
            let at = format!("extensions.trust.requireSigned[{i}]");
            if rule.repositories.is_empty() {
                return Err(ConfigError::key(
                    format!("{at}.repositories"),
                    "name at least one repository glob",
                ));
            }
            for glob in &rule.repositories {
                globset::GlobBuilder::new(glob)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| ConfigError::key(format!("{at}.repositories"), e.to_string()))?;
            }
            if let Some(off) = rule.tools.iter().find(|t| !self.tools().contains(t)) {
                return Err(ConfigError::key(
                    format!("{at}.tools"),
                    format!(
                        "{} is not turned on (extensions.trust.{})",
                        off.as_str(),
                        off.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl super::ExtensionsConfig {
    /// `extensions.trust`, when on.
    pub fn trust_enabled(&self) -> Option<&TrustConfig> {
        self.trust.as_ref().filter(|t| t.enable)
    }
}

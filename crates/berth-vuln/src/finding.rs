//! What a scan reports: one finding per advisory and affected package,
//! in the terms of zot's CVE API (`CVE{Id, Title, Description,
//! Reference, Severity, PackageList[{Name, PackagePath, InstalledVersion,
//! FixedVersion}]}`).

use serde::{Deserialize, Serialize};

use crate::Package;

/// zot's severities, from the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Unknown,
}

impl Severity {
    /// zot's spelling: `CRITICAL`, `HIGH`, `MEDIUM`, `LOW`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "CRITICAL",
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// The severity zot's spelling names (any case); `None` for another
    /// word.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "CRITICAL" => Self::Critical,
            "HIGH" => Self::High,
            "MEDIUM" | "MODERATE" => Self::Medium,
            "LOW" => Self::Low,
            "UNKNOWN" => Self::Unknown,
            _ => return None,
        })
    }

    /// The CVSS base score's band (CVSS v3/v4 ratings: 9.0 critical, 7.0
    /// high, 4.0 medium, above 0 low).
    pub fn from_score(score: f64) -> Self {
        if score >= 9.0 {
            Self::Critical
        } else if score >= 7.0 {
            Self::High
        } else if score >= 4.0 {
            Self::Medium
        } else if score > 0.0 {
            Self::Low
        } else {
            Self::Unknown
        }
    }
}

/// One advisory affecting one installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The CVE identifier when the advisory has one (its id or one of its
    /// aliases), else the advisory's own id: zot's `Id`.
    pub id: String,
    /// The OSV advisory it comes from (`DSA-5532-1`, `GHSA-…`, `CVE-…`).
    pub advisory: String,
    /// The advisory's summary: zot's `Title`.
    pub title: String,
    /// The advisory's details: zot's `Description`.
    pub description: String,
    /// The advisory's first reference URL: zot's `Reference`.
    pub reference: Option<String>,
    pub severity: Severity,
    /// The package affected.
    pub package: Package,
    /// The first version that fixes it, where the advisory names one.
    pub fixed_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_from_scores_and_words() {
        let bands = [
            (9.8, Severity::Critical),
            (9.0, Severity::Critical),
            (7.5, Severity::High),
            (4.0, Severity::Medium),
            (3.9, Severity::Low),
            (0.1, Severity::Low),
            (0.0, Severity::Unknown),
        ];
        for (score, want) in bands {
            assert_eq!(Severity::from_score(score), want, "{score}");
        }
        assert_eq!(Severity::parse("moderate"), Some(Severity::Medium));
        assert_eq!(Severity::parse("High"), Some(Severity::High));
        assert_eq!(Severity::parse("important"), None);
        assert!(Severity::Critical < Severity::Low, "the worst sorts first");
        assert_eq!(Severity::High.as_str(), "HIGH");
    }
}

//! What a scan of one image found, as kept in the metadata store
//! (`MetaStore::set_scan_report`, JSON) and read by the CVE queries: the
//! findings, the database they were matched against, and what could not
//! be read.

use berth_vuln::{Finding, Severity};
use serde::{Deserialize, Serialize};

/// One image manifest's scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The advisory database's version the findings were matched against
    /// (another version means the image is scanned again).
    pub db_version: String,
    /// When, in seconds since the epoch.
    pub scanned_at: u64,
    /// The OSV ecosystem of the image's distribution (`Debian:12`), if
    /// one was found.
    pub os: Option<String>,
    /// How many packages the image installs.
    pub packages: usize,
    pub findings: Vec<Finding>,
    /// What could not be read (a database format not supported, a file
    /// over the bound), from the inventory.
    pub notes: Vec<String>,
    /// Why the image could not be scanned (a truncated or corrupt layer),
    /// when it could not: then there are no findings.
    pub error: Option<String>,
}

/// Counts per severity, as zot's `ImageVulnerabilitySummary` gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub unknown: usize,
}

impl SeverityCounts {
    /// The counts of distinct vulnerability ids among `findings` (an id
    /// found in two packages counts once, at its worst severity).
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let mut worst: std::collections::BTreeMap<&str, Severity> = Default::default();
        for f in findings {
            let e = worst.entry(f.id.as_str()).or_insert(f.severity);
            *e = (*e).min(f.severity);
        }
        let mut c = Self::default();
        for s in worst.values() {
            match s {
                Severity::Critical => c.critical += 1,
                Severity::High => c.high += 1,
                Severity::Medium => c.medium += 1,
                Severity::Low => c.low += 1,
                Severity::Unknown => c.unknown += 1,
            }
        }
        c
    }

    /// How many in all.
    pub fn total(&self) -> usize {
        self.critical + self.high + self.medium + self.low + self.unknown
    }

    /// The worst severity present (`None` without findings).
    pub fn max(&self) -> Option<Severity> {
        [
            (self.critical, Severity::Critical),
            (self.high, Severity::High),
            (self.medium, Severity::Medium),
            (self.low, Severity::Low),
            (self.unknown, Severity::Unknown),
        ]
        .into_iter()
        .find(|(n, _)| *n > 0)
        .map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_vuln::Package;

    fn finding(id: &str, package: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            advisory: id.into(),
            title: String::new(),
            description: String::new(),
            reference: None,
            severity,
            package: Package {
                ecosystem: "Debian:12".into(),
                name: package.into(),
                version: "1".into(),
                source: None,
                location: "var/lib/dpkg/status".into(),
            },
            fixed_version: None,
        }
    }

    #[test]
    fn counts_are_of_distinct_ids_at_their_worst() {
        let findings = [
            finding("CVE-1", "a", Severity::Medium),
            finding("CVE-1", "b", Severity::High),
            finding("CVE-2", "a", Severity::Low),
            finding("CVE-3", "c", Severity::Unknown),
        ];
        let c = SeverityCounts::of(&findings);
        assert_eq!(
            (c.critical, c.high, c.medium, c.low, c.unknown),
            (0, 1, 0, 1, 1)
        );
        assert_eq!(c.total(), 3);
        assert_eq!(c.max(), Some(Severity::High));
        assert_eq!(SeverityCounts::of(&[]).max(), None);
    }
}

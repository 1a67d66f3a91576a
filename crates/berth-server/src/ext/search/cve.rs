//! zot's CVE queries and image summaries' `Vulnerabilities`, answered from
//! a [`CveSource`] (the scanning extension, when `extensions.search.cve`
//! is on; without one the queries answer zot's "cve search is disabled").
//! Search knows nothing of how images are scanned: it asks for an image's
//! vulnerabilities and filters, counts, sorts and pages them.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_oci::{Digest, RepoName};

use super::types::{Cve, ImageVulnerabilitySummary, PackageInfo};
use crate::registry::RegistryError;

/// zot's severities, worst first.
pub(crate) const SEVERITIES: [&str; 5] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];

/// One vulnerability of an image, with the packages it affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CveRecord {
    /// The CVE id where there is one, else the advisory's.
    pub id: String,
    pub title: String,
    pub description: String,
    pub reference: Option<String>,
    /// zot's word: `CRITICAL`, `HIGH`, `MEDIUM`, `LOW` or `UNKNOWN`.
    pub severity: &'static str,
    pub packages: Vec<CvePackage>,
}

/// A package a vulnerability affects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CvePackage {
    pub name: String,
    /// Where in the image it was found.
    pub path: String,
    pub installed: String,
    pub fixed: Option<String>,
}

/// Where vulnerabilities come from.
#[async_trait::async_trait]
pub trait CveSource: Send + Sync {
    /// The vulnerabilities of the image (an image manifest, or every
    /// manifest of an index) `digest` of `repo`, scanned now if it was not
    /// yet; `None` while nothing can be scanned (no advisories yet); an
    /// image that could not be read is `RegistryError::Unsupported`,
    /// saying why.
    async fn vulnerabilities(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<Vec<CveRecord>>, RegistryError>;

    /// What a scan already found, without scanning (for the summaries of
    /// image lists); `None` when the image was not scanned yet.
    async fn known(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<Vec<CveRecord>>, RegistryError>;
}

/// The rank of a severity: 0 for the worst.
pub(crate) fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(SEVERITIES.len())
}

/// Records of the same id (from several manifests of an index) made one,
/// at their worst severity, with every package; sorted worst first, then
/// by id.
pub(crate) fn merged(records: Vec<CveRecord>) -> Vec<CveRecord> {
    let mut by_id: BTreeMap<String, CveRecord> = BTreeMap::new();
    for r in records {
        match by_id.get_mut(&r.id) {
            Some(known) => {
                if rank(r.severity) < rank(known.severity) {
                    known.severity = r.severity;
                }
                known.packages.extend(r.packages);
                known.packages.sort();
                known.packages.dedup();
            }
            None => {
                by_id.insert(r.id.clone(), r);
            }
        }
    }
    let mut out: Vec<CveRecord> = by_id.into_values().collect();
    out.sort_by(|a, b| {
        rank(a.severity)
            .cmp(&rank(b.severity))
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}

/// zot's `searchedCVE`, `excludedCVE` and `severity` filters: the search
/// text in the id, title or a package name (any case), the excluded text
/// in none of them, the severity equal.
pub(crate) fn filtered(
    records: Vec<CveRecord>,
    searched: Option<&str>,
    excluded: Option<&str>,
    severity: Option<&str>,
) -> Vec<CveRecord> {
    let contains = |r: &CveRecord, text: &str| {
        let text = text.to_lowercase();
        r.id.to_lowercase().contains(&text)
            || r.title.to_lowercase().contains(&text)
            || r.packages
                .iter()
                .any(|p| p.name.to_lowercase().contains(&text))
    };
    records
        .into_iter()
        .filter(|r| searched.is_none_or(|s| s.is_empty() || contains(r, s)))
        .filter(|r| excluded.is_none_or(|s| s.is_empty() || !contains(r, s)))
        .filter(|r| severity.is_none_or(|s| s.is_empty() || s.eq_ignore_ascii_case(r.severity)))
        .collect()
}

/// zot's `ImageVulnerabilitySummary` of some records.
pub(crate) fn summary(records: &[CveRecord]) -> ImageVulnerabilitySummary {
    let count = |sev: &str| records.iter().filter(|r| r.severity == sev).count();
    let int = |n: usize| Some(i32::try_from(n).unwrap_or(i32::MAX));
    ImageVulnerabilitySummary {
        max_severity: Some(
            records
                .iter()
                .map(|r| r.severity)
                .min_by_key(|s| rank(s))
                .unwrap_or("NONE")
                .to_string(),
        ),
        count: int(records.len()),
        unknown_count: int(count("UNKNOWN")),
        low_count: int(count("LOW")),
        medium_count: int(count("MEDIUM")),
        high_count: int(count("HIGH")),
        critical_count: int(count("CRITICAL")),
    }
}

/// zot's `CVE` of a record.
pub(crate) fn to_cve(r: &CveRecord) -> Cve {
    Cve {
        id: Some(r.id.clone()),
        title: Some(r.title.clone()),
        description: Some(r.description.clone()),
        reference: r.reference.clone(),
        severity: Some(r.severity.to_string()),
        package_list: Some(
            r.packages
                .iter()
                .map(|p| {
                    Some(PackageInfo {
                        name: Some(p.name.clone()),
                        package_path: Some(p.path.clone()),
                        installed_version: Some(p.installed.clone()),
                        fixed_version: Some(
                            p.fixed.clone().unwrap_or_else(|| "Not Specified".into()),
                        ),
                    })
                })
                .collect(),
        ),
    }
}

/// The source in force, shared by every query of a server.
pub(crate) type SharedSource = Arc<std::sync::OnceLock<Arc<dyn CveSource>>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, severity: &'static str, package: &str) -> CveRecord {
        CveRecord {
            id: id.into(),
            title: format!("{id} in {package}"),
            description: String::new(),
            reference: None,
            severity,
            packages: vec![CvePackage {
                name: package.into(),
                path: "var/lib/dpkg/status".into(),
                installed: "1.0".into(),
                fixed: Some("1.1".into()),
            }],
        }
    }

    #[test]
    fn merged_filtered_and_counted() {
        let all = merged(vec![
            record("CVE-2", "LOW", "zlib"),
            record("CVE-1", "MEDIUM", "openssl"),
            record("CVE-1", "HIGH", "openssl"),
            record("CVE-3", "CRITICAL", "curl"),
        ]);
        let ids: Vec<(&str, &str)> = all.iter().map(|r| (r.id.as_str(), r.severity)).collect();
        assert_eq!(
            ids,
            [("CVE-3", "CRITICAL"), ("CVE-1", "HIGH"), ("CVE-2", "LOW")]
        );
        assert_eq!(all[1].packages.len(), 1, "the same package once");
        let s = summary(&all);
        assert_eq!(s.max_severity.as_deref(), Some("CRITICAL"));
        assert_eq!(
            (s.count, s.high_count, s.low_count),
            (Some(3), Some(1), Some(1))
        );
        assert_eq!(summary(&[]).max_severity.as_deref(), Some("NONE"));
        let only = filtered(all.clone(), Some("openssl"), None, None);
        assert_eq!(only.len(), 1);
        let without = filtered(all.clone(), None, Some("cve-3"), None);
        assert_eq!(without.len(), 2);
        let low = filtered(all, None, None, Some("low"));
        assert_eq!(low.len(), 1);
        assert_eq!(to_cve(&low[0]).package_list.map(|p| p.len()), Some(1));
    }
}

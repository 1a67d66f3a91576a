//! OSV advisories, in the compact form scanning keeps: what [`parse_record`]
//! takes from one OSV JSON record, and [`read_zip`] from an ecosystem's
//! `all.zip` (one record per file), one record at a time.
//!
//! An [`Advisory`] keeps only what a scan reports or matches on: its ids
//! (the OSV one and the CVE one), summary, details (at most
//! [`DETAILS_LIMIT`] bytes), first reference, severity, and per affected
//! package its ecosystem, normalized name, `SEMVER`/`ECOSYSTEM` ranges and
//! the listed versions the ranges do not already cover. `GIT` ranges are
//! dropped: matching installed packages has no commits to compare. It is
//! serde-serializable, for a store keyed by [`Advisory::keys`].
//!
//! The record model reads OSV with lean serde structs of only these
//! fields (`record.rs`) rather than the `osv` crate's types: those
//! deserialize every field (timestamps through chrono, credits, purls) and
//! an enum of known ecosystems, where scanning needs a dozen fields,
//! tolerance of new ecosystems and fields, and the free-form
//! `database_specific`/`ecosystem_specific` severities.

mod dump;
mod ecosystem;
mod record;
mod severity;

use serde::{Deserialize, Serialize};

use crate::Severity;

pub use dump::{RECORD_LIMIT, read_zip};
pub use ecosystem::{advisory_ecosystems, ecosystem_matches, normalize_name};
pub use record::parse_record;

/// The most bytes of an advisory's details kept (8 KiB, cut at a
/// character boundary and marked with `…`): enough for every summary
/// paragraph, while a few records carry whole write-ups.
pub const DETAILS_LIMIT: usize = 8 * 1024;

/// Why a record, or a whole dump, was not read.
#[derive(Debug, thiserror::Error)]
pub enum AdvisoryError {
    /// Not an OSV record (or not JSON).
    #[error("not an OSV record: {0}")]
    Json(#[from] serde_json::Error),
    /// A withdrawn advisory: the caller skips it (and forgets any earlier
    /// copy of it).
    #[error("advisory {id} is withdrawn")]
    Withdrawn { id: String },
    /// A file of a dump larger than [`RECORD_LIMIT`].
    #[error("record of {size} bytes, over the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// One file of a dump, and why it was not read.
    #[error("{name}: {source}")]
    Entry {
        name: String,
        #[source]
        source: Box<AdvisoryError>,
    },
    /// The zip itself is unreadable (truncated, corrupt, not a zip): the
    /// whole dump fails.
    #[error("unreadable advisory dump: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Reading the dump failed.
    #[error("reading the advisory dump: {0}")]
    Io(#[from] std::io::Error),
}

impl AdvisoryError {
    /// Whether this is (one dump file holding) a withdrawn advisory.
    pub fn is_withdrawn(&self) -> bool {
        match self {
            Self::Withdrawn { .. } => true,
            Self::Entry { source, .. } => source.is_withdrawn(),
            _ => false,
        }
    }
}

/// One OSV advisory, as scanning keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// The OSV id: `DSA-5532-1`, `GHSA-…`, `GO-2023-2102`, `CVE-…`.
    pub id: String,
    /// The CVE this advisory is about: the id if it is a CVE, else its
    /// first CVE alias, else its one upstream CVE, else the id. Findings
    /// of one package are deduplicated on it.
    pub cve: String,
    /// The summary, or the first line of the details when there is none
    /// (Debian's CVE records have none).
    pub summary: String,
    /// The details, at most [`DETAILS_LIMIT`] bytes.
    pub details: String,
    /// The first reference URL.
    pub reference: Option<String>,
    /// The advisory's severity (see [`AffectedPackage::severity`] for the
    /// one a finding reports).
    pub severity: Severity,
    /// The packages it affects.
    pub affected: Vec<AffectedPackage>,
}

/// A package an advisory affects, and which of its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The OSV ecosystem as the record writes it (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// The package name, normalized for the ecosystem ([`normalize_name`]).
    pub name: String,
    /// The severity for this package: the advisory's CVSS score, else
    /// this package's own, else the advisory's severity word, else this
    /// package's (a Debian urgency, say), else unknown.
    pub severity: Severity,
    /// Ranges of affected versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Versions listed as affected that no range covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// A range of affected versions: OSV's timeline of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

/// How a range's versions order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RangeKind {
    /// SemVer 2.0 precedence.
    Semver,
    /// The ecosystem's own order ([`crate::version::Scheme`]).
    Ecosystem,
}

/// An event of a range's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Affected from this version on (`0`: from the first).
    Introduced(String),
    /// Fixed in this version.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Nothing from this version on is in the range (`*`: no limit).
    Limit(String),
}

impl Event {
    /// The version the event names.
    pub fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }
}

impl Advisory {
    /// The `(ecosystem, package name)` pairs to store the advisory under,
    /// each once: the name normalized, the ecosystem as the record writes
    /// it, so a package finds it through [`advisory_ecosystems`].
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.affected.iter().enumerate().filter_map(|(i, a)| {
            let first = self.affected[..i]
                .iter()
                .all(|b| b.ecosystem != a.ecosystem || b.name != a.name);
            first.then_some((a.ecosystem.as_str(), a.name.as_str()))
        })
    }

    /// The affected entries of one key of [`Advisory::keys`].
    pub fn affected_for<'a>(
        &'a self,
        ecosystem: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AffectedPackage> + 'a {
        self.affected
            .iter()
            .filter(move |a| a.ecosystem == ecosystem && a.name == name)
    }

    /// The advisory with only the affected entries of one key: what to
    /// store under it.
    pub fn for_key(&self, ecosystem: &str, name: &str) -> Advisory {
        Advisory {
            id: self.id.clone(),
            cve: self.cve.clone(),
            summary: self.summary.clone(),
            details: self.details.clone(),
            reference: self.reference.clone(),
            severity: self.severity,
            affected: self.affected_for(ecosystem, name).cloned().collect(),
        }
    }
}

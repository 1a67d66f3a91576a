//! What a scan of one image found, as kept in the metadata store
//! (`MetaStore::set_scan_report`, JSON) and read by the CVE queries: the
//! findings, the database they were matched against, and what could not
//! be read.

use berth_vuln::Finding;
use serde::{Deserialize, Serialize};

/// One image manifest's scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScanReport {
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

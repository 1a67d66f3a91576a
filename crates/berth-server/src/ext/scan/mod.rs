//! Vulnerability scanning (`extensions.search.cve`, feature `scan`):
//! every pushed image scanned against OSV advisories, answered through
//! zot's CVE queries. Being wired in: the config section is still
//! refused.
//!
//! - `report.rs`: what a scan of one image found, as the metadata store
//!   keeps it.
//! - `scanner.rs`: one image scanned, its layers read through the storage
//!   seam.
//! - `service.rs`: the background queue (pushes, database changes) and
//!   the reports asked for.

pub(crate) mod report;
pub(crate) mod scanner;
pub(crate) mod service;

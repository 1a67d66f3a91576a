//! Vulnerability scanning (`extensions.search.cve`, feature `scan`):
//! every pushed image scanned against OSV advisories, answered through
//! zot's CVE queries. Being wired in: the config section is still
//! refused.
//!
//! - `db.rs`: [`db::AdvisoryDb`], the advisories on disk
//!   (`<rootDirectory>/.berth/osv.redb`), looked up by ecosystem and
//!   package name, rebuilt from OSV's `all.zip` dumps (a directory or an
//!   http(s) source, `extensions.search.cve.osv`) and swapped in whole.
//! - `report.rs`: what a scan of one image found, as the metadata store
//!   keeps it.
//! - `scanner.rs`: one image scanned, its layers read through the storage
//!   seam.
//! - `service.rs`: the background queue (pushes, database changes) and
//!   the reports asked for.
//!
//! The pure work (reading dumps, inventories of image layers, matching)
//! is `berth-vuln`'s.

pub mod db;
pub(crate) mod report;
pub(crate) mod scanner;
pub(crate) mod service;

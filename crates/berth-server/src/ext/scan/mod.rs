//! Vulnerability scanning (`extensions.search.cve`): zot's CVE queries,
//! answered from OSV advisories.
//!
//! `db.rs`: [`db::AdvisoryDb`], the advisories on disk
//! (`<rootDirectory>/.berth/osv.redb`), looked up by ecosystem and
//! package name, rebuilt from OSV's `all.zip` dumps (a directory or an
//! http(s) source, `extensions.search.cve.osv`) and swapped in whole.
//! The pure work (reading dumps, inventories of image layers, matching)
//! is `berth-vuln`'s.

pub mod db;

//! Vulnerability scanning for the scanning extension, without network
//! access or server types: what an image contains (the packages its
//! layers install, read from their package databases) and which OSV
//! advisories affect those packages.
//!
//! - [`Package`]: an installed package as OSV names it (ecosystem with
//!   release, name, version, source package).
//! - [`Severity`] and [`Finding`]: what a scan reports, in the terms of
//!   zot's CVE API.
//! - [`inventory`]: what an image's layers install
//!   ([`inventory::scan_layers`]).

mod finding;
pub mod inventory;
mod package;

pub use finding::{Finding, Severity};
pub use package::Package;

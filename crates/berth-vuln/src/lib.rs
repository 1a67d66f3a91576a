//! Vulnerability scanning for the scanning extension, without network
//! access or server types: what an image contains (the packages its
//! layers install, read from their package databases) and which OSV
//! advisories affect those packages.
//!
//! - [`Package`]: an installed package as OSV names it (ecosystem with
//!   release, name, version, source package).
//! - [`Severity`] and [`Finding`]: what a scan reports, in the terms of
//!   zot's CVE API.
//! - [`advisory`]: OSV records and `all.zip` dumps read into compact
//!   [`advisory::Advisory`] values, and which advisory ecosystems and
//!   names apply to a package.
//! - [`version`]: each ecosystem's version order.
//! - [`matching`]: OSV's rules for whether an advisory affects a package,
//!   and the [`Finding`]s of a list of packages.
//! - [`inventory`]: what an image's layers install
//!   ([`inventory::scan_layers`]).

pub mod advisory;
mod finding;
pub mod inventory;
pub mod matching;
mod package;
pub mod version;

pub use finding::{Finding, Severity};
pub use package::Package;

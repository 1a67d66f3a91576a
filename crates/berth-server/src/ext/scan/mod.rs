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

use std::sync::Arc;

use crate::config::CveConfig;
use crate::registry::Registry;

/// Scanning in a running server: the advisory database (refreshed in the
/// background) and the scanning service, which answers search's CVE
/// queries.
pub struct Scanning {
    db: Arc<db::AdvisoryDb>,
    scans: Arc<service::Scans>,
    config: CveConfig,
}

impl Scanning {
    /// Opens the database under `root` (the main root's local directory).
    pub fn open(
        config: &CveConfig,
        registry: Arc<Registry>,
        root: &std::path::Path,
    ) -> Result<Self, db::DbError> {
        let db = Arc::new(db::AdvisoryDb::open(root)?);
        let scans = service::Scans::new(registry, db.clone());
        Ok(Self {
            db,
            scans,
            config: config.clone(),
        })
    }

    /// What search asks for vulnerabilities.
    pub fn cve_source(&self) -> Arc<dyn crate::ext::search::cve::CveSource> {
        self.scans.clone()
    }

    /// Starts the database's refresh and the scanning service.
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![
            self.db
                .clone()
                .spawn_refresh(self.config.osv.clone(), self.config.update_interval.0),
        ];
        tasks.extend(self.scans.spawn());
        tasks
    }
}

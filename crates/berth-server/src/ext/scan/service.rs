//! The scanning service: every pushed image manifest (each platform of an
//! index) queued and scanned in the background with bounded concurrency,
//! its report kept in the metadata store by digest (shared by every
//! instance using the store), scanned again when the advisory database
//! changes; and a report asked for before its scan scanned on the spot.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_oci::manifest::Manifest;
use berth_oci::media::{ManifestKind, manifest_kind};
use berth_oci::{Digest, RepoName};
use berth_vuln::advisory::Advisory;
use berth_vuln::inventory::Limits;
use tokio::sync::{Semaphore, mpsc};

use super::report::ScanReport;
use super::scanner::{Lookup, scan_image};
use crate::registry::events::RegistryEvent;
use crate::registry::{Registry, RegistryError, RegistryResult};

/// How many scans run at once.
const WORKERS: usize = 1;
/// How many queued scans wait at most (more are found by the next
/// sweep).
const QUEUE: usize = 10_000;
/// How often the database's version is compared with the last swept.
const VERSION_EVERY: Duration = Duration::from_secs(30);

/// The advisory database, as the service reads it.
pub(crate) trait Advisories: Send + Sync {
    /// Its version; `None` while it is empty (nothing is scanned then).
    fn version(&self) -> Option<String>;
    /// The advisories of a package (none when the database cannot be
    /// read: logged by the database).
    fn lookup(&self, ecosystem: &str, name: &str) -> Vec<Advisory>;
}

/// The scanning service.
pub(crate) struct Scans {
    registry: Arc<Registry>,
    advisories: Arc<dyn Advisories>,
    /// Bounds the scans running at once, queued or asked for.
    permits: Semaphore,
    /// Scans queued or running, by digest: one at a time per image.
    pending: Mutex<HashSet<String>>,
    queue: mpsc::Sender<(RepoName, Digest)>,
    /// The other end, taken by the worker when it starts.
    jobs: Mutex<Option<mpsc::Receiver<(RepoName, Digest)>>>,
    limits: Limits,
    /// Reports read back, decoded, by digest (a report of thousands of
    /// findings costs milliseconds to decode; queries ask for the same
    /// images again and again). Checked against the database's version.
    decoded: moka::sync::Cache<String, Arc<ScanReport>>,
}

impl Scans {
    pub(crate) fn new(registry: Arc<Registry>, advisories: Arc<dyn Advisories>) -> Arc<Self> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        Arc::new(Self {
            registry,
            advisories,
            permits: Semaphore::new(WORKERS),
            pending: Mutex::default(),
            queue,
            jobs: Mutex::new(Some(jobs)),
            limits: Limits::default(),
            decoded: moka::sync::Cache::builder()
                .max_capacity(256)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        })
    }

    /// The lookup of the database as it is now.
    fn lookup(&self) -> Lookup {
        let advisories = self.advisories.clone();
        Arc::new(move |eco: &str, name: &str| advisories.lookup(eco, name))
    }

    /// The kept report of an image manifest, if it was made with the
    /// database's current version.
    async fn kept(&self, digest: &Digest, version: &str) -> RegistryResult<Option<ScanReport>> {
        let key = digest.to_string();
        if let Some(r) = self.decoded.get(&key).filter(|r| r.db_version == version) {
            return Ok(Some((*r).clone()));
        }
        let Some(json) = self.registry.meta().scan_report(digest).await? else {
            return Ok(None);
        };
        let Some(report) = serde_json::from_str::<ScanReport>(&json)
            .ok()
            .filter(|r| r.db_version == version)
        else {
            return Ok(None);
        };
        self.decoded.insert(key, Arc::new(report.clone()));
        Ok(Some(report))
    }

    /// Scans an image manifest and keeps its report.
    async fn scan_and_keep(
        &self,
        repo: &RepoName,
        digest: &Digest,
        version: &str,
    ) -> RegistryResult<ScanReport> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| RegistryError::Internal("the scan service stopped"))?;
        // Another task may have scanned it while this one waited.
        if let Some(done) = self.kept(digest, version).await? {
            return Ok(done);
        }
        let started = std::time::Instant::now();
        let report = scan_image(
            &self.registry,
            repo,
            digest,
            version,
            self.lookup(),
            self.limits,
        )
        .await?;
        match &report.error {
            Some(e) => tracing::warn!(%repo, %digest, "scan error: {e}"),
            None => tracing::info!(
                %repo,
                %digest,
                packages = report.packages,
                findings = report.findings.len(),
                took = ?started.elapsed(),
                "scanned"
            ),
        }
        let json = serde_json::to_string(&report)
            .map_err(|_| RegistryError::Internal("a scan report does not encode"))?;
        self.registry
            .meta()
            .set_scan_report(digest, Some(&json))
            .await?;
        Ok(report)
    }

    /// The report of the image manifest `digest` of `repo`, scanned now
    /// when it has none for the current database; `None` while the
    /// database is empty. For an index, the reports of its manifests.
    pub(crate) async fn reports(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<Option<Vec<ScanReport>>> {
        let Some(version) = self.advisories.version() else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for image in self.images_of(repo, digest).await? {
            let report = match self.kept(&image, &version).await? {
                Some(r) => r,
                None => self.scan_and_keep(repo, &image, &version).await?,
            };
            out.push(report);
        }
        Ok(Some(out))
    }

    /// The image manifests a manifest stands for: itself, or an index's
    /// manifests (one level, as indexes are pushed).
    async fn images_of(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<Vec<Digest>> {
        let Some(row) = self.registry.meta().manifest(repo, digest).await? else {
            return Ok(vec![digest.clone()]);
        };
        Ok(match manifest_kind(&row.media_type) {
            Some(ManifestKind::Index) => row
                .children
                .iter()
                .filter_map(|c| c.parse::<Digest>().ok())
                .collect(),
            _ => vec![digest.clone()],
        })
    }

    /// Queues an image manifest's scan (dropped when the queue is full:
    /// the next sweep finds it).
    fn enqueue(&self, repo: RepoName, digest: Digest) {
        let fresh = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.to_string());
        if fresh && self.queue.try_send((repo, digest.clone())).is_err() {
            self.done(&digest);
        }
    }

    fn done(&self, digest: &Digest) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest.to_string());
    }

    /// Queues every image manifest of every repository whose report was
    /// not made with `version`; how many.
    async fn sweep(&self, version: &str) -> RegistryResult<usize> {
        let meta = self.registry.meta();
        let mut queued = 0;
        for name in meta.repos().await? {
            let Ok(repo) = name.parse::<RepoName>() else {
                continue;
            };
            for row in meta.manifests(&repo).await? {
                if manifest_kind(&row.media_type) != Some(ManifestKind::Image) {
                    continue;
                }
                let Ok(digest) = row.digest.parse::<Digest>() else {
                    continue;
                };
                if self.kept(&digest, version).await?.is_none() {
                    self.enqueue(repo.clone(), digest);
                    queued += 1;
                }
            }
        }
        Ok(queued)
    }

    /// Starts the worker, the push listener and the sweeper.
    pub(crate) fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let worker = {
            let scans = self.clone();
            let jobs = scans.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
            tokio::spawn(async move {
                let Some(mut jobs) = jobs else { return };
                while let Some((repo, digest)) = jobs.recv().await {
                    let _slot = scans.registry.background_slot().await;
                    if let Some(version) = scans.advisories.version()
                        && let Err(e) = scans.scan_and_keep(&repo, &digest, &version).await
                    {
                        tracing::warn!(%repo, %digest, "scan failed: {e}");
                    }
                    scans.done(&digest);
                }
            })
        };
        let listener = {
            let scans = self.clone();
            let mut events = scans.registry.subscribe();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(RegistryEvent::ManifestPushed {
                            repo,
                            digest,
                            manifest,
                            ..
                        }) => {
                            let Ok(repo) = repo.parse::<RepoName>() else {
                                continue;
                            };
                            match Manifest::parse(&manifest, None) {
                                Ok(m) if m.kind == ManifestKind::Index => {
                                    for child in m.manifests {
                                        scans.enqueue(repo.clone(), child.digest);
                                    }
                                }
                                Ok(_) => scans.enqueue(repo, digest),
                                Err(_) => {}
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        };
        let sweeper = {
            let scans = self.clone();
            tokio::spawn(async move {
                let mut swept: Option<String> = None;
                loop {
                    if let Some(version) = scans.advisories.version()
                        && swept.as_deref() != Some(version.as_str())
                    {
                        match scans.sweep(&version).await {
                            Ok(n) => {
                                tracing::info!(
                                    queued = n,
                                    "scan: images queued for advisories {version}"
                                );
                                swept = Some(version);
                            }
                            Err(e) => tracing::warn!("scan: the sweep failed: {e}"),
                        }
                    }
                    tokio::time::sleep(VERSION_EVERY).await;
                }
            })
        };
        vec![worker, listener, sweeper]
    }
}

impl Advisories for super::db::AdvisoryDb {
    fn version(&self) -> Option<String> {
        super::db::AdvisoryDb::version(self)
    }

    fn lookup(&self, ecosystem: &str, name: &str) -> Vec<Advisory> {
        super::db::AdvisoryDb::lookup(self, ecosystem, name).unwrap_or_else(|e| {
            tracing::warn!("advisories of {ecosystem}/{name} cannot be read: {e}");
            Vec::new()
        })
    }
}

/// zot's severity word of a finding.
fn severity_word(s: berth_vuln::Severity) -> &'static str {
    s.as_str()
}

/// The records search shows of some reports (a report that could not be
/// made shows none: its error was logged).
fn records(reports: &[ScanReport]) -> Vec<crate::ext::search::cve::CveRecord> {
    use crate::ext::search::cve::{CvePackage, CveRecord};
    reports
        .iter()
        .flat_map(|r| r.findings.iter())
        .map(|f| CveRecord {
            id: f.id.clone(),
            title: f.title.clone(),
            description: f.description.clone(),
            reference: f.reference.clone(),
            severity: severity_word(f.severity),
            packages: vec![CvePackage {
                name: f.package.name.clone(),
                path: f.package.location.clone(),
                installed: f.package.version.clone(),
                fixed: f.fixed_version.clone(),
            }],
        })
        .collect()
}

#[async_trait::async_trait]
impl crate::ext::search::cve::CveSource for Scans {
    async fn vulnerabilities(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<Vec<crate::ext::search::cve::CveRecord>>, RegistryError> {
        let Some(reports) = self.reports(repo, digest).await? else {
            return Ok(None);
        };
        // An image that could not be read is not shown clean.
        if let Some(e) = reports.iter().find_map(|r| r.error.as_deref()) {
            return Err(RegistryError::Unsupported(format!(
                "{repo}@{digest} could not be scanned: {e}"
            )));
        }
        Ok(Some(records(&reports)))
    }

    async fn known(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<Vec<crate::ext::search::cve::CveRecord>>, RegistryError> {
        let Some(version) = self.advisories.version() else {
            return Ok(None);
        };
        let mut kept = Vec::new();
        for image in self.images_of(repo, digest).await? {
            match self.kept(&image, &version).await? {
                // Scanned, but not readable: no summary to show.
                Some(r) if r.error.is_some() => return Ok(None),
                Some(r) => kept.push(r),
                None => {
                    // Not scanned yet: queued, and shown once it is.
                    self.enqueue(repo.clone(), image);
                    return Ok(None);
                }
            }
        }
        Ok(Some(records(&kept)))
    }
}

//! The OSV advisory database on disk: `<rootDirectory>/.berth/osv.redb`,
//! looked up by ecosystem and package name, rebuilt from OSV's dumps.
//!
//! A refresh fetches every ecosystem's `all.zip` (`source.rs`), and
//! unless they are all the ones the database was built from, writes a
//! new file (`osv.redb.new`, `file.rs`) and only once every dump loaded
//! renames it over `osv.redb` and swaps it in: a lookup in flight
//! finishes on the old one, and a refresh that fails anywhere leaves the
//! old one in use, untouched, with no temporary file behind.
//!
//! The version of a database is a hash of the SHA-256 of each dump it
//! was built from (and of the file's format), so the same dumps give the
//! same version.

mod error;
mod file;
mod source;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use berth_vuln::advisory::{Advisory, normalize_name};
use berth_vuln::{Finding, Package};
use redb::{Database, ReadableDatabase};
use sha2::{Digest, Sha256};

pub use self::error::DbError;
use self::error::InDb;
use self::file::{ADVISORIES, CACHE_BYTES, FORMAT};
use self::source::{DOWNLOAD_PREFIX, Source, Zip};
use crate::config::OsvConfig;

/// The database's file, under the main root.
pub const FILE: &str = ".berth/osv.redb";
/// The file a refresh writes before renaming it over [`FILE`].
const NEW_NAME: &str = "osv.redb.new";

/// What the database holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbStats {
    /// The hash of the dumps it was built from; `None` while empty.
    pub version: Option<String>,
    /// When it was built.
    pub built: Option<SystemTime>,
    /// When a refresh last found it current (or built it).
    pub checked: Option<SystemTime>,
    /// Advisories stored (each once, however many keys it has).
    pub advisories: u64,
    /// Distinct `(ecosystem, package)` keys.
    pub keys: u64,
    /// The ecosystems (dumps) it was built from.
    pub ecosystems: Vec<String>,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// The database's version now.
    pub version: String,
    /// Whether a new database was built (`false`: every dump was the one
    /// the database was built from, and nothing was written).
    pub changed: bool,
    /// Advisories and keys stored now.
    pub advisories: u64,
    pub keys: u64,
    /// Per dump, in order (counts zero when nothing changed).
    pub ecosystems: Vec<EcosystemReport>,
    /// How long the refresh took, downloads included.
    pub took: Duration,
}

/// What one ecosystem's dump held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcosystemReport {
    pub ecosystem: String,
    /// The dump's SHA-256, in hex.
    pub digest: String,
    /// Files in the dump.
    pub files: u64,
    /// Advisories read from it.
    pub advisories: u64,
    /// Withdrawn advisories (skipped, and removed where another dump
    /// had them).
    pub withdrawn: u64,
    /// Files that are no OSV record, or too large: skipped.
    pub malformed: u64,
}

/// The database in use and what it says of itself, swapped whole.
#[derive(Default)]
struct Current {
    /// `None` while there is none (no file yet, or one of another
    /// format).
    db: Option<Arc<Database>>,
    stats: DbStats,
}

/// The OSV advisories, keyed by ecosystem and package name.
pub struct AdvisoryDb {
    /// `<root>/.berth`: the database, its `.new` file, downloads.
    dir: PathBuf,
    /// `<root>/.berth/osv.redb`.
    path: PathBuf,
    /// The database in use. A std lock, held only to clone or replace
    /// the `Arc` (never across I/O), and shared with the blocking task
    /// that swaps a new database in, so a refresh whose caller went away
    /// still finishes consistently.
    current: Arc<RwLock<Arc<Current>>>,
    /// One refresh at a time (they share `osv.redb.new`); owned guards,
    /// so the blocking build holds it to its end.
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl AdvisoryDb {
    /// Opens the database of the root at `root`: the file if there is
    /// one (a damaged one is moved aside as `osv.redb.damaged-<secs>`,
    /// and the database starts empty), else an empty database (version
    /// `None`). Leftovers of an interrupted refresh are removed.
    pub fn open(root: &Path) -> Result<Self, DbError> {
        let path = root.join(FILE);
        let dir = path.parent().unwrap_or(root).to_path_buf();
        remove_leftovers(&dir)?;
        let mut current = Current::default();
        if path.exists() {
            let (db, _aside) = crate::redb_file::open(&path, CACHE_BYTES).in_db(&path)?;
            match file::read_stats(&db, &path)? {
                Some(stats) => {
                    current = Current {
                        db: Some(Arc::new(db)),
                        stats,
                    }
                }
                None => tracing::info!(
                    "{} is of another format: rebuilt at the next refresh",
                    path.display()
                ),
            }
        }
        Ok(Self {
            dir,
            path,
            current: Arc::new(RwLock::new(Arc::new(current))),
            refreshing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    fn current(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The database's version; `None` while it is empty.
    pub fn version(&self) -> Option<String> {
        self.current().stats.version.clone()
    }

    /// What the database holds.
    pub fn stats(&self) -> DbStats {
        self.current().stats.clone()
    }

    /// The advisories stored under one key: an advisory ecosystem as OSV
    /// writes it (`Debian:12`, `Alpine:v3.19`, `PyPI`; see
    /// [`berth_vuln::advisory::advisory_ecosystems`]) and a package name
    /// (normalized here as [`normalize_name`] does, as
    /// [`berth_vuln::matching::findings`] already asks), each with only
    /// that key's affected entries, sorted by id. One read transaction;
    /// blocking but short (a B-tree range read): call it from a blocking
    /// thread.
    pub fn lookup(&self, ecosystem: &str, name: &str) -> Result<Vec<Advisory>, DbError> {
        let current = self.current();
        let Some(db) = &current.db else {
            return Ok(Vec::new());
        };
        let txn = db.begin_read().in_db(&self.path)?;
        lookup_in(&txn, &self.path, ecosystem, name)
    }

    /// The findings of `packages` ([`berth_vuln::matching::findings`]),
    /// every lookup in one read transaction: one database throughout,
    /// even if a refresh swaps another in meanwhile. Blocking.
    pub fn findings(&self, packages: &[Package]) -> Result<Vec<Finding>, DbError> {
        let current = self.current();
        let Some(db) = &current.db else {
            return Ok(berth_vuln::matching::findings(packages, |_, _| Vec::new()));
        };
        let txn = db.begin_read().in_db(&self.path)?;
        let failed = RefCell::new(None);
        let found = berth_vuln::matching::findings(packages, |ecosystem, name| {
            lookup_in(&txn, &self.path, ecosystem, name).unwrap_or_else(|e| {
                failed.borrow_mut().get_or_insert(e);
                Vec::new()
            })
        });
        match failed.into_inner() {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Fetches every ecosystem's dump from `osv.source` (the configured
    /// ecosystems, else every one the source has) and, unless they are
    /// the ones the database was built from, builds a new database from
    /// them and swaps it in. On any error the database in use stays as it
    /// was, and no temporary file is left.
    pub async fn refresh(&self, osv: &OsvConfig) -> Result<RefreshReport, DbError> {
        let only = self.refreshing.clone().lock_owned().await;
        let started = Instant::now();
        let source = Source::new(&osv.source)?;
        let ecosystems = if osv.ecosystems.is_empty() {
            source.ecosystems().await?
        } else {
            let mut configured = osv.ecosystems.clone();
            configured.sort();
            configured.dedup();
            configured
        };
        if ecosystems.is_empty() {
            return Err(DbError::Source {
                at: source.to_string(),
                reason: "has no ecosystems".into(),
            });
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| DbError::io(&self.dir, e))?;
        let zips = source.fetch(&ecosystems, &self.dir).await?;
        let version = version_of(&zips);
        let current = self.current();
        let unchanged = current.stats.version.as_deref() == Some(version.as_str());
        if let Some(db) = current.db.as_ref().filter(|_| unchanged) {
            let reports = zips
                .iter()
                .map(|z| EcosystemReport {
                    ecosystem: z.ecosystem.clone(),
                    digest: z.digest.clone(),
                    ..EcosystemReport::default()
                })
                .collect();
            drop(zips);
            let now = SystemTime::now();
            let (db, path) = (db.clone(), self.path.clone());
            tokio::task::spawn_blocking(move || file::mark_checked(&db, &path, now)).await??;
            let mut stats = current.stats.clone();
            stats.checked = Some(now);
            let (advisories, keys) = (stats.advisories, stats.keys);
            self.swap(Current {
                db: current.db.clone(),
                stats,
            });
            return Ok(RefreshReport {
                version,
                changed: false,
                advisories,
                keys,
                ecosystems: reports,
                took: started.elapsed(),
            });
        }
        let new = self.dir.join(NEW_NAME);
        let path = self.path.clone();
        let dir = self.dir.clone();
        let slot = self.current.clone();
        let job = tokio::task::spawn_blocking(move || {
            let _only = only;
            let built = file::build(&new, &zips, &version);
            // The downloads go now, whatever happened.
            drop(zips);
            let (db, stats, reports) = built?;
            drop(db);
            let swapped = replace(&new, &path, &dir);
            let db = match swapped {
                Ok(db) => db,
                Err(e) => {
                    let _ = file::remove(&new);
                    return Err(e);
                }
            };
            *slot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Current {
                db: Some(Arc::new(db)),
                stats: stats.clone(),
            });
            Ok((version, stats, reports))
        });
        let (version, stats, reports) = job.await??;
        Ok(RefreshReport {
            version,
            changed: true,
            advisories: stats.advisories,
            keys: stats.keys,
            ecosystems: reports,
            took: started.elapsed(),
        })
    }

    fn swap(&self, current: Current) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(current);
    }

    /// Refreshes in the background: at once when the database is empty
    /// or was last checked longer than `every` ago, then every `every`.
    /// A failed refresh is logged and retried after a minute (or `every`,
    /// if shorter), the wait doubling up to `every`.
    pub fn spawn_refresh(
        self: Arc<Self>,
        osv: OsvConfig,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let first_retry = every.min(Duration::from_secs(60));
            let mut retry = first_retry;
            let mut wait = self.due_in(every);
            loop {
                tokio::time::sleep(wait).await;
                match self.refresh(&osv).await {
                    Ok(report) => {
                        let sum = |f: fn(&EcosystemReport) -> u64| -> u64 {
                            report.ecosystems.iter().map(f).sum()
                        };
                        tracing::info!(
                            version = %report.version,
                            changed = report.changed,
                            advisories = report.advisories,
                            keys = report.keys,
                            withdrawn = sum(|e| e.withdrawn),
                            malformed = sum(|e| e.malformed),
                            took = ?report.took,
                            "osv advisories refreshed from {}",
                            osv_source_shown(&osv),
                        );
                        wait = every;
                        retry = first_retry;
                    }
                    Err(e) => {
                        tracing::warn!(retry_in = ?retry, "osv advisories not refreshed: {e}");
                        wait = retry;
                        retry = (retry * 2).min(every);
                    }
                }
            }
        })
    }

    /// How long until the next refresh is due.
    fn due_in(&self, every: Duration) -> Duration {
        let stats = self.stats();
        match (stats.version, stats.checked.or(stats.built)) {
            (Some(_), Some(at)) => {
                let age = SystemTime::now().duration_since(at).unwrap_or_default();
                every.saturating_sub(age)
            }
            _ => Duration::ZERO,
        }
    }
}

/// [`AdvisoryDb::lookup`] in a read transaction.
fn lookup_in(
    txn: &redb::ReadTransaction,
    path: &Path,
    ecosystem: &str,
    name: &str,
) -> Result<Vec<Advisory>, DbError> {
    let name = normalize_name(ecosystem, name);
    if ecosystem.contains('\0') || name.contains('\0') {
        return Ok(Vec::new());
    }
    let rows = match txn.open_table(ADVISORIES) {
        Ok(rows) => rows,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(DbError::redb(path, e)),
    };
    let start = format!("{ecosystem}\0{name}\0");
    let end = format!("{ecosystem}\0{name}\u{1}");
    let mut out = Vec::new();
    for row in rows.range(start.as_str()..end.as_str()).in_db(path)? {
        let (key, value) = row.in_db(path)?;
        let advisory =
            serde_json::from_slice(value.value()).map_err(|source| DbError::Corrupt {
                key: key.value().replace('\0', " "),
                source,
            })?;
        out.push(advisory);
    }
    Ok(out)
}

/// Opens the new database (so a file that does not open never replaces
/// the old one), then renames it over the old one: the handle stays
/// valid, and the old file stays open, unlinked, for whoever still
/// reads it.
fn replace(new: &Path, path: &Path, dir: &Path) -> Result<Database, DbError> {
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .open(new)
        .in_db(new)?;
    std::fs::rename(new, path).map_err(|e| DbError::io(path, e))?;
    // The new file is in place either way; syncing the directory makes
    // the rename survive a crash.
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!("cannot sync {}: {e}", dir.display());
    }
    Ok(db)
}

/// The version of a database built from `zips`.
fn version_of(zips: &[Zip]) -> String {
    let mut lines: Vec<String> = zips
        .iter()
        .map(|z| format!("{}\t{}\n", z.ecosystem, z.digest))
        .collect();
    lines.sort();
    lines.dedup();
    let mut hasher = Sha256::new();
    hasher.update(format!("berth osv format {FORMAT}\n"));
    for line in lines {
        hasher.update(line);
    }
    hex::encode(hasher.finalize())
}

/// Removes what an interrupted refresh left in `dir`.
fn remove_leftovers(dir: &Path) -> Result<(), DbError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(DbError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| DbError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == NEW_NAME || name.starts_with(DOWNLOAD_PREFIX) {
            file::remove(&entry.path())?;
        }
    }
    Ok(())
}

/// The source as logs show it (a URL without credentials).
fn osv_source_shown(osv: &OsvConfig) -> String {
    Source::new(&osv.source).map_or_else(|_| "the configured source".into(), |s| s.to_string())
}

//! The advisory database's file: its tables, writing a new one from OSV
//! dumps (blocking), and reading what it says of itself.
//!
//! Tables:
//! - `advisories`: `ecosystem \0 name \0 id` → the advisory with only
//!   that key's affected entries ([`Advisory::for_key`]) as JSON. One
//!   row per advisory and key, so a lookup is one range read of the
//!   prefix `ecosystem \0 name \0`, sorted by id, and a new copy of an
//!   advisory replaces the old one's rows without reading them.
//! - `ids`: advisory id → its keys (`ecosystem \0 name`, one a line):
//!   one advisory seen in two dumps (a GHSA affecting PyPI and npm is in
//!   both) is stored once, and a withdrawn one is removed wherever an
//!   earlier dump put it.
//! - `meta`: `format`, `version`, `built` and `checked` (Unix seconds),
//!   `advisories`, `keys`, `ecosystems` (one a line).
//!
//! JSON, not a binary encoding: an advisory's bytes are mostly its
//! summary and details (text either way), a lookup decodes a handful of
//! them, serde_json is already here, and the rows stay readable with any
//! redb tool. `format` names this layout: a file of another format is
//! treated as empty and rebuilt.

use std::collections::HashSet;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_vuln::advisory::{Advisory, AdvisoryError, read_zip};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::source::Zip;
use super::{DbError, DbStats, EcosystemReport, InDb};

pub(super) const ADVISORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("advisories");
const IDS: TableDefinition<&str, &str> = TableDefinition::new("ids");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// This layout's name, kept in `meta` and hashed into the version.
pub(super) const FORMAT: &str = "1";

/// The page cache of a database (redb's default of 1 GiB is far more than
/// lookups need).
pub(super) const CACHE_BYTES: usize = 32 << 20;

/// Advisories written per (non-durable) transaction while building: the
/// memory held is one batch.
const BATCH: usize = 2_000;

/// Builds the database at `path` (made anew) from `zips`, under
/// `version`. On error the file is removed.
pub(super) fn build(
    path: &Path,
    zips: &[Zip],
    version: &str,
) -> Result<(Database, DbStats, Vec<EcosystemReport>), DbError> {
    remove(path)?;
    let built = write(path, zips, version);
    if built.is_err() {
        // The database is closed by now: the error dropped it.
        if let Err(e) = remove(path) {
            tracing::warn!("{e}");
        }
    }
    built
}

fn write(
    path: &Path,
    zips: &[Zip],
    version: &str,
) -> Result<(Database, DbStats, Vec<EcosystemReport>), DbError> {
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .in_db(path)?;
    let mut writer = Writer {
        db: &db,
        path,
        pending: Vec::with_capacity(BATCH),
        withdrawn: HashSet::new(),
        failed: None,
    };
    let mut reports = Vec::with_capacity(zips.len());
    for zip in zips {
        reports.push(writer.load(zip)?);
    }
    let stats = writer.finish(zips, version)?;
    // The batches' copy-on-write pages freed: the file shrinks by
    // about a fifth, for a quarter of the build's time.
    let mut db = db;
    db.compact().in_db(path)?;
    Ok((db, stats, reports))
}

/// Removes `path`, if there is one.
pub(super) fn remove(path: &Path) -> Result<(), DbError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DbError::io(path, e)),
        _ => Ok(()),
    }
}

struct Writer<'a> {
    db: &'a Database,
    path: &'a Path,
    /// Advisories read and not written yet.
    pending: Vec<Advisory>,
    /// Ids of withdrawn advisories: removed at the end, wherever they
    /// were stored (a withdrawn record anywhere wins over a stale copy).
    withdrawn: HashSet<String>,
    /// The first write error while a dump is read (its reader hands on
    /// records and takes no error back).
    failed: Option<DbError>,
}

impl Writer<'_> {
    /// Reads one dump into the database.
    fn load(&mut self, zip: &Zip) -> Result<EcosystemReport, DbError> {
        let file = std::fs::File::open(&zip.path).map_err(|e| DbError::io(&zip.path, e))?;
        let mut report = EcosystemReport {
            ecosystem: zip.ecosystem.clone(),
            digest: zip.digest.clone(),
            ..EcosystemReport::default()
        };
        let files = read_zip(BufReader::with_capacity(1 << 16, file), |record| {
            if self.failed.is_some() {
                return;
            }
            match record {
                Ok(advisory) => {
                    report.advisories += 1;
                    self.pending.push(advisory);
                    if self.pending.len() >= BATCH
                        && let Err(e) = self.flush()
                    {
                        self.failed = Some(e);
                    }
                }
                Err(e) => {
                    if let Some(id) = withdrawn_id(&e) {
                        report.withdrawn += 1;
                        self.withdrawn.insert(id.to_owned());
                    } else {
                        report.malformed += 1;
                        tracing::debug!("{}: {e}", zip.ecosystem);
                    }
                }
            }
        })
        .map_err(|source| DbError::Zip {
            ecosystem: zip.ecosystem.clone(),
            source,
        })?;
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.flush()?;
        report.files = files as u64;
        Ok(report)
    }

    /// Writes the pending advisories in one transaction, durable only
    /// with the last one ([`Writer::finish`]): a crash meanwhile leaves a
    /// `.new` file nobody reads.
    fn flush(&mut self) -> Result<(), DbError> {
        let path = self.path;
        let mut txn = self.db.begin_write().in_db(path)?;
        txn.set_durability(Durability::None).in_db(path)?;
        {
            let mut rows = txn.open_table(ADVISORIES).in_db(path)?;
            let mut ids = txn.open_table(IDS).in_db(path)?;
            for advisory in self.pending.drain(..) {
                put(&mut rows, &mut ids, &advisory).in_db(path)?;
            }
        }
        txn.commit().in_db(path)
    }

    /// Removes the withdrawn advisories, counts, writes `meta`, and
    /// commits durably.
    fn finish(&mut self, zips: &[Zip], version: &str) -> Result<DbStats, DbError> {
        let path = self.path;
        let txn = self.db.begin_write().in_db(path)?;
        let stats = {
            let mut rows = txn.open_table(ADVISORIES).in_db(path)?;
            let mut ids = txn.open_table(IDS).in_db(path)?;
            for id in &self.withdrawn {
                forget(&mut rows, &mut ids, id).in_db(path)?;
            }
            let mut keys = 0u64;
            let mut last = String::new();
            for row in rows.iter().in_db(path)? {
                let (key, _) = row.in_db(path)?;
                let key = key.value();
                let prefix = key.rsplit_once('\0').map_or(key, |(p, _)| p);
                if prefix != last {
                    keys += 1;
                    last = prefix.to_owned();
                }
            }
            let now = SystemTime::now();
            let stats = DbStats {
                version: Some(version.to_owned()),
                built: Some(now),
                checked: Some(now),
                advisories: ids.len().in_db(path)?,
                keys,
                ecosystems: zips.iter().map(|z| z.ecosystem.clone()).collect(),
            };
            let mut meta = txn.open_table(META).in_db(path)?;
            let secs = unix(now).to_string();
            let advisories = stats.advisories.to_string();
            let keys = keys.to_string();
            let ecosystems = stats.ecosystems.join("\n");
            for (k, v) in [
                ("format", FORMAT),
                ("version", version),
                ("built", &secs),
                ("checked", &secs),
                ("advisories", &advisories),
                ("keys", &keys),
                ("ecosystems", &ecosystems),
            ] {
                meta.insert(k, v).in_db(path)?;
            }
            stats
        };
        txn.commit().in_db(path)?;
        Ok(stats)
    }
}

type Rows<'t> = redb::Table<'t, &'static str, &'static [u8]>;
type Ids<'t> = redb::Table<'t, &'static str, &'static str>;

/// Stores one advisory under each of its keys, replacing an earlier copy.
fn put(rows: &mut Rows<'_>, ids: &mut Ids<'_>, advisory: &Advisory) -> Result<(), redb::Error> {
    forget(rows, ids, &advisory.id)?;
    let mut keys = String::new();
    for (ecosystem, name) in advisory.keys() {
        // Neither can hold these in OSV; a record that does cannot be
        // keyed.
        if [ecosystem, name].iter().any(|s| s.contains(['\0', '\n'])) {
            continue;
        }
        let value = serde_json::to_vec(&advisory.for_key(ecosystem, name))
            .map_err(|e| redb::Error::Io(std::io::Error::other(e)))?;
        let row = format!("{ecosystem}\0{name}\0{}", advisory.id);
        rows.insert(row.as_str(), value.as_slice())?;
        if !keys.is_empty() {
            keys.push('\n');
        }
        keys.push_str(ecosystem);
        keys.push('\0');
        keys.push_str(name);
    }
    if !keys.is_empty() {
        ids.insert(advisory.id.as_str(), keys.as_str())?;
    }
    Ok(())
}

/// Removes an advisory's rows, if it has any.
fn forget(rows: &mut Rows<'_>, ids: &mut Ids<'_>, id: &str) -> Result<(), redb::Error> {
    let Some(keys) = ids.remove(id)?.map(|k| k.value().to_owned()) else {
        return Ok(());
    };
    for key in keys.split('\n') {
        rows.remove(format!("{key}\0{id}").as_str())?;
    }
    Ok(())
}

/// The id of a withdrawn advisory a dump's error is about.
fn withdrawn_id(e: &AdvisoryError) -> Option<&str> {
    match e {
        AdvisoryError::Withdrawn { id } => Some(id),
        AdvisoryError::Entry { source, .. } => withdrawn_id(source),
        _ => None,
    }
}

/// What a database says of itself: empty stats for one without `meta`,
/// `None` for one of another format.
pub(super) fn read_stats(db: &Database, path: &Path) -> Result<Option<DbStats>, DbError> {
    let txn = db.begin_read().in_db(path)?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Some(DbStats::default())),
        Err(e) => return Err(DbError::redb(path, e)),
    };
    let get = |k: &str| -> Result<Option<String>, DbError> {
        Ok(meta.get(k).in_db(path)?.map(|v| v.value().to_owned()))
    };
    if get("format")?.as_deref() != Some(FORMAT) {
        return Ok(None);
    }
    let number =
        |k: &str| -> Result<u64, DbError> { Ok(get(k)?.and_then(|v| v.parse().ok()).unwrap_or(0)) };
    let time = |k: &str| -> Result<Option<SystemTime>, DbError> {
        Ok(get(k)?
            .and_then(|v| v.parse().ok())
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)))
    };
    Ok(Some(DbStats {
        version: get("version")?,
        built: time("built")?,
        checked: time("checked")?,
        advisories: number("advisories")?,
        keys: number("keys")?,
        ecosystems: get("ecosystems")?
            .map(|e| e.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
    }))
}

/// Records that the database was found current at `now`.
pub(super) fn mark_checked(db: &Database, path: &Path, now: SystemTime) -> Result<(), DbError> {
    let txn = db.begin_write().in_db(path)?;
    {
        let mut meta = txn.open_table(META).in_db(path)?;
        meta.insert("checked", unix(now).to_string().as_str())
            .in_db(path)?;
    }
    txn.commit().in_db(path)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

//! rpm's databases. `rpmdb.sqlite` (RHEL 9 and its rebuilds, Fedora 33+;
//! under `var/lib/rpm/` or `usr/lib/sysimage/rpm/`) is read: its
//! `Packages` table holds one header blob per package
//! ([`rpm_header`](super::rpm_header)). The older BerkeleyDB `Packages`
//! (RHEL 8 and before) and SUSE's `Packages.db` and `rpmdb.ndb` formats
//! are not: they give a note, not an empty result.
//!
//! SQLite reads the database from memory (`sqlite3_deserialize`), never
//! from a file on disk. rpm keeps the database in WAL mode; an image's
//! copy has its WAL checkpointed (rpm does so when it closes the
//! database), and a `-wal` file left beside it is not read.

use std::io::Read;

use rusqlite::{Connection, MAIN_DB};

use super::rpm_header;
use super::tree::Found;
use crate::Package;

/// The paths rpm keeps its SQLite database at.
pub(super) const SQLITE_PATHS: [&str; 2] = [
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];

/// The databases of formats not read, by path, and what they are.
pub(super) fn unsupported(path: &str) -> Option<&'static str> {
    let name = path
        .strip_prefix("var/lib/rpm/")
        .or_else(|| path.strip_prefix("usr/lib/sysimage/rpm/"))?;
    match name {
        "Packages" => Some("rpm BerkeleyDB database"),
        "Packages.db" => Some("rpm BerkeleyDB database (SUSE)"),
        "rpmdb.ndb" => Some("rpm ndb database"),
        _ => None,
    }
}

/// The packages of an `rpmdb.sqlite` at `location`.
pub(super) fn parse_sqlite(bytes: &[u8], location: &str, ecosystem: &str) -> Found {
    let headers = match read_blobs(bytes) {
        Ok(blobs) => blobs,
        Err(e) => return Found::note(format!("rpm database {location} cannot be read: {e}")),
    };
    let mut found = Found::default();
    let mut bad = 0;
    for blob in headers {
        let header = match rpm_header::parse(&blob) {
            Ok(header) => header,
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        // The keys rpm imported are entries of the database too.
        if header.name == "gpg-pubkey" {
            continue;
        }
        found.packages.push(Package {
            ecosystem: ecosystem.to_owned(),
            version: header.evr(),
            source: header
                .source_name()
                .filter(|s| *s != header.name)
                .map(str::to_owned),
            name: header.name,
            location: location.to_owned(),
        });
    }
    if bad > 0 {
        found.notes.push(format!(
            "rpm database {location}: {bad} headers cannot be read"
        ));
    }
    found
}

fn read_blobs(bytes: &[u8]) -> rusqlite::Result<Vec<Vec<u8>>> {
    // Bytes 18 and 19 of the file header are the read and write format
    // versions, 2 in WAL mode; an in-memory database has no WAL, and
    // SQLite refuses one that says it is in WAL mode. 1 is the rollback
    // journal's (the same pages, read alike). They are changed on the
    // way into SQLite's copy, so the database is copied once, not twice.
    let wal = bytes.len() >= 100 && bytes.starts_with(b"SQLite format 3\0");
    let (head, tail) = if wal {
        bytes.split_at(18)
    } else {
        (bytes, &[][..])
    };
    let patch: &[u8] = if wal { &[1, 1] } else { &[] };
    let tail = tail.get(2..).unwrap_or_default();
    let mut conn = Connection::open_in_memory()?;
    conn.deserialize_read_exact(MAIN_DB, head.chain(patch).chain(tail), bytes.len(), true)?;
    let mut statement = conn.prepare("SELECT blob FROM Packages")?;
    let blobs = statement.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    blobs.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_formats_by_path() {
        assert_eq!(
            unsupported("var/lib/rpm/Packages"),
            Some("rpm BerkeleyDB database")
        );
        assert_eq!(
            unsupported("usr/lib/sysimage/rpm/rpmdb.ndb"),
            Some("rpm ndb database")
        );
        assert_eq!(unsupported("var/lib/rpm/rpmdb.sqlite"), None);
        assert_eq!(unsupported("opt/var/lib/rpm/Packages"), None);
    }

    #[test]
    fn garbage_and_empty_databases_are_notes() {
        for bytes in [&b""[..], b"not a database at all", &[0u8; 4096]] {
            let found = parse_sqlite(bytes, "var/lib/rpm/rpmdb.sqlite", "Rocky Linux:9");
            assert!(found.packages.is_empty());
            assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        }
    }
}

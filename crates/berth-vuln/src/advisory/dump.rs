//! OSV's per-ecosystem dumps: `<Ecosystem>/all.zip`, one JSON record per
//! file, read one record at a time.

use std::io::{Read, Seek};

use super::{Advisory, AdvisoryError, parse_record};

/// The largest record read (4 MiB): real ones are a few KiB, the largest
/// (a kernel CVE listing hundreds of versions) a few hundred.
pub const RECORD_LIMIT: u64 = 4 * 1024 * 1024;

/// Reads an OSV `all.zip`, handing each record to `each` as it is read:
/// an advisory, or why that one file was not one
/// ([`AdvisoryError::Entry`]: not JSON, over [`RECORD_LIMIT`], withdrawn
/// — see [`AdvisoryError::is_withdrawn`]). Memory stays at one record.
///
/// An unreadable zip (truncated, corrupt, a damaged entry) fails the
/// whole dump, possibly after some records were handed on: the caller
/// keeps its previous database. Returns how many files were read.
pub fn read_zip<R: Read + Seek>(
    zip: R,
    mut each: impl FnMut(Result<Advisory, AdvisoryError>),
) -> Result<usize, AdvisoryError> {
    let mut archive = zip::ZipArchive::new(zip)?;
    let mut buf = Vec::new();
    let mut count = 0;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i)?;
        if file.is_dir() {
            continue;
        }
        count += 1;
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        let entry = |source| AdvisoryError::Entry {
            name: name.clone(),
            source: Box::new(source),
        };
        if file.size() > RECORD_LIMIT {
            each(Err(entry(AdvisoryError::TooLarge {
                size: file.size(),
                limit: RECORD_LIMIT,
            })));
            continue;
        }
        buf.clear();
        // The declared size may lie: never read past the limit.
        (&mut file).take(RECORD_LIMIT + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > RECORD_LIMIT {
            each(Err(entry(AdvisoryError::TooLarge {
                size: buf.len() as u64,
                limit: RECORD_LIMIT,
            })));
            continue;
        }
        each(parse_record(&buf).map_err(entry));
    }
    Ok(count)
}

//! OSV `all.zip` dumps, written here with the `zip` crate: good records
//! read, bad ones reported one by one, a broken zip refused whole.

use std::io::{Cursor, Write};

use berth_vuln::advisory::{AdvisoryError, RECORD_LIMIT, read_zip};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

fn record(id: &str, name: &str) -> String {
    format!(
        r#"{{"id":"{id}","aliases":["CVE-2024-{n}"],"affected":[{{"package":{{"ecosystem":"PyPI","name":"{name}"}},
        "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"2.0"}}]}}]}}]}}"#,
        n = id.len()
    )
}

fn dump() -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let mut add = |name: &str, body: &[u8], options| {
        zip.start_file(name, options)
            .unwrap_or_else(|e| panic!("{e}"));
        zip.write_all(body).unwrap_or_else(|e| panic!("{e}"));
    };
    add(
        "PYSEC-2024-1.json",
        record("PYSEC-2024-1", "jinja2").as_bytes(),
        deflated,
    );
    add("garbage.json", b"{\"id\": ", deflated);
    // Over the limit, and very compressible: a zip bomb of a record.
    let huge = vec![b' '; RECORD_LIMIT as usize + 1];
    add("huge.json", &huge, deflated);
    add(
        "GHSA-withdrawn.json",
        br#"{"id":"GHSA-withdrawn","withdrawn":"2024-02-01T00:00:00Z"}"#,
        stored,
    );
    add("GHSA-2.json", record("GHSA-2", "Django").as_bytes(), stored);
    zip.add_directory("nested/", stored)
        .unwrap_or_else(|e| panic!("{e}"));
    zip.finish().unwrap_or_else(|e| panic!("{e}")).into_inner()
}

#[test]
fn good_records_read_and_bad_ones_reported_one_by_one() {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let count = read_zip(Cursor::new(dump()), |r| match r {
        Ok(a) => good.push((a.id, a.cve, a.affected[0].name.clone())),
        Err(e) => bad.push(e),
    });
    assert_eq!(count.ok(), Some(5), "directories are not records");
    assert_eq!(
        good,
        [
            (
                "PYSEC-2024-1".to_owned(),
                "CVE-2024-12".to_owned(),
                "jinja2".to_owned()
            ),
            (
                "GHSA-2".to_owned(),
                "CVE-2024-6".to_owned(),
                "django".to_owned()
            ),
        ]
    );
    assert_eq!(bad.len(), 3);
    let named = |e: &AdvisoryError| match e {
        AdvisoryError::Entry { name, source } => (name.clone(), source.to_string()),
        other => panic!("not an entry error: {other}"),
    };
    let (name, why) = named(&bad[0]);
    assert_eq!(name, "garbage.json");
    assert!(why.starts_with("not an OSV record"), "{why}");
    let (name, why) = named(&bad[1]);
    assert_eq!(name, "huge.json");
    assert!(
        matches!(&bad[1], AdvisoryError::Entry { source, .. } if matches!(**source, AdvisoryError::TooLarge { .. })),
        "{why}"
    );
    assert!(bad[2].is_withdrawn());
    assert!(!bad[0].is_withdrawn());
}

#[test]
fn a_broken_zip_fails_whole() {
    let bytes = dump();
    let mut handed = 0;
    let truncated = read_zip(Cursor::new(&bytes[..bytes.len() / 2]), |_| handed += 1);
    assert!(
        matches!(truncated, Err(AdvisoryError::Zip(_))),
        "{truncated:?}"
    );
    assert_eq!(handed, 0);

    let not_zip = read_zip(Cursor::new(b"PK not really".to_vec()), |_| {});
    assert!(matches!(not_zip, Err(AdvisoryError::Zip(_))), "{not_zip:?}");

    // Damage inside the first (deflated) record: its data no longer
    // inflates or checks, which fails the dump rather than one record.
    let mut damaged = bytes.clone();
    for b in &mut damaged[40..60] {
        *b ^= 0x5a;
    }
    let result = read_zip(Cursor::new(damaged), |_| {});
    assert!(result.is_err(), "{result:?}");
}

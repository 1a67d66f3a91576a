//! The advisory database against real-shaped dumps from a directory and
//! from a local HTTP source: lookups and findings, versions, ecosystems
//! by default, failed refreshes leaving the old database, damaged files,
//! the background retries; and the build's figures (ignored: run in
//! release with `--ignored --nocapture`).

mod fixtures;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_vuln::Package;

use self::fixtures::{GHSA_REQUESTS, Served, dumps, serve, write_dir, zip_of};
use super::*;

fn osv(source: &str, ecosystems: &[&str]) -> OsvConfig {
    OsvConfig {
        source: source.into(),
        ecosystems: ecosystems.iter().map(|e| (*e).to_owned()).collect(),
    }
}

fn pkg(ecosystem: &str, name: &str, source: Option<&str>, version: &str) -> Package {
    Package {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.into(),
        source: source.map(Into::into),
        location: "var/lib/dpkg/status".into(),
    }
}

/// The ids stored under one key.
fn ids(db: &AdvisoryDb, ecosystem: &str, name: &str) -> Vec<String> {
    db.lookup(ecosystem, name)
        .expect("lookup")
        .into_iter()
        .map(|a| a.id)
        .collect()
}

/// What the database answers for every key the tests use.
fn answers(db: &AdvisoryDb) -> Vec<Vec<Advisory>> {
    [
        ("Debian:12", "openssl"),
        ("Debian:11", "openssl"),
        ("Alpine:v3.19", "openssl"),
        ("Alpine:v3.17", "openssl"),
        ("PyPI", "jinja2"),
        ("PyPI", "requests"),
    ]
    .iter()
    .map(|(e, n)| db.lookup(e, n).expect("lookup"))
    .collect()
}

/// The files under `<root>/.berth`, other than the database.
fn leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join(".berth"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "osv.redb")
        .collect()
}

/// The CVE ids found for `packages`, sorted.
fn cves(db: &AdvisoryDb, packages: &[Package]) -> Vec<String> {
    let mut found: Vec<String> =
        berth_vuln::matching::findings(packages, |e, n| db.lookup(e, n).expect("lookup"))
            .into_iter()
            .map(|f| f.id)
            .collect();
    found.sort();
    let mut again: Vec<String> = db
        .findings(packages)
        .expect("findings")
        .into_iter()
        .map(|f| f.id)
        .collect();
    again.sort();
    assert_eq!(found, again, "one transaction or one per lookup");
    found
}

#[tokio::test]
async fn a_directory_source_answers_lookups_and_findings() {
    let root = tempfile::tempdir().expect("tmp");
    let osv_dir = tempfile::tempdir().expect("tmp");
    write_dir(osv_dir.path(), &dumps());
    // A folder without a dump is no ecosystem; a release's dump is in
    // its ecosystem's (this one, unreadable, is not read).
    std::fs::create_dir_all(osv_dir.path().join("npm")).expect("mkdir");
    write_dir(osv_dir.path(), &[("Alpine:v3.19", b"not a zip".to_vec())]);
    let source = osv_dir.path().to_str().expect("utf-8");

    let db = AdvisoryDb::open(root.path()).expect("open");
    assert_eq!(db.version(), None);
    assert_eq!(
        db.due_in(Duration::from_secs(3600)),
        Duration::ZERO,
        "empty: due"
    );
    assert_eq!(ids(&db, "Debian:12", "openssl"), Vec::<String>::new());
    let report = db.refresh(&osv(source, &[])).await.expect("refresh");
    assert!(report.changed);
    let names: Vec<&str> = report
        .ecosystems
        .iter()
        .map(|e| e.ecosystem.as_str())
        .collect();
    assert_eq!(names, ["Alpine", "Debian", "PyPI"], "what the source has");
    let pypi = &report.ecosystems[2];
    assert_eq!(
        (pypi.files, pypi.advisories, pypi.withdrawn, pypi.malformed),
        (4, 2, 1, 1)
    );
    assert_eq!((report.advisories, report.keys), (7, 5));

    let stats = db.stats();
    assert_eq!(stats.version.as_deref(), Some(report.version.as_str()));
    assert_eq!(stats.ecosystems, ["Alpine", "Debian", "PyPI"]);
    assert_eq!((stats.advisories, stats.keys), (7, 5));
    assert!(stats.built.is_some());

    assert_eq!(
        ids(&db, "Debian:12", "openssl"),
        ["DEBIAN-CVE-2023-5678", "DSA-5532-1"]
    );
    assert_eq!(ids(&db, "Debian:11", "openssl"), ["DLA-3530-1"]);
    assert_eq!(ids(&db, "Debian:13", "openssl"), Vec::<String>::new());
    assert_eq!(
        ids(&db, "Debian:12", "libssl3"),
        Vec::<String>::new(),
        "binary name"
    );
    assert_eq!(
        ids(&db, "Alpine:v3.19", "openssl"),
        ["ALPINE-CVE-2024-0727"]
    );
    assert_eq!(ids(&db, "Alpine:v3.18", "openssl"), Vec::<String>::new());
    assert_eq!(
        ids(&db, "PyPI", "Jinja2"),
        ["GHSA-h5c8-rqwp-cp95", "PYSEC-2024-1"]
    );
    assert_eq!(
        ids(&db, "PyPI", "requests"),
        Vec::<String>::new(),
        "withdrawn"
    );
    assert_eq!(ids(&db, "PyPI", "flask"), Vec::<String>::new());
    assert_eq!(ids(&db, "npm", "jinja2"), Vec::<String>::new());
    let dsa = db.lookup("Debian:12", "openssl").expect("lookup");
    assert_eq!(dsa[1].cve, "CVE-2023-5363");
    assert_eq!(dsa[1].affected.len(), 1);
    assert_eq!(dsa[1].affected[0].ecosystem, "Debian:12");

    let libssl = |v: &str| pkg("Debian:12.5", "libssl3", Some("openssl"), v);
    assert_eq!(
        cves(&db, &[libssl("3.0.11-1~deb12u1")]),
        ["CVE-2023-5363", "CVE-2023-5678"]
    );
    assert_eq!(cves(&db, &[libssl("3.0.11-1~deb12u2")]), ["CVE-2023-5678"]);
    assert_eq!(
        cves(&db, &[libssl("3.0.13-1~deb12u1")]),
        Vec::<String>::new()
    );
    let image = [
        pkg("Alpine:3.19", "libcrypto3", Some("openssl"), "3.1.4-r4"),
        pkg("Alpine:3.18", "libcrypto3", Some("openssl"), "3.1.4-r4"),
        pkg("PyPI", "Jinja2", None, "3.1.2"),
        pkg("PyPI", "flask", None, "2.0.0"),
        pkg("PyPI", "requests", None, "2.0.0"),
    ];
    assert_eq!(cves(&db, &image), ["CVE-2024-0727", "CVE-2024-22195"]);
    let jinja = db.findings(&image[2..3]).expect("findings");
    assert_eq!(jinja.len(), 1, "two advisories of one CVE make one finding");
    assert_eq!(jinja[0].fixed_version.as_deref(), Some("3.1.3"));

    assert_eq!(leftovers(root.path()), Vec::<String>::new());
    // Reopened, it answers the same.
    let before = answers(&db);
    drop(db);
    let db = AdvisoryDb::open(root.path()).expect("reopen");
    assert_eq!(db.version(), Some(report.version));
    assert_eq!(answers(&db), before);
}

#[tokio::test]
async fn the_version_changes_with_a_dump_and_only_then() {
    let root = tempfile::tempdir().expect("tmp");
    let osv_dir = tempfile::tempdir().expect("tmp");
    let mut dumps = dumps();
    write_dir(osv_dir.path(), &dumps);
    let config = osv(osv_dir.path().to_str().expect("utf-8"), &["Debian", "PyPI"]);
    let db = AdvisoryDb::open(root.path()).expect("open");
    let first = db.refresh(&config).await.expect("refresh");
    assert!(first.changed);
    assert_eq!(db.stats().ecosystems, ["Debian", "PyPI"], "as configured");
    assert_eq!(ids(&db, "Alpine:v3.19", "openssl"), Vec::<String>::new());

    let every = Duration::from_secs(3600);
    assert!(
        db.due_in(every) > every - Duration::from_secs(60),
        "just built"
    );
    let same = db.refresh(&config).await.expect("refresh");
    assert!(!same.changed);
    assert_eq!(same.version, first.version);
    assert_eq!(db.version(), Some(first.version.clone()));
    assert!(db.stats().checked >= db.stats().built);

    dumps[2].1 = zip_of(&[
        ("GHSA-9wx4-h78v-vm56.json", GHSA_REQUESTS),
        ("GHSA-h5c8-rqwp-cp95.json", fixtures::GHSA),
    ]);
    write_dir(osv_dir.path(), &dumps[2..]);
    // A reader in flight across the swap ends on the old database.
    let old = db.current();
    let txn = old
        .db
        .as_ref()
        .expect("a database")
        .begin_read()
        .expect("read");
    let changed = db.refresh(&config).await.expect("refresh");
    let in_flight = lookup_in(&txn, &db.path, "PyPI", "jinja2").expect("lookup");
    assert_eq!(in_flight.len(), 2, "GHSA and PYSEC, as before");
    drop((txn, old));
    assert!(changed.changed);
    assert_ne!(changed.version, first.version);
    assert_eq!(db.version(), Some(changed.version.clone()));
    assert_eq!(ids(&db, "PyPI", "requests"), ["GHSA-9wx4-h78v-vm56"]);
    assert_eq!(
        ids(&db, "PyPI", "jinja2"),
        ["GHSA-h5c8-rqwp-cp95"],
        "PYSEC gone"
    );
    assert_eq!(leftovers(root.path()), Vec::<String>::new());
}

#[tokio::test]
async fn an_http_source_lists_its_ecosystems() {
    let served = Arc::new(Served::default());
    served.set(&dumps());
    // Releases of an ecosystem listed whole are not fetched (nor served).
    served.files.lock().expect("lock").insert(
        "/ecosystems.txt".into(),
        b"Alpine\nDebian\nDebian:11\nDebian:12\n\nPyPI\n".to_vec(),
    );
    let url = serve(served.clone()).await;
    let root = tempfile::tempdir().expect("tmp");
    let db = AdvisoryDb::open(root.path()).expect("open");
    let report = db.refresh(&osv(&url, &[])).await.expect("refresh");
    assert_eq!(db.stats().ecosystems, ["Alpine", "Debian", "PyPI"]);
    assert_eq!(
        ids(&db, "Alpine:v3.19", "openssl"),
        ["ALPINE-CVE-2024-0727"]
    );
    assert_eq!(
        ids(&db, "PyPI", "jinja2"),
        ["GHSA-h5c8-rqwp-cp95", "PYSEC-2024-1"]
    );
    assert_eq!(
        leftovers(root.path()),
        Vec::<String>::new(),
        "downloads removed"
    );

    // The same dumps from a directory make the same version.
    let osv_dir = tempfile::tempdir().expect("tmp");
    write_dir(osv_dir.path(), &dumps());
    let other = tempfile::tempdir().expect("tmp");
    let local = AdvisoryDb::open(other.path()).expect("open");
    let again = local
        .refresh(&osv(osv_dir.path().to_str().expect("utf-8"), &[]))
        .await
        .expect("refresh");
    assert_eq!(again.version, report.version);

    // A missing ecosystem fails the refresh, naming the URL.
    let err = db
        .refresh(&osv(&url, &["Go"]))
        .await
        .expect_err("no Go dump");
    assert_eq!(
        err.to_string(),
        format!("{url}/Go/all.zip: answered 404 Not Found")
    );
    assert_eq!(db.version(), Some(report.version));
}

#[tokio::test]
async fn a_corrupt_second_dump_leaves_the_previous_database() {
    let root = tempfile::tempdir().expect("tmp");
    let osv_dir = tempfile::tempdir().expect("tmp");
    let mut dumps = dumps();
    write_dir(osv_dir.path(), &dumps);
    let config = osv(osv_dir.path().to_str().expect("utf-8"), &[]);
    let db = AdvisoryDb::open(root.path()).expect("open");
    let version = db.refresh(&config).await.expect("refresh").version;
    let before = answers(&db);

    // Alpine changed (so a rebuild starts), Debian's dump cut in half.
    dumps[0].1 = zip_of(&[("a.json", fixtures::ALPINE)]);
    let debian = dumps[1].1.clone();
    dumps[1].1 = debian[..debian.len() / 2].to_vec();
    write_dir(osv_dir.path(), &dumps[..2]);
    let err = db.refresh(&config).await.expect_err("corrupt");
    assert!(
        matches!(&err, DbError::Zip { ecosystem, .. } if ecosystem == "Debian"),
        "{err}"
    );
    assert_eq!(db.version(), Some(version.clone()));
    assert_eq!(answers(&db), before);
    assert_eq!(leftovers(root.path()), Vec::<String>::new());
    // And after a restart.
    drop(db);
    let db = AdvisoryDb::open(root.path()).expect("reopen");
    assert_eq!(db.version(), Some(version));
    assert_eq!(answers(&db), before);
}

#[tokio::test]
async fn a_cut_download_leaves_the_previous_database() {
    let served = Arc::new(Served::default());
    let mut dumps = dumps();
    served.set(&dumps);
    let url = serve(served.clone()).await;
    let root = tempfile::tempdir().expect("tmp");
    let db = AdvisoryDb::open(root.path()).expect("open");
    let version = db.refresh(&osv(&url, &[])).await.expect("refresh").version;
    let before = answers(&db);

    dumps[0].1 = zip_of(&[("a.json", fixtures::ALPINE)]);
    served.set(&dumps);
    served
        .cut
        .lock()
        .expect("lock")
        .insert("/Debian/all.zip".into());
    let err = db.refresh(&osv(&url, &[])).await.expect_err("cut");
    assert!(
        matches!(&err, DbError::Http { url, source }
            if url.ends_with("/Debian/all.zip") && (source.is_body() || source.is_decode())),
        "cut in the body: {err}"
    );
    assert_eq!(db.version(), Some(version));
    assert_eq!(answers(&db), before);
    assert_eq!(leftovers(root.path()), Vec::<String>::new());
}

#[tokio::test]
async fn a_damaged_file_is_moved_aside() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join(".berth");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("osv.redb"),
        b"not a database at all, but long enough to be read",
    )
    .expect("write");
    // Leftovers of a refresh interrupted by a crash.
    std::fs::write(dir.join("osv.redb.new"), b"half").expect("write");
    std::fs::write(dir.join("osv-download-1.zip"), b"half").expect("write");
    let db = AdvisoryDb::open(root.path()).expect("open");
    assert_eq!(db.version(), None);
    assert_eq!(ids(&db, "Debian:12", "openssl"), Vec::<String>::new());
    let left = leftovers(root.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("osv.redb.damaged-"), "{left:?}");
}

#[tokio::test]
async fn the_background_refresh_retries_until_it_succeeds() {
    let served = Arc::new(Served::default());
    served.set(&dumps());
    served.fail_first.store(3, Ordering::SeqCst);
    let url = serve(served.clone()).await;
    let root = tempfile::tempdir().expect("tmp");
    let db = Arc::new(AdvisoryDb::open(root.path()).expect("open"));
    let every = Duration::from_millis(100);
    let task = db.clone().spawn_refresh(osv(&url, &["PyPI"]), every);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while db.version().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        served.fail_first.load(Ordering::SeqCst),
        0,
        "three failures first"
    );
    assert_eq!(
        ids(&db, "PyPI", "jinja2"),
        ["GHSA-h5c8-rqwp-cp95", "PYSEC-2024-1"]
    );
    // And it goes on, every `every`.
    let seen = served.requests.load(Ordering::SeqCst);
    tokio::time::sleep(every * 5).await;
    assert!(served.requests.load(Ordering::SeqCst) > seen);
    task.abort();
}

/// Figures of a build from 50,000 synthetic advisories: time, RSS,
/// file size, lookup latency. Printed, not asserted; run with
/// `cargo test --release -p berth-server --features scan --lib
/// build_figures -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "figures: run in release, alone"]
async fn build_figures() {
    const N: usize = 50_000;
    let rss = || -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    };
    let record = |i: usize| {
        format!(
            r#"{{"id":"GHSA-{i:06}","aliases":["CVE-2024-{i:06}"],"summary":"synthetic advisory {i}","details":"{}","affected":[{{"package":{{"ecosystem":"PyPI","name":"pkg-{}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{}.0"}}]}}]}}],"database_specific":{{"severity":"HIGH"}}}}"#,
            "lorem ipsum ".repeat(40),
            i % 10_000,
            i % 7 + 1
        )
    };
    let names: Vec<String> = (0..N).map(|i| format!("GHSA-{i:06}.json")).collect();
    let bodies: Vec<String> = (0..N).map(record).collect();
    let entries: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(bodies.iter().map(String::as_str))
        .collect();
    let osv_dir = tempfile::tempdir().expect("tmp");
    write_dir(osv_dir.path(), &[("PyPI", zip_of(&entries))]);
    drop((names, bodies));
    let root = tempfile::tempdir().expect("tmp");
    let db = AdvisoryDb::open(root.path()).expect("open");
    let rss_before = rss();
    let report = db
        .refresh(&osv(osv_dir.path().to_str().expect("utf-8"), &[]))
        .await
        .expect("refresh");
    let rss_after = rss();
    let size = std::fs::metadata(root.path().join(FILE)).map_or(0, |m| m.len());
    println!(
        "build: {} advisories, {} keys in {:?}; RSS {} → {} KiB (+{} KiB); file {} KiB",
        report.advisories,
        report.keys,
        report.took,
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before),
        size / 1024
    );
    let db = Arc::new(db);
    let lookups = 20_000;
    let job = db.clone();
    let took = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        for i in 0..lookups {
            let found = job
                .lookup("PyPI", &format!("pkg-{}", i % 10_000))
                .expect("lookup");
            assert_eq!(found.len(), 5);
        }
        started.elapsed()
    })
    .await
    .expect("join");
    println!(
        "lookup: {:?} each (a key of 5 advisories), RSS now {} KiB",
        took / lookups,
        rss()
    );
}

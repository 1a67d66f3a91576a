//! Speed sanity, not asserted: 700 installed packages matched against
//! 50,000 synthetic advisories, and the advisories read from OSV JSON.
//! `cargo test --release -p berth-vuln --test matching_speed -- --ignored --nocapture`

use std::collections::HashMap;
use std::time::Instant;

use berth_vuln::Package;
use berth_vuln::advisory::{Advisory, parse_record};
use berth_vuln::matching::findings;

const ADVISORIES: usize = 50_000;
const NAMES: usize = 5_000;

fn ecosystem(i: usize) -> (&'static str, String, String) {
    // (ecosystem, fixed version, installed version) per kind of package.
    match i % 3 {
        0 => (
            "Debian:12",
            format!("1.{}.{}-1~deb12u1", i % 7, i % 11),
            "1.3.5-1".into(),
        ),
        1 => ("PyPI", format!("2.{}.{}", i % 9, i % 13), "2.4.0".into()),
        _ => ("npm", format!("3.{}.{}", i % 5, i % 17), "3.2.1".into()),
    }
}

fn record(i: usize) -> String {
    let (eco, fixed, _) = ecosystem(i);
    let name = format!("pkg{}", i % NAMES);
    let kind = if eco == "npm" { "SEMVER" } else { "ECOSYSTEM" };
    let versions: Vec<String> = (0..20).map(|v| format!("\"0.{v}\"")).collect();
    format!(
        r#"{{"id":"OSV-{i}","aliases":["CVE-2024-{c}"],"summary":"synthetic {i}","details":"a synthetic advisory",
        "severity":[{{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}}],
        "affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},
        "ranges":[{{"type":"{kind}","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}],
        "versions":[{versions}]}}],
        "references":[{{"url":"https://example.com/{i}"}}]}}"#,
        c = i % 20_000,
        versions = versions.join(",")
    )
}

#[test]
#[ignore = "timing, run by hand in release mode"]
fn match_700_packages_against_50000_advisories() {
    let records: Vec<String> = (0..ADVISORIES).map(record).collect();
    let start = Instant::now();
    let advisories: Vec<Advisory> = records
        .iter()
        .filter_map(|r| parse_record(r.as_bytes()).ok())
        .collect();
    let parsed = start.elapsed();
    assert_eq!(advisories.len(), ADVISORIES);

    let mut store: HashMap<(String, String), Vec<Advisory>> = HashMap::new();
    for a in &advisories {
        for (eco, name) in a.keys() {
            store
                .entry((eco.to_owned(), name.to_owned()))
                .or_default()
                .push(a.clone());
        }
    }
    let packages: Vec<Package> = (0..700)
        .map(|i| {
            let (eco, _, installed) = ecosystem(i);
            Package {
                ecosystem: eco.into(),
                name: format!("pkg{i}"),
                version: installed,
                source: None,
                location: "x".into(),
            }
        })
        .collect();
    let start = Instant::now();
    let found = findings(&packages, |eco, name| {
        store
            .get(&(eco.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    });
    let matched = start.elapsed();
    println!(
        "parsed {ADVISORIES} records in {parsed:?}; matched 700 packages (each against {} advisories) in {matched:?}: {} findings",
        ADVISORIES / NAMES,
        found.len()
    );
}

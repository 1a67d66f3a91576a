//! Real-shaped OSV records of each kind of database, read, matched
//! against installed packages, and reported as findings: what must be
//! found (with its fix and severity) and what must not.

use std::collections::HashMap;

use berth_vuln::advisory::{Advisory, Event, RangeKind, parse_record};
use berth_vuln::matching::{affects, findings};
use berth_vuln::{Finding, Package, Severity};

const DSA: &str = r#"{
  "id": "DSA-5532-1",
  "summary": "openssl - security update",
  "details": "\nSeveral vulnerabilities were discovered in OpenSSL.\n",
  "modified": "2023-11-07T00:00:00Z",
  "published": "2023-10-25T00:00:00Z",
  "upstream": ["CVE-2023-5363", "CVE-2023-5678"],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}],
    "versions": ["3.0.9-1", "3.0.11-1~deb12u1"]
  }],
  "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2023/dsa-5532"}]
}"#;

const DLA: &str = r#"{
  "id": "DLA-3530-1",
  "summary": "openssl - security update",
  "details": "Several vulnerabilities were discovered in OpenSSL.",
  "upstream": ["CVE-2023-2650"],
  "affected": [{
    "package": {"ecosystem": "Debian:11", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1n-0+deb11u5"}]}]
  }]
}"#;

const DEBIAN_CVE: &str = r#"{
  "id": "DEBIAN-CVE-2023-5678",
  "upstream": ["CVE-2023-5678"],
  "details": "Issue summary: Generating excessively long X9.42 DH keys or checking\nexcessively long X9.42 DH keys or parameters may be very slow.",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}],
    "ecosystem_specific": {"urgency": "low"}
  }]
}"#;

const ALPINE: &str = r#"{
  "id": "ALPINE-CVE-2024-0727",
  "upstream": ["CVE-2024-0727"],
  "details": "Issue summary: Processing a maliciously formatted PKCS12 file may lead OpenSSL to crash.",
  "affected": [{
    "package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r5"}]}]
  }],
  "references": [{"type": "ADVISORY", "url": "https://security.alpinelinux.org/vuln/CVE-2024-0727"}]
}"#;

const UBUNTU: &str = r#"{
  "id": "UBUNTU-CVE-2024-2511",
  "upstream": ["CVE-2024-2511"],
  "summary": "openssl vulnerability",
  "details": "Unbounded memory growth with session handling in TLSv1.3.",
  "severity": [{"type": "Ubuntu", "score": "low"}],
  "affected": [{
    "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.16"}]}]
  }]
}"#;

const GHSA_PYPI: &str = r#"{
  "schema_version": "1.4.0",
  "id": "GHSA-h5c8-rqwp-cp95",
  "aliases": ["CVE-2024-22195"],
  "summary": "Jinja vulnerable to HTML attribute injection when passing user input as keys to xmlattr filter",
  "details": "The `xmlattr` filter in affected versions of Jinja accepts keys containing spaces.",
  "affected": [{
    "package": {"ecosystem": "PyPI", "name": "jinja2"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.3"}]}]
  }],
  "references": [
    {"type": "WEB", "url": "https://github.com/pallets/jinja/security/advisories/GHSA-h5c8-rqwp-cp95"},
    {"type": "PACKAGE", "url": "https://github.com/pallets/jinja"}
  ],
  "database_specific": {"cwe_ids": ["CWE-79"], "severity": "MODERATE", "github_reviewed": true}
}"#;

/// The same CVE from the PyPA database, with only a list of versions.
const PYSEC: &str = r#"{
  "id": "PYSEC-2024-1",
  "aliases": ["CVE-2024-22195", "GHSA-h5c8-rqwp-cp95"],
  "details": "Jinja is an extensible templating engine.",
  "affected": [{
    "package": {"ecosystem": "PyPI", "name": "Jinja2"},
    "versions": ["3.1.0", "3.1.1", "3.1.2"]
  }]
}"#;

const GHSA_NPM: &str = r#"{
  "id": "GHSA-c2qf-rxjj-qqgw",
  "aliases": ["CVE-2022-25883"],
  "summary": "semver vulnerable to Regular Expression Denial of Service",
  "details": "Versions of the package semver are vulnerable to ReDoS via new Range.",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
  "affected": [{
    "package": {"ecosystem": "npm", "name": "semver"},
    "ranges": [{"type": "SEMVER", "events": [
      {"introduced": "0"}, {"fixed": "5.7.2"},
      {"introduced": "6.0.0"}, {"fixed": "6.3.1"},
      {"introduced": "7.0.0"}, {"fixed": "7.5.2"}
    ]}]
  }],
  "database_specific": {"severity": "MODERATE"}
}"#;

const GHSA_MAVEN: &str = r#"{
  "id": "GHSA-22wj-vf5f-wrvj",
  "aliases": ["CVE-2022-45868"],
  "summary": "Password exposure in H2 Database",
  "details": "The web-based admin console in H2 Database Engine can be started via the CLI.",
  "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
  "affected": [{
    "package": {"ecosystem": "Maven", "name": "com.h2database:h2"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "2.1.214"}]}]
  }]
}"#;

const GO: &str = r#"{
  "schema_version": "1.3.1",
  "id": "GO-2023-2102",
  "aliases": ["CVE-2023-39325", "GHSA-4374-p667-p6c8"],
  "summary": "HTTP/2 rapid reset can cause excessive work in net/http",
  "details": "A malicious HTTP/2 client which rapidly creates requests and immediately resets them can cause excessive server resource consumption.",
  "affected": [
    {
      "package": {"name": "stdlib", "ecosystem": "Go"},
      "ranges": [{"type": "SEMVER", "events": [
        {"introduced": "0"}, {"fixed": "1.20.10"}, {"introduced": "1.21.0-0"}, {"fixed": "1.21.3"}
      ]}],
      "ecosystem_specific": {"imports": [{"path": "net/http", "symbols": ["Server.Serve"]}]}
    },
    {
      "package": {"name": "golang.org/x/net", "ecosystem": "Go"},
      "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.17.0"}]}],
      "ecosystem_specific": {"imports": [{"path": "golang.org/x/net/http2"}]}
    },
    {
      "package": {"name": "golang.org/x/net", "ecosystem": "Go"},
      "ranges": [{"type": "GIT", "repo": "https://go.googlesource.com/net", "events": [{"introduced": "0"}, {"fixed": "b225e7ca6dde1ef5a5ae5ce922861bda011cfabd"}]}]
    }
  ],
  "references": [{"type": "REPORT", "url": "https://go.dev/issue/63417"}],
  "database_specific": {"url": "https://pkg.go.dev/vuln/GO-2023-2102", "review_status": "REVIEWED"}
}"#;

const WITHDRAWN: &str = r#"{
  "id": "GHSA-xxxx-withdrawn",
  "withdrawn": "2024-01-01T00:00:00Z",
  "aliases": ["CVE-2024-0001"],
  "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]
}"#;

fn advisory(json: &str) -> Advisory {
    match parse_record(json.as_bytes()) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
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

fn all() -> Vec<Advisory> {
    [
        DSA, DLA, DEBIAN_CVE, ALPINE, UBUNTU, GHSA_PYPI, PYSEC, GHSA_NPM, GHSA_MAVEN, GO,
    ]
    .iter()
    .map(|j| advisory(j))
    .collect()
}

/// A store keyed as the server will key it: each advisory under each of
/// its keys, with only that key's entries.
fn store(advisories: &[Advisory]) -> HashMap<(String, String), Vec<Advisory>> {
    let mut map: HashMap<(String, String), Vec<Advisory>> = HashMap::new();
    for a in advisories {
        for (eco, name) in a.keys() {
            map.entry((eco.to_owned(), name.to_owned()))
                .or_default()
                .push(a.for_key(eco, name));
        }
    }
    map
}

fn scan(packages: &[Package]) -> Vec<Finding> {
    let map = store(&all());
    findings(packages, |eco, name| {
        map.get(&(eco.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    })
}

#[test]
fn records_read_into_the_compact_form() {
    let dsa = advisory(DSA);
    assert_eq!(dsa.id, "DSA-5532-1");
    assert_eq!(
        dsa.cve, "DSA-5532-1",
        "two upstream CVEs: the DSA is its own id"
    );
    assert_eq!(dsa.summary, "openssl - security update");
    assert_eq!(
        dsa.reference.as_deref(),
        Some("https://www.debian.org/security/2023/dsa-5532")
    );
    assert_eq!(dsa.severity, Severity::Unknown);
    assert_eq!(dsa.affected.len(), 1);
    let entry = &dsa.affected[0];
    assert_eq!(
        (entry.ecosystem.as_str(), entry.name.as_str()),
        ("Debian:12", "openssl")
    );
    assert_eq!(entry.ranges[0].kind, RangeKind::Ecosystem);
    assert_eq!(
        entry.ranges[0].events,
        [
            Event::Introduced("0".into()),
            Event::Fixed("3.0.11-1~deb12u2".into())
        ]
    );
    assert!(
        entry.versions.is_empty(),
        "listed versions the range covers are dropped"
    );

    let debian_cve = advisory(DEBIAN_CVE);
    assert_eq!(debian_cve.cve, "CVE-2023-5678");
    assert_eq!(
        debian_cve.summary,
        "Issue summary: Generating excessively long X9.42 DH keys or checking"
    );
    assert_eq!(debian_cve.severity, Severity::Low, "Debian urgency");

    let ghsa = advisory(GHSA_PYPI);
    assert_eq!(ghsa.cve, "CVE-2024-22195");
    assert_eq!(ghsa.severity, Severity::Medium, "GHSA MODERATE");
    assert_eq!(
        ghsa.reference.as_deref(),
        Some("https://github.com/pallets/jinja/security/advisories/GHSA-h5c8-rqwp-cp95")
    );
    let pysec = advisory(PYSEC);
    assert_eq!(pysec.affected[0].name, "jinja2", "PEP 503 name");
    assert_eq!(pysec.affected[0].versions, ["3.1.0", "3.1.1", "3.1.2"]);
    assert!(pysec.affected[0].ranges.is_empty());

    assert_eq!(
        advisory(GHSA_NPM).severity,
        Severity::High,
        "CVSS 7.5 wins over MODERATE"
    );
    assert_eq!(
        advisory(GHSA_MAVEN).severity,
        Severity::Critical,
        "CVSS v4 9.3"
    );
    assert_eq!(advisory(UBUNTU).severity, Severity::Low, "Ubuntu priority");
    assert_eq!(advisory(UBUNTU).cve, "CVE-2024-2511");

    let go = advisory(GO);
    assert_eq!(go.cve, "CVE-2023-39325");
    assert_eq!(go.affected.len(), 2, "the GIT-only entry is dropped");
    let keys: Vec<_> = go.keys().collect();
    assert_eq!(keys, [("Go", "stdlib"), ("Go", "golang.org/x/net")]);
    let x_net = go.for_key("Go", "golang.org/x/net");
    assert_eq!(x_net.affected.len(), 1);
    assert_eq!(x_net.affected[0].ranges[0].kind, RangeKind::Semver);

    // The compact form goes through serde unchanged.
    let json = serde_json::to_vec(&go).unwrap_or_default();
    let back: Advisory = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, go);
}

#[test]
fn withdrawn_and_broken_records_are_reported() {
    let err = parse_record(WITHDRAWN.as_bytes()).err();
    assert!(err.as_ref().is_some_and(|e| e.is_withdrawn()), "{err:?}");
    for bad in [
        &b"not json"[..],
        b"{}",
        b"[]",
        br#"{"id": 5}"#,
        br#"{"id":"X","affected":[{"ranges":7}]}"#,
    ] {
        let err = parse_record(bad).err();
        assert!(err.as_ref().is_some_and(|e| !e.is_withdrawn()), "{err:?}");
    }
    // A record of only GIT ranges affects nothing scanning can see.
    let git = r#"{"id":"OSV-2020-1","affected":[{"package":{"ecosystem":"OSS-Fuzz","name":"x"},
        "ranges":[{"type":"GIT","repo":"https://x","events":[{"introduced":"abc"}]}]}]}"#;
    assert_eq!(advisory(git).keys().count(), 0);
}

#[test]
fn distribution_packages_by_source_and_release() {
    let debian = advisory(DSA);
    let libssl = |version: &str| pkg("Debian:12", "libssl3", Some("openssl"), version);
    let hit = affects(&debian, &libssl("3.0.11-1~deb12u1"));
    assert_eq!(
        hit.and_then(|h| h.fixed_version).as_deref(),
        Some("3.0.11-1~deb12u2")
    );
    assert_eq!(
        affects(&debian, &libssl("3.0.11-1~deb12u2")),
        None,
        "fixed version installed"
    );
    assert_eq!(
        affects(&debian, &libssl("3.0.15-1~deb12u1")),
        None,
        "newer installed"
    );
    assert_eq!(
        affects(
            &debian,
            &pkg(
                "Debian:11",
                "libssl1.1",
                Some("openssl"),
                "1.1.1n-0+deb11u4"
            )
        ),
        None,
        "other release"
    );
    assert_eq!(
        affects(
            &debian,
            &pkg(
                "Ubuntu:22.04:LTS",
                "libssl3",
                Some("openssl"),
                "3.0.2-0ubuntu1.10"
            )
        ),
        None,
        "other ecosystem"
    );
    assert_eq!(
        affects(
            &debian,
            &pkg("Debian:12", "libssl3", None, "3.0.11-1~deb12u1")
        ),
        None,
        "advisories name the source package"
    );

    let alpine = advisory(ALPINE);
    let libcrypto = |eco: &str, version: &str| pkg(eco, "libcrypto3", Some("openssl"), version);
    let hit = affects(&alpine, &libcrypto("Alpine:v3.19", "3.1.4-r4"));
    assert_eq!(
        hit.and_then(|h| h.fixed_version).as_deref(),
        Some("3.1.4-r5")
    );
    assert_eq!(
        affects(&alpine, &libcrypto("Alpine:v3.19", "3.1.4-r5")),
        None
    );
    assert_eq!(
        affects(&alpine, &libcrypto("Alpine:v3.18", "3.1.4-r4")),
        None,
        "other release"
    );
}

#[test]
fn language_packages_by_their_ranges() {
    let npm = advisory(GHSA_NPM);
    let semver = |v: &str| {
        affects(&npm, &pkg("npm", "semver", None, v)).map(|h| (h.fixed_version, h.severity))
    };
    assert_eq!(
        semver("5.7.1"),
        Some((Some("5.7.2".into()), Severity::High))
    );
    assert_eq!(
        semver("6.3.0"),
        Some((Some("6.3.1".into()), Severity::High))
    );
    assert_eq!(
        semver("7.0.0"),
        Some((Some("7.5.2".into()), Severity::High))
    );
    for safe in ["5.7.2", "6.3.1", "7.5.2", "7.6.0"] {
        assert_eq!(semver(safe), None, "{safe}");
    }

    let maven = advisory(GHSA_MAVEN);
    let h2 = |v: &str| affects(&maven, &pkg("Maven", "com.h2database:h2", None, v));
    let hit = h2("2.1.214");
    assert_eq!(
        hit.as_ref().map(|h| h.fixed_version.clone()),
        Some(None),
        "last_affected: no fix"
    );
    assert_eq!(hit.map(|h| h.severity), Some(Severity::Critical));
    assert!(h2("1.4.200").is_some());
    assert_eq!(h2("2.2.220"), None);

    let go = advisory(GO);
    let module =
        |name: &str, v: &str| affects(&go, &pkg("Go", name, None, v)).map(|h| h.fixed_version);
    assert_eq!(
        module("golang.org/x/net", "v0.15.0"),
        Some(Some("0.17.0".into()))
    );
    assert_eq!(module("golang.org/x/net", "v0.17.0"), None);
    assert_eq!(
        module("golang.org/x/NET", "v0.15.0"),
        None,
        "module paths are case-sensitive"
    );
    assert_eq!(module("stdlib", "v1.21.1"), Some(Some("1.21.3".into())));
    assert_eq!(module("stdlib", "v1.20.9"), Some(Some("1.20.10".into())));
    assert_eq!(module("stdlib", "v1.20.10"), None, "between the two ranges");
    assert_eq!(
        affects(&go, &pkg("npm", "golang.org/x/net", None, "0.15.0")),
        None,
        "other ecosystem"
    );
}

#[test]
fn findings_of_an_image() {
    let packages = [
        pkg("Debian:12", "libssl3", Some("openssl"), "3.0.11-1~deb12u1"),
        pkg("Debian:12", "zlib1g", Some("zlib"), "1:1.2.13.dfsg-1"),
        pkg("PyPI", "Jinja2", None, "3.1.2"),
        pkg("PyPI", "requests", None, "2.31.0"),
        pkg("npm", "semver", None, "7.5.1"),
        pkg("npm", "semver", None, "7.5.4"),
        pkg("Maven", "com.h2database:h2", None, "2.1.214"),
        pkg("Go", "golang.org/x/net", None, "v0.15.0"),
        pkg("Alpine:v3.18", "libcrypto3", Some("openssl"), "3.1.4-r4"),
        pkg(
            "Ubuntu:22.04:LTS",
            "libssl3",
            Some("openssl"),
            "3.0.2-0ubuntu1.15",
        ),
    ];
    let found = scan(&packages);
    let summary: Vec<(&str, &str, &str, Severity, Option<&str>)> = found
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.advisory.as_str(),
                f.package.name.as_str(),
                f.severity,
                f.fixed_version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "CVE-2022-45868",
                "GHSA-22wj-vf5f-wrvj",
                "com.h2database:h2",
                Severity::Critical,
                None
            ),
            (
                "CVE-2022-25883",
                "GHSA-c2qf-rxjj-qqgw",
                "semver",
                Severity::High,
                Some("7.5.2")
            ),
            // GHSA (moderate) and PYSEC (versions only) of one CVE: one
            // finding, the worse severity's, with the fix only GHSA names.
            (
                "CVE-2024-22195",
                "GHSA-h5c8-rqwp-cp95",
                "Jinja2",
                Severity::Medium,
                Some("3.1.3")
            ),
            (
                "CVE-2023-5678",
                "DEBIAN-CVE-2023-5678",
                "libssl3",
                Severity::Low,
                Some("3.0.13-1~deb12u1")
            ),
            (
                "CVE-2024-2511",
                "UBUNTU-CVE-2024-2511",
                "libssl3",
                Severity::Low,
                Some("3.0.2-0ubuntu1.16")
            ),
            (
                "CVE-2023-39325",
                "GO-2023-2102",
                "golang.org/x/net",
                Severity::Unknown,
                Some("0.17.0")
            ),
            (
                "DSA-5532-1",
                "DSA-5532-1",
                "libssl3",
                Severity::Unknown,
                Some("3.0.11-1~deb12u2")
            ),
        ]
    );
    let jinja = found.iter().find(|f| f.package.name == "Jinja2");
    assert_eq!(
        jinja.map(|f| f.title.as_str()),
        Some(
            "Jinja vulnerable to HTML attribute injection when passing user input as keys to xmlattr filter"
        )
    );
    let dsa = found.iter().find(|f| f.advisory == "DSA-5532-1");
    assert_eq!(
        dsa.map(|f| f.package.version.as_str()),
        Some("3.0.11-1~deb12u1")
    );
}

#[test]
fn details_are_capped() {
    let long = "x".repeat(20_000);
    let json = format!(r#"{{"id":"GHSA-long","summary":"s","details":"{long}"}}"#);
    let a = advisory(&json);
    assert!(a.details.len() <= berth_vuln::advisory::DETAILS_LIMIT);
    assert!(a.details.ends_with('…'));
}

//! Whatever the strings, comparing versions never panics, in any
//! ecosystem, and a version that parses compares equal to itself and
//! antisymmetrically to another.

use std::cmp::Ordering;

use berth_vuln::version::{Scheme, compare};
use proptest::prelude::*;

const ECOSYSTEMS: &[&str] = &[
    "Debian:12",
    "Ubuntu:22.04:LTS",
    "Alpine:v3.19",
    "Rocky Linux:9",
    "PyPI",
    "npm",
    "Go",
    "crates.io",
    "Maven",
    "RubyGems",
    "NuGet",
    "Packagist",
];

/// Strings that look like versions often enough to reach deep into the
/// parsers: digits, letters, every separator the schemes know.
fn versionish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-zA-Z.~^+:_-]{0,24}",
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}([-_~^.+][a-z]{0,5}[0-9]{0,3}){0,3}(-r[0-9])?",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_and_orders_consistently(a in versionish(), b in versionish()) {
        for eco in ECOSYSTEMS {
            let ab = compare(eco, &a, &b);
            let ba = compare(eco, &b, &a);
            prop_assert_eq!(ab, ba.map(Ordering::reverse), "{} {:?} {:?}", eco, a, b);
            if let Some(scheme) = Scheme::for_ecosystem(eco) {
                if scheme.is_valid(&a) {
                    prop_assert_eq!(compare(eco, &a, &a), Some(Ordering::Equal));
                }
                if ab.is_some() {
                    prop_assert!(scheme.is_valid(&a) && scheme.is_valid(&b));
                }
            }
        }
    }

    #[test]
    fn cvss_like_garbage_is_just_unknown(s in "(CVSS:[0-9.]{0,4}/)?([A-Z]{1,3}:[A-Z]{0,2}/?){0,12}") {
        // The severity of a record never panics on a broken vector.
        let json = format!(
            r#"{{"id":"X-1","severity":[{{"type":"CVSS_V3","score":"{s}"}},{{"type":"CVSS_V4","score":"{s}"}},{{"type":"CVSS_V2","score":"{s}"}}],"affected":[]}}"#
        );
        let _ = berth_vuln::advisory::parse_record(json.as_bytes());
    }
}

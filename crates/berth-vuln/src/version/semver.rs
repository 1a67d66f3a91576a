//! SemVer 2.0 precedence by the `semver` crate, read leniently as the
//! ecosystems that use it write versions: Go's leading `v`, npm's `v` or
//! `=`, and `1.2` for `1.2.0` (some OSV ranges write that).

use std::cmp::Ordering;

use semver::Version;

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.cmp_precedence(&parse(b)?))
}

fn parse(s: &str) -> Option<Version> {
    let s = s.trim();
    let s = s
        .strip_prefix('v')
        .or_else(|| s.strip_prefix('V'))
        .or_else(|| s.strip_prefix('='))
        .unwrap_or(s);
    if let Ok(v) = Version::parse(s) {
        return Some(v);
    }
    let (core, rest) = s.split_at(s.find(['-', '+']).unwrap_or(s.len()));
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| super::all_digits(p)) {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(3 - parts.len()));
    Version::parse(&padded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_spec_precedence() {
        // SemVer 2.0 section 11's example, ascending.
        let ascending = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        super::super::assert_ascending(compare, &ascending);
    }

    #[test]
    fn lenient_spellings() {
        let table = [
            ("1.0.0+build.1", "1.0.0", Ordering::Equal),
            ("v1.2.3", "1.2.3", Ordering::Equal),
            ("=1.2.3", "v1.2.3", Ordering::Equal),
            ("1.2", "1.2.0", Ordering::Equal),
            ("1", "1.0.0", Ordering::Equal),
            ("1.2-rc.1", "1.2.0", Ordering::Less),
            // Go pseudo-versions and +incompatible.
            (
                "v0.0.0-20210101000000-abcdefabcdef",
                "v0.0.1",
                Ordering::Less,
            ),
            (
                "v0.0.0-20210101000000-abcdefabcdef",
                "v0.0.0-20220101000000-abcdefabcdef",
                Ordering::Less,
            ),
            ("v2.0.0+incompatible", "v2.0.0", Ordering::Equal),
            ("v1.10.0", "v1.9.9", Ordering::Greater),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
        }
        for bad in ["1.2.3.4", "01.2.3", "x", "1.2.x", "1..2", "v", "1.0.0-"] {
            assert_eq!(compare(bad, "1.0.0"), None, "{bad}");
        }
    }
}

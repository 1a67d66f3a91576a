//! PEP 440's version order (PyPI), by the `pep440_rs` crate.

use std::cmp::Ordering;
use std::str::FromStr;

use pep440_rs::Version;

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let a = Version::from_str(a.trim()).ok()?;
    let b = Version::from_str(b.trim()).ok()?;
    Some(a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep_440_summary_order() {
        // PEP 440's own example of every kind of release, ascending.
        let ascending = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "1!0.1",
        ];
        super::super::assert_ascending(compare, &ascending);
    }

    #[test]
    fn normalized_spellings_are_equal() {
        let equal = [
            ("1.0", "1.0.0"),
            ("1.0a1", "1.0alpha1"),
            ("1.0rc1", "1.0c1"),
            ("1.0-1", "1.0.post1"),
            ("v1.0", "1.0"),
            ("1.0.DEV1", "1.0.dev1"),
            ("0!1.0", "1.0"),
        ];
        for (a, b) in equal {
            assert_eq!(compare(a, b), Some(Ordering::Equal), "{a} = {b}");
        }
        for bad in ["1.0-beta-x", "abc", "1..0", "1.0+"] {
            assert_eq!(compare(bad, "1.0"), None, "{bad}");
        }
    }
}

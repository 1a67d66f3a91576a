//! dpkg's version order (`[epoch:]upstream[-revision]`, Debian Policy
//! 5.6.12), by the `debversion` crate.

use std::cmp::Ordering;
use std::str::FromStr;

use debversion::Version;

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let a = Version::from_str(a.trim()).ok()?;
    let b = Version::from_str(b.trim()).ok()?;
    Some(a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_policy_order() {
        // Policy 5.6.12: `~` sorts before anything, even the end of a part;
        // letters before non-letters; digit runs by value; epochs first.
        let ascending = [
            "1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a", "1.0+", "1.0.1", "1.0.10", "1.1~rc1", "1.1",
            "1:0.1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Some(Ordering::Less), "{pair:?}");
            assert_eq!(
                compare(pair[1], pair[0]),
                Some(Ordering::Greater),
                "{pair:?}"
            );
        }
        let table = [
            ("3.0.11-1~deb12u2", "3.0.13-1~deb12u1", Ordering::Less),
            ("3.0.11-1~deb12u2", "3.0.11-1", Ordering::Less),
            ("3.0.11-1", "3.0.11-1+deb12u1", Ordering::Less),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Ordering::Less),
            ("1.2.3-1", "1.2.3-1", Ordering::Equal),
            ("0:1.2.3-1", "1.2.3-1", Ordering::Equal),
            ("1.0-0", "1.0", Ordering::Equal),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u6", Ordering::Less),
            ("2:8.2.3995-1", "9.0.0-1", Ordering::Greater),
            ("1.0-1ubuntu1", "1.0-1", Ordering::Greater),
            ("1.0-1ubuntu0.1", "1.0-1ubuntu1", Ordering::Less),
            ("1.0-1build1", "1.0-1ubuntu1", Ordering::Less),
            ("10", "9", Ordering::Greater),
            ("1.01", "1.1", Ordering::Equal),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare(b, a), Some(want.reverse()), "{b} vs {a}");
        }
    }

    #[test]
    fn not_versions() {
        for bad in ["1.0 beta", "1_0", "ü", "1.0/2"] {
            assert_eq!(compare(bad, "1.0"), None, "{bad}");
        }
    }
}

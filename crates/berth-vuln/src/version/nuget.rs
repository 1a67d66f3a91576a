//! NuGet's version order (`NuGetVersion`): SemVer 2.0 with up to four
//! numbers, missing ones 0, and pre-release labels compared without case.
//!
//! Written here: the `semver` crate refuses a fourth number, and no
//! maintained crate implements NuGet's order.

use std::cmp::Ordering;

use super::{all_digits, cmp_digits};

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let a = NuGet::parse(a.trim())?;
    let b = NuGet::parse(b.trim())?;
    Some(a.cmp(&b))
}

struct NuGet<'a> {
    numbers: [&'a str; 4],
    pre: Vec<&'a str>,
}

impl<'a> NuGet<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        // Build metadata does not order.
        let s = s.split_once('+').map_or(s, |(v, _)| v);
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let mut numbers = ["0"; 4];
        let mut count = 0;
        for (i, n) in core.split('.').enumerate() {
            if i >= 4 || !all_digits(n) {
                return None;
            }
            numbers[i] = n;
            count += 1;
        }
        if count < 1 {
            return None;
        }
        let pre: Vec<&str> = match pre {
            Some(p) => p.split('.').collect(),
            None => Vec::new(),
        };
        if !pre
            .iter()
            .all(|id| !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        {
            return None;
        }
        Some(Self { numbers, pre })
    }

    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.numbers.iter().zip(&other.numbers) {
            let ord = cmp_digits(a, b);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for (a, b) in self.pre.iter().zip(&other.pre) {
            let ord = match (all_digits(a), all_digits(b)) {
                (true, true) => cmp_digits(a, b),
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        self.pre.len().cmp(&other.pre.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nuget_order() {
        let table = [
            ("1.0", "1.0.0.0", Ordering::Equal),
            ("1.0.0.1", "1.0.0", Ordering::Greater),
            ("1.0.0-beta", "1.0.0", Ordering::Less),
            ("1.0.0-BETA", "1.0.0-beta", Ordering::Equal),
            ("1.0.0-alpha.2", "1.0.0-alpha.10", Ordering::Less),
            ("1.0.0-alpha", "1.0.0-alpha.1", Ordering::Less),
            ("1.0.0-1", "1.0.0-alpha", Ordering::Less),
            ("1.0.0+abc", "1.0.0", Ordering::Equal),
            ("13.0.1", "13.0.3", Ordering::Less),
            ("4.7.2", "4.10.0", Ordering::Less),
            (
                "6.0.0-preview.7.21377.19",
                "6.0.0-rc.1.21451.13",
                Ordering::Less,
            ),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare(b, a), Some(want.reverse()), "{b} vs {a}");
        }
        for bad in ["1.0.0.0.0", "v1.0", "1.0-", "1..0", "x", "1.0-a..b"] {
            assert_eq!(compare(bad, "1.0"), None, "{bad}");
        }
    }
}

//! RubyGems' version order (`Gem::Version`).
//!
//! Written here: no maintained crate implements it, and the rules are
//! short. A version is digits, then `.`-separated runs of letters and
//! digits, optionally a `-` pre-release (read as `.pre.`); it splits into
//! segments, each a run of digits (a number) or of letters (a string);
//! trailing zeros of the release part and of the pre-release part drop;
//! segments compare pairwise, a missing one counting as 0, a string older
//! than a number, strings byte by byte.

use std::cmp::Ordering;

use super::cmp_digits;

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let a = canonical_segments(a.trim())?;
    let b = canonical_segments(b.trim())?;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).unwrap_or(&Segment::Num("0"));
        let y = b.get(i).unwrap_or(&Segment::Num("0"));
        let ord = match (x, y) {
            (Segment::Num(x), Segment::Num(y)) => cmp_digits(x, y),
            (Segment::Str(x), Segment::Str(y)) => x.cmp(y),
            (Segment::Str(_), Segment::Num(_)) => Ordering::Less,
            (Segment::Num(_), Segment::Str(_)) => Ordering::Greater,
        };
        if ord != Ordering::Equal {
            return Some(ord);
        }
    }
    Some(Ordering::Equal)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Segment<'a> {
    Num(&'a str),
    Str(&'a str),
}

impl Segment<'_> {
    fn is_zero(&self) -> bool {
        matches!(self, Segment::Num(n) if n.bytes().all(|c| c == b'0'))
    }
}

/// Whether `s` is a non-empty run of ASCII letters and digits (and `-`
/// where allowed).
fn is_alnum_run(s: &str, dash: bool) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || (dash && c == b'-'))
}

fn canonical_segments(v: &str) -> Option<Vec<Segment<'_>>> {
    let (release, pre) = match v.split_once('-') {
        Some((r, p)) => (r, Some(p)),
        None => (v, None),
    };
    let mut parts = release.split('.');
    if !parts.next().is_some_and(super::all_digits) {
        return None;
    }
    if !parts.all(|p| is_alnum_run(p, false)) {
        return None;
    }
    if pre.is_some_and(|pre| !pre.split('.').all(|p| is_alnum_run(p, true))) {
        return None;
    }
    let mut segments = Vec::new();
    scan(release, &mut segments);
    if let Some(pre) = pre {
        // `-` reads as `.pre.`.
        segments.push(Segment::Str("pre"));
        scan(pre, &mut segments);
    }
    // Drop the trailing zeros of the release part and of the rest.
    let split = segments
        .iter()
        .position(|s| matches!(s, Segment::Str(_)))
        .unwrap_or(segments.len());
    let mut tail = segments.split_off(split);
    while segments.last().is_some_and(Segment::is_zero) {
        segments.pop();
    }
    while tail.last().is_some_and(Segment::is_zero) {
        tail.pop();
    }
    segments.append(&mut tail);
    Some(segments)
}

/// The runs of digits and of letters of `s`, in order.
fn scan<'a>(s: &'a str, out: &mut Vec<Segment<'a>>) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i].is_ascii_digit();
        let alpha = bytes[i].is_ascii_alphabetic();
        if !digit && !alpha {
            i += 1;
            continue;
        }
        let len = bytes[i..]
            .iter()
            .take_while(|c| {
                if digit {
                    c.is_ascii_digit()
                } else {
                    c.is_ascii_alphabetic()
                }
            })
            .count();
        let run = &s[i..i + len];
        out.push(if digit {
            Segment::Num(run)
        } else {
            Segment::Str(run)
        });
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gem_version_spaceship_and_semver() {
        // RubyGems' test_gem_version.rb: test_spaceship, test_semver.
        let table = [
            ("1.0", "1.0.0", Ordering::Equal),
            ("1.0", "1.0.a", Ordering::Greater),
            ("1.8.2", "0.0.0", Ordering::Greater),
            ("1.8.2", "1.8.2.a", Ordering::Greater),
            ("1.8.2.b", "1.8.2.a", Ordering::Greater),
            ("1.8.2.a", "1.8.2", Ordering::Less),
            ("1.8.2.a10", "1.8.2.a9", Ordering::Greater),
            ("1.2.b1", "1.2.b.1", Ordering::Equal),
            ("1.0.0-alpha", "1.0.0-alpha.1", Ordering::Less),
            ("1.0.0-alpha.1", "1.0.0-beta.2", Ordering::Less),
            ("1.0.0-beta.2", "1.0.0-beta.11", Ordering::Less),
            ("1.0.0-beta.11", "1.0.0-rc.1", Ordering::Less),
            ("1.0.0-rc1", "1.0.0", Ordering::Less),
            ("1.0.0-1", "1", Ordering::Less),
            ("1.0", " 1.0 ", Ordering::Equal),
            ("1.2", "1.3", Ordering::Less),
            // Real ones from advisories.
            ("7.0.8.1", "7.0.8", Ordering::Greater),
            ("6.1.7.7", "6.1.7.10", Ordering::Less),
            ("1.16.0.rc1", "1.16.0", Ordering::Less),
            ("2.5.0.beta2", "2.5.0.beta10", Ordering::Less),
            ("3.0.0.pre", "3.0.0.rc1", Ordering::Less),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare(b, a), Some(want.reverse()), "{b} vs {a}");
        }
        for bad in [
            "junk",
            "1.0\n2.0",
            "a.1",
            "1..2",
            "1.0-",
            "1.0-a..b",
            "1.0_1",
            "1.13.10-x86_64-linux",
        ] {
            assert_eq!(compare(bad, "1.0"), None, "{bad:?}");
        }
    }
}

//! rpm's version order: `[epoch:]version[-release]`, each of version and
//! release compared by `rpmvercmp`.
//!
//! Written here rather than taken from `rpm-version`: that crate names
//! no source repository and has few users, while the algorithm is short
//! and public, and rpm's own test cases (`tests/rpmvercmp.at`) pin it
//! down: alternating runs of digits and of ASCII letters, anything else
//! a separator; digit runs by value and newer than letter runs; letter
//! runs byte by byte; `~` sorts before everything, even the end (a
//! pre-release), `^` after the end but before any further segment (a
//! post-release snapshot).

use std::cmp::Ordering;

use super::cmp_digits;

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let a = Evr::parse(a.trim())?;
    let b = Evr::parse(b.trim())?;
    Some(
        cmp_digits(a.epoch, b.epoch)
            .then_with(|| rpmvercmp(a.version, b.version))
            .then_with(|| match (a.release, b.release) {
                // A version without a release matches every release of it,
                // as rpm's own comparison of requirements does.
                (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
                _ => Ordering::Equal,
            }),
    )
}

/// `epoch:version-release`, split.
struct Evr<'a> {
    epoch: &'a str,
    version: &'a str,
    release: Option<&'a str>,
}

impl<'a> Evr<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) if super::all_digits(e) => (e, rest),
            Some(_) => return None,
            None => ("0", s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        if version.is_empty() || release == Some("") {
            return None;
        }
        Some(Self {
            epoch,
            version,
            release,
        })
    }
}

/// rpm's comparison of two version (or release) strings.
fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        while a.first().is_some_and(separator) {
            a = &a[1..];
        }
        while b.first().is_some_and(separator) {
            b = &b[1..];
        }
        // A tilde sorts before everything, the end included.
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            _ => {}
        }
        // A caret sorts after the end, before anything else.
        match (a.first(), b.first()) {
            (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), Some(_)) => return Ordering::Less,
            (Some(_), Some(b'^')) => return Ordering::Greater,
            _ => {}
        }
        let (Some(first), Some(_)) = (a.first(), b.first()) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let la = a.iter().take_while(|c| class(c)).count();
        let lb = b.iter().take_while(|c| class(c)).count();
        if lb == 0 {
            // Segments of different kinds: digits are newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sa, sb) = (&a[..la], &b[..lb]);
        let ord = if numeric {
            // Digit runs are ASCII, so always valid UTF-8.
            cmp_digits(
                std::str::from_utf8(sa).unwrap_or_default(),
                std::str::from_utf8(sb).unwrap_or_default(),
            )
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[la..];
        b = &b[lb..];
    }
    // Whichever still has segments left is newer.
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(o: Ordering) -> i8 {
        o as i8
    }

    #[test]
    fn rpmvercmp_test_cases() {
        // rpm's tests/rpmvercmp.at, with its tilde and caret cases.
        let table: &[(&str, &str, i8)] = &[
            ("1.0", "1.0", 0),
            ("1.0", "2.0", -1),
            ("2.0", "1.0", 1),
            ("2.0.1", "2.0.1", 0),
            ("2.0", "2.0.1", -1),
            ("2.0.1", "2.0", 1),
            ("2.0.1a", "2.0.1a", 0),
            ("2.0.1a", "2.0.1", 1),
            ("2.0.1", "2.0.1a", -1),
            ("5.5p1", "5.5p1", 0),
            ("5.5p1", "5.5p2", -1),
            ("5.5p2", "5.5p1", 1),
            ("5.5p10", "5.5p10", 0),
            ("5.5p1", "5.5p10", -1),
            ("5.5p10", "5.5p1", 1),
            ("10xyz", "10.1xyz", -1),
            ("10.1xyz", "10xyz", 1),
            ("xyz10", "xyz10", 0),
            ("xyz10", "xyz10.1", -1),
            ("xyz10.1", "xyz10", 1),
            ("xyz.4", "xyz.4", 0),
            ("xyz.4", "8", -1),
            ("8", "xyz.4", 1),
            ("xyz.4", "2", -1),
            ("2", "xyz.4", 1),
            ("5.5p2", "5.6p1", -1),
            ("5.6p1", "5.5p2", 1),
            ("5.6p1", "6.5p1", -1),
            ("6.5p1", "5.6p1", 1),
            ("6.0.rc1", "6.0", 1),
            ("6.0", "6.0.rc1", -1),
            ("10b2", "10a1", 1),
            ("10a2", "10b2", -1),
            ("1.0aa", "1.0aa", 0),
            ("1.0a", "1.0aa", -1),
            ("1.0aa", "1.0a", 1),
            ("10.0001", "10.0001", 0),
            ("10.0001", "10.1", 0),
            ("10.1", "10.0001", 0),
            ("10.0001", "10.0039", -1),
            ("10.0039", "10.0001", 1),
            ("4.999.9", "5.0", -1),
            ("5.0", "4.999.9", 1),
            ("20101121", "20101121", 0),
            ("20101121", "20101122", -1),
            ("20101122", "20101121", 1),
            ("2_0", "2_0", 0),
            ("2.0", "2_0", 0),
            ("2_0", "2.0", 0),
            ("a", "a", 0),
            ("a+", "a+", 0),
            ("a+", "a_", 0),
            ("a_", "a+", 0),
            ("+a", "+a", 0),
            ("+a", "_a", 0),
            ("_a", "+a", 0),
            ("+_", "+_", 0),
            ("_+", "+_", 0),
            ("_+", "_+", 0),
            ("+", "_", 0),
            ("_", "+", 0),
            ("1.0~rc1", "1.0~rc1", 0),
            ("1.0~rc1", "1.0", -1),
            ("1.0", "1.0~rc1", 1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~rc2", "1.0~rc1", 1),
            ("1.0~rc1~git123", "1.0~rc1~git123", 0),
            ("1.0~rc1~git123", "1.0~rc1", -1),
            ("1.0~rc1", "1.0~rc1~git123", 1),
            ("1.0^", "1.0^", 0),
            ("1.0^", "1.0", 1),
            ("1.0", "1.0^", -1),
            ("1.0^git1", "1.0^git1", 0),
            ("1.0^git1", "1.0", 1),
            ("1.0", "1.0^git1", -1),
            ("1.0^git1", "1.0^git2", -1),
            ("1.0^git2", "1.0^git1", 1),
            ("1.0^git1", "1.01", -1),
            ("1.01", "1.0^git1", 1),
            ("1.0^20160101", "1.0^20160101", 0),
            ("1.0^20160101", "1.0.1", -1),
            ("1.0.1", "1.0^20160101", 1),
            ("1.0^20160101^git1", "1.0^20160101^git1", 0),
            ("1.0^20160102", "1.0^20160101^git1", 1),
            ("1.0^20160101^git1", "1.0^20160102", -1),
            ("1.0~rc1^git1", "1.0~rc1^git1", 0),
            ("1.0~rc1^git1", "1.0~rc1", 1),
            ("1.0~rc1", "1.0~rc1^git1", -1),
            ("1.0^git1~pre", "1.0^git1~pre", 0),
            ("1.0^git1", "1.0^git1~pre", 1),
            ("1.0^git1~pre", "1.0^git1", -1),
        ];
        for &(a, b, want) in table {
            assert_eq!(sign(rpmvercmp(a, b)), want, "rpmvercmp({a}, {b})");
        }
    }

    #[test]
    fn epoch_version_release() {
        // Cases of rpm's python tests of evrCompare, and distribution ones.
        let table: &[(&str, &str, i8)] = &[
            ("1:32", "2:231", -1),
            ("3:1.1", "2:5", 1),
            ("2:1.1", "2:0.1", 1),
            ("4:123", "4:123", 0),
            ("5:1.3", "20:9.3", -1),
            ("1:3.2-6", "2:9.4-99", -1),
            ("3:3-1", "2:9.3", 1),
            ("4:429-999999", "4:0.1-2", 1),
            ("3.0.7-16.el9_2", "3.0.7-18.el9_2", -1),
            ("1:3.0.7-16.el9_2", "3.0.7-27.el9", 1),
            ("0:3.0.7-16.el9_2", "3.0.7-16.el9_2", 0),
            ("2.34-60.el9", "2.34-100.el9", -1),
            ("8.0.1763-19.el8_6.4", "8.0.1763-19.el8_6.10", -1),
            ("1.2.3", "1.2.3-4.el9", 0),
            ("7.61.1-34.el8", "7.61.1-34.el8_10.2", -1),
        ];
        for &(a, b, want) in table {
            assert_eq!(compare(a, b).map(sign), Some(want), "{a} vs {b}");
        }
        for bad in ["x:1.0", "1.0-", ":1.0", "-1", "1:"] {
            assert_eq!(compare(bad, "1.0"), None, "{bad}");
        }
    }
}

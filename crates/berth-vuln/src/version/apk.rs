//! apk's version order (Alpine, Wolfi): Gentoo-style versions,
//! `N(.N)*[a-z](_suffix[N])*[~hash][-rN]`.
//!
//! Written here: no crate implements it (the `apk` crate is about Android
//! packages) and apk-tools is C under the GPL, so this follows the rules
//! as apk documents and tests them (`test/version.data`):
//! - the first number by value; a later one by value too, unless either
//!   has a leading zero, when both compare as strings with trailing zeros
//!   dropped (so `1.02 < 1.1`); more numbers is newer;
//! - then the letter (none is older);
//! - then the suffixes one by one, ranked `_alpha < _beta < _pre < _rc <
//!   (none) < _cvs < _svn < _git < _hg < _p`, then their numbers;
//! - the `~hash` of a commit does not order;
//! - then the revision `-rN` (none is `-r0`).

use std::cmp::Ordering;

use super::cmp_digits;

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(Apk::parse(a.trim())?.cmp(&Apk::parse(b.trim())?))
}

/// The rank of a suffix: pre-releases below zero, post-releases above.
fn suffix_rank(name: &str) -> Option<i8> {
    Some(match name {
        "alpha" => -4,
        "beta" => -3,
        "pre" => -2,
        "rc" => -1,
        "cvs" => 1,
        "svn" => 2,
        "git" => 3,
        "hg" => 4,
        "p" => 5,
        _ => return None,
    })
}

struct Apk<'a> {
    numbers: Vec<&'a str>,
    letter: Option<u8>,
    /// Each suffix's rank and number (empty for none).
    suffixes: Vec<(i8, &'a str)>,
    revision: &'a str,
}

impl<'a> Apk<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let (rest, revision) = match s.rsplit_once("-r") {
            Some((rest, r)) if super::all_digits(r) => (rest, r),
            _ => (s, ""),
        };
        let rest = match rest.split_once('~') {
            Some((rest, hash))
                if !hash.is_empty() && hash.bytes().all(|c| c.is_ascii_hexdigit()) =>
            {
                rest
            }
            Some(_) => return None,
            None => rest,
        };
        let mut parts = rest.split('_');
        let head = parts.next()?;
        let mut suffixes = Vec::new();
        for part in parts {
            let digits = part
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(part.len());
            let (name, number) = part.split_at(digits);
            if !number.is_empty() && !super::all_digits(number) {
                return None;
            }
            suffixes.push((suffix_rank(name)?, number));
        }
        let (head, letter) = match head.as_bytes().last() {
            Some(c) if c.is_ascii_lowercase() => (&head[..head.len() - 1], Some(*c)),
            _ => (head, None),
        };
        let numbers: Vec<&str> = head.split('.').collect();
        if !numbers.iter().all(|n| super::all_digits(n)) {
            return None;
        }
        Some(Self {
            numbers,
            letter,
            suffixes,
            revision,
        })
    }

    fn cmp(&self, other: &Self) -> Ordering {
        for (i, (a, b)) in self.numbers.iter().zip(&other.numbers).enumerate() {
            let ord = if i > 0 && (a.starts_with('0') || b.starts_with('0')) {
                a.trim_end_matches('0').cmp(b.trim_end_matches('0'))
            } else {
                cmp_digits(a, b)
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        let ord = self
            .numbers
            .len()
            .cmp(&other.numbers.len())
            .then_with(|| self.letter.cmp(&other.letter));
        if ord != Ordering::Equal {
            return ord;
        }
        for i in 0..self.suffixes.len().max(other.suffixes.len()) {
            let ord = match (self.suffixes.get(i), other.suffixes.get(i)) {
                (Some((ra, na)), Some((rb, nb))) => ra.cmp(rb).then_with(|| cmp_digits(na, nb)),
                (Some((rank, _)), None) => rank.cmp(&0),
                (None, Some((rank, _))) => 0.cmp(rank),
                (None, None) => Ordering::Equal,
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        cmp_digits(self.revision, other.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs of apk-tools' `test/version.data` (its valid versions).
    const VERSION_DATA: &str = "\
2.34 > 0.1.0_alpha
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha < 0.1.3_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
2.2.39-r1 > 1.0.4-r3
1.0.4-r3 < 1.0.4-r4
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.2 < 1.3_alpha
1.3_alpha < 1.3_alpha2
0.7.0 < 0.8_beta1
0.8_beta1 < 0.8_beta2
3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
0.12 < 0.13_beta1
1.2.11 < 1.2.12.1
1.2.12.1 < 1.2.13
0.2.0-r1 = 0.2.0-r1
0.2.0-r1 < 3.1_p16
3.1_p16 < 3.1_p17
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
2.59 < 20050718-r1
3.9.8-r5 > 2.01.01_alpha10
2.01.01_alpha10 > 0.94
1.0 > 0.99.3.20040818
1.39 > 1.00_beta2
2.8.0.6-r1 > 0.5.2.7
0.5.2.7 < 4.2.52_p2-r1
4.2.52_p2-r1 < 4.2.52_p4-r2
1.02.07 < 1.02.10-r1
2.18.3-r10 > 1.05-r18
1.05-r18 < 1.05-r19
20060720 > 3.0.20060720
2.5.1-r8 < 2.5.1a-r1
1.3.5-r10 > 1.3.5-r8
20040401 > 2.0.0_rc3-r1
3.0.0-r2 < 021109-r3
0.9.16-r1 < 3.9_pre20060124
1.1.7 < 6b-r7
0.10.0 < 0.10.1_rc1
1.1a < 1.3a
1.0-r1 > 0.15.1b
0.15.1b-r2 > 0.15.1b
22.7 > 2.1_pre20
2.1_pre20 < 2.1_pre26
2.10.1 > 02.08.01b
02.08.01b < 4.77
3.81 > 1.6d
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
1.2.12.04 < 1.2.12.05
1.07-r1 < 1.07.5
1.07.5 > 1.07
1.07 < 1.19
0.1_pre20060810 < 0.1_pre20060817
3.3.17 > 0.59s-r11
0.59s-r11 < 0.65
1.60-r12 < 110-r8
4.01 < 4.20
4.20 > 0.20070118
0.20070118 < 0.20070207_rc1
0.20070207_rc1 < 1.0
2.3.30-r2 < 3.7_p1
4.3_p2-r1 < 4.3_p2-r5
4.4_p1-r6 < 4.5_p1-r1
4.5_p1-r1 > 4.5_p1
0.9.8c-r1 < 0.9.8d
2.2.3-r2 < 013
013 < 014-r1
0.1.23 < 5b-r9
3.2.7 > 0.3.1_rc8
1.7 < 1.7b
1.7b < 1.8.4-r3
1.8.5 < 1.8.5_p2
1.4.9-r2 < 2.9.11_pre20051101-r2
2.9.11_pre20051101-r2 < 2.9.11_pre20051101-r3
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
2.9.11_pre20051101 < 2.9.11_pre20061021-r1
1.6.8_p12-r1 > 1.6.8_p9-r2
0.40-r1 < 2.25b-r5
1.4_p12-r2 < 1.4_p12-r5
0.9.28-r2 < 0.9.28.1
0.9.28.1 < 087-r1
104-r11 > 104-r9
5.52-r1 > 1.2.5_rc2
20040406-r1 > 2.12r-r4
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
1.1.1-r3 > 0.3.4_pre20061029
22.7-r1 < 22.7.3-r1
22.7.3-r1 > 22.7
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
";

    #[test]
    fn apk_tools_version_data() {
        let mut count = 0;
        for line in VERSION_DATA.lines() {
            let mut words = line.split_whitespace();
            let (Some(a), Some(op), Some(b)) = (words.next(), words.next(), words.next()) else {
                panic!("bad line {line}");
            };
            let want = match op {
                "<" => Ordering::Less,
                ">" => Ordering::Greater,
                _ => Ordering::Equal,
            };
            assert_eq!(compare(a, b), Some(want), "{line}");
            assert_eq!(compare(b, a), Some(want.reverse()), "{line} reversed");
            count += 1;
        }
        assert!(count > 90);
    }

    #[test]
    fn alpine_package_versions() {
        let table = [
            ("3.1.4-r5", "3.1.4-r6", Ordering::Less),
            ("3.1.4-r5", "3.1.4_p1-r0", Ordering::Less),
            ("1.36.1-r15", "1.36.1-r2", Ordering::Greater),
            ("8.5.0-r0", "8.5.0_rc1-r0", Ordering::Greater),
            ("2.0_git20240101-r0", "2.0-r0", Ordering::Greater),
            ("1.2.3~abc123-r0", "1.2.3-r0", Ordering::Equal),
            ("1.0", "1.0-r0", Ordering::Equal),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
        }
        for bad in [
            "1.0bc", "23_foo", "v1.0", "1.0-1", "1..2", "1.0_", "1.0~xyz", "A", "1.0B",
        ] {
            assert_eq!(compare(bad, "1.0"), None, "{bad}");
        }
    }
}

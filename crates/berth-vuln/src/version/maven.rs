//! Maven's version order (`ComparableVersion`).
//!
//! Written here: no maintained crate implements it. The rules, from
//! Maven's documentation and the `ComparableVersionTest` of Maven 3
//! (the one OSV's own Maven order follows): a version is a
//! list of items split at `.` and `-` and where digits meet letters; a `-`
//! (or a switch between letters and digits) opens a sub-list; numbers
//! compare by value; words are qualifiers, `alpha < beta < milestone < rc
//! < snapshot < "" (also ga, final, release) < sp`, then any other word
//! alphabetically (`a`, `b`, `m` directly before a digit mean alpha, beta,
//! milestone; `cr` means rc); trailing zeros and empty qualifiers drop;
//! a number is newer than a word or a sub-list, a sub-list newer than a
//! word. Case does not matter.

use std::cmp::Ordering;

use super::cmp_digits;

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(cmp_lists(&parse(a.trim()), &parse(b.trim())))
}

#[derive(Debug)]
enum Item {
    /// A number, without leading zeros (empty for zero).
    Int(String),
    /// A qualifier, its aliases resolved.
    Str(String),
    List(Vec<Item>),
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Self::Int(n) | Self::Str(n) => n.is_empty(),
            Self::List(l) => l.is_empty(),
        }
    }
}

fn int(digits: &str) -> Item {
    Item::Int(digits.trim_start_matches('0').to_owned())
}

fn word(s: &str, followed_by_digit: bool) -> Item {
    let s = match s {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Str(s.to_owned())
}

/// A qualifier's rank, as a string that sorts: known ones by position,
/// others after them alphabetically.
fn qualifier_rank(q: &str) -> String {
    const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{q}", QUALIFIERS.len()),
    }
}

/// The rank of the release itself (the empty qualifier).
const RELEASE_RANK: &str = "5";

fn parse(version: &str) -> Vec<Item> {
    let version = version.to_ascii_lowercase();
    // Each `-` or letter/digit switch opens a list inside the current one,
    // always as its last item: so the lists form a chain, kept as levels.
    let mut levels: Vec<Vec<Item>> = vec![Vec::new()];
    let mut start = 0;
    let mut digits = false;
    let item = |digits: bool, s: &str| if digits { int(s) } else { word(s, false) };
    for (i, c) in version.char_indices() {
        let Some(current) = levels.last_mut() else {
            break;
        };
        match c {
            '.' | '-' => {
                current.push(if i == start {
                    int("0")
                } else {
                    item(digits, &version[start..i])
                });
                start = i + 1;
                if c == '-' {
                    levels.push(Vec::new());
                }
            }
            '0'..='9' => {
                if !digits && i > start {
                    current.push(word(&version[start..i], true));
                    start = i;
                    levels.push(Vec::new());
                }
                digits = true;
            }
            _ => {
                if digits && i > start {
                    current.push(int(&version[start..i]));
                    start = i;
                    levels.push(Vec::new());
                }
                digits = false;
            }
        }
    }
    if let Some(current) = levels.last_mut().filter(|_| version.len() > start) {
        current.push(item(digits, &version[start..]));
    }
    // Normalize from the innermost list out, as Maven does.
    let mut inner: Option<Vec<Item>> = None;
    while let Some(mut list) = levels.pop() {
        if let Some(child) = inner.take() {
            list.push(Item::List(child));
        }
        normalize(&mut list);
        inner = Some(list);
    }
    inner.unwrap_or_default()
}

/// Drops trailing null items (zeros, empty qualifiers, empty lists),
/// looking through sub-lists, up to the first other item.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if list[i].is_null() {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

/// Maven's `Item.compareTo`, `None` standing for Java's `null` (a missing
/// item).
fn cmp_item(a: &Item, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (Item::Int(n), None) => {
            if n.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Int(x), Some(Item::Int(y))) => cmp_digits(x, y),
        (Item::Int(_), Some(_)) => Ordering::Greater,
        (Item::Str(s), None) => qualifier_rank(s).as_str().cmp(RELEASE_RANK),
        (Item::Str(x), Some(Item::Str(y))) => qualifier_rank(x).cmp(&qualifier_rank(y)),
        (Item::Str(_), Some(_)) => Ordering::Less,
        (Item::List(l), None) => l
            .first()
            .map_or(Ordering::Equal, |first| cmp_item(first, None)),
        (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
        (Item::List(x), Some(Item::List(y))) => cmp_lists(x, y),
    }
}

fn cmp_lists(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let ord = match (a.get(i), b.get(i)) {
            (Some(x), y) => cmp_item(x, y),
            (None, Some(y)) => cmp_item(y, None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_ascending(versions: &[&str]) {
        for (i, low) in versions.iter().enumerate() {
            for high in &versions[i + 1..] {
                assert_eq!(compare(low, high), Some(Ordering::Less), "{low} < {high}");
                assert_eq!(
                    compare(high, low),
                    Some(Ordering::Greater),
                    "{high} > {low}"
                );
            }
        }
    }

    #[test]
    fn comparable_version_test_qualifiers() {
        assert_ascending(&[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ]);
    }

    #[test]
    fn comparable_version_test_numbers() {
        assert_ascending(&[
            "2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b",
            "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11",
            "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
        ]);
    }

    #[test]
    fn comparable_version_test_equal() {
        let equal = [
            ("1", "1"),
            ("1", "1.0"),
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1", "1-0"),
            ("1", "1.0-0"),
            ("1.0", "1.0-0"),
            // No separator between a number and a letter: a `-`.
            ("1a", "1-a"),
            ("1a", "1.0-a"),
            ("1a", "1.0.0-a"),
            ("1.0a", "1-a"),
            ("1.0.0a", "1-a"),
            ("1x", "1-x"),
            ("1x", "1.0-x"),
            ("1x", "1.0.0-x"),
            ("1.0x", "1-x"),
            ("1.0.0x", "1-x"),
            ("1ga", "1"),
            ("1final", "1"),
            ("1cr", "1rc"),
            ("1a1", "1alpha1"),
            ("1b2", "1beta2"),
            ("1m3", "1milestone3"),
            ("1X", "1x"),
            ("1A", "1a"),
            ("1Ga", "1"),
            ("1FINAL", "1"),
            ("1Cr", "1Rc"),
            ("1m3", "1MILESTONE3"),
            (
                "1-abcdefghijklmnopqrstuvwxyz",
                "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            ),
        ];
        for (a, b) in equal {
            assert_eq!(compare(a, b), Some(Ordering::Equal), "{a} = {b}");
            assert_eq!(compare(b, a), Some(Ordering::Equal), "{b} = {a}");
        }
    }

    #[test]
    fn comparable_version_test_comparing() {
        let ascending = [
            ("1", "2"),
            ("1.5", "2"),
            ("1", "2.5"),
            ("1.0", "1.1"),
            ("1.1", "1.2"),
            ("1.0.0", "1.1"),
            ("1.0.1", "1.1"),
            ("1.1", "1.2.0"),
            ("1.0-alpha-1", "1.0"),
            ("1.0-alpha-1", "1.0-alpha-2"),
            ("1.0-alpha-1", "1.0-beta-1"),
            ("1.0-beta-1", "1.0-SNAPSHOT"),
            ("1.0-SNAPSHOT", "1.0"),
            ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
            ("1.0", "1.0-1"),
            ("1.0-1", "1.0-2"),
            ("1.0.0", "1.0-1"),
            ("2.0-1", "2.0.1"),
            ("2.0.1-klm", "2.0.1-lmn"),
            ("2.0.1", "2.0.1-xyz"),
            ("2.0.1", "2.0.1-123"),
            ("2.0.1-xyz", "2.0.1-123"),
            // Real ones from advisories.
            ("2.14.0-rc1", "2.14.0"),
            ("2.9.10.7", "2.9.10.8"),
            ("5.3.17.RELEASE", "5.3.18"),
            ("9.4.43.v20210629", "9.4.44.v20210927"),
            ("31.1-jre", "32.0.0-android"),
        ];
        for (low, high) in ascending {
            assert_eq!(compare(low, high), Some(Ordering::Less), "{low} < {high}");
            assert_eq!(
                compare(high, low),
                Some(Ordering::Greater),
                "{high} > {low}"
            );
        }
    }
}

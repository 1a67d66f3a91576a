//! Repository names, checked against the distribution spec's grammar.
//!
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
//!
//! A valid name can never contain `..`, a leading `/`, or anything other
//! than lower-case letters, digits and the separators, so joining it onto a
//! storage root can never leave that root.

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// Longest name accepted, as in the CNCF distribution registry.
pub const MAX_NAME_LEN: usize = 255;

/// A validated repository name such as `library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's path components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RepoName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Checks one path component: alphanumeric runs joined by `.`, `_`, `__` or
/// one or more `-`.
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && is_alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

impl FromStr for RepoName {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseError::new("repository name", "empty"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(ParseError::new(
                "repository name",
                format!("longer than {MAX_NAME_LEN} characters"),
            ));
        }
        if !s.split('/').all(component_ok) {
            return Err(ParseError::new(
                "repository name",
                "must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let good = [
            "a",
            "library/alpine",
            "a.b/c_d/e__f/g-h/i---j",
            "0",
            "abc/123",
            "foo.bar",
        ];
        let bad = [
            "", "A", "/a", "a/", "a//b", "..", "a/../b", "a/.b", "_a", "a_", "a___b", "a-", "-a",
            "a..b", "a b", "a/./b", "ü", "a:b", "a\\b",
        ];
        for g in good {
            assert!(g.parse::<RepoName>().is_ok(), "{g:?} should parse");
        }
        for b in bad {
            assert!(b.parse::<RepoName>().is_err(), "{b:?} should be refused");
        }
        assert!("a".repeat(256).parse::<RepoName>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_escapes(s in ".*") {
            if let Ok(n) = s.parse::<RepoName>() {
                proptest::prop_assert!(!n.as_str().contains(".."));
                proptest::prop_assert!(!n.as_str().starts_with('/'));
                proptest::prop_assert!(n.components().all(|c| !c.is_empty() && c != "."));
            }
        }
    }
}

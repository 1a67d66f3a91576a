//! Manifest references: a tag or a digest.

use std::fmt;
use std::str::FromStr;

use crate::ParseError;
use crate::digest::{Digest, DigestError};

/// A validated tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Tag {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let rest_ok = b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || b.len() > 128 {
            return Err(ParseError::new(
                "tag",
                "must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

/// What follows `/manifests/` in a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

impl FromStr for Reference {
    type Err = DigestError;

    /// A string with a `:` is a digest, anything else a tag.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse().map_err(DigestError::Invalid)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert!(matches!("latest".parse(), Ok(Reference::Tag(_))));
        assert!(matches!("_x.y-Z".parse(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse(),
            Ok(Reference::Digest(_))
        ));
        for bad in ["", ".x", "-x", "a/b", "a b", "sha256:zz", &"a".repeat(129)] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?}");
        }
        assert!("a".repeat(128).parse::<Tag>().is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = s.parse::<Reference>();
        }
    }
}

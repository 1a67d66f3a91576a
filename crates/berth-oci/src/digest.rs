//! Content digests (`algorithm:hex`) and a streaming hasher for them.
//!
//! Berth accepts the two registered algorithms of the image spec, `sha256`
//! and `sha512`. Any other well-formed algorithm is reported as unsupported
//! so the API can answer `UNSUPPORTED` rather than `DIGEST_INVALID`.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::ParseError;

/// A digest algorithm Berth can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in a digest and in blob paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lower-case hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not of the form `algorithm:encoded` or the encoding is wrong.
    #[error(transparent)]
    Invalid(#[from] ParseError),
    /// Well formed, but an algorithm Berth does not compute.
    #[error("unsupported digest algorithm {0:?}")]
    Unsupported(String),
}

/// A validated digest such as `sha256:e3b0…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Builds a digest from an algorithm and raw hash bytes.
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Self {
        Self {
            algorithm,
            hex: hex::encode(bytes),
        }
    }

    /// The digest of `data` with `algorithm`.
    pub fn compute(algorithm: Algorithm, data: &[u8]) -> Self {
        let mut h = DigestHasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    /// The sha256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Self::compute(Algorithm::Sha256, data)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex part, used as the blob's file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    /// Parses `algorithm ":" encoded` per the image spec's digest grammar.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |r: &str| DigestError::Invalid(ParseError::new("digest", r));
        let (alg, enc) = s.split_once(':').ok_or_else(|| invalid("missing ':'"))?;
        let alg_ok = !alg.is_empty()
            && alg.split(['+', '.', '_', '-']).all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !alg_ok {
            return Err(invalid("bad algorithm"));
        }
        let enc_ok = !enc.is_empty()
            && enc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !enc_ok {
            return Err(invalid("bad encoded part"));
        }
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::Unsupported(other.to_string())),
        };
        if enc.len() != algorithm.hex_len()
            || !enc
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(
                "encoded part must be lower-case hex of the right length",
            ));
        }
        Ok(Self {
            algorithm,
            hex: enc.to_string(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A streaming hasher for either algorithm, whose state can be saved and
/// restored so a chunked upload survives a restart.
#[derive(Clone)]
pub enum DigestHasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl DigestHasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far; the hasher is left untouched.
    pub fn peek(&self) -> Digest {
        self.clone().finish()
    }

    pub fn finish(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest::from_bytes(Algorithm::Sha256, &h.finalize()),
            Self::Sha512(h) => Digest::from_bytes(Algorithm::Sha512, &h.finalize()),
        }
    }

    /// The hash state as bytes, prefixed by the algorithm, for persistence.
    pub fn save(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState;
        match self {
            Self::Sha256(h) => {
                let mut v = vec![b'2'];
                v.extend_from_slice(&h.serialize());
                v
            }
            Self::Sha512(h) => {
                let mut v = vec![b'5'];
                v.extend_from_slice(&h.serialize());
                v
            }
        }
    }

    /// Restores a state written by [`DigestHasher::save`]; `None` if the bytes
    /// are not a state this version can read.
    pub fn restore(bytes: &[u8]) -> Option<Self> {
        use sha2::digest::common::hazmat::{SerializableState, SerializedState};
        let (tag, rest) = bytes.split_first()?;
        match tag {
            b'2' => {
                let arr = SerializedState::<sha2::Sha256>::try_from(rest).ok()?;
                sha2::Sha256::deserialize(&arr).ok().map(Self::Sha256)
            }
            b'5' => {
                let arr = SerializedState::<sha2::Sha512>::try_from(rest).ok()?;
                sha2::Sha512::deserialize(&arr).ok().map(Self::Sha512)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<(), &str>)] = &[
            (EMPTY, Ok(())),
            (
                "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
                Ok(()),
            ),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                Err("invalid"),
            ),
            ("sha256:abc", Err("invalid")),
            ("sha256", Err("invalid")),
            (":abc", Err("invalid")),
            ("SHA256:abc", Err("invalid")),
            ("md5:d41d8cd98f00b204e9800998ecf8427e", Err("unsupported")),
            (
                "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
                Err("unsupported"),
            ),
            ("sha256:../../etc/passwd", Err("invalid")),
            ("", Err("invalid")),
        ];
        for (input, want) in cases {
            let got = input.parse::<Digest>();
            match (want, &got) {
                (Ok(()), Ok(d)) => assert_eq!(&d.to_string(), input),
                (Err("invalid"), Err(DigestError::Invalid(_))) => {}
                (Err("unsupported"), Err(DigestError::Unsupported(_))) => {}
                _ => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn compute_empty() {
        assert_eq!(Digest::sha256(b"").to_string(), EMPTY);
    }

    #[test]
    fn hasher_state_roundtrip() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut h = DigestHasher::new(alg);
            h.update(b"hello ");
            let saved = h.save();
            let mut r = DigestHasher::restore(&saved).expect("restore");
            r.update(b"world");
            assert_eq!(r.finish(), Digest::compute(alg, b"hello world"));
        }
        assert!(DigestHasher::restore(b"2short").is_none());
        assert!(DigestHasher::restore(b"").is_none());
    }

    proptest::proptest! {
        /// A saved hash state read back from any bytes is a state or
        /// nothing: never a panic.
        #[test]
        fn restore_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = DigestHasher::restore(&bytes);
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = s.parse::<Digest>();
        }
    }
}

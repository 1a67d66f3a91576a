//! Public keys from X.509 SubjectPublicKeyInfo, and signature checks with
//! them (aws-lc-rs).

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::TrustError;

/// The smallest RSA modulus accepted, in bits (notation's and cosign's
/// floor).
const MIN_RSA_BITS: usize = 2048;

/// A key's algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa { bits: usize },
    Ed25519,
}

impl KeyKind {
    /// A name for people: `ECDSA P-256`, `RSA 3072`, `Ed25519`.
    pub(crate) fn describe(self) -> String {
        match self {
            KeyKind::EcdsaP256 => "ECDSA P-256".to_owned(),
            KeyKind::EcdsaP384 => "ECDSA P-384".to_owned(),
            KeyKind::EcdsaP521 => "ECDSA P-521".to_owned(),
            KeyKind::Rsa { bits } => format!("RSA {bits}"),
            KeyKind::Ed25519 => "Ed25519".to_owned(),
        }
    }
}

/// A public key, parsed from its SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpkiKey {
    kind: KeyKind,
    /// The SubjectPublicKeyInfo's key bits, which aws-lc-rs takes: a PKCS#1
    /// RSAPublicKey, an uncompressed EC point, or the 32 Ed25519 bytes.
    key_bits: Vec<u8>,
    /// The whole SubjectPublicKeyInfo, DER.
    spki_der: Vec<u8>,
}

impl SpkiKey {
    /// Parses a DER SubjectPublicKeyInfo, refusing algorithms and sizes
    /// other than ECDSA P-256/P-384/P-521, RSA of 2048 bits or more, and
    /// Ed25519.
    pub(crate) fn from_spki_der(der: &[u8]) -> Result<Self, TrustError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| TrustError::MalformedKey(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TrustError::MalformedKey(
                "trailing bytes after the key".to_owned(),
            ));
        }
        Self::from_parsed(&spki)
    }

    pub(crate) fn from_parsed(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, TrustError> {
        let algorithm = &spki.algorithm.algorithm;
        let kind = if *algorithm == OID_PKCS1_RSAENCRYPTION {
            let bits = match spki.parsed() {
                Ok(ParsedKey::RSA(rsa)) => rsa.key_size(),
                _ => return Err(TrustError::MalformedKey("bad RSA public key".to_owned())),
            };
            if bits < MIN_RSA_BITS {
                return Err(TrustError::UnsupportedKey(format!(
                    "RSA {bits}: RSA keys must have at least {MIN_RSA_BITS} bits"
                )));
            }
            KeyKind::Rsa { bits }
        } else if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or_else(|| {
                    TrustError::MalformedKey("EC key without a named curve".to_owned())
                })?;
            if curve == OID_EC_P256 {
                KeyKind::EcdsaP256
            } else if curve == OID_NIST_EC_P384 {
                KeyKind::EcdsaP384
            } else if curve == OID_NIST_EC_P521 {
                KeyKind::EcdsaP521
            } else {
                return Err(TrustError::UnsupportedKey(format!(
                    "elliptic curve {curve}: only P-256, P-384 and P-521 are accepted"
                )));
            }
        } else if *algorithm == OID_SIG_ED25519 {
            KeyKind::Ed25519
        } else {
            return Err(TrustError::UnsupportedKey(format!(
                "key algorithm {algorithm}: only ECDSA, RSA and Ed25519 are accepted"
            )));
        };
        Ok(SpkiKey {
            kind,
            key_bits: spki.subject_public_key.data.to_vec(),
            spki_der: spki.raw.to_vec(),
        })
    }

    pub(crate) fn kind(&self) -> KeyKind {
        self.kind
    }

    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Whether `signature` over `message` verifies with this key under
    /// `algorithm`.
    pub(crate) fn verifies(
        &self,
        algorithm: &'static dyn VerificationAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        UnparsedPublicKey::new(algorithm, &self.key_bits)
            .verify(message, signature)
            .is_ok()
    }

    /// Whether a cosign signature verifies: cosign hashes with SHA-256 for
    /// every key it signs with `--key` (ECDSA signatures are ASN.1 DER, RSA
    /// PKCS#1 v1.5 or PSS, Ed25519 over the message itself); sigstore's
    /// defaults for P-384 and P-521 hash with SHA-384 and SHA-512, which
    /// are accepted as well.
    pub(crate) fn verifies_cosign(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithms: &[&'static dyn VerificationAlgorithm] = match self.kind {
            KeyKind::EcdsaP256 => &[&signature::ECDSA_P256_SHA256_ASN1],
            KeyKind::EcdsaP384 => &[
                &signature::ECDSA_P384_SHA256_ASN1,
                &signature::ECDSA_P384_SHA384_ASN1,
            ],
            KeyKind::EcdsaP521 => &[
                &signature::ECDSA_P521_SHA256_ASN1,
                &signature::ECDSA_P521_SHA512_ASN1,
            ],
            KeyKind::Rsa { .. } => &[
                &signature::RSA_PKCS1_2048_8192_SHA256,
                &signature::RSA_PSS_2048_8192_SHA256,
            ],
            KeyKind::Ed25519 => &[&signature::ED25519],
        };
        algorithms
            .iter()
            .any(|algorithm| self.verifies(*algorithm, message, signature))
    }
}

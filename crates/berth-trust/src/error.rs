//! The crate's one error type: why uploaded trust material is refused (and,
//! with the `sign` feature, why a test signature could not be made).
//!
//! A signature that does not verify is not an error: it is a
//! [`SignatureCheck`](crate::SignatureCheck) whose
//! [`NotTrusted`](crate::NotTrusted) says why. The messages never contain
//! the uploaded bytes, so a private key sent by mistake is not echoed.

/// Why uploaded trust material is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The bytes hold no PEM block at all.
    #[error("not PEM: expected a PEM file (\"-----BEGIN ...-----\")")]
    NotPem,
    /// A PEM block does not decode (bad base64, missing end line).
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// A private key was sent; only public material is ever accepted.
    #[error(
        "this is a private key (PEM \"{label}\"), not public material: upload the public key or certificate instead, and consider this private key exposed"
    )]
    PrivateKey {
        /// The PEM label, e.g. `EC PRIVATE KEY` (never the key itself).
        label: String,
    },
    /// A certificate was sent where a cosign public key was expected.
    #[error(
        "this is a certificate, not a public key: cosign keys are PEM \"PUBLIC KEY\" files (`cosign public-key` writes one); certificates belong to the notation trust store"
    )]
    CertificateNotPublicKey,
    /// A PEM block of another kind than the one expected.
    #[error("PEM block \"{label}\" is not a {expected}")]
    UnexpectedPem {
        /// The label found.
        label: String,
        /// What was expected, e.g. `public key ("PUBLIC KEY")`.
        expected: &'static str,
    },
    /// More than one public key in one upload.
    #[error("more than one PEM block: upload one public key at a time")]
    SeveralKeys,
    /// The public key does not parse.
    #[error("the public key does not parse: {0}")]
    MalformedKey(String),
    /// A key of an algorithm or size that is not accepted.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// A certificate does not parse.
    #[error("certificate {index} does not parse: {reason}")]
    MalformedCertificate {
        /// Its position in the upload, from 1.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// A trust-store certificate that is neither a CA nor self-signed,
    /// which notation refuses in a trust store too.
    #[error("certificate \"{subject}\" is neither a CA certificate nor self-signed")]
    NotCaOrSelfSigned {
        /// The certificate's subject.
        subject: String,
    },
    /// A trust store type other than notation's two.
    #[error("unknown trust store type \"{0}\": expected \"ca\" or \"signingAuthority\"")]
    UnknownTrustStoreType(String),
    /// A signature could not be made (feature `sign`, for tests).
    #[cfg(feature = "sign")]
    #[error("signing failed: {0}")]
    Signing(String),
}

//! What a verification says: [`SignatureCheck`], its [`Tool`] and, when
//! the signature is not trusted, the [`NotTrusted`] reason.

use std::fmt;
use std::time::SystemTime;

use crate::material::TrustStoreType;

/// The tool a signature was made with, by zot's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// sigstore's cosign (simple signing or a sigstore bundle).
    Cosign,
    /// The Notary Project's notation (JWS or COSE envelope).
    Notation,
}

impl Tool {
    /// zot's name for the tool: `cosign` or `notation`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tool::Cosign => "cosign",
            Tool::Notation => "notation",
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The tool that made the signature.
    pub tool: Tool,
    /// Whether an uploaded key or certificate vouches for this signature
    /// over this image.
    pub trusted: bool,
    /// Who signed, as zot says it: for cosign the uploaded PEM of the key
    /// that verifies the signature (exactly as uploaded), for notation the
    /// signing certificate's subject in Go's `pkix.Name.String` form (e.g.
    /// `CN=builder,O=Example,C=US`), known even when the chain is not
    /// trusted. Empty when no signer could be named.
    pub author: String,
    /// Why the signature is not trusted; `None` when it is.
    pub detail: Option<NotTrusted>,
    /// The id of the uploaded key or certificate that vouches for the
    /// signature (see [`CosignKey::id`](crate::CosignKey::id) and
    /// [`NotationCert::id`](crate::NotationCert::id)); `None` when not
    /// trusted.
    pub trusted_by: Option<String>,
    /// For a trusted notation signature, until when the verdict holds: the
    /// earlier of the signature's expiry and the signing certificate's
    /// not-after (zot's date). `None` otherwise.
    pub valid_until: Option<SystemTime>,
}

impl SignatureCheck {
    pub(crate) fn trusted(tool: Tool, author: String, trusted_by: String) -> Self {
        SignatureCheck {
            tool,
            trusted: true,
            author,
            detail: None,
            trusted_by: Some(trusted_by),
            valid_until: None,
        }
    }

    pub(crate) fn not_trusted(tool: Tool, author: String, detail: NotTrusted) -> Self {
        SignatureCheck {
            tool,
            trusted: false,
            author,
            detail: Some(detail),
            trusted_by: None,
            valid_until: None,
        }
    }
}

/// Why a signature is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotTrusted {
    /// No cosign public key has been uploaded.
    NoCosignKeys,
    /// No notation certificate of the trust store type the signing scheme
    /// requires has been uploaded.
    NoNotationCertificates(TrustStoreType),
    /// The signature's bytes do not parse as the format says.
    Malformed(String),
    /// An envelope or bundle media type this crate does not verify.
    UnsupportedMediaType(String),
    /// A signature algorithm, key or signing scheme not supported.
    UnsupportedAlgorithm(String),
    /// A critical header this crate does not understand, which the spec
    /// says must fail verification.
    UnsupportedCriticalHeader(String),
    /// A sigstore bundle that signs a message rather than a DSSE envelope;
    /// cosign writes image signatures as DSSE envelopes.
    UnsupportedBundleContent,
    /// Signed content that is not an image signature (another cosign
    /// payload type, or an attestation's predicate type).
    NotAnImageSignature(String),
    /// No uploaded cosign key verifies the signature (signed by another
    /// key, or the payload was changed).
    NoMatchingKey,
    /// The signature does not verify with the key that claims it: the
    /// payload or the signed headers were changed.
    InvalidSignature,
    /// The envelope's algorithm does not match the signing certificate's
    /// key.
    AlgorithmMismatch {
        /// The envelope's algorithm.
        algorithm: String,
        /// The certificate's key.
        key: String,
    },
    /// The signature is over another image.
    DigestMismatch {
        /// The digest the signature names.
        signed: String,
        /// The digest of the image it is attached to.
        image: String,
    },
    /// The signed descriptor's media type or size differs from the image's.
    DescriptorMismatch(&'static str),
    /// The certificate chain is not well formed (order, CA flags, key usage
    /// of a CA, signatures between its certificates).
    InvalidCertificateChain(String),
    /// The chain does not lead to an uploaded certificate of the required
    /// trust store type.
    UntrustedCertificate,
    /// A certificate of the chain had expired at the time that counts.
    CertificateExpired {
        /// The certificate's subject.
        subject: String,
    },
    /// A certificate of the chain was not yet valid at the time that
    /// counts.
    CertificateNotYetValid {
        /// The certificate's subject.
        subject: String,
    },
    /// A certificate of the chain was not valid at the signing time the
    /// signature states.
    NotValidAtSigningTime {
        /// The certificate's subject.
        subject: String,
    },
    /// The signing certificate's extended key usage lacks code signing, or
    /// names a usage the spec forbids.
    MissingCodeSigningUsage,
    /// The signing certificate's key usage lacks digitalSignature, or has a
    /// bit the spec forbids.
    InvalidKeyUsage,
    /// The signing certificate's key is too small.
    WeakKey(String),
    /// The signer's expiry time has passed.
    SignatureExpired,
}

impl fmt::Display for NotTrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotTrusted::NoCosignKeys => f.write_str("no cosign public key has been uploaded"),
            NotTrusted::NoNotationCertificates(store) => write!(
                f,
                "no notation certificate has been uploaded to the \"{store}\" trust store"
            ),
            NotTrusted::Malformed(what) => write!(f, "malformed signature: {what}"),
            NotTrusted::UnsupportedMediaType(media_type) => {
                write!(f, "unsupported signature media type \"{media_type}\"")
            }
            NotTrusted::UnsupportedAlgorithm(what) => write!(f, "unsupported algorithm: {what}"),
            NotTrusted::UnsupportedCriticalHeader(name) => {
                write!(f, "unsupported critical header \"{name}\"")
            }
            NotTrusted::UnsupportedBundleContent => f.write_str(
                "the bundle signs a message, not a DSSE envelope naming the image; not verified",
            ),
            NotTrusted::NotAnImageSignature(what) => {
                write!(f, "not an image signature: {what}")
            }
            NotTrusted::NoMatchingKey => {
                f.write_str("no uploaded cosign public key verifies the signature")
            }
            NotTrusted::InvalidSignature => f.write_str(
                "the signature does not verify: the payload or its signed headers were changed",
            ),
            NotTrusted::AlgorithmMismatch { algorithm, key } => write!(
                f,
                "the envelope's algorithm {algorithm} does not match the certificate's {key} key"
            ),
            NotTrusted::DigestMismatch { signed, image } => {
                write!(f, "the signature is over {signed}, not over {image}")
            }
            NotTrusted::DescriptorMismatch(field) => {
                write!(f, "the signed descriptor's {field} is not the image's")
            }
            NotTrusted::InvalidCertificateChain(what) => {
                write!(f, "invalid certificate chain: {what}")
            }
            NotTrusted::UntrustedCertificate => f.write_str(
                "the certificate chain does not lead to an uploaded certificate of the trust store its signing scheme requires",
            ),
            NotTrusted::CertificateExpired { subject } => {
                write!(f, "certificate \"{subject}\" has expired")
            }
            NotTrusted::CertificateNotYetValid { subject } => {
                write!(f, "certificate \"{subject}\" is not valid yet")
            }
            NotTrusted::NotValidAtSigningTime { subject } => write!(
                f,
                "certificate \"{subject}\" was not valid at the signature's signing time"
            ),
            NotTrusted::MissingCodeSigningUsage => f.write_str(
                "the signing certificate is not for code signing (extended key usage)",
            ),
            NotTrusted::InvalidKeyUsage => f.write_str(
                "the signing certificate's key usage is not digitalSignature alone",
            ),
            NotTrusted::WeakKey(what) => write!(f, "the signing certificate's key is too weak: {what}"),
            NotTrusted::SignatureExpired => f.write_str("the signature has expired"),
        }
    }
}

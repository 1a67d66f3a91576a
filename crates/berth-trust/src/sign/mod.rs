//! Signatures written as cosign and notation write them, for tests (this
//! crate's, and the server's end-to-end ones, which push them to a
//! registry). Behind the `sign` feature: the server never compiles it in.
//!
//! - `keys.rs`: keys ([`SigningKey`]) and certificate chains
//!   ([`CertificateAuthority`], [`SigningIdentity`]) made with aws-lc-rs and
//!   rcgen;
//! - `cosign.rs`: a simple-signing signature with its `sha256-<hex>.sig`
//!   artifact and its OCI 1.1 referrer form ([`cosign_simple_signing`]),
//!   and a sigstore bundle with its referrer ([`cosign_bundle`]);
//! - `notation.rs`: JWS and COSE envelopes with their referrer
//!   ([`notation_sign`]).
//!
//! Every artifact comes as a [`SignatureArtifact`]: the manifest and the
//! blobs it names (bytes and digest), ready to push.

mod cosign;
mod keys;
mod manifest;
mod notation;

use sha2::{Digest as _, Sha256};

pub use cosign::{
    CosignBundleSignature, CosignSimpleSignature, cosign_bundle, cosign_simple_signing,
};
pub use keys::{
    CertificateAuthority, ExtendedKeyUsage, KeyAlgorithm, SignerSpec, SigningIdentity, SigningKey,
    Validity,
};
pub use notation::{EnvelopeFormat, NotationOptions, NotationSignature, Scheme, notation_sign};

/// Content addressed by its digest, with the media type it is pushed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The media type its descriptor names.
    pub media_type: String,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// A blob of these bytes.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Blob {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }
}

/// A signature as pushed to a registry: its manifest, and the config and
/// layer blobs the manifest names (push those first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureArtifact {
    /// The manifest (`application/vnd.oci.image.manifest.v1+json`).
    pub manifest: Blob,
    /// The blobs it names: config first, then the layers.
    pub blobs: Vec<Blob>,
}

/// The image a signature is made for: its manifest's digest, media type
/// and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningTarget {
    /// `sha256:<hex>`.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

impl SigningTarget {
    /// The target of a manifest of this media type and these bytes.
    pub fn of_manifest(media_type: &str, manifest: &[u8]) -> Self {
        SigningTarget {
            digest: sha256_digest(manifest),
            media_type: media_type.to_owned(),
            size: manifest.len() as u64,
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

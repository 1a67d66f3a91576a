//! Signature verification for the trust extension: cosign and notation
//! formats, keys and certificates; no I/O.
//!
//! The server uploads trust material — cosign public keys
//! ([`CosignKey::from_pem`]) and notation certificates
//! ([`NotationCert::from_pem`], for the `ca` or `signingAuthority` trust
//! store) — and keeps them in a [`TrustStore`]. For each signature it finds
//! in a registry it hands the signature's bytes and the signed image's
//! digest to one of the verify functions, which return a
//! [`SignatureCheck`]: the tool, whether the signature is trusted, its
//! author (the strings zot gives), and why not when it is not
//! ([`NotTrusted`]). A verify function never panics and never fails: a
//! malformed signature is an untrusted one, with the reason.
//!
//! Formats (see `media` for the media types and annotations):
//! - cosign's simple-signing signatures ([`verify_cosign_simple_signing`]):
//!   the payload layer of a `sha256-<hex>.sig` tag or of an OCI 1.1
//!   referrer, and the base64 signature from its annotation;
//! - cosign's sigstore bundles ([`verify_cosign_bundle`]), as `cosign sign`
//!   writes them with the new bundle format: a DSSE envelope over an in-toto
//!   statement naming the image;
//! - notation's JWS and COSE envelopes ([`verify_notation`]), with the
//!   certificate chain validated to an uploaded certificate of the trust
//!   store the signing scheme asks for.
//!
//! Only keys and certificates uploaded here establish trust: no
//! transparency log, timestamp authority, Fulcio or revocation list is
//! consulted (this crate does no I/O).
//!
//! Why not the `sigstore` crate: it verifies only cosign (not notation),
//! and brings an HTTP client, an async runtime, an OCI client, TUF and
//! OpenID Connect into the server binary for the few hundred lines of
//! parsing and one signature check that verifying against uploaded keys
//! needs. The signature algorithms come from aws-lc-rs and the chain
//! validation from rustls-webpki, both already in the tree through rustls.

mod cosign;
mod distinguished_name;
mod error;
mod keys;
mod material;
pub mod media;
mod notation;
mod verdict;

#[cfg(feature = "sign")]
pub mod sign;

pub use cosign::{verify_cosign_bundle, verify_cosign_simple_signing};
pub use error::TrustError;
pub use material::{CosignKey, NotationCert, TrustStore, TrustStoreType};
pub use notation::{SignedImage, verify_notation};
pub use verdict::{NotTrusted, SignatureCheck, Tool};

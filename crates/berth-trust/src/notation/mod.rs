//! Notary Project (notation) signatures: JWS (`jws.rs`) and COSE
//! (`cose.rs`) envelopes are parsed into one [`Envelope`], then verified
//! the same way (here), the certificate chain by `chain.rs`.
//!
//! What is checked, in order, each failure its own reason: the envelope
//! parses and its critical headers are all understood; the algorithm
//! matches the signing certificate's key; the signature verifies with that
//! key; the signed target descriptor is the image; the chain is ordered,
//! of valid CA and code-signing certificates, valid at the time that
//! counts, and leads to an uploaded certificate of the trust store the
//! signing scheme requires; the signer's expiry has not passed. This is
//! notation's `strict` level, which zot configures. Not checked: RFC 3161
//! timestamp countersignatures (so under `notary.x509` the chain must be
//! valid now) and revocation (no I/O); verification plugins are refused as
//! unsupported critical headers.

mod chain;
mod cose;
mod jws;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, VerificationAlgorithm};
use serde::Deserialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::distinguished_name::go_name_string;
use crate::keys::{KeyKind, SpkiKey};
use crate::material::{TrustStore, TrustStoreType, unix_time};
use crate::media::{NOTATION_COSE, NOTATION_JWS, NOTATION_PAYLOAD};
use crate::verdict::{NotTrusted, SignatureCheck, Tool};

/// The header naming the signing scheme.
const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
/// The signer's own (unauthenticated) signing time, for `notary.x509`.
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
/// The signing authority's signing time, for
/// `notary.x509.signingAuthority`.
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
/// The signer's "best before" time.
const EXPIRY: &str = "io.cncf.notary.expiry";
/// The critical headers this crate understands and processes.
const UNDERSTOOD_CRITICAL: [&str; 3] = [SIGNING_SCHEME, AUTHENTIC_SIGNING_TIME, EXPIRY];

/// The image a notation signature is checked against: its digest, and its
/// media type and size when known (the signed descriptor must then match
/// them too, as notation checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedImage<'a> {
    /// `sha256:<hex>`.
    pub digest: &'a str,
    /// The manifest's media type, if known.
    pub media_type: Option<&'a str>,
    /// The manifest's size in bytes, if known.
    pub size: Option<u64>,
}

/// Verifies a notation signature of `image`: `envelope` is the signature
/// manifest's one layer, of `envelope_media_type` `application/jose+json`
/// or `application/cose`. `now` is the time of verification (expiry, and
/// certificate validity under the `notary.x509` scheme).
pub fn verify_notation(
    image: &SignedImage<'_>,
    envelope_media_type: &str,
    envelope: &[u8],
    store: &TrustStore,
    now: SystemTime,
) -> SignatureCheck {
    let parsed = match envelope_media_type {
        NOTATION_JWS => jws::parse(envelope),
        NOTATION_COSE => cose::parse(envelope),
        other => Err(NotTrusted::UnsupportedMediaType(other.to_owned())),
    };
    let envelope = match parsed.and_then(|envelope| envelope.checked()) {
        Ok(envelope) => envelope,
        Err(detail) => return SignatureCheck::not_trusted(Tool::Notation, String::new(), detail),
    };
    let leaf = match envelope
        .certificate_chain
        .first()
        .map(|der| X509Certificate::from_der(der))
    {
        Some(Ok((_, leaf))) => leaf,
        Some(Err(e)) => {
            return SignatureCheck::not_trusted(
                Tool::Notation,
                String::new(),
                NotTrusted::Malformed(format!("signing certificate: {e}")),
            );
        }
        None => {
            return SignatureCheck::not_trusted(
                Tool::Notation,
                String::new(),
                NotTrusted::Malformed("no certificate chain".to_owned()),
            );
        }
    };
    // zot names the author from the signing certificate as soon as the
    // envelope parses, trusted or not.
    let author = go_name_string(leaf.subject());
    let seconds_now = unix_seconds(now);
    match verify_parsed(image, &envelope, &leaf, store, seconds_now) {
        Ok(trusted_by) => {
            let leaf_not_after = leaf.validity().not_after.timestamp();
            let until = envelope
                .expiry
                .map_or(leaf_not_after, |expiry| expiry.min(leaf_not_after));
            let mut check = SignatureCheck::trusted(Tool::Notation, author, trusted_by);
            check.valid_until = Some(unix_time(until));
            check
        }
        Err(detail) => SignatureCheck::not_trusted(Tool::Notation, author, detail),
    }
}

/// Everything after parsing; the id of the trusted certificate.
fn verify_parsed(
    image: &SignedImage<'_>,
    envelope: &Envelope,
    leaf: &X509Certificate<'_>,
    store: &TrustStore,
    now: i64,
) -> Result<String, NotTrusted> {
    let key = SpkiKey::from_parsed(leaf.public_key())
        .map_err(|e| NotTrusted::UnsupportedAlgorithm(format!("signing certificate's key: {e}")))?;
    let verification = envelope
        .algorithm
        .verification_for(key.kind())
        .ok_or_else(|| NotTrusted::AlgorithmMismatch {
            algorithm: envelope.algorithm.name().to_owned(),
            key: key.kind().describe(),
        })?;
    if !key.verifies(verification, &envelope.signed_bytes, &envelope.signature) {
        return Err(NotTrusted::InvalidSignature);
    }
    check_target(&envelope.payload, image)?;
    let (store_type, at, signing_time) = match envelope.scheme {
        SigningScheme::X509 => (TrustStoreType::Ca, now, envelope.signing_time),
        SigningScheme::SigningAuthority => (
            TrustStoreType::SigningAuthority,
            envelope.authentic_signing_time.unwrap_or(now),
            None,
        ),
    };
    let anchors: Vec<_> = store.notation_certs(store_type).collect();
    if anchors.is_empty() {
        return Err(NotTrusted::NoNotationCertificates(store_type));
    }
    let trusted_by = chain::validate(&envelope.certificate_chain, &anchors, at, signing_time)?;
    if envelope.expiry.is_some_and(|expiry| now >= expiry) {
        return Err(NotTrusted::SignatureExpired);
    }
    Ok(trusted_by)
}

/// Checks the signed payload's target descriptor against the image.
fn check_target(payload: &[u8], image: &SignedImage<'_>) -> Result<(), NotTrusted> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        target_artifact: Descriptor,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Descriptor {
        media_type: String,
        digest: String,
        size: u64,
    }
    let payload: Payload = serde_json::from_slice(payload)
        .map_err(|e| NotTrusted::Malformed(format!("notation payload: {e}")))?;
    let target = payload.target_artifact;
    if target.digest != image.digest {
        return Err(NotTrusted::DigestMismatch {
            signed: target.digest,
            image: image.digest.to_owned(),
        });
    }
    if image
        .media_type
        .is_some_and(|media_type| media_type != target.media_type)
    {
        return Err(NotTrusted::DescriptorMismatch("media type"));
    }
    if image.size.is_some_and(|size| size != target.size) {
        return Err(NotTrusted::DescriptorMismatch("size"));
    }
    Ok(())
}

/// A signing scheme of the Notary Project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigningScheme {
    /// `notary.x509`: a CA's chain, the signer's own signing time.
    X509,
    /// `notary.x509.signingAuthority`: a signing authority's chain and
    /// signing time.
    SigningAuthority,
}

impl SigningScheme {
    fn from_name(name: &str) -> Result<Self, NotTrusted> {
        match name {
            "notary.x509" => Ok(SigningScheme::X509),
            "notary.x509.signingAuthority" => Ok(SigningScheme::SigningAuthority),
            other => Err(NotTrusted::UnsupportedAlgorithm(format!(
                "signing scheme \"{other}\""
            ))),
        }
    }
}

/// The signature algorithms the Notary Project allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl Algorithm {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
        }
    }

    /// The verification of this algorithm with a key of `kind`, if the
    /// spec pairs them: RSA 2048, 3072 and 4096 with PS256, PS384 and
    /// PS512; P-256, P-384 and P-521 with ES256, ES384 and ES512. ECDSA
    /// signatures are `r || s`, as JWS and COSE write them.
    fn verification_for(self, kind: KeyKind) -> Option<&'static dyn VerificationAlgorithm> {
        let algorithm: &'static dyn VerificationAlgorithm = match (self, kind) {
            (Algorithm::Ps256, KeyKind::Rsa { bits: 2048 }) => &signature::RSA_PSS_2048_8192_SHA256,
            (Algorithm::Ps384, KeyKind::Rsa { bits: 3072 }) => &signature::RSA_PSS_2048_8192_SHA384,
            (Algorithm::Ps512, KeyKind::Rsa { bits: 4096 }) => &signature::RSA_PSS_2048_8192_SHA512,
            (Algorithm::Es256, KeyKind::EcdsaP256) => &signature::ECDSA_P256_SHA256_FIXED,
            (Algorithm::Es384, KeyKind::EcdsaP384) => &signature::ECDSA_P384_SHA384_FIXED,
            (Algorithm::Es512, KeyKind::EcdsaP521) => &signature::ECDSA_P521_SHA512_FIXED,
            _ => return None,
        };
        Some(algorithm)
    }
}

/// A notation envelope, whichever its format.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) algorithm: Algorithm,
    /// The protected `cty` / content type.
    pub(crate) content_type: String,
    pub(crate) scheme: SigningScheme,
    /// Seconds since the epoch.
    pub(crate) signing_time: Option<i64>,
    pub(crate) authentic_signing_time: Option<i64>,
    pub(crate) expiry: Option<i64>,
    /// The protected `crit` list.
    pub(crate) critical: Vec<String>,
    /// The protected header names present (to check they are listed as
    /// critical where the spec says so).
    pub(crate) protected_names: Vec<String>,
    /// DER certificates, signing certificate first.
    pub(crate) certificate_chain: Vec<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
    /// The bytes the signature is over (JWS signing input, COSE
    /// `Sig_structure`).
    pub(crate) signed_bytes: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

impl Envelope {
    /// The checks common to both formats: content type, critical headers,
    /// the signing time the scheme requires.
    fn checked(self) -> Result<Self, NotTrusted> {
        if self.content_type != NOTATION_PAYLOAD {
            return Err(NotTrusted::Malformed(format!(
                "content type \"{}\" is not {NOTATION_PAYLOAD}",
                self.content_type
            )));
        }
        if let Some(unknown) = self
            .critical
            .iter()
            .find(|name| !UNDERSTOOD_CRITICAL.contains(&name.as_str()))
        {
            return Err(NotTrusted::UnsupportedCriticalHeader(unknown.clone()));
        }
        for name in UNDERSTOOD_CRITICAL {
            let present = self.protected_names.iter().any(|n| n == name);
            let critical = self.critical.iter().any(|n| n == name);
            if present != critical {
                return Err(NotTrusted::Malformed(format!(
                    "header \"{name}\" must be present and listed as critical together"
                )));
            }
        }
        match self.scheme {
            SigningScheme::X509 if self.signing_time.is_none() => Err(NotTrusted::Malformed(
                format!("the notary.x509 scheme requires \"{SIGNING_TIME}\""),
            )),
            SigningScheme::SigningAuthority if self.authentic_signing_time.is_none() => {
                Err(NotTrusted::Malformed(format!(
                    "the notary.x509.signingAuthority scheme requires \"{AUTHENTIC_SIGNING_TIME}\""
                )))
            }
            _ => Ok(self),
        }
    }
}

/// Seconds since the epoch (negative before it).
fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

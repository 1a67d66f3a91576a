//! cosign signatures: simple signing (here) and sigstore bundles
//! (`bundle.rs`), both verified against the uploaded public keys.
//!
//! As in zot, a cosign signature is trusted when an uploaded key verifies
//! it, and its author is that key's PEM as uploaded. Unlike zot, the signed
//! content must also name the image the signature is attached to, and be
//! an image signature (not another payload or an attestation).

pub(crate) mod bundle;

use base64::Engine as _;
use serde::Deserialize;

use crate::material::{CosignKey, TrustStore};
use crate::media::COSIGN_SIGNATURE_TYPE;
use crate::verdict::{NotTrusted, SignatureCheck, Tool};

pub use bundle::verify_cosign_bundle;

/// Verifies a cosign simple-signing signature of the image `image_digest`
/// (`sha256:<hex>`): `payload` is the layer blob
/// (`application/vnd.dev.cosign.simplesigning.v1+json`) and
/// `signature_b64` the layer's `dev.cosignproject.cosign/signature`
/// annotation. Trusted when an uploaded key verifies the signature over the
/// payload and the payload is a cosign image signature whose
/// `critical.image.docker-manifest-digest` is `image_digest`.
pub fn verify_cosign_simple_signing(
    image_digest: &str,
    payload: &[u8],
    signature_b64: &str,
    store: &TrustStore,
) -> SignatureCheck {
    let untrusted = |detail| SignatureCheck::not_trusted(Tool::Cosign, String::new(), detail);
    if store.cosign_keys().is_empty() {
        return untrusted(NotTrusted::NoCosignKeys);
    }
    let Some(signature) = decode_base64(signature_b64) else {
        return untrusted(NotTrusted::Malformed(
            "the signature annotation is not base64".to_owned(),
        ));
    };
    let Some(key) = store
        .cosign_keys()
        .iter()
        .find(|key| key.key().verifies_cosign(payload, &signature))
    else {
        return untrusted(NotTrusted::NoMatchingKey);
    };
    match check_simple_signing_payload(payload, image_digest) {
        Ok(()) => signed_by(key),
        Err(detail) => SignatureCheck::not_trusted(Tool::Cosign, key.pem().to_owned(), detail),
    }
}

/// The verdict for a signature `key` verified over content naming the
/// image.
fn signed_by(key: &CosignKey) -> SignatureCheck {
    SignatureCheck::trusted(Tool::Cosign, key.pem().to_owned(), key.id().to_owned())
}

/// The parts of a simple-signing payload that are checked.
#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: serde_json::Map<String, serde_json::Value>,
}

/// Checks that a simple-signing payload is a cosign image signature of
/// `image_digest`.
fn check_simple_signing_payload(payload: &[u8], image_digest: &str) -> Result<(), NotTrusted> {
    let parsed: SimpleSigning = serde_json::from_slice(payload)
        .map_err(|e| NotTrusted::Malformed(format!("simple-signing payload: {e}")))?;
    if parsed.critical.kind != COSIGN_SIGNATURE_TYPE {
        return Err(NotTrusted::NotAnImageSignature(format!(
            "payload type \"{}\"",
            parsed.critical.kind
        )));
    }
    // Go's JSON decoding, which cosign verifies with, matches field names
    // without regard to case (the spec's example spells it
    // `Docker-manifest-digest`).
    let signed = parsed
        .critical
        .image
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("docker-manifest-digest"))
        .and_then(|(_, value)| value.as_str())
        .ok_or_else(|| {
            NotTrusted::Malformed("the payload names no docker-manifest-digest".to_owned())
        })?;
    if signed != image_digest {
        return Err(NotTrusted::DigestMismatch {
            signed: signed.to_owned(),
            image: image_digest.to_owned(),
        });
    }
    Ok(())
}

/// Standard base64 (what cosign and protobuf JSON write), tolerating
/// missing padding, surrounding white space, and the URL-safe alphabet
/// (which protobuf JSON readers accept too).
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

//! sigstore bundles (protobuf-specs' `Bundle`, JSON), as cosign 2.x/3.x
//! attaches them to an image with the new bundle format: a referrer whose
//! one layer is the bundle, holding a DSSE envelope over an in-toto
//! statement whose subject is the image and whose predicate type is
//! `https://sigstore.dev/cosign/sign/v1`.
//!
//! Only the signature over the envelope is verified, with the uploaded
//! keys; transparency-log entries and timestamps in the bundle are not
//! (they need Rekor's and the timestamp authority's keys, and trust here
//! rests on the uploaded key).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{decode_base64, signed_by};
use crate::material::TrustStore;
use crate::media::{COSIGN_SIGN_PREDICATE_TYPE, IN_TOTO_PAYLOAD_TYPE};
use crate::verdict::{NotTrusted, SignatureCheck, Tool};

/// The media type prefix every bundle version shares
/// (`…bundle.v0.3+json`, `…bundle+json;version=0.2`).
const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// Verifies a cosign sigstore bundle (the referrer's layer blob) as a
/// signature of the image `image_digest` (`sha256:<hex>`). Trusted when an
/// uploaded key verifies the DSSE envelope's signature, the envelope holds
/// an in-toto statement with cosign's signing predicate type, and one of
/// its subjects has the image's digest.
pub fn verify_cosign_bundle(
    image_digest: &str,
    bundle_json: &[u8],
    store: &TrustStore,
) -> SignatureCheck {
    let untrusted = |detail| SignatureCheck::not_trusted(Tool::Cosign, String::new(), detail);
    if store.cosign_keys().is_empty() {
        return untrusted(NotTrusted::NoCosignKeys);
    }
    let bundle: Bundle = match serde_json::from_slice(bundle_json) {
        Ok(bundle) => bundle,
        Err(e) => return untrusted(NotTrusted::Malformed(format!("sigstore bundle: {e}"))),
    };
    if !bundle.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        return untrusted(NotTrusted::UnsupportedMediaType(bundle.media_type));
    }
    let envelope = match (bundle.dsse_envelope, bundle.message_signature) {
        (Some(envelope), _) => envelope,
        (None, Some(_)) => return untrusted(NotTrusted::UnsupportedBundleContent),
        (None, None) => {
            return untrusted(NotTrusted::Malformed(
                "the bundle has neither a DSSE envelope nor a message signature".to_owned(),
            ));
        }
    };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return untrusted(NotTrusted::NotAnImageSignature(format!(
            "DSSE payload type \"{}\"",
            envelope.payload_type
        )));
    }
    let Some(payload) = decode_base64(&envelope.payload) else {
        return untrusted(NotTrusted::Malformed(
            "the DSSE payload is not base64".to_owned(),
        ));
    };
    let signed_bytes = pre_authentication_encoding(&envelope.payload_type, &payload);
    let signatures: Vec<Vec<u8>> = envelope
        .signatures
        .iter()
        .filter_map(|signature| decode_base64(&signature.sig))
        .collect();
    let verifying_key = store.cosign_keys().iter().find(|key| {
        signatures
            .iter()
            .any(|signature| key.key().verifies_cosign(&signed_bytes, signature))
    });
    let Some(key) = verifying_key else {
        // A bundle made with an uploaded key names it in its hint: then the
        // envelope was changed, rather than signed by someone else.
        let hint = bundle
            .verification_material
            .and_then(|material| material.public_key)
            .map(|public_key| public_key.hint);
        let claims_uploaded_key =
            hint.is_some_and(|hint| store.cosign_keys().iter().any(|key| key.hint() == hint));
        return untrusted(if claims_uploaded_key {
            NotTrusted::InvalidSignature
        } else {
            NotTrusted::NoMatchingKey
        });
    };
    match check_statement(&payload, image_digest) {
        Ok(()) => signed_by(key),
        Err(detail) => SignatureCheck::not_trusted(Tool::Cosign, key.pem().to_owned(), detail),
    }
}

/// DSSE's pre-authentication encoding, which is what is signed:
/// `DSSEv1 <len type> <type> <len body> <body>`.
pub(crate) fn pre_authentication_encoding(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks that an in-toto statement is cosign's image signature of
/// `image_digest`.
fn check_statement(payload: &[u8], image_digest: &str) -> Result<(), NotTrusted> {
    let statement: Statement = serde_json::from_slice(payload)
        .map_err(|e| NotTrusted::Malformed(format!("in-toto statement: {e}")))?;
    if statement.predicate_type != COSIGN_SIGN_PREDICATE_TYPE {
        return Err(NotTrusted::NotAnImageSignature(format!(
            "an attestation of predicate type \"{}\"",
            statement.predicate_type
        )));
    }
    let (algorithm, encoded) = image_digest.split_once(':').unwrap_or(("", image_digest));
    let names_image = statement
        .subject
        .iter()
        .any(|subject| subject.digest.get(algorithm).map(String::as_str) == Some(encoded));
    if names_image {
        return Ok(());
    }
    let signed = statement
        .subject
        .first()
        .and_then(|subject| subject.digest.iter().next())
        .map(|(algorithm, encoded)| format!("{algorithm}:{encoded}"))
        .unwrap_or_else(|| "no subject".to_owned());
    Err(NotTrusted::DigestMismatch {
        signed,
        image: image_digest.to_owned(),
    })
}

/// The parts of a bundle that are read (protobuf JSON, camelCase names).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: Option<VerificationMaterial>,
    dsse_envelope: Option<DsseEnvelope>,
    message_signature: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationMaterial {
    public_key: Option<PublicKeyIdentifier>,
}

#[derive(Deserialize)]
struct PublicKeyIdentifier {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseEnvelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    subject: Vec<ResourceDescriptor>,
    predicate_type: String,
}

#[derive(Deserialize)]
struct ResourceDescriptor {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_authentication_encoding_is_dsse_v1() {
        assert_eq!(
            pre_authentication_encoding("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}

//! cosign's sigstore bundles (new bundle format): the referrer, and the
//! verdicts.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_trust::media;
use berth_trust::sign::{KeyAlgorithm, SigningKey, cosign_bundle};
use berth_trust::{NotTrusted, TrustStore, verify_cosign_bundle};
use serde_json::{Value, json};

use crate::support::{assert_trusted, image, key, reason, store_of_keys};

#[test]
fn trusted_with_each_key_algorithm() {
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Ed25519,
    ] {
        let signer = key(algorithm);
        let store = store_of_keys(&[&key(KeyAlgorithm::EcdsaP256), &signer]);
        let target = image("app");
        let signed = cosign_bundle(&signer, &target, SystemTime::now()).expect("signed");
        let check = verify_cosign_bundle(&target.digest, &signed.bundle, &store);
        assert_trusted(&check);
        assert_eq!(check.author, signer.public_key_pem(), "{algorithm:?}");
        assert_eq!(
            check.trusted_by.as_deref(),
            Some(store.cosign_keys()[1].id())
        );
    }
}

#[test]
fn the_referrer_is_cosigns() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let target = image("app");
    let signed = cosign_bundle(&signer, &target, SystemTime::now()).expect("signed");
    let manifest: Value =
        serde_json::from_slice(&signed.referrer.manifest.bytes).expect("manifest");
    assert_eq!(manifest["artifactType"], media::SIGSTORE_BUNDLE);
    assert_eq!(manifest["config"]["mediaType"], media::OCI_EMPTY);
    assert_eq!(signed.referrer.blobs[0].bytes, b"{}");
    assert_eq!(manifest["layers"][0]["mediaType"], media::SIGSTORE_BUNDLE);
    assert_eq!(
        manifest["layers"][0]["digest"],
        signed.referrer.blobs[1].digest.as_str()
    );
    assert_eq!(signed.referrer.blobs[1].bytes, signed.bundle);
    assert_eq!(manifest["subject"]["digest"], target.digest.as_str());
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations[media::SIGSTORE_BUNDLE_CONTENT_ANNOTATION],
        "dsse-envelope"
    );
    assert_eq!(
        annotations[media::SIGSTORE_BUNDLE_PREDICATE_TYPE_ANNOTATION],
        media::COSIGN_SIGN_PREDICATE_TYPE
    );
    assert!(annotations[media::OCI_CREATED_ANNOTATION].is_string());

    let bundle: Value = serde_json::from_slice(&signed.bundle).expect("bundle");
    assert_eq!(bundle["mediaType"], media::SIGSTORE_BUNDLE);
    assert!(bundle["verificationMaterial"]["publicKey"]["hint"].is_string());
    let envelope = &bundle["dsseEnvelope"];
    assert_eq!(envelope["payloadType"], media::IN_TOTO_PAYLOAD_TYPE);
    let statement: Value = serde_json::from_slice(
        &STANDARD
            .decode(envelope["payload"].as_str().expect("payload"))
            .expect("base64"),
    )
    .expect("statement");
    assert_eq!(statement["_type"], media::IN_TOTO_STATEMENT_V1);
    assert_eq!(
        statement["predicateType"],
        media::COSIGN_SIGN_PREDICATE_TYPE
    );
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        &target.digest[7..]
    );
}

/// A bundle over `statement`, signed by `signer`, with `signer`'s hint.
fn bundle_of(signer: &SigningKey, statement: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(statement).expect("json");
    let payload_type = media::IN_TOTO_PAYLOAD_TYPE;
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    let signature = signer.cosign_signature(&pae).expect("signed");
    let hint = {
        use sha2::Digest as _;
        STANDARD.encode(sha2::Sha256::digest(signer.public_key_der()))
    };
    serde_json::to_vec(&json!({
        "mediaType": media::SIGSTORE_BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        "dsseEnvelope": {
            "payload": STANDARD.encode(&payload),
            "payloadType": payload_type,
            "signatures": [{"sig": STANDARD.encode(signature)}],
        },
    }))
    .expect("json")
}

#[test]
fn untrusted_cases_each_say_why() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let stranger = key(KeyAlgorithm::EcdsaP256);
    let target = image("app");
    let elsewhere = image("another");
    let store = store_of_keys(&[&signer]);
    let signed = cosign_bundle(&signer, &target, SystemTime::now()).expect("signed");
    let of_other_image = cosign_bundle(&signer, &elsewhere, SystemTime::now()).expect("signed");

    // The envelope's payload swapped for another image's statement, the
    // signature kept: the hint names the uploaded key, so it was changed.
    let mut tampered: Value = serde_json::from_slice(&signed.bundle).expect("bundle");
    let other: Value = serde_json::from_slice(&of_other_image.bundle).expect("bundle");
    tampered["dsseEnvelope"]["payload"] = other["dsseEnvelope"]["payload"].clone();
    let tampered = serde_json::to_vec(&tampered).expect("json");

    let attestation = bundle_of(
        &signer,
        &json!({
            "_type": media::IN_TOTO_STATEMENT_V1,
            "subject": [{"digest": {"sha256": &target.digest[7..]}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {},
        }),
    );
    let message_signature = serde_json::to_vec(&json!({
        "mediaType": media::SIGSTORE_BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": "x"}},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": "AAAA"}, "signature": "AAAA"},
    }))
    .expect("json");
    let mut other_media_type: Value = serde_json::from_slice(&signed.bundle).expect("bundle");
    other_media_type["mediaType"] = "application/vnd.dev.other+json".into();
    let other_media_type = serde_json::to_vec(&other_media_type).expect("json");

    let cases: [(&str, &[u8], TrustStore, NotTrusted, bool); 8] = [
        ("signed by an unknown key", &signed.bundle, store_of_keys(&[&stranger]), NotTrusted::NoMatchingKey, false),
        (
            "signature over another digest",
            &of_other_image.bundle,
            store.clone(),
            NotTrusted::DigestMismatch { signed: elsewhere.digest.clone(), image: target.digest.clone() },
            true,
        ),
        ("tampered payload", &tampered, store.clone(), NotTrusted::InvalidSignature, false),
        ("no key uploaded", &signed.bundle, TrustStore::default(), NotTrusted::NoCosignKeys, false),
        (
            "an attestation, not a signature",
            &attestation,
            store.clone(),
            NotTrusted::NotAnImageSignature(
                "an attestation of predicate type \"https://slsa.dev/provenance/v1\"".to_owned(),
            ),
            true,
        ),
        ("a message signature", &message_signature, store.clone(), NotTrusted::UnsupportedBundleContent, false),
        (
            "another media type",
            &other_media_type,
            store.clone(),
            NotTrusted::UnsupportedMediaType("application/vnd.dev.other+json".to_owned()),
            false,
        ),
        (
            "a DSSE envelope of something else",
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"e30=","payloadType":"text/plain","signatures":[]}}"#,
            store.clone(),
            NotTrusted::NotAnImageSignature("DSSE payload type \"text/plain\"".to_owned()),
            false,
        ),
    ];
    for (name, bundle, store, expected, author_known) in cases {
        let check = verify_cosign_bundle(&target.digest, bundle, &store);
        assert_eq!(reason(&check), expected, "{name}");
        let expected_author = if author_known {
            signer.public_key_pem()
        } else {
            String::new()
        };
        assert_eq!(check.author, expected_author, "{name}");
    }
}

#[test]
fn garbage_and_truncated_bundles_are_malformed() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let target = image("app");
    let store = store_of_keys(&[&signer]);
    let signed = cosign_bundle(&signer, &target, SystemTime::now()).expect("signed");
    for bundle in [
        &b""[..],
        b"garbage",
        b"{}",
        &signed.bundle[..signed.bundle.len() / 2],
        br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
    ] {
        let check = verify_cosign_bundle(&target.digest, bundle, &store);
        assert!(
            matches!(reason(&check), NotTrusted::Malformed(_)),
            "{check:?}"
        );
    }
}

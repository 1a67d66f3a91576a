//! notation signatures that are not trusted, JWS and COSE: each case its
//! own reason, and malformed envelopes as reasons, not panics.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_trust::media;
use berth_trust::sign::{
    EnvelopeFormat, ExtendedKeyUsage, KeyAlgorithm, NotationOptions, NotationSignature, SignerSpec,
    SigningTarget, Validity,
};
use berth_trust::{NotTrusted, SignedImage, TrustStore, TrustStoreType, verify_notation};
use serde_json::Value;

use crate::notation::{DAY, FORMATS, root, sign, signer_spec, store, verify};
use crate::support::{assert_trusted, image, reason};

#[test]
fn untrusted_cases_each_say_why() {
    let now = SystemTime::now();
    let root = root(KeyAlgorithm::EcdsaP256);
    let ca_store = store(&root, TrustStoreType::Ca);
    let good = root
        .issue_signer(&signer_spec(KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let expired = root
        .issue_signer(&SignerSpec {
            validity: Validity {
                not_before: now - 60 * DAY,
                not_after: now - DAY,
            },
            ..signer_spec(KeyAlgorithm::EcdsaP256)
        })
        .expect("signer");
    let tls = root
        .issue_signer(&SignerSpec {
            extended_key_usage: ExtendedKeyUsage::ServerAuth,
            ..signer_spec(KeyAlgorithm::EcdsaP256)
        })
        .expect("signer");
    let stranger = self::root(KeyAlgorithm::EcdsaP256)
        .issue_signer(&signer_spec(KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let target = image("app");
    let elsewhere = image("another");

    for format in FORMATS {
        let now_options = NotationOptions::now(format);
        let signed = sign(&good, &target, now_options);
        let cases: Vec<(&str, NotationSignature, TrustStore, NotTrusted)> = vec![
            (
                "chain to an untrusted root",
                sign(&stranger, &target, now_options),
                ca_store.clone(),
                NotTrusted::UntrustedCertificate,
            ),
            (
                "signature over another digest",
                sign(&good, &elsewhere, now_options),
                ca_store.clone(),
                NotTrusted::DigestMismatch {
                    signed: elsewhere.digest.clone(),
                    image: target.digest.clone(),
                },
            ),
            (
                "expired certificate",
                sign(
                    &expired,
                    &target,
                    NotationOptions {
                        signing_time: now - 10 * DAY,
                        ..now_options
                    },
                ),
                ca_store.clone(),
                NotTrusted::CertificateExpired {
                    subject: "CN=signer,O=Example,C=US".to_owned(),
                },
            ),
            (
                "signed while the certificate was not valid",
                sign(
                    &good,
                    &target,
                    NotationOptions {
                        signing_time: now - 30 * DAY,
                        ..now_options
                    },
                ),
                ca_store.clone(),
                NotTrusted::NotValidAtSigningTime {
                    subject: "CN=signer,O=Example,C=US".to_owned(),
                },
            ),
            (
                "a leaf without the code signing usage",
                sign(&tls, &target, now_options),
                ca_store.clone(),
                NotTrusted::MissingCodeSigningUsage,
            ),
            (
                "the signature's expiry has passed",
                sign(
                    &good,
                    &target,
                    NotationOptions {
                        expiry: Some(now - Duration::from_secs(60)),
                        ..now_options
                    },
                ),
                ca_store.clone(),
                NotTrusted::SignatureExpired,
            ),
            (
                "the root only in the signingAuthority store",
                signed.clone(),
                store(&root, TrustStoreType::SigningAuthority),
                NotTrusted::NoNotationCertificates(TrustStoreType::Ca),
            ),
            (
                "nothing uploaded",
                signed.clone(),
                TrustStore::default(),
                NotTrusted::NoNotationCertificates(TrustStoreType::Ca),
            ),
            (
                "tampered payload",
                tamper(&signed, &target),
                ca_store.clone(),
                NotTrusted::InvalidSignature,
            ),
        ];
        for (name, signature, store, expected) in cases {
            let check = verify(&signature, &target, &store);
            assert_eq!(reason(&check), expected, "{format:?}: {name}");
            assert_eq!(
                check.author, "CN=signer,O=Example,C=US",
                "{format:?}: {name}: zot names the author anyway"
            );
            assert_eq!(check.trusted_by, None);
            assert_eq!(check.valid_until, None);
        }
    }
}

/// The envelope with one hex digit of the signed digest changed, the
/// signature kept.
fn tamper(signature: &NotationSignature, target: &SigningTarget) -> NotationSignature {
    let mut tampered = signature.clone();
    match signature.envelope.media_type.as_str() {
        media::NOTATION_JWS => {
            let mut jws: Value = serde_json::from_slice(&signature.envelope.bytes).expect("jws");
            let payload = URL_SAFE_NO_PAD
                .decode(jws["payload"].as_str().expect("payload"))
                .expect("base64url");
            let changed = String::from_utf8(payload)
                .expect("utf-8")
                .replace(&target.digest[7..9], "zz");
            jws["payload"] = URL_SAFE_NO_PAD.encode(changed).into();
            tampered.envelope.bytes = serde_json::to_vec(&jws).expect("json");
        }
        _ => {
            let needle = target.digest.as_bytes();
            let at = signature
                .envelope
                .bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .expect("the payload is in the envelope");
            let digit = &mut tampered.envelope.bytes[at + 7];
            *digit = if *digit == b'0' { b'1' } else { b'0' };
        }
    }
    tampered
}

#[test]
fn the_signed_descriptor_must_match_what_is_known_of_the_image() {
    let root = root(KeyAlgorithm::EcdsaP256);
    let identity = root
        .issue_signer(&signer_spec(KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let store = store(&root, TrustStoreType::Ca);
    let target = image("app");
    let signature = sign(
        &identity,
        &target,
        NotationOptions::now(EnvelopeFormat::Jws),
    );
    let check = |image: SignedImage<'_>| {
        verify_notation(
            &image,
            media::NOTATION_JWS,
            &signature.envelope.bytes,
            &store,
            SystemTime::now(),
        )
    };
    let digest_only = SignedImage {
        digest: &target.digest,
        media_type: None,
        size: None,
    };
    assert_trusted(&check(digest_only));
    assert_eq!(
        reason(&check(SignedImage {
            size: Some(target.size + 1),
            ..digest_only
        })),
        NotTrusted::DescriptorMismatch("size")
    );
    assert_eq!(
        reason(&check(SignedImage {
            media_type: Some("application/vnd.oci.image.index.v1+json"),
            ..digest_only
        })),
        NotTrusted::DescriptorMismatch("media type")
    );
}

#[test]
fn malformed_envelopes_are_reasons_not_panics() {
    let root = root(KeyAlgorithm::EcdsaP256);
    let identity = root
        .issue_signer(&signer_spec(KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let store = store(&root, TrustStoreType::Ca);
    let target = image("app");
    let jws = sign(
        &identity,
        &target,
        NotationOptions::now(EnvelopeFormat::Jws),
    );
    let cose = sign(
        &identity,
        &target,
        NotationOptions::now(EnvelopeFormat::Cose),
    );
    let image = SignedImage {
        digest: &target.digest,
        media_type: None,
        size: None,
    };
    let now = SystemTime::now();
    let verdict = |media_type: &str, bytes: &[u8]| {
        reason(&verify_notation(&image, media_type, bytes, &store, now))
    };

    assert_eq!(
        verdict("application/json", &jws.envelope.bytes),
        NotTrusted::UnsupportedMediaType("application/json".to_owned())
    );
    for (media_type, bytes) in [
        (media::NOTATION_COSE, &jws.envelope.bytes[..]),
        (media::NOTATION_JWS, &cose.envelope.bytes[..]),
        (
            media::NOTATION_JWS,
            &jws.envelope.bytes[..jws.envelope.bytes.len() - 9],
        ),
        (
            media::NOTATION_COSE,
            &cose.envelope.bytes[..cose.envelope.bytes.len() - 9],
        ),
        (media::NOTATION_JWS, b"garbage"),
        (media::NOTATION_COSE, b"garbage"),
        (media::NOTATION_JWS, b""),
        (media::NOTATION_COSE, b""),
        (
            media::NOTATION_JWS,
            br#"{"payload":"","protected":"","signature":""}"#,
        ),
    ] {
        assert!(
            matches!(verdict(media_type, bytes), NotTrusted::Malformed(_)),
            "{media_type}: {:?}",
            verdict(media_type, bytes)
        );
    }

    // A critical header this crate does not process: refused, as the spec
    // requires, before anything else.
    let mut envelope: Value = serde_json::from_slice(&jws.envelope.bytes).expect("jws");
    let protected = URL_SAFE_NO_PAD
        .decode(envelope["protected"].as_str().expect("protected"))
        .expect("base64url");
    let mut protected: Value = serde_json::from_slice(&protected).expect("json");
    protected["crit"]
        .as_array_mut()
        .expect("crit")
        .push("io.cncf.notary.verificationPlugin".into());
    protected["io.cncf.notary.verificationPlugin"] = "com.example.plugin".into();
    envelope["protected"] = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&protected).expect("json"))
        .into();
    assert_eq!(
        verdict(
            media::NOTATION_JWS,
            &serde_json::to_vec(&envelope).expect("json")
        ),
        NotTrusted::UnsupportedCriticalHeader("io.cncf.notary.verificationPlugin".to_owned())
    );
}

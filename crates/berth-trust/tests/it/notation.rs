//! notation signatures, JWS and COSE: the referrer, and the verdicts.

use std::time::{Duration, SystemTime};

use berth_trust::media;
use berth_trust::sign::{
    CertificateAuthority, EnvelopeFormat, ExtendedKeyUsage, KeyAlgorithm, NotationOptions,
    NotationSignature, Scheme, SignerSpec, SigningIdentity, SigningTarget, Validity, notation_sign,
};
use berth_trust::{
    NotTrusted, NotationCert, SignatureCheck, SignedImage, Tool, TrustStore, TrustStoreType,
    verify_notation,
};
use serde_json::Value;

use crate::support::{assert_trusted, image, reason};

pub(crate) const FORMATS: [EnvelopeFormat; 2] = [EnvelopeFormat::Jws, EnvelopeFormat::Cose];
pub(crate) const DAY: Duration = Duration::from_secs(86_400);

pub(crate) fn root(algorithm: KeyAlgorithm) -> CertificateAuthority {
    let now = SystemTime::now();
    let validity = Validity {
        not_before: now - 100 * DAY,
        not_after: now + 365 * DAY,
    };
    CertificateAuthority::root("Example Root", algorithm, validity).expect("root")
}

pub(crate) fn signer_spec(algorithm: KeyAlgorithm) -> SignerSpec {
    SignerSpec {
        organization: Some("Example".to_owned()),
        country: Some("US".to_owned()),
        ..SignerSpec::code_signing("signer", algorithm)
    }
}

pub(crate) fn store(root: &CertificateAuthority, store_type: TrustStoreType) -> TrustStore {
    let certs = NotationCert::from_pem(root.pem().as_bytes(), store_type).expect("upload");
    TrustStore::new(Vec::new(), certs)
}

pub(crate) fn sign(
    identity: &SigningIdentity,
    target: &SigningTarget,
    options: NotationOptions,
) -> NotationSignature {
    notation_sign(identity, target, &options).expect("signed")
}

pub(crate) fn verify(
    signature: &NotationSignature,
    target: &SigningTarget,
    store: &TrustStore,
) -> SignatureCheck {
    let image = SignedImage {
        digest: &target.digest,
        media_type: Some(&target.media_type),
        size: Some(target.size),
    };
    verify_notation(
        &image,
        &signature.envelope.media_type,
        &signature.envelope.bytes,
        store,
        SystemTime::now(),
    )
}

#[test]
fn trusted_through_an_intermediate_in_both_formats() {
    let root = root(KeyAlgorithm::EcdsaP384);
    let intermediate = root
        .intermediate(
            "Example Intermediate",
            KeyAlgorithm::EcdsaP256,
            Validity::days_from_now(200),
        )
        .expect("intermediate");
    let identity = intermediate
        .issue_signer(&signer_spec(KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let store = store(&root, TrustStoreType::Ca);
    let target = image("app");
    for format in FORMATS {
        let signature = sign(&identity, &target, NotationOptions::now(format));
        let check = verify(&signature, &target, &store);
        assert_trusted(&check);
        assert_eq!(check.tool, Tool::Notation);
        assert_eq!(
            check.author, "CN=signer,O=Example,C=US",
            "zot's author: Go's subject string"
        );
        assert_eq!(
            check.trusted_by.as_deref(),
            Some(
                store
                    .notation_certs(TrustStoreType::Ca)
                    .next()
                    .expect("root")
                    .id()
            )
        );
        let until = check
            .valid_until
            .expect("a trusted notation signature has a date");
        assert!(until > SystemTime::now() + 300 * DAY && until < SystemTime::now() + 366 * DAY);
    }
}

#[test]
fn trusted_with_each_algorithm() {
    let cases = [
        (KeyAlgorithm::EcdsaP256, FORMATS.as_slice()),
        (KeyAlgorithm::EcdsaP384, FORMATS.as_slice()),
        (KeyAlgorithm::EcdsaP521, FORMATS.as_slice()),
        (KeyAlgorithm::Rsa2048, FORMATS.as_slice()),
        (KeyAlgorithm::Rsa3072, FORMATS.as_slice()),
        (KeyAlgorithm::Rsa4096, &[EnvelopeFormat::Cose][..]),
    ];
    let root = root(KeyAlgorithm::Rsa2048);
    let store = store(&root, TrustStoreType::Ca);
    let target = image("app");
    for (algorithm, formats) in cases {
        let identity = root.issue_signer(&signer_spec(algorithm)).expect("signer");
        for format in formats {
            let check = verify(
                &sign(&identity, &target, NotationOptions::now(*format)),
                &target,
                &store,
            );
            assert!(
                check.trusted,
                "{algorithm:?} {format:?}: {:?}",
                check.detail
            );
        }
    }
}

#[test]
fn the_referrer_is_notations() {
    let root = root(KeyAlgorithm::EcdsaP256);
    let identity = root
        .issue_signer(&signer_spec(KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let target = image("app");
    for (format, media_type) in [
        (EnvelopeFormat::Jws, media::NOTATION_JWS),
        (EnvelopeFormat::Cose, media::NOTATION_COSE),
    ] {
        let signature = sign(&identity, &target, NotationOptions::now(format));
        assert_eq!(signature.envelope.media_type, media_type);
        let manifest: Value =
            serde_json::from_slice(&signature.referrer.manifest.bytes).expect("manifest");
        assert_eq!(manifest["mediaType"], media::OCI_MANIFEST);
        assert_eq!(
            manifest["artifactType"],
            media::NOTATION_SIGNATURE_ARTIFACT_TYPE
        );
        assert_eq!(manifest["config"]["mediaType"], media::OCI_EMPTY);
        assert_eq!(
            manifest["config"]["digest"],
            signature.referrer.blobs[0].digest.as_str()
        );
        assert_eq!(manifest["layers"][0]["mediaType"], media_type);
        assert_eq!(
            manifest["layers"][0]["digest"],
            signature.envelope.digest.as_str()
        );
        assert_eq!(signature.referrer.blobs[1], signature.envelope);
        assert_eq!(manifest["subject"]["digest"], target.digest.as_str());
        assert_eq!(manifest["subject"]["size"], target.size);
        let thumbprints: Vec<String> = serde_json::from_str(
            manifest["annotations"][media::NOTATION_THUMBPRINT_ANNOTATION]
                .as_str()
                .expect("annotation"),
        )
        .expect("a JSON list");
        let expected: Vec<String> = identity
            .chain
            .iter()
            .map(|cert| {
                use sha2::Digest as _;
                hex::encode(sha2::Sha256::digest(cert))
            })
            .collect();
        assert_eq!(thumbprints, expected);
    }
}

#[test]
fn signing_authority_scheme_uses_the_authentic_signing_time() {
    let now = SystemTime::now();
    let root = root(KeyAlgorithm::EcdsaP256);
    // Expired now, valid when the signing authority signed.
    let expired_now = root
        .issue_signer(&SignerSpec {
            validity: Validity {
                not_before: now - 60 * DAY,
                not_after: now - DAY,
            },
            ..signer_spec(KeyAlgorithm::EcdsaP256)
        })
        .expect("signer");
    let target = image("app");
    for format in FORMATS {
        let authority = NotationOptions {
            scheme: Scheme::SigningAuthority,
            signing_time: now - 10 * DAY,
            ..NotationOptions::now(format)
        };
        let signature = sign(&expired_now, &target, authority);
        assert_trusted(&verify(
            &signature,
            &target,
            &store(&root, TrustStoreType::SigningAuthority),
        ));
        assert_eq!(
            reason(&verify(
                &signature,
                &target,
                &store(&root, TrustStoreType::Ca)
            )),
            NotTrusted::NoNotationCertificates(TrustStoreType::SigningAuthority)
        );
        // The same certificate under notary.x509, which has no authentic
        // time: judged now, and expired.
        let x509 = sign(
            &expired_now,
            &target,
            NotationOptions {
                scheme: Scheme::X509,
                ..authority
            },
        );
        assert!(matches!(
            reason(&verify(&x509, &target, &store(&root, TrustStoreType::Ca))),
            NotTrusted::CertificateExpired { .. }
        ));
        // Signed by the authority before the certificate was valid.
        let too_early = sign(
            &expired_now,
            &target,
            NotationOptions {
                signing_time: now - 90 * DAY,
                ..authority
            },
        );
        assert!(matches!(
            reason(&verify(
                &too_early,
                &target,
                &store(&root, TrustStoreType::SigningAuthority)
            )),
            NotTrusted::CertificateNotYetValid { .. }
        ));
    }
}

#[test]
fn a_leaf_without_extended_key_usage_is_a_signer_and_expiry_bounds_the_date() {
    let root = root(KeyAlgorithm::EcdsaP256);
    let identity = root
        .issue_signer(&SignerSpec {
            extended_key_usage: ExtendedKeyUsage::Absent,
            ..signer_spec(KeyAlgorithm::EcdsaP256)
        })
        .expect("signer");
    let target = image("app");
    let expiry = SystemTime::now() + 7 * DAY;
    for format in FORMATS {
        let options = NotationOptions {
            expiry: Some(expiry),
            ..NotationOptions::now(format)
        };
        let check = verify(
            &sign(&identity, &target, options),
            &target,
            &store(&root, TrustStoreType::Ca),
        );
        assert_trusted(&check);
        let until = check.valid_until.expect("dated");
        let difference = until
            .duration_since(expiry)
            .unwrap_or_else(|e| e.duration());
        assert!(
            difference < Duration::from_secs(2),
            "the expiry, not the certificate's end"
        );
    }
}

#[test]
fn an_uploaded_intermediate_is_trusted_as_notation_trusts_any_certificate_of_the_chain() {
    let root = root(KeyAlgorithm::EcdsaP256);
    let intermediate = root
        .intermediate(
            "Example Intermediate",
            KeyAlgorithm::EcdsaP256,
            Validity::days_from_now(200),
        )
        .expect("intermediate");
    let identity = intermediate
        .issue_signer(&signer_spec(KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let store = store(&intermediate, TrustStoreType::Ca);
    let target = image("app");
    let check = verify(
        &sign(
            &identity,
            &target,
            NotationOptions::now(EnvelopeFormat::Jws),
        ),
        &target,
        &store,
    );
    assert_trusted(&check);
    let uploaded = store
        .notation_certs(TrustStoreType::Ca)
        .next()
        .expect("intermediate");
    assert_eq!(uploaded.subject(), "CN=Example Intermediate");
    assert_eq!(check.trusted_by.as_deref(), Some(uploaded.id()));
}

#[test]
fn a_self_signed_signer_is_its_own_anchor_like_notations_test_certificate() {
    let identity =
        SigningIdentity::self_signed(&signer_spec(KeyAlgorithm::EcdsaP256)).expect("signer");
    let uploaded =
        NotationCert::from_pem(identity.certificate_pem().as_bytes(), TrustStoreType::Ca)
            .expect("a self-signed leaf is accepted");
    let store = TrustStore::new(Vec::new(), uploaded);
    let target = image("app");
    for format in FORMATS {
        let check = verify(
            &sign(&identity, &target, NotationOptions::now(format)),
            &target,
            &store,
        );
        assert_trusted(&check);
        assert_eq!(check.author, "CN=signer,O=Example,C=US");
    }
    let other =
        SigningIdentity::self_signed(&signer_spec(KeyAlgorithm::EcdsaP256)).expect("signer");
    let check = verify(
        &sign(&other, &target, NotationOptions::now(EnvelopeFormat::Jws)),
        &target,
        &store,
    );
    assert_eq!(reason(&check), NotTrusted::UntrustedCertificate);
}

//! The verify functions and the upload parsers never panic, whatever the
//! bytes: random ones, and valid signatures with bytes changed.

use std::sync::OnceLock;
use std::time::SystemTime;

use berth_trust::sign::{
    CertificateAuthority, EnvelopeFormat, KeyAlgorithm, NotationOptions, SignerSpec, Validity,
    cosign_bundle, cosign_simple_signing, notation_sign,
};
use berth_trust::{
    CosignKey, NotationCert, SignedImage, TrustStore, TrustStoreType, media, verify_cosign_bundle,
    verify_cosign_simple_signing, verify_notation,
};
use proptest::prelude::*;

use crate::support::{image, key};

/// Valid signatures of one image, and a store that trusts them.
struct Fixture {
    digest: String,
    store: TrustStore,
    simple_payload: Vec<u8>,
    simple_signature: String,
    bundle: Vec<u8>,
    jws: Vec<u8>,
    cose: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let signer = key(KeyAlgorithm::EcdsaP256);
        let root = CertificateAuthority::root(
            "root",
            KeyAlgorithm::EcdsaP256,
            Validity::days_from_now(30),
        )
        .expect("root");
        let identity = root
            .issue_signer(&SignerSpec::code_signing("signer", KeyAlgorithm::EcdsaP256))
            .expect("signer");
        let target = image("app");
        let simple =
            cosign_simple_signing(&signer, &target, "registry.example/app").expect("signed");
        let bundle = cosign_bundle(&signer, &target, SystemTime::now()).expect("signed");
        let sign = |format| {
            notation_sign(&identity, &target, &NotationOptions::now(format))
                .expect("signed")
                .envelope
                .bytes
        };
        let jws = sign(EnvelopeFormat::Jws);
        let cose = sign(EnvelopeFormat::Cose);
        Fixture {
            store: TrustStore::new(
                vec![CosignKey::from_pem(signer.public_key_pem().as_bytes()).expect("key")],
                NotationCert::from_pem(root.pem().as_bytes(), TrustStoreType::Ca).expect("cert"),
            ),
            digest: target.digest,
            simple_payload: simple.payload,
            simple_signature: simple.signature_b64,
            bundle: bundle.bundle,
            jws,
            cose,
        }
    })
}

fn notation(media_type: &str, envelope: &[u8]) -> bool {
    let f = fixture();
    let image = SignedImage {
        digest: &f.digest,
        media_type: None,
        size: None,
    };
    verify_notation(&image, media_type, envelope, &f.store, SystemTime::now()).trusted
}

#[test]
fn the_fixture_verifies_unchanged() {
    let f = fixture();
    assert!(
        verify_cosign_simple_signing(&f.digest, &f.simple_payload, &f.simple_signature, &f.store)
            .trusted
    );
    assert!(verify_cosign_bundle(&f.digest, &f.bundle, &f.store).trusted);
    assert!(notation(media::NOTATION_JWS, &f.jws));
    assert!(notation(media::NOTATION_COSE, &f.cose));
}

/// `bytes` with the byte at `index` (modulo its length) replaced.
fn mutate(bytes: &[u8], index: usize, value: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        let at = index % out.len();
        out[at] = value;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), text in ".{0,200}") {
        let f = fixture();
        let _ = verify_cosign_simple_signing(&f.digest, &bytes, &text, &f.store);
        let _ = verify_cosign_bundle(&f.digest, &bytes, &f.store);
        prop_assert!(!notation(media::NOTATION_JWS, &bytes));
        prop_assert!(!notation(media::NOTATION_COSE, &bytes));
        let _ = CosignKey::from_pem(&bytes);
        let _ = NotationCert::from_pem(&bytes, TrustStoreType::Ca);
        let _ = CosignKey::from_pem(text.as_bytes());
    }

    #[test]
    fn valid_signatures_with_a_byte_changed(index in any::<usize>(), value in any::<u8>()) {
        let f = fixture();
        let _ = verify_cosign_simple_signing(&f.digest, &mutate(&f.simple_payload, index, value), &f.simple_signature, &f.store);
        let _ = verify_cosign_bundle(&f.digest, &mutate(&f.bundle, index, value), &f.store);
        let _ = notation(media::NOTATION_JWS, &mutate(&f.jws, index, value));
        let _ = notation(media::NOTATION_COSE, &mutate(&f.cose, index, value));
    }

    #[test]
    fn valid_signatures_truncated(cut in any::<usize>()) {
        let f = fixture();
        let _ = verify_cosign_bundle(&f.digest, &f.bundle[..cut % f.bundle.len()], &f.store);
        prop_assert!(!notation(media::NOTATION_JWS, &f.jws[..cut % f.jws.len()]));
        prop_assert!(!notation(media::NOTATION_COSE, &f.cose[..cut % f.cose.len()]));
    }
}

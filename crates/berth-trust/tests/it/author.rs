//! A notation signature's author is its signing certificate's subject as
//! Go's `pkix.Name.String()` writes it, as zot reports it.

use std::time::SystemTime;

use berth_trust::sign::{
    CertificateAuthority, EnvelopeFormat, KeyAlgorithm, NotationOptions, SignerSpec, Validity,
    notation_sign,
};
use berth_trust::{NotationCert, SignedImage, TrustStore, TrustStoreType, verify_notation};

use crate::support::image;

fn author_of(spec: SignerSpec) -> String {
    let root =
        CertificateAuthority::root("root", KeyAlgorithm::EcdsaP256, Validity::days_from_now(30))
            .expect("root");
    let identity = root.issue_signer(&spec).expect("signer");
    let target = image("app");
    let signature = notation_sign(
        &identity,
        &target,
        &NotationOptions::now(EnvelopeFormat::Cose),
    )
    .expect("signed");
    let store = TrustStore::new(
        Vec::new(),
        NotationCert::from_pem(root.pem().as_bytes(), TrustStoreType::Ca).expect("upload"),
    );
    let image = SignedImage {
        digest: &target.digest,
        media_type: None,
        size: None,
    };
    let check = verify_notation(
        &image,
        &signature.envelope.media_type,
        &signature.envelope.bytes,
        &store,
        SystemTime::now(),
    );
    assert!(check.trusted, "{:?}", check.detail);
    check.author
}

#[test]
fn go_orders_by_attribute_type_and_reverses() {
    // rcgen writes CN first; Go writes CN first too, because it groups C,
    // O, CN in that order and then reverses.
    let spec = SignerSpec {
        organization: Some("Example".to_owned()),
        country: Some("US".to_owned()),
        ..SignerSpec::code_signing("builder", KeyAlgorithm::EcdsaP256)
    };
    assert_eq!(author_of(spec), "CN=builder,O=Example,C=US");
    assert_eq!(
        author_of(SignerSpec::code_signing("solo", KeyAlgorithm::EcdsaP256)),
        "CN=solo"
    );
}

#[test]
fn go_escapes_special_characters() {
    let spec = SignerSpec {
        organization: Some("Example, Inc.".to_owned()),
        ..SignerSpec::code_signing(" #1 signer+co ", KeyAlgorithm::EcdsaP256)
    };
    assert_eq!(author_of(spec), "CN=\\ #1 signer\\+co\\ ,O=Example\\, Inc.");
    let spec = SignerSpec::code_signing("#hash", KeyAlgorithm::EcdsaP256);
    assert_eq!(author_of(spec), "CN=\\#hash");
}

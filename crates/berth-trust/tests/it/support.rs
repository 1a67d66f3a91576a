//! Shared fixtures: images to sign, stores, the reason of a verdict.

use berth_trust::sign::{KeyAlgorithm, SigningKey, SigningTarget};
use berth_trust::{CosignKey, NotTrusted, SignatureCheck, TrustStore};

/// An image manifest to sign, different for each `seed`.
pub(crate) fn image(seed: &str) -> SigningTarget {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[],"annotations":{{"seed":"{seed}"}}}}"#,
        "0".repeat(64)
    );
    SigningTarget::of_manifest(
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    )
}

/// A new key of `algorithm`.
pub(crate) fn key(algorithm: KeyAlgorithm) -> SigningKey {
    SigningKey::generate(algorithm).expect("key generation")
}

/// A store with these keys' public halves uploaded.
pub(crate) fn store_of_keys(keys: &[&SigningKey]) -> TrustStore {
    let uploaded = keys
        .iter()
        .map(|key| CosignKey::from_pem(key.public_key_pem().as_bytes()).expect("upload"))
        .collect();
    TrustStore::new(uploaded, Vec::new())
}

/// The reason a check is not trusted; panics when it is trusted.
pub(crate) fn reason(check: &SignatureCheck) -> NotTrusted {
    assert!(!check.trusted, "expected not trusted: {check:?}");
    check
        .detail
        .clone()
        .expect("an untrusted check has a reason")
}

/// Asserts the check is trusted, showing why not otherwise.
pub(crate) fn assert_trusted(check: &SignatureCheck) {
    assert!(
        check.trusted,
        "expected trusted, got {:?}",
        check.detail.as_ref().map(ToString::to_string)
    );
    assert_eq!(check.detail, None);
}

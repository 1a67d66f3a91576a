//! cosign simple-signing signatures: the `.sig` artifact, its referrer
//! form, and the verdicts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_trust::media;
use berth_trust::sign::{KeyAlgorithm, cosign_simple_signing};
use berth_trust::{NotTrusted, Tool, TrustStore, verify_cosign_simple_signing};
use serde_json::Value;

use crate::support::{assert_trusted, image, key, reason, store_of_keys};

const REPOSITORY: &str = "registry.example/library/app";

#[test]
fn trusted_with_each_key_algorithm() {
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::EcdsaP521,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Ed25519,
    ] {
        let signer = key(algorithm);
        let other = key(KeyAlgorithm::EcdsaP256);
        let store = store_of_keys(&[&other, &signer]);
        let target = image("app");
        let signed = cosign_simple_signing(&signer, &target, REPOSITORY).expect("signed");
        let check = verify_cosign_simple_signing(
            &target.digest,
            &signed.payload,
            &signed.signature_b64,
            &store,
        );
        assert_trusted(&check);
        assert_eq!(check.tool, Tool::Cosign);
        assert_eq!(
            check.author,
            signer.public_key_pem(),
            "{algorithm:?}: zot's author is the key's PEM"
        );
        assert_eq!(
            check.trusted_by.as_deref(),
            Some(store.cosign_keys()[1].id())
        );
        assert_eq!(check.valid_until, None);
    }
}

#[test]
fn the_artifacts_are_cosigns() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let target = image("app");
    let signed = cosign_simple_signing(&signer, &target, REPOSITORY).expect("signed");

    let payload: Value = serde_json::from_slice(&signed.payload).expect("json payload");
    assert_eq!(payload["critical"]["type"], media::COSIGN_SIGNATURE_TYPE);
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        target.digest.as_str()
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        REPOSITORY
    );
    assert_eq!(payload["optional"], Value::Null);
    assert_eq!(signed.tag, format!("sha256-{}.sig", &target.digest[7..]));

    let tagged: Value = serde_json::from_slice(&signed.tagged.manifest.bytes).expect("manifest");
    assert_eq!(tagged["mediaType"], media::OCI_MANIFEST);
    assert_eq!(tagged["config"]["mediaType"], media::OCI_CONFIG);
    assert_eq!(tagged.get("subject"), None);
    let layer = &tagged["layers"][0];
    assert_eq!(layer["mediaType"], media::COSIGN_SIMPLE_SIGNING);
    assert_eq!(
        layer["annotations"][media::COSIGN_SIGNATURE_ANNOTATION],
        signed.signature_b64.as_str()
    );
    for artifact in [&signed.tagged, &signed.referrer] {
        let manifest: Value = serde_json::from_slice(&artifact.manifest.bytes).expect("manifest");
        let config = &artifact.blobs[0];
        assert_eq!(manifest["config"]["digest"], config.digest.as_str());
        assert_eq!(manifest["config"]["size"], config.bytes.len());
        assert_eq!(
            manifest["layers"][0]["digest"],
            artifact.blobs[1].digest.as_str()
        );
        assert_eq!(artifact.blobs[1].bytes, signed.payload);
        let config_json: Value = serde_json::from_slice(&config.bytes).expect("config");
        assert_eq!(
            config_json["rootfs"]["diff_ids"][0],
            artifact.blobs[1].digest.as_str()
        );
    }

    let referrer: Value =
        serde_json::from_slice(&signed.referrer.manifest.bytes).expect("manifest");
    assert_eq!(
        referrer["config"]["mediaType"],
        media::COSIGN_SIGNATURE_ARTIFACT_TYPE
    );
    assert_eq!(referrer["subject"]["digest"], target.digest.as_str());
    assert_eq!(referrer["subject"]["size"], target.size);
    assert_eq!(referrer["subject"]["mediaType"], target.media_type.as_str());
}

#[test]
fn untrusted_cases_each_say_why() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let stranger = key(KeyAlgorithm::EcdsaP256);
    let target = image("app");
    let elsewhere = image("another");
    let signed = cosign_simple_signing(&signer, &target, REPOSITORY).expect("signed");
    let of_other_image = cosign_simple_signing(&signer, &elsewhere, REPOSITORY).expect("signed");
    let store = store_of_keys(&[&signer]);
    let mut tampered = signed.payload.clone();
    let at = tampered.len() - 10;
    tampered[at] ^= 1;

    let mut not_a_signature: Value = serde_json::from_slice(&signed.payload).expect("payload");
    not_a_signature["critical"]["type"] = "atomic container signature".into();
    let not_a_signature = serde_json::to_vec(&not_a_signature).expect("json");
    let not_a_signature_b64 =
        STANDARD.encode(signer.cosign_signature(&not_a_signature).expect("signed"));
    let not_json = b"not json".to_vec();
    let not_json_b64 = STANDARD.encode(signer.cosign_signature(&not_json).expect("signed"));

    struct Case<'a> {
        name: &'a str,
        digest: &'a str,
        payload: &'a [u8],
        signature: &'a str,
        store: TrustStore,
        reason: NotTrusted,
        author_known: bool,
    }
    let cases = [
        Case {
            name: "signed by an unknown key",
            digest: &target.digest,
            payload: &signed.payload,
            signature: &signed.signature_b64,
            store: store_of_keys(&[&stranger]),
            reason: NotTrusted::NoMatchingKey,
            author_known: false,
        },
        Case {
            name: "signature over another digest",
            digest: &target.digest,
            payload: &of_other_image.payload,
            signature: &of_other_image.signature_b64,
            store: store.clone(),
            reason: NotTrusted::DigestMismatch {
                signed: elsewhere.digest.clone(),
                image: target.digest.clone(),
            },
            author_known: true,
        },
        Case {
            name: "tampered payload",
            digest: &target.digest,
            payload: &tampered,
            signature: &signed.signature_b64,
            store: store.clone(),
            reason: NotTrusted::NoMatchingKey,
            author_known: false,
        },
        Case {
            name: "no key uploaded",
            digest: &target.digest,
            payload: &signed.payload,
            signature: &signed.signature_b64,
            store: TrustStore::default(),
            reason: NotTrusted::NoCosignKeys,
            author_known: false,
        },
        Case {
            name: "signature not base64",
            digest: &target.digest,
            payload: &signed.payload,
            signature: "%%%",
            store: store.clone(),
            reason: NotTrusted::Malformed("the signature annotation is not base64".to_owned()),
            author_known: false,
        },
        Case {
            name: "another payload type",
            digest: &target.digest,
            payload: &not_a_signature,
            signature: &not_a_signature_b64,
            store: store.clone(),
            reason: NotTrusted::NotAnImageSignature(
                "payload type \"atomic container signature\"".to_owned(),
            ),
            author_known: true,
        },
    ];
    for case in cases {
        let check =
            verify_cosign_simple_signing(case.digest, case.payload, case.signature, &case.store);
        assert_eq!(reason(&check), case.reason, "{}", case.name);
        assert_eq!(check.trusted_by, None, "{}", case.name);
        let expected_author = if case.author_known {
            signer.public_key_pem()
        } else {
            String::new()
        };
        assert_eq!(check.author, expected_author, "{}", case.name);
    }
    // A signed payload that is not JSON: malformed, whoever signed it.
    let check = verify_cosign_simple_signing(&target.digest, &not_json, &not_json_b64, &store);
    assert!(
        matches!(reason(&check), NotTrusted::Malformed(_)),
        "{check:?}"
    );
}

#[test]
fn reasons_read_as_sentences() {
    let signer = key(KeyAlgorithm::EcdsaP256);
    let target = image("app");
    let signed = cosign_simple_signing(&signer, &target, REPOSITORY).expect("signed");
    let check = verify_cosign_simple_signing(
        &image("other").digest,
        &signed.payload,
        &signed.signature_b64,
        &store_of_keys(&[&signer]),
    );
    let text = reason(&check).to_string();
    assert!(text.starts_with("the signature is over sha256:"), "{text}");
    assert!(!text.ends_with('.'), "{text}");
}

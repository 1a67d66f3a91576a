//! cosign's signatures: simple signing (the `sha256-<hex>.sig` image and
//! its OCI 1.1 referrer form) and the sigstore bundle of `cosign sign`'s
//! new bundle format.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use super::manifest::{array, object, string, string_map};
use super::{Blob, SignatureArtifact, SigningKey, SigningTarget};
use crate::cosign::bundle::pre_authentication_encoding;
use crate::error::TrustError;
use crate::material::rfc3339;
use crate::media::{
    COSIGN_SIGN_PREDICATE_TYPE, COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIGNATURE_ARTIFACT_TYPE,
    COSIGN_SIGNATURE_TYPE, COSIGN_SIMPLE_SIGNING, IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_V1,
    OCI_CONFIG, OCI_CREATED_ANNOTATION, OCI_EMPTY, OCI_MANIFEST, SIGSTORE_BUNDLE,
    SIGSTORE_BUNDLE_CONTENT_ANNOTATION, SIGSTORE_BUNDLE_PREDICATE_TYPE_ANNOTATION,
};

/// A simple-signing signature, and the two ways cosign stores it.
#[derive(Debug, Clone)]
pub struct CosignSimpleSignature {
    /// The simple-signing payload (the layer blob).
    pub payload: Vec<u8>,
    /// The base64 signature (the layer's annotation).
    pub signature_b64: String,
    /// The tag cosign pushes `tagged` under: `sha256-<hex>.sig`.
    pub tag: String,
    /// The signature image as `cosign sign` pushes it to the tag.
    pub tagged: SignatureArtifact,
    /// The same signature as an OCI 1.1 referrer of the image
    /// (`--registry-referrers-mode=oci-1-1`): config media type
    /// `application/vnd.dev.cosign.artifact.sig.v1+json`, and a subject.
    pub referrer: SignatureArtifact,
}

/// Signs `target` as `cosign sign --key` does (simple signing);
/// `docker_reference` is the repository cosign names in the payload (e.g.
/// `registry.example/library/alpine`).
pub fn cosign_simple_signing(
    key: &SigningKey,
    target: &SigningTarget,
    docker_reference: &str,
) -> Result<CosignSimpleSignature, TrustError> {
    let payload = object(&[
        (
            "critical",
            object(&[
                (
                    "identity",
                    object(&[("docker-reference", string(docker_reference))]),
                ),
                (
                    "image",
                    object(&[("docker-manifest-digest", string(&target.digest))]),
                ),
                ("type", string(COSIGN_SIGNATURE_TYPE)),
            ]),
        ),
        ("optional", "null".to_owned()),
    ])
    .into_bytes();
    let signature_b64 = STANDARD.encode(key.cosign_signature(&payload)?);
    let layer = Blob::new(COSIGN_SIMPLE_SIGNING, payload.clone());
    // The config go-containerregistry writes for cosign's signature image.
    let config_bytes = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":[{}]}},"config":{{}}}}"#,
        string(&layer.digest)
    )
    .into_bytes();
    let mut annotations = BTreeMap::new();
    annotations.insert(
        COSIGN_SIGNATURE_ANNOTATION.to_owned(),
        signature_b64.clone(),
    );
    let layer_descriptor = ggcr_descriptor(&layer, Some(&annotations), None);
    let artifact = |config_media_type: &str, subject: Option<&SigningTarget>| {
        let config = Blob::new(config_media_type, config_bytes.clone());
        let mut fields = vec![
            ("schemaVersion", "2".to_owned()),
            ("mediaType", string(OCI_MANIFEST)),
            ("config", ggcr_descriptor(&config, None, None)),
            ("layers", array(std::slice::from_ref(&layer_descriptor))),
        ];
        if let Some(subject) = subject {
            fields.push(("subject", target_descriptor_ggcr(subject)));
        }
        SignatureArtifact {
            manifest: Blob::new(OCI_MANIFEST, object(&fields).into_bytes()),
            blobs: vec![config, layer.clone()],
        }
    };
    let tag = crate::media::cosign_tag_for(&target.digest)
        .ok_or_else(|| TrustError::Signing(format!("\"{}\" is not a digest", target.digest)))?;
    Ok(CosignSimpleSignature {
        tagged: artifact(OCI_CONFIG, None),
        referrer: artifact(COSIGN_SIGNATURE_ARTIFACT_TYPE, Some(target)),
        payload,
        signature_b64,
        tag,
    })
}

/// A sigstore bundle, and the referrer cosign attaches it with.
#[derive(Debug, Clone)]
pub struct CosignBundleSignature {
    /// The bundle JSON (the referrer's layer blob).
    pub bundle: Vec<u8>,
    /// The referrer: artifact type and layer media type
    /// `application/vnd.dev.sigstore.bundle.v0.3+json`, the empty config,
    /// the image as subject.
    pub referrer: SignatureArtifact,
}

/// Signs `target` as `cosign sign --key` does with the new bundle format
/// (cosign 3's default) without a transparency log: an in-toto statement
/// naming the image, with cosign's signing predicate, in a DSSE envelope,
/// in a v0.3 bundle whose verification material is the key's hint.
pub fn cosign_bundle(
    key: &SigningKey,
    target: &SigningTarget,
    created: SystemTime,
) -> Result<CosignBundleSignature, TrustError> {
    let (algorithm, encoded) = target
        .digest
        .split_once(':')
        .ok_or_else(|| TrustError::Signing(format!("\"{}\" is not a digest", target.digest)))?;
    let statement = object(&[
        ("_type", string(IN_TOTO_STATEMENT_V1)),
        (
            "subject",
            array(&[object(&[
                ("digest", object(&[(algorithm, string(encoded))])),
                ("annotations", "{}".to_owned()),
            ])]),
        ),
        ("predicateType", string(COSIGN_SIGN_PREDICATE_TYPE)),
        ("predicate", "{}".to_owned()),
    ])
    .into_bytes();
    let signature = key.cosign_signature(&pre_authentication_encoding(
        IN_TOTO_PAYLOAD_TYPE,
        &statement,
    ))?;
    let hint = STANDARD.encode(Sha256::digest(key.public_key_der()));
    let bundle = object(&[
        ("mediaType", string(SIGSTORE_BUNDLE)),
        (
            "verificationMaterial",
            object(&[("publicKey", object(&[("hint", string(&hint))]))]),
        ),
        (
            "dsseEnvelope",
            object(&[
                ("payload", string(&STANDARD.encode(&statement))),
                ("payloadType", string(IN_TOTO_PAYLOAD_TYPE)),
                (
                    "signatures",
                    array(&[object(&[("sig", string(&STANDARD.encode(&signature)))])]),
                ),
            ]),
        ),
    ])
    .into_bytes();
    let layer = Blob::new(SIGSTORE_BUNDLE, bundle.clone());
    let config = Blob::new(OCI_EMPTY, b"{}".to_vec());
    let mut annotations = BTreeMap::new();
    annotations.insert(OCI_CREATED_ANNOTATION.to_owned(), rfc3339(created));
    annotations.insert(
        SIGSTORE_BUNDLE_CONTENT_ANNOTATION.to_owned(),
        "dsse-envelope".to_owned(),
    );
    annotations.insert(
        SIGSTORE_BUNDLE_PREDICATE_TYPE_ANNOTATION.to_owned(),
        COSIGN_SIGN_PREDICATE_TYPE.to_owned(),
    );
    let manifest = object(&[
        ("schemaVersion", "2".to_owned()),
        ("mediaType", string(OCI_MANIFEST)),
        (
            "config",
            ggcr_descriptor(&config, None, Some(SIGSTORE_BUNDLE)),
        ),
        ("layers", array(&[ggcr_descriptor(&layer, None, None)])),
        ("annotations", string_map(&annotations)),
        ("subject", target_descriptor_ggcr(target)),
        ("artifactType", string(SIGSTORE_BUNDLE)),
    ]);
    Ok(CosignBundleSignature {
        bundle,
        referrer: SignatureArtifact {
            manifest: Blob::new(OCI_MANIFEST, manifest.into_bytes()),
            blobs: vec![config, layer],
        },
    })
}

/// A descriptor as go-containerregistry writes it (mediaType, size,
/// digest, annotations, artifactType).
fn ggcr_descriptor(
    blob: &Blob,
    annotations: Option<&BTreeMap<String, String>>,
    artifact_type: Option<&str>,
) -> String {
    let mut fields = vec![
        ("mediaType", string(&blob.media_type)),
        ("size", blob.bytes.len().to_string()),
        ("digest", string(&blob.digest)),
    ];
    if let Some(annotations) = annotations {
        fields.push(("annotations", string_map(annotations)));
    }
    if let Some(artifact_type) = artifact_type {
        fields.push(("artifactType", string(artifact_type)));
    }
    object(&fields)
}

/// The signed image's descriptor, go-containerregistry's field order.
fn target_descriptor_ggcr(target: &SigningTarget) -> String {
    object(&[
        ("mediaType", string(&target.media_type)),
        ("size", target.size.to_string()),
        ("digest", string(&target.digest)),
    ])
}

//! notation's signatures: JWS and COSE envelopes, and the referrer
//! manifest `notation sign` pushes them with.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coset::cbor::value::Value;
use coset::iana;
use coset::{
    CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate, TaggedCborSerializable as _,
};
use sha2::{Digest as _, Sha256};

use super::manifest::{array, object, string, string_map};
use super::{Blob, SignatureArtifact, SigningIdentity, SigningTarget};
use crate::error::TrustError;
use crate::material::rfc3339;
use crate::media::{
    NOTATION_COSE, NOTATION_JWS, NOTATION_PAYLOAD, NOTATION_SIGNATURE_ARTIFACT_TYPE,
    NOTATION_THUMBPRINT_ANNOTATION, OCI_CREATED_ANNOTATION, OCI_EMPTY, OCI_MANIFEST,
};

/// The signing agent written in the envelopes' unprotected header
/// (informational; verifiers must not act on it).
const SIGNING_AGENT: &str = "berth-trust-sign/0.1";

/// The envelope format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFormat {
    /// `application/jose+json`.
    Jws,
    /// `application/cose`.
    Cose,
}

/// The signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `notary.x509`: a `signingTime`, a chain to a `ca` trust store.
    X509,
    /// `notary.x509.signingAuthority`: an `authenticSigningTime`, a chain
    /// to a `signingAuthority` trust store.
    SigningAuthority,
}

/// How to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotationOptions {
    /// The envelope format.
    pub format: EnvelopeFormat,
    /// The signing scheme.
    pub scheme: Scheme,
    /// The signing time written (whole seconds are kept).
    pub signing_time: SystemTime,
    /// The signature's expiry, if any.
    pub expiry: Option<SystemTime>,
}

impl NotationOptions {
    /// `notary.x509`, signed now, no expiry.
    pub fn now(format: EnvelopeFormat) -> Self {
        NotationOptions {
            format,
            scheme: Scheme::X509,
            signing_time: SystemTime::now(),
            expiry: None,
        }
    }
}

/// A notation signature: its envelope and its referrer.
#[derive(Debug, Clone)]
pub struct NotationSignature {
    /// The envelope (the referrer's one layer), with its media type.
    pub envelope: Blob,
    /// The referrer: artifact type `application/vnd.cncf.notary.signature`,
    /// the empty config, the image as subject, the chain's thumbprints.
    pub referrer: SignatureArtifact,
}

/// Signs `target` as `notation sign` does.
pub fn notation_sign(
    identity: &SigningIdentity,
    target: &SigningTarget,
    options: &NotationOptions,
) -> Result<NotationSignature, TrustError> {
    let payload = object(&[(
        "targetArtifact",
        object(&[
            ("mediaType", string(&target.media_type)),
            ("digest", string(&target.digest)),
            ("size", target.size.to_string()),
        ]),
    )])
    .into_bytes();
    let envelope = match options.format {
        EnvelopeFormat::Jws => Blob::new(NOTATION_JWS, jws(identity, &payload, options)?),
        EnvelopeFormat::Cose => Blob::new(NOTATION_COSE, cose(identity, &payload, options)?),
    };
    let thumbprints: Vec<String> = identity
        .chain
        .iter()
        .map(|cert| string(&hex::encode(Sha256::digest(cert))))
        .collect();
    let mut annotations = BTreeMap::new();
    annotations.insert(
        NOTATION_THUMBPRINT_ANNOTATION.to_owned(),
        array(&thumbprints),
    );
    annotations.insert(
        OCI_CREATED_ANNOTATION.to_owned(),
        rfc3339(options.signing_time),
    );
    let config = Blob::new(OCI_EMPTY, b"{}".to_vec());
    // oras's field order (image-spec's Go types); the config is the empty
    // descriptor with its data inline.
    let manifest = object(&[
        ("schemaVersion", "2".to_owned()),
        ("mediaType", string(OCI_MANIFEST)),
        ("artifactType", string(NOTATION_SIGNATURE_ARTIFACT_TYPE)),
        (
            "config",
            object(&[
                ("mediaType", string(OCI_EMPTY)),
                ("digest", string(&config.digest)),
                ("size", "2".to_owned()),
                ("data", string("e30=")),
            ]),
        ),
        (
            "layers",
            array(&[oci_descriptor(
                &envelope.media_type,
                &envelope.digest,
                envelope.bytes.len() as u64,
            )]),
        ),
        (
            "subject",
            oci_descriptor(&target.media_type, &target.digest, target.size),
        ),
        ("annotations", string_map(&annotations)),
    ]);
    Ok(NotationSignature {
        referrer: SignatureArtifact {
            manifest: Blob::new(OCI_MANIFEST, manifest.into_bytes()),
            blobs: vec![config, envelope.clone()],
        },
        envelope,
    })
}

fn oci_descriptor(media_type: &str, digest: &str, size: u64) -> String {
    object(&[
        ("mediaType", string(media_type)),
        ("digest", string(digest)),
        ("size", size.to_string()),
    ])
}

/// The critical headers, in notation's order.
fn critical(options: &NotationOptions) -> Vec<&'static str> {
    let mut names = vec!["io.cncf.notary.signingScheme"];
    if options.scheme == Scheme::SigningAuthority {
        names.push("io.cncf.notary.authenticSigningTime");
    }
    if options.expiry.is_some() {
        names.push("io.cncf.notary.expiry");
    }
    names
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::X509 => "notary.x509",
        Scheme::SigningAuthority => "notary.x509.signingAuthority",
    }
}

fn time_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::X509 => "io.cncf.notary.signingTime",
        Scheme::SigningAuthority => "io.cncf.notary.authenticSigningTime",
    }
}

fn seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A flattened JWS JSON envelope; the protected header's keys sorted, as
/// Go writes the map notation builds it from.
fn jws(
    identity: &SigningIdentity,
    payload: &[u8],
    options: &NotationOptions,
) -> Result<Vec<u8>, TrustError> {
    let alg = identity.key.notation_algorithm()?;
    let mut protected = serde_json::Map::new();
    protected.insert("alg".to_owned(), alg.into());
    protected.insert("cty".to_owned(), NOTATION_PAYLOAD.into());
    protected.insert("crit".to_owned(), critical(options).into());
    protected.insert(
        "io.cncf.notary.signingScheme".to_owned(),
        scheme_name(options.scheme).into(),
    );
    protected.insert(
        time_name(options.scheme).to_owned(),
        rfc3339(options.signing_time).into(),
    );
    if let Some(expiry) = options.expiry {
        protected.insert("io.cncf.notary.expiry".to_owned(), rfc3339(expiry).into());
    }
    let protected = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&protected).map_err(|e| TrustError::Signing(e.to_string()))?);
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let signature = identity
        .key
        .sign_notation(format!("{protected}.{payload}").as_bytes())?;
    let x5c: Vec<String> = identity
        .chain
        .iter()
        .map(|cert| string(&STANDARD.encode(cert)))
        .collect();
    Ok(object(&[
        ("payload", string(&payload)),
        ("protected", string(&protected)),
        (
            "header",
            object(&[
                ("x5c", array(&x5c)),
                ("io.cncf.notary.signingAgent", string(SIGNING_AGENT)),
            ]),
        ),
        ("signature", string(&URL_SAFE_NO_PAD.encode(signature))),
    ])
    .into_bytes())
}

/// A `COSE_Sign1_Tagged` envelope.
fn cose(
    identity: &SigningIdentity,
    payload: &[u8],
    options: &NotationOptions,
) -> Result<Vec<u8>, TrustError> {
    let algorithm = match identity.key.notation_algorithm()? {
        "PS256" => iana::Algorithm::PS256,
        "PS384" => iana::Algorithm::PS384,
        "PS512" => iana::Algorithm::PS512,
        "ES256" => iana::Algorithm::ES256,
        "ES384" => iana::Algorithm::ES384,
        _ => iana::Algorithm::ES512,
    };
    let epoch = |at: SystemTime| Value::Tag(1, Box::new(Value::Integer(seconds(at).into())));
    let mut protected = HeaderBuilder::new().algorithm(algorithm);
    for name in critical(options) {
        protected = protected.add_critical_label(RegisteredLabelWithPrivate::Text(name.to_owned()));
    }
    protected = protected
        .content_type(NOTATION_PAYLOAD.to_owned())
        .text_value(
            "io.cncf.notary.signingScheme".to_owned(),
            Value::Text(scheme_name(options.scheme).to_owned()),
        )
        .text_value(
            time_name(options.scheme).to_owned(),
            epoch(options.signing_time),
        );
    if let Some(expiry) = options.expiry {
        protected = protected.text_value("io.cncf.notary.expiry".to_owned(), epoch(expiry));
    }
    let unprotected = HeaderBuilder::new()
        .value(
            33,
            Value::Array(
                identity
                    .chain
                    .iter()
                    .map(|cert| Value::Bytes(cert.clone()))
                    .collect(),
            ),
        )
        .text_value(
            "io.cncf.notary.signingAgent".to_owned(),
            Value::Text(SIGNING_AGENT.to_owned()),
        )
        .build();
    let mut signing_error = None;
    let sign1 = CoseSign1Builder::new()
        .protected(protected.build())
        .unprotected(unprotected)
        .payload(payload.to_vec())
        .create_signature(b"", |to_be_signed| {
            match identity.key.sign_notation(to_be_signed) {
                Ok(signature) => signature,
                Err(e) => {
                    signing_error = Some(e);
                    Vec::new()
                }
            }
        })
        .build();
    if let Some(e) = signing_error {
        return Err(e);
    }
    sign1
        .to_tagged_vec()
        .map_err(|e| TrustError::Signing(format!("COSE encoding: {e}")))
}

//! Media types, artifact types, annotations and tags of cosign and notation
//! signatures, for the server to find signatures in a registry.

/// The media type of a cosign simple-signing payload layer.
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds a simple-signing payload's base64
/// signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation that holds the signing certificate, if any (PEM).
pub const COSIGN_CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The `critical.type` of a cosign image signature payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// The artifact type (the config media type) of a cosign signature stored
/// as an OCI 1.1 referrer (`--registry-referrers-mode=oci-1-1`).
pub const COSIGN_SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The media type (and referrer artifact type) of a sigstore bundle, as
/// cosign 2.x/3.x writes it with the new bundle format.
pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The referrer annotation saying what a bundle holds: `dsse-envelope` or
/// `message-signature`.
pub const SIGSTORE_BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// The referrer annotation with the in-toto predicate type of a DSSE
/// bundle; [`COSIGN_SIGN_PREDICATE_TYPE`] for an image signature.
pub const SIGSTORE_BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// The predicate type `cosign sign` writes in a bundle's in-toto statement;
/// any other predicate type is an attestation, not a signature.
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto statement type cosign writes.
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// The artifact type of a notation signature manifest.
pub const NOTATION_SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The media type of a notation payload (the signed target descriptor).
pub const NOTATION_PAYLOAD: &str = "application/vnd.cncf.notary.payload.v1+json";
/// The media type of a notation JWS envelope layer.
pub const NOTATION_JWS: &str = "application/jose+json";
/// The media type of a notation COSE envelope layer.
pub const NOTATION_COSE: &str = "application/cose";
/// The manifest annotation listing the SHA-256 thumbprints of the signing
/// chain, leaf first, as a JSON array string.
pub const NOTATION_THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI empty descriptor's media type (its content is `{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The OCI annotation for a manifest's creation time.
pub const OCI_CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The tag cosign stores an image's simple-signing signatures under:
/// `sha256-<hex>.sig` for `sha256:<hex>`. `None` when `digest` is not
/// `<algorithm>:<hex>`.
pub fn cosign_tag_for(digest: &str) -> Option<String> {
    let (algorithm, encoded) = digest.split_once(':')?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (algorithm_ok && encoded_ok).then(|| format!("{algorithm}-{encoded}.sig"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags() {
        let hex = "97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36";
        assert_eq!(
            cosign_tag_for(&format!("sha256:{hex}")),
            Some(format!("sha256-{hex}.sig"))
        );
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "SHA256:abc",
            "sha256:XYZ",
            "sha256:ab/c",
        ] {
            assert_eq!(cosign_tag_for(bad), None, "{bad}");
        }
    }
}

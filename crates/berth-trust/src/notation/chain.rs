//! A notation signature's certificate chain, checked against the
//! certificate requirements of the Notary Project's signature spec and
//! validated to the uploaded certificates of one trust store.
//!
//! The spec's own requirements (order, root at the end, validity at the
//! time that counts, the signing certificate's key usage, extended key
//! usage and key size, the CAs' basic constraints and key usage) are
//! checked here with x509-parser, each failure its own reason;
//! rustls-webpki then verifies the signatures along the path from the
//! signing certificate to an uploaded certificate, at that time, with code
//! signing as the required extended key usage where one is present.

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::distinguished_name::go_name_string;
use crate::keys::{KeyKind, SpkiKey};
use crate::material::NotationCert;
use crate::verdict::NotTrusted;

/// `id-kp-codeSigning` (1.3.6.1.5.5.7.3.3), DER content bytes.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// Validates `chain` (DER, signing certificate first) at `at` (seconds
/// since the epoch), and also at `signing_time` when given, to one of
/// `anchors`; the id of the anchor it leads to.
pub(super) fn validate(
    chain: &[Vec<u8>],
    anchors: &[&NotationCert],
    at: i64,
    signing_time: Option<i64>,
) -> Result<String, NotTrusted> {
    let certs = chain
        .iter()
        .enumerate()
        .map(|(index, der)| match X509Certificate::from_der(der) {
            Ok((_, cert)) => Ok(cert),
            Err(e) => Err(NotTrusted::Malformed(format!(
                "certificate {}: {e}",
                index + 1
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, issuers) = certs
        .split_first()
        .ok_or_else(|| NotTrusted::Malformed("no certificate chain".to_owned()))?;
    check_order(&certs)?;
    for cert in &certs {
        check_validity(cert, at, signing_time)?;
    }
    check_signing_certificate(leaf)?;
    for issuer in issuers {
        check_ca(issuer)?;
    }
    verify_path(chain, anchors, at)
}

/// The chain is ordered, each certificate issued by the next, and ends at
/// a root (self-issued).
fn check_order(certs: &[X509Certificate<'_>]) -> Result<(), NotTrusted> {
    for pair in certs.windows(2) {
        if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
            return Err(NotTrusted::InvalidCertificateChain(format!(
                "\"{}\" is not issued by the next certificate, \"{}\"",
                go_name_string(pair[0].subject()),
                go_name_string(pair[1].subject())
            )));
        }
    }
    match certs.last() {
        Some(root) if root.issuer().as_raw() == root.subject().as_raw() => Ok(()),
        _ => Err(NotTrusted::InvalidCertificateChain(
            "the chain does not end at a root certificate".to_owned(),
        )),
    }
}

/// The certificate is valid at `at`, and at `signing_time` if given.
fn check_validity(
    cert: &X509Certificate<'_>,
    at: i64,
    signing_time: Option<i64>,
) -> Result<(), NotTrusted> {
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let subject = || go_name_string(cert.subject());
    if at < not_before {
        return Err(NotTrusted::CertificateNotYetValid { subject: subject() });
    }
    if at > not_after {
        return Err(NotTrusted::CertificateExpired { subject: subject() });
    }
    if signing_time.is_some_and(|t| t < not_before || t > not_after) {
        return Err(NotTrusted::NotValidAtSigningTime { subject: subject() });
    }
    Ok(())
}

/// The signing certificate's requirements: not a CA, key usage
/// digitalSignature and none of the bits the spec forbids, an extended key
/// usage (if any) for code signing and none of the usages the spec
/// forbids, a key large enough.
fn check_signing_certificate(leaf: &X509Certificate<'_>) -> Result<(), NotTrusted> {
    let malformed = |e: x509_parser::error::X509Error| NotTrusted::Malformed(e.to_string());
    if let Some(constraints) = leaf.basic_constraints().map_err(malformed)?
        && constraints.value.ca
    {
        return Err(NotTrusted::InvalidCertificateChain(
            "the signing certificate is a CA certificate".to_owned(),
        ));
    }
    let usage = leaf
        .key_usage()
        .map_err(malformed)?
        .ok_or(NotTrusted::InvalidKeyUsage)?
        .value;
    let forbidden = usage.key_encipherment()
        || usage.data_encipherment()
        || usage.key_agreement()
        || usage.key_cert_sign()
        || usage.crl_sign()
        || usage.encipher_only()
        || usage.decipher_only();
    if !usage.digital_signature() || forbidden {
        return Err(NotTrusted::InvalidKeyUsage);
    }
    if let Some(extended) = leaf.extended_key_usage().map_err(malformed)? {
        let extended = extended.value;
        let forbidden = extended.any
            || extended.server_auth
            || extended.client_auth
            || extended.email_protection
            || extended.time_stamping;
        if !extended.code_signing || forbidden {
            return Err(NotTrusted::MissingCodeSigningUsage);
        }
    }
    let key =
        SpkiKey::from_parsed(leaf.public_key()).map_err(|e| NotTrusted::WeakKey(e.to_string()))?;
    // SpkiKey refuses RSA under 2048 bits and curves under 256 bits.
    match key.kind() {
        KeyKind::Rsa { .. } | KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
            Ok(())
        }
        KeyKind::Ed25519 => Err(NotTrusted::UnsupportedAlgorithm(
            "Ed25519 signing certificates are not part of the Notary Project".to_owned(),
        )),
    }
}

/// A CA certificate's requirements: basic constraints with cA, key usage
/// with keyCertSign.
fn check_ca(cert: &X509Certificate<'_>) -> Result<(), NotTrusted> {
    let subject = go_name_string(cert.subject());
    let is_ca = matches!(cert.basic_constraints(), Ok(Some(constraints)) if constraints.value.ca);
    if !is_ca {
        return Err(NotTrusted::InvalidCertificateChain(format!(
            "\"{subject}\" issues a certificate but is not a CA certificate"
        )));
    }
    let signs_certificates =
        matches!(cert.key_usage(), Ok(Some(usage)) if usage.value.key_cert_sign());
    if !signs_certificates {
        return Err(NotTrusted::InvalidCertificateChain(format!(
            "\"{subject}\" has no keyCertSign key usage"
        )));
    }
    Ok(())
}

/// The path from the signing certificate to an uploaded certificate,
/// verified by rustls-webpki: each signature, the issuers' CA flags, code
/// signing where an extended key usage is present, validity at `at`.
///
/// The chain is first verified to its own root, so that a chain broken in
/// itself (a forged signature between its certificates) is told apart from
/// a sound chain that leads to no uploaded certificate (say, to another
/// root of the same name).
fn verify_path(
    chain: &[Vec<u8>],
    anchors: &[&NotationCert],
    at: i64,
) -> Result<String, NotTrusted> {
    let ders: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let (leaf, intermediates) = ders
        .split_first()
        .ok_or_else(|| NotTrusted::Malformed("no certificate chain".to_owned()))?;
    let own_root = ders
        .last()
        .map(webpki::anchor_from_trusted_cert)
        .transpose()
        .map_err(|e| NotTrusted::InvalidCertificateChain(format!("root certificate: {e}")))?
        .ok_or_else(|| NotTrusted::Malformed("no certificate chain".to_owned()))?;
    let leaf = EndEntityCert::try_from(leaf)
        .map_err(|e| NotTrusted::InvalidCertificateChain(format!("signing certificate: {e}")))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at).unwrap_or(0),
    ));
    let verify = |trust_anchors: &[TrustAnchor<'_>]| {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            trust_anchors,
            intermediates,
            time,
            KeyUsage::required_if_present(CODE_SIGNING),
            None,
            None,
        )
        .map(|path| {
            let reached = path.anchor();
            (
                reached.subject.to_vec(),
                reached.subject_public_key_info.to_vec(),
            )
        })
    };
    verify(std::slice::from_ref(&own_root)).map_err(path_error)?;

    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|anchor| CertificateDer::from(anchor.der()))
        .collect();
    let trust_anchors: Vec<(usize, TrustAnchor<'_>)> = anchor_ders
        .iter()
        .enumerate()
        .filter_map(|(index, der)| {
            webpki::anchor_from_trusted_cert(der)
                .ok()
                .map(|a| (index, a))
        })
        .collect();
    let only_anchors: Vec<TrustAnchor<'_>> = trust_anchors
        .iter()
        .map(|(_, anchor)| anchor.clone())
        .collect();
    let (subject, spki) = verify(&only_anchors).map_err(|_| NotTrusted::UntrustedCertificate)?;
    trust_anchors
        .iter()
        .find(|(_, anchor)| *anchor.subject == *subject && *anchor.subject_public_key_info == *spki)
        .map(|(index, _)| anchors[*index].id().to_owned())
        .ok_or(NotTrusted::UntrustedCertificate)
}

/// A failure of the chain in itself as a reason.
fn path_error(error: webpki::Error) -> NotTrusted {
    match error {
        webpki::Error::RequiredEkuNotFoundContext(_) => NotTrusted::MissingCodeSigningUsage,
        webpki::Error::CertExpired { .. } => NotTrusted::CertificateExpired {
            subject: "a certificate of the path".to_owned(),
        },
        webpki::Error::CertNotValidYet { .. } => NotTrusted::CertificateNotYetValid {
            subject: "a certificate of the path".to_owned(),
        },
        other => NotTrusted::InvalidCertificateChain(other.to_string()),
    }
}

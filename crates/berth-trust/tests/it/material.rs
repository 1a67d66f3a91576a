//! Uploads: cosign public keys and notation certificates, and what is
//! refused.

use berth_trust::sign::{CertificateAuthority, KeyAlgorithm, SignerSpec, Validity};
use berth_trust::{CosignKey, NotationCert, TrustError, TrustStore, TrustStoreType};

use crate::support::key;

#[test]
fn cosign_keys_of_each_algorithm_are_accepted() {
    let cases = [
        (KeyAlgorithm::EcdsaP256, "ECDSA P-256 public key"),
        (KeyAlgorithm::EcdsaP384, "ECDSA P-384 public key"),
        (KeyAlgorithm::EcdsaP521, "ECDSA P-521 public key"),
        (KeyAlgorithm::Rsa2048, "RSA 2048 public key"),
        (KeyAlgorithm::Ed25519, "Ed25519 public key"),
    ];
    for (algorithm, description) in cases {
        let pem = key(algorithm).public_key_pem();
        let uploaded = CosignKey::from_pem(pem.as_bytes()).expect("accepted");
        assert_eq!(uploaded.description(), description);
        assert_eq!(uploaded.pem(), pem, "kept verbatim: zot's author string");
        assert_eq!(uploaded.id().len(), 64);
        assert!(uploaded.id().bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

#[test]
fn a_cosign_key_id_is_the_key_not_its_wrapping() {
    let pem = key(KeyAlgorithm::EcdsaP256).public_key_pem();
    let rewrapped = format!("\n\n{}\r\n", pem.replace('\n', "\r\n"));
    let a = CosignKey::from_pem(pem.as_bytes()).expect("accepted");
    let b = CosignKey::from_pem(rewrapped.as_bytes()).expect("accepted");
    assert_eq!(a.id(), b.id());
    assert_ne!(a.pem(), b.pem());
}

#[test]
fn private_keys_are_refused_without_echoing_them() {
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Ed25519,
    ] {
        let private = key(algorithm).private_key_pem();
        let body: String = private.lines().nth(1).expect("a base64 line").to_owned();
        let cosign = CosignKey::from_pem(private.as_bytes()).expect_err("refused");
        assert_eq!(
            cosign,
            TrustError::PrivateKey {
                label: "PRIVATE KEY".to_owned()
            }
        );
        assert!(!cosign.to_string().contains(&body[..20]), "{cosign}");
        assert!(cosign.to_string().contains("private key"));
        let notation =
            NotationCert::from_pem(private.as_bytes(), TrustStoreType::Ca).expect_err("refused");
        assert!(
            matches!(notation, TrustError::PrivateKey { .. }),
            "{notation}"
        );
    }
    // The other private key files people have: SEC1, PKCS#1, cosign's own,
    // OpenSSH; refused by label, whatever the body holds.
    for label in [
        "EC PRIVATE KEY",
        "RSA PRIVATE KEY",
        "ENCRYPTED SIGSTORE PRIVATE KEY",
        "ENCRYPTED COSIGN PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
    ] {
        let pem = format!("-----BEGIN {label}-----\nc2VjcmV0\n-----END {label}-----\n");
        assert_eq!(
            CosignKey::from_pem(pem.as_bytes()),
            Err(TrustError::PrivateKey {
                label: label.to_owned()
            })
        );
    }
    // A public key and a private key together: refused for the private one.
    let mut both = key(KeyAlgorithm::EcdsaP256).public_key_pem();
    both.push_str(&key(KeyAlgorithm::EcdsaP256).private_key_pem());
    assert!(matches!(
        CosignKey::from_pem(both.as_bytes()),
        Err(TrustError::PrivateKey { .. })
    ));
}

#[test]
fn non_pem_uploads_are_refused() {
    let public = key(KeyAlgorithm::EcdsaP256);
    for upload in [
        &b""[..],
        b"not a key",
        b"\x00\x01\x02\xff",
        public.public_key_der(),
    ] {
        assert_eq!(CosignKey::from_pem(upload), Err(TrustError::NotPem));
        assert_eq!(
            NotationCert::from_pem(upload, TrustStoreType::Ca),
            Err(TrustError::NotPem)
        );
    }
}

#[test]
fn garbage_inside_pem_is_refused() {
    let bad_base64 = b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
    assert!(CosignKey::from_pem(bad_base64).is_err());
    let not_a_key = b"-----BEGIN PUBLIC KEY-----\naGVsbG8=\n-----END PUBLIC KEY-----\n";
    assert!(matches!(
        CosignKey::from_pem(not_a_key),
        Err(TrustError::MalformedKey(_))
    ));
    let not_a_cert = b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        NotationCert::from_pem(not_a_cert, TrustStoreType::Ca),
        Err(TrustError::MalformedCertificate { index: 1, .. })
    ));
    let unterminated = b"-----BEGIN PUBLIC KEY-----\naGVsbG8=\n";
    assert!(CosignKey::from_pem(unterminated).is_err());
}

#[test]
fn a_certificate_is_not_a_cosign_key() {
    let root =
        CertificateAuthority::root("root", KeyAlgorithm::EcdsaP256, Validity::days_from_now(30))
            .expect("root");
    assert_eq!(
        CosignKey::from_pem(root.pem().as_bytes()),
        Err(TrustError::CertificateNotPublicKey)
    );
}

#[test]
fn other_keys_are_refused_by_name() {
    // An EC key on secp256k1, which cosign does not sign with.
    let mut spki = hex_bytes("3056301006072a8648ce3d020106052b8104000a034200");
    spki.push(0x04);
    spki.extend([7u8; 64]);
    let secp256k1 = pem("PUBLIC KEY", &spki);
    let refused = CosignKey::from_pem(secp256k1.as_bytes()).expect_err("refused");
    assert!(
        matches!(refused, TrustError::UnsupportedKey(_)),
        "{refused}"
    );
    assert!(refused.to_string().contains("1.3.132.0.10"), "{refused}");

    let pkcs1 = pem("RSA PUBLIC KEY", b"whatever");
    assert!(matches!(
        CosignKey::from_pem(pkcs1.as_bytes()),
        Err(TrustError::UnexpectedPem { .. })
    ));
    let two = format!(
        "{}{}",
        key(KeyAlgorithm::EcdsaP256).public_key_pem(),
        key(KeyAlgorithm::EcdsaP256).public_key_pem()
    );
    assert_eq!(
        CosignKey::from_pem(two.as_bytes()),
        Err(TrustError::SeveralKeys)
    );
}

#[test]
fn notation_certificates_are_accepted_one_or_several() {
    let root = CertificateAuthority::root(
        "Example Root",
        KeyAlgorithm::EcdsaP384,
        Validity::days_from_now(30),
    )
    .expect("root");
    let intermediate = root
        .intermediate(
            "Example Intermediate",
            KeyAlgorithm::EcdsaP256,
            Validity::days_from_now(30),
        )
        .expect("intermediate");
    let both = format!("{}{}", root.pem(), intermediate.pem());
    let certs = NotationCert::from_pem(both.as_bytes(), TrustStoreType::SigningAuthority)
        .expect("accepted");
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].subject(), "CN=Example Root");
    assert_eq!(certs[1].subject(), "CN=Example Intermediate");
    assert!(
        certs[0]
            .description()
            .starts_with("CN=Example Root (not after "),
        "{}",
        certs[0].description()
    );
    assert_eq!(certs[0].store_type(), TrustStoreType::SigningAuthority);
    assert_eq!(certs[0].der(), root.der());
    assert_ne!(certs[0].id(), certs[1].id());

    let store = TrustStore::new(Vec::new(), certs);
    assert_eq!(
        store
            .notation_certs(TrustStoreType::SigningAuthority)
            .count(),
        2
    );
    assert_eq!(store.notation_certs(TrustStoreType::Ca).count(), 0);
}

#[test]
fn a_leaf_certificate_is_not_a_trust_anchor() {
    let root =
        CertificateAuthority::root("root", KeyAlgorithm::EcdsaP256, Validity::days_from_now(30))
            .expect("root");
    let signer = root
        .issue_signer(&SignerSpec::code_signing("signer", KeyAlgorithm::EcdsaP256))
        .expect("signer");
    let leaf = pem("CERTIFICATE", &signer.chain[0]);
    assert_eq!(
        NotationCert::from_pem(leaf.as_bytes(), TrustStoreType::Ca),
        Err(TrustError::NotCaOrSelfSigned {
            subject: "CN=signer".to_owned()
        })
    );
}

#[test]
fn trust_store_types_have_notations_names() {
    assert_eq!("ca".parse::<TrustStoreType>(), Ok(TrustStoreType::Ca));
    assert_eq!(
        "signingAuthority".parse::<TrustStoreType>(),
        Ok(TrustStoreType::SigningAuthority)
    );
    assert_eq!(
        TrustStoreType::SigningAuthority.to_string(),
        "signingAuthority"
    );
    assert_eq!(
        "tsa".parse::<TrustStoreType>(),
        Err(TrustError::UnknownTrustStoreType("tsa".to_owned()))
    );
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

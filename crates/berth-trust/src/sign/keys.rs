//! Keys (aws-lc-rs) and certificate chains (rcgen) to sign with in tests.

use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _,
};
use rustls_pki_types::PrivatePkcs8KeyDer;

use crate::error::TrustError;

/// A key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// ECDSA on P-521.
    EcdsaP521,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
    /// Ed25519.
    Ed25519,
}

/// A private key and its public key.
#[derive(Debug, Clone)]
pub struct SigningKey {
    algorithm: KeyAlgorithm,
    pkcs8: Vec<u8>,
    spki_der: Vec<u8>,
}

fn failed(what: &str) -> TrustError {
    TrustError::Signing(what.to_owned())
}

impl SigningKey {
    /// A new random key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, TrustError> {
        let rng = SystemRandom::new();
        let ec = |alg| {
            EcdsaKeyPair::generate_pkcs8(alg, &rng)
                .map(|doc| doc.as_ref().to_vec())
                .map_err(|_| failed("ECDSA key generation"))
        };
        let rsa = |size| {
            RsaKeyPair::generate(size)
                .and_then(|key| key.as_der())
                .map(|der| der.as_ref().to_vec())
                .map_err(|_| failed("RSA key generation"))
        };
        let pkcs8 = match algorithm {
            KeyAlgorithm::EcdsaP256 => ec(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)?,
            KeyAlgorithm::EcdsaP384 => ec(&signature::ECDSA_P384_SHA384_ASN1_SIGNING)?,
            KeyAlgorithm::EcdsaP521 => ec(&signature::ECDSA_P521_SHA512_ASN1_SIGNING)?,
            KeyAlgorithm::Rsa2048 => rsa(KeySize::Rsa2048)?,
            KeyAlgorithm::Rsa3072 => rsa(KeySize::Rsa3072)?,
            KeyAlgorithm::Rsa4096 => rsa(KeySize::Rsa4096)?,
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng)
                .map(|doc| doc.as_ref().to_vec())
                .map_err(|_| failed("Ed25519 key generation"))?,
        };
        let mut key = SigningKey {
            algorithm,
            pkcs8,
            spki_der: Vec::new(),
        };
        key.spki_der = key.rcgen_key()?.subject_public_key_info();
        Ok(key)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as PEM (`PUBLIC KEY`), as `cosign public-key` writes
    /// it.
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der)
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`), to test that uploads
    /// refuse it.
    pub fn private_key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// A signature as cosign makes one with `--key`: ECDSA as ASN.1 DER
    /// over SHA-256 (P-384 over SHA-384 and P-521 over SHA-512, sigstore's
    /// defaults, as aws-lc-rs does not sign those curves over SHA-256), RSA
    /// PKCS#1 v1.5 over SHA-256, Ed25519 over the message.
    pub fn cosign_signature(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => {
                self.sign_ecdsa(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, message)
            }
            KeyAlgorithm::EcdsaP384 => {
                self.sign_ecdsa(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, message)
            }
            KeyAlgorithm::EcdsaP521 => {
                self.sign_ecdsa(&signature::ECDSA_P521_SHA512_ASN1_SIGNING, message)
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                self.sign_rsa(&signature::RSA_PKCS1_SHA256, message)
            }
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::from_pkcs8(&self.pkcs8)
                .map(|key| key.sign(message).as_ref().to_vec())
                .map_err(|_| failed("Ed25519 key")),
        }
    }

    /// The JWS name of the algorithm notation signs with for this key:
    /// RSASSA-PSS by key size, ECDSA by curve.
    pub(crate) fn notation_algorithm(&self) -> Result<&'static str, TrustError> {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => Ok("ES256"),
            KeyAlgorithm::EcdsaP384 => Ok("ES384"),
            KeyAlgorithm::EcdsaP521 => Ok("ES512"),
            KeyAlgorithm::Rsa2048 => Ok("PS256"),
            KeyAlgorithm::Rsa3072 => Ok("PS384"),
            KeyAlgorithm::Rsa4096 => Ok("PS512"),
            KeyAlgorithm::Ed25519 => Err(failed("notation does not sign with Ed25519")),
        }
    }

    /// A signature as notation makes one with [`Self::notation_algorithm`]
    /// (ECDSA as `r || s`).
    pub(crate) fn sign_notation(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => {
                self.sign_ecdsa(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, message)
            }
            KeyAlgorithm::EcdsaP384 => {
                self.sign_ecdsa(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, message)
            }
            KeyAlgorithm::EcdsaP521 => {
                self.sign_ecdsa(&signature::ECDSA_P521_SHA512_FIXED_SIGNING, message)
            }
            KeyAlgorithm::Rsa2048 => self.sign_rsa(&signature::RSA_PSS_SHA256, message),
            KeyAlgorithm::Rsa3072 => self.sign_rsa(&signature::RSA_PSS_SHA384, message),
            KeyAlgorithm::Rsa4096 => self.sign_rsa(&signature::RSA_PSS_SHA512, message),
            KeyAlgorithm::Ed25519 => Err(failed("notation does not sign with Ed25519")),
        }
    }

    fn sign_ecdsa(
        &self,
        algorithm: &'static signature::EcdsaSigningAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, TrustError> {
        let key =
            EcdsaKeyPair::from_pkcs8(algorithm, &self.pkcs8).map_err(|_| failed("ECDSA key"))?;
        key.sign(&SystemRandom::new(), message)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| failed("ECDSA signature"))
    }

    fn sign_rsa(
        &self,
        padding: &'static dyn signature::RsaEncoding,
        message: &[u8],
    ) -> Result<Vec<u8>, TrustError> {
        let key = RsaKeyPair::from_pkcs8(&self.pkcs8).map_err(|_| failed("RSA key"))?;
        let mut out = vec![0; key.public_modulus_len()];
        key.sign(padding, &SystemRandom::new(), message, &mut out)
            .map_err(|_| failed("RSA signature"))?;
        Ok(out)
    }

    /// The key as rcgen takes it, with the algorithm certificates signed by
    /// it use.
    fn rcgen_key(&self) -> Result<KeyPair, TrustError> {
        let algorithm = match self.algorithm {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::EcdsaP521 => &rcgen::PKCS_ECDSA_P521_SHA512,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                &rcgen::PKCS_RSA_SHA256
            }
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        };
        KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(self.pkcs8.as_slice()),
            algorithm,
        )
        .map_err(|e| TrustError::Signing(format!("rcgen key: {e}")))
    }
}

/// A PEM block with base64 lines of 64 characters.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not before.
    pub not_before: SystemTime,
    /// Not after.
    pub not_after: SystemTime,
}

impl Validity {
    /// From a day ago to `days` from now.
    pub fn days_from_now(days: u64) -> Self {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(86_400),
            not_after: now + Duration::from_secs(days * 86_400),
        }
    }

    /// From `days_ago` days ago until `ended_days_ago` days ago: expired.
    pub fn ended_days_ago(days_ago: u64, ended_days_ago: u64) -> Self {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(days_ago * 86_400),
            not_after: now - Duration::from_secs(ended_days_ago * 86_400),
        }
    }
}

/// The extended key usage a signing certificate is issued with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendedKeyUsage {
    /// `id-kp-codeSigning`, as notation's certificates have.
    CodeSigning,
    /// `id-kp-serverAuth` only: a TLS certificate, not for code signing.
    ServerAuth,
    /// No extended key usage extension.
    Absent,
}

/// What a signing certificate is issued with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSpec {
    /// Subject common name.
    pub common_name: String,
    /// Subject organization, if any.
    pub organization: Option<String>,
    /// Subject country, if any.
    pub country: Option<String>,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// Validity period.
    pub validity: Validity,
    /// Extended key usage.
    pub extended_key_usage: ExtendedKeyUsage,
}

impl SignerSpec {
    /// A code-signing certificate valid from a day ago for a year.
    pub fn code_signing(common_name: &str, algorithm: KeyAlgorithm) -> Self {
        SignerSpec {
            common_name: common_name.to_owned(),
            organization: None,
            country: None,
            algorithm,
            validity: Validity::days_from_now(365),
            extended_key_usage: ExtendedKeyUsage::CodeSigning,
        }
    }
}

/// A signing key with its certificate chain.
#[derive(Debug, Clone)]
pub struct SigningIdentity {
    /// The signing key.
    pub key: SigningKey,
    /// DER certificates: the signing certificate first, the root last.
    pub chain: Vec<Vec<u8>>,
}

impl SigningIdentity {
    /// A self-signed signing certificate, as `notation cert generate-test`
    /// makes one: its chain is itself, and it is uploaded as its own trust
    /// anchor.
    pub fn self_signed(spec: &SignerSpec) -> Result<Self, TrustError> {
        let key = SigningKey::generate(spec.algorithm)?;
        let params = signer_params(spec)?;
        let cert = params
            .self_signed(&key.rcgen_key()?)
            .map_err(|e| TrustError::Signing(format!("self-signed certificate: {e}")))?;
        Ok(SigningIdentity {
            key,
            chain: vec![cert.der().to_vec()],
        })
    }

    /// The signing certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        pem(
            "CERTIFICATE",
            self.chain.first().map_or(&[][..], Vec::as_slice),
        )
    }
}

/// A certificate authority that issues intermediates and signing
/// certificates.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    key: SigningKey,
    params: CertificateParams,
    /// Its own certificate first, then its issuers' up to the root.
    chain: Vec<Vec<u8>>,
}

impl CertificateAuthority {
    /// A self-signed root.
    pub fn root(
        common_name: &str,
        algorithm: KeyAlgorithm,
        validity: Validity,
    ) -> Result<Self, TrustError> {
        let key = SigningKey::generate(algorithm)?;
        let params = ca_params(common_name, validity)?;
        let cert = params
            .self_signed(&key.rcgen_key()?)
            .map_err(|e| TrustError::Signing(format!("root certificate: {e}")))?;
        Ok(CertificateAuthority {
            key,
            params,
            chain: vec![cert.der().to_vec()],
        })
    }

    /// An intermediate CA issued by this one.
    pub fn intermediate(
        &self,
        common_name: &str,
        algorithm: KeyAlgorithm,
        validity: Validity,
    ) -> Result<Self, TrustError> {
        let key = SigningKey::generate(algorithm)?;
        let params = ca_params(common_name, validity)?;
        let der = self.issue(&params, &key)?;
        let mut chain = vec![der];
        chain.extend(self.chain.iter().cloned());
        Ok(CertificateAuthority { key, params, chain })
    }

    /// A signing certificate and key issued by this CA.
    pub fn issue_signer(&self, spec: &SignerSpec) -> Result<SigningIdentity, TrustError> {
        let key = SigningKey::generate(spec.algorithm)?;
        let params = signer_params(spec)?;
        let der = self.issue(&params, &key)?;
        let mut chain = vec![der];
        chain.extend(self.chain.iter().cloned());
        Ok(SigningIdentity { key, chain })
    }

    /// This CA's certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// This CA's certificate, PEM (what is uploaded to a trust store).
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", self.der())
    }

    fn issue(&self, params: &CertificateParams, key: &SigningKey) -> Result<Vec<u8>, TrustError> {
        let issuer_key = self.key.rcgen_key()?;
        let issuer = Issuer::from_params(&self.params, &issuer_key);
        params
            .signed_by(&key.rcgen_key()?, &issuer)
            .map(|cert| cert.der().to_vec())
            .map_err(|e| TrustError::Signing(format!("certificate: {e}")))
    }
}

fn base_params(common_name: &str, validity: Validity) -> Result<CertificateParams, TrustError> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| TrustError::Signing(format!("certificate parameters: {e}")))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    Ok(params)
}

/// A signing certificate's parameters: the subject, not a CA, key usage
/// digitalSignature, the extended key usage asked for.
fn signer_params(spec: &SignerSpec) -> Result<CertificateParams, TrustError> {
    let mut params = base_params(&spec.common_name, spec.validity)?;
    if let Some(organization) = &spec.organization {
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization.as_str());
    }
    if let Some(country) = &spec.country {
        params
            .distinguished_name
            .push(DnType::CountryName, country.as_str());
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match spec.extended_key_usage {
        ExtendedKeyUsage::CodeSigning => vec![ExtendedKeyUsagePurpose::CodeSigning],
        ExtendedKeyUsage::ServerAuth => vec![ExtendedKeyUsagePurpose::ServerAuth],
        ExtendedKeyUsage::Absent => Vec::new(),
    };
    Ok(params)
}

fn ca_params(common_name: &str, validity: Validity) -> Result<CertificateParams, TrustError> {
    let mut params = base_params(common_name, validity)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

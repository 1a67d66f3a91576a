//! Uploaded trust material: cosign public keys, notation certificates, and
//! the [`TrustStore`] that holds them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::distinguished_name::go_name_string;
use crate::error::TrustError;
use crate::keys::SpkiKey;

/// The notation trust store a certificate belongs to, by notation's names.
/// A signature's signing scheme says which one its chain must lead to:
/// `notary.x509` to `ca`, `notary.x509.signingAuthority` to
/// `signingAuthority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustStoreType {
    /// Certificate authorities (`ca`).
    Ca,
    /// Signing authorities (`signingAuthority`).
    SigningAuthority,
}

impl TrustStoreType {
    /// notation's name: `ca` or `signingAuthority`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrustStoreType::Ca => "ca",
            TrustStoreType::SigningAuthority => "signingAuthority",
        }
    }
}

impl fmt::Display for TrustStoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrustStoreType {
    type Err = TrustError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "ca" => Ok(TrustStoreType::Ca),
            "signingAuthority" => Ok(TrustStoreType::SigningAuthority),
            other => Err(TrustError::UnknownTrustStoreType(other.to_owned())),
        }
    }
}

/// A cosign public key, as uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignKey {
    /// Hex SHA-256 of the key's DER SubjectPublicKeyInfo.
    id: String,
    /// The upload, verbatim: zot's author string for this key.
    pem: String,
    key: SpkiKey,
    /// sigstore's key hint: base64 of the SHA-256 of the DER key, which
    /// a bundle's `verificationMaterial.publicKey.hint` carries.
    hint: String,
}

impl CosignKey {
    /// Parses one PEM public key (`-----BEGIN PUBLIC KEY-----`, the form
    /// `cosign public-key` and `cosign generate-key-pair` write): ECDSA
    /// P-256, P-384 or P-521, RSA of 2048 bits or more, or Ed25519.
    /// Refuses a private key (saying so, never echoing it), a certificate,
    /// anything that is not PEM, and other algorithms by name.
    pub fn from_pem(upload: &[u8]) -> Result<Self, TrustError> {
        let blocks = pem_blocks(upload)?;
        let block = match blocks.as_slice() {
            [one] => one,
            _ => return Err(TrustError::SeveralKeys),
        };
        match block.label.as_str() {
            "PUBLIC KEY" => {}
            "CERTIFICATE" => return Err(TrustError::CertificateNotPublicKey),
            other => {
                return Err(TrustError::UnexpectedPem {
                    label: other.to_owned(),
                    expected: "public key (\"PUBLIC KEY\")",
                });
            }
        }
        let key = SpkiKey::from_spki_der(&block.contents)?;
        let digest = Sha256::digest(key.spki_der());
        Ok(CosignKey {
            id: hex::encode(digest),
            pem: String::from_utf8_lossy(upload).into_owned(),
            hint: STANDARD.encode(digest),
            key,
        })
    }

    /// A stable id: hex SHA-256 of the DER public key (the same key
    /// uploaded twice, however its PEM is wrapped, has one id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// For a listing: the key's algorithm, e.g. `ECDSA P-256 public key`.
    pub fn description(&self) -> String {
        format!("{} public key", self.key.kind().describe())
    }

    /// The PEM as uploaded (the author of the signatures it verifies).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub(crate) fn key(&self) -> &SpkiKey {
        &self.key
    }

    pub(crate) fn hint(&self) -> &str {
        &self.hint
    }
}

/// One notation certificate of a trust store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationCert {
    /// Hex SHA-256 of the DER certificate.
    id: String,
    store: TrustStoreType,
    der: Vec<u8>,
    /// The subject in Go's form.
    subject: String,
    not_after: SystemTime,
}

impl NotationCert {
    /// Parses one or more PEM certificates (`-----BEGIN CERTIFICATE-----`)
    /// for the given trust store. Each must be a CA certificate or
    /// self-signed, as notation requires of its trust stores. Refuses
    /// private keys (saying so, never echoing them), other PEM blocks,
    /// anything that is not PEM, and certificates that do not parse.
    pub fn from_pem(upload: &[u8], store: TrustStoreType) -> Result<Vec<Self>, TrustError> {
        let blocks = pem_blocks(upload)?;
        let mut certs = Vec::with_capacity(blocks.len());
        for (index, block) in blocks.iter().enumerate() {
            if block.label != "CERTIFICATE" {
                return Err(TrustError::UnexpectedPem {
                    label: block.label.clone(),
                    expected: "certificate (\"CERTIFICATE\")",
                });
            }
            certs.push(Self::from_der(&block.contents, store, index + 1)?);
        }
        Ok(certs)
    }

    fn from_der(der: &[u8], store: TrustStoreType, index: usize) -> Result<Self, TrustError> {
        let malformed = |reason: String| TrustError::MalformedCertificate { index, reason };
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes after the certificate".to_owned()));
        }
        let subject = go_name_string(cert.subject());
        let self_signed = cert.subject().as_raw() == cert.issuer().as_raw();
        if !cert.is_ca() && !self_signed {
            return Err(TrustError::NotCaOrSelfSigned { subject });
        }
        Ok(NotationCert {
            id: hex::encode(Sha256::digest(der)),
            store,
            der: der.to_vec(),
            subject,
            not_after: unix_time(cert.validity().not_after.timestamp()),
        })
    }

    /// A stable id: hex SHA-256 of the DER certificate (its SHA-256
    /// fingerprint, as notation's thumbprint annotation writes it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// For a listing: subject and not-after, e.g.
    /// `CN=root,O=Example (not after 2030-01-01T00:00:00Z)`.
    pub fn description(&self) -> String {
        format!("{} (not after {})", self.subject, rfc3339(self.not_after))
    }

    /// The trust store it belongs to.
    pub fn store_type(&self) -> TrustStoreType {
        self.store
    }

    /// The certificate's subject in Go's `pkix.Name.String` form.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The certificate's not-after time.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The DER certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// What trusted signatures are checked against: the uploaded cosign keys
/// and notation certificates. Cheap to clone (shared, immutable).
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    cosign_keys: Arc<[CosignKey]>,
    notation_certs: Arc<[NotationCert]>,
}

impl TrustStore {
    /// A store of these keys and certificates (each certificate knows its
    /// trust store type).
    pub fn new(cosign_keys: Vec<CosignKey>, notation_certs: Vec<NotationCert>) -> Self {
        TrustStore {
            cosign_keys: cosign_keys.into(),
            notation_certs: notation_certs.into(),
        }
    }

    /// The cosign public keys.
    pub fn cosign_keys(&self) -> &[CosignKey] {
        &self.cosign_keys
    }

    /// The notation certificates of one trust store type.
    pub fn notation_certs(&self, store: TrustStoreType) -> impl Iterator<Item = &NotationCert> {
        self.notation_certs
            .iter()
            .filter(move |cert| cert.store == store)
    }
}

/// The PEM blocks of an upload. A private key anywhere in it is refused
/// before anything else is looked at (even in a block that does not
/// decode); no block at all is not PEM.
fn pem_blocks(upload: &[u8]) -> Result<Vec<Pem>, TrustError> {
    if let Some(label) = private_key_label(upload) {
        return Err(TrustError::PrivateKey { label });
    }
    let mut blocks = Vec::new();
    for block in Pem::iter_from_buffer(upload) {
        match block {
            Ok(block) => blocks.push(block),
            Err(_) if blocks.is_empty() && !has_pem_header(upload) => {
                return Err(TrustError::NotPem);
            }
            Err(e) => return Err(TrustError::MalformedPem(e.to_string())),
        }
    }
    if blocks.is_empty() {
        return Err(TrustError::NotPem);
    }
    Ok(blocks)
}

/// The label of the first `-----BEGIN ... PRIVATE KEY-----` line, if any.
fn private_key_label(upload: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(upload);
    text.lines().find_map(|line| {
        let label = line
            .trim()
            .strip_prefix("-----BEGIN ")?
            .strip_suffix("-----")?;
        label.contains("PRIVATE KEY").then(|| label.to_owned())
    })
}

fn has_pem_header(upload: &[u8]) -> bool {
    upload.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Seconds since the epoch as a `SystemTime` (clamped at the epoch).
pub(crate) fn unix_time(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// A `SystemTime` as RFC 3339, for descriptions.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{seconds} seconds after the epoch"))
}

//! The trust material: uploaded cosign public keys and notation
//! certificates, kept as zot keeps them under the main root (on disk or
//! in the bucket, so every instance sharing the root sees them):
//!
//! ```text
//! <root>/_cosign/sha256:<hex of the file>                                   a PEM public key
//! <root>/_notation/truststore/x509/ca/default/sha256:<hex of the file>       PEM (or DER) certificates
//! <root>/_notation/truststore/x509/signingAuthority/default/sha256:<hex>
//! ```
//!
//! A zot data directory's material is read as it is. A file that does
//! not parse (written by hand, or by a tool Berth does not follow) is
//! skipped and logged, never fatal.

use berth_trust::{CosignKey, NotationCert, TrustError, TrustStore, TrustStoreType};
use sha2::{Digest as _, Sha256};

use crate::config::SigningTool;
use crate::storage::{RootFiles, StorageResult};

/// Where cosign keys are kept.
const COSIGN_DIR: &str = "_cosign";

/// Where notation certificates of a trust store type are kept.
fn notation_dir(store: TrustStoreType) -> String {
    format!("_notation/truststore/x509/{}/default", store.as_str())
}

/// One uploaded file: a key, or one or more certificates.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct MaterialFile {
    /// `sha256:<hex>` of the file as uploaded (its name, as zot names it).
    pub id: String,
    /// `cosign` or `notation`.
    pub tool: &'static str,
    /// For notation: `ca` or `signingAuthority`.
    #[serde(rename = "truststoreType", skip_serializing_if = "Option::is_none")]
    pub store_type: Option<&'static str>,
    /// What it is: the key's type, or each certificate's subject and
    /// expiry.
    pub description: Vec<String>,
}

/// The material in force: what verification uses, and a fingerprint that
/// changes with any file added or removed (and with the tools turned on).
#[derive(Clone)]
pub(crate) struct Material {
    pub store: TrustStore,
    pub fingerprint: String,
    pub files: Vec<MaterialFile>,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("{0}")]
    Invalid(#[from] TrustError),
    #[error("the upload is empty")]
    Empty,
}

/// The file name of an upload: its digest.
fn file_id(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Parses an uploaded cosign key (never stored when it does not parse).
pub(crate) fn parse_cosign(bytes: &[u8]) -> Result<CosignKey, UploadError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(UploadError::Empty);
    }
    Ok(CosignKey::from_pem(bytes)?)
}

/// Parses uploaded notation certificates: PEM, or one DER certificate as
/// zot also takes (wrapped in PEM to be read the same way).
pub(crate) fn parse_notation(
    bytes: &[u8],
    store: TrustStoreType,
) -> Result<Vec<NotationCert>, UploadError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(UploadError::Empty);
    }
    match NotationCert::from_pem(bytes, store) {
        Err(TrustError::NotPem) => {
            use base64::Engine as _;
            let body = base64::engine::general_purpose::STANDARD.encode(bytes);
            let pem = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
            // Not DER either: say it is no PEM, as it was sent.
            NotationCert::from_pem(pem.as_bytes(), store).map_err(|_| TrustError::NotPem.into())
        }
        other => Ok(other?),
    }
}

/// Stores a parsed upload under its name; its id.
pub(crate) async fn store_upload(
    files: &dyn RootFiles,
    tool: SigningTool,
    store: Option<TrustStoreType>,
    bytes: &[u8],
) -> StorageResult<String> {
    let id = file_id(bytes);
    let dir = match (tool, store) {
        (SigningTool::Notation, Some(s)) => notation_dir(s),
        (SigningTool::Notation, None) => notation_dir(TrustStoreType::Ca),
        (SigningTool::Cosign, _) => COSIGN_DIR.to_string(),
    };
    files.write_file(&format!("{dir}/{id}"), bytes).await?;
    Ok(id)
}

/// Removes the file named `id` wherever it is kept; whether one was.
pub(crate) async fn remove(files: &dyn RootFiles, id: &str) -> StorageResult<bool> {
    let mut removed = false;
    for dir in [
        COSIGN_DIR.to_string(),
        notation_dir(TrustStoreType::Ca),
        notation_dir(TrustStoreType::SigningAuthority),
    ] {
        removed |= files.delete_file(&format!("{dir}/{id}")).await?;
    }
    Ok(removed)
}

/// Reads every key and certificate kept under the root.
pub(crate) async fn load(files: &dyn RootFiles, tools: &[SigningTool]) -> StorageResult<Material> {
    let mut keys = Vec::new();
    let mut certs = Vec::new();
    let mut listed = Vec::new();
    for name in files.list_files(COSIGN_DIR).await? {
        let path = format!("{COSIGN_DIR}/{name}");
        let Some(bytes) = files.read_file(&path).await? else {
            continue;
        };
        match parse_cosign(&bytes) {
            Ok(key) => {
                listed.push(MaterialFile {
                    id: name.clone(),
                    tool: "cosign",
                    store_type: None,
                    description: vec![key.description()],
                });
                keys.push(key);
            }
            Err(e) => tracing::warn!("trust: {path} is skipped: {e}"),
        }
    }
    for store in [TrustStoreType::Ca, TrustStoreType::SigningAuthority] {
        let dir = notation_dir(store);
        for name in files.list_files(&dir).await? {
            let path = format!("{dir}/{name}");
            let Some(bytes) = files.read_file(&path).await? else {
                continue;
            };
            match parse_notation(&bytes, store) {
                Ok(parsed) => {
                    listed.push(MaterialFile {
                        id: name.clone(),
                        tool: "notation",
                        store_type: Some(store.as_str()),
                        description: parsed.iter().map(NotationCert::description).collect(),
                    });
                    certs.extend(parsed);
                }
                Err(e) => tracing::warn!("trust: {path} is skipped: {e}"),
            }
        }
    }
    let mut hasher = Sha256::new();
    for t in tools {
        hasher.update(t.as_str().as_bytes());
        hasher.update(b"\n");
    }
    for f in &listed {
        hasher.update(format!("{} {:?} {}\n", f.tool, f.store_type, f.id).as_bytes());
    }
    Ok(Material {
        store: TrustStore::new(keys, certs),
        fingerprint: hex::encode(hasher.finalize()),
        files: listed,
    })
}

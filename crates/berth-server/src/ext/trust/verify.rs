//! Verifying one signature manifest stored in a repository: which
//! manifests are signatures and what each signs, reading their layers
//! through the storage seam (so it works on every backend), and the
//! verdicts `berth-trust` gives, as a [`TrustRecord`].

use std::time::{SystemTime, UNIX_EPOCH};

use berth_oci::manifest::Manifest;
use berth_oci::{Digest, RepoName};
use berth_trust::media::{
    COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIGNATURE_ARTIFACT_TYPE, COSIGN_SIMPLE_SIGNING,
    NOTATION_COSE, NOTATION_JWS, NOTATION_SIGNATURE_ARTIFACT_TYPE,
};
use berth_trust::{SignatureCheck, SignedImage, Tool};

use super::material::Material;
use crate::config::SigningTool;
use crate::meta::{ManifestMeta, SignatureVerdict, TrustRecord};
use crate::registry::{Registry, RegistryResult};

/// The largest signature manifest or signature layer read.
const MAX_SIGNATURE_BYTES: u64 = 4 << 20;
/// The most layers of one signature manifest verified (cosign adds one
/// per signature to a `.sig` image; more is no signature anyone made).
const MAX_SIGNATURE_LAYERS: usize = 64;
/// The prefix of the sigstore bundle media types (v0.1 to v0.3).
const SIGSTORE_BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// A signature manifest and what it signs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SignatureRef {
    /// The signature manifest's digest.
    pub digest: String,
    /// The digest it signs.
    pub signed: String,
    pub tool: SigningTool,
}

/// The digest a cosign tag-scheme tag signs (`sha256-<hex>.sig`).
pub(crate) fn cosign_tag_subject(tag: &str) -> Option<String> {
    let hex = tag.strip_prefix("sha256-")?.strip_suffix(".sig")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

/// The signature a row is, by its artifact type and subject (referrers).
pub(crate) fn referrer_signature(m: &ManifestMeta) -> Option<SignatureRef> {
    let tool = match m.artifact_type.as_deref()? {
        COSIGN_SIGNATURE_ARTIFACT_TYPE => SigningTool::Cosign,
        t if t.starts_with(SIGSTORE_BUNDLE_PREFIX) => SigningTool::Cosign,
        NOTATION_SIGNATURE_ARTIFACT_TYPE => SigningTool::Notation,
        _ => return None,
    };
    Some(SignatureRef {
        digest: m.digest.clone(),
        signed: m.subject.clone()?,
        tool,
    })
}

/// Every signature among a repository's tags and rows.
pub(crate) fn signatures_in(tags: &[(String, String)], rows: &[ManifestMeta]) -> Vec<SignatureRef> {
    let mut out: Vec<SignatureRef> = tags
        .iter()
        .filter_map(|(tag, digest)| {
            Some(SignatureRef {
                digest: digest.clone(),
                signed: cosign_tag_subject(tag)?,
                tool: SigningTool::Cosign,
            })
        })
        .collect();
    out.extend(rows.iter().filter_map(referrer_signature));
    out.sort_by(|a, b| (&a.digest, &a.signed).cmp(&(&b.digest, &b.signed)));
    out.dedup();
    out
}

/// Verifies the signature manifest `sig` in `repo` with `material`
/// (tools not in `tools` are never trusted). A signature that cannot be
/// read or parsed is an untrusted one; only a store that fails is an
/// error.
pub(crate) async fn verify(
    reg: &Registry,
    material: &Material,
    tools: &[SigningTool],
    repo: &RepoName,
    sig: &SignatureRef,
) -> RegistryResult<TrustRecord> {
    let mut record = TrustRecord {
        material: material.fingerprint.clone(),
        verdicts: Vec::new(),
        recheck_at: None,
    };
    let untrusted = |record: &mut TrustRecord| {
        record.verdicts.push(SignatureVerdict {
            tool: sig.tool.as_str().into(),
            trusted: false,
            author: String::new(),
        });
    };
    let (Ok(digest), Ok(signed)) = (sig.digest.parse::<Digest>(), sig.signed.parse::<Digest>())
    else {
        untrusted(&mut record);
        return Ok(record);
    };
    let blobs = &reg.store(repo).blobs;
    let manifest = match blobs
        .read_small_blob(repo, &digest, MAX_SIGNATURE_BYTES)
        .await?
        .map(|bytes| Manifest::parse(&bytes, None))
    {
        Some(Ok(m)) if tools.contains(&sig.tool) => m,
        _ => {
            untrusted(&mut record);
            return Ok(record);
        }
    };
    let subject = reg.meta().manifest_head(repo, &signed).await?;
    let now = SystemTime::now();
    for layer in manifest.layers.iter().take(MAX_SIGNATURE_LAYERS) {
        let Some(content) = blobs
            .read_small_blob(repo, &layer.digest, MAX_SIGNATURE_BYTES)
            .await?
        else {
            continue;
        };
        let signed = signed.to_string();
        let check = match (sig.tool, layer.media_type.as_str()) {
            (SigningTool::Cosign, COSIGN_SIMPLE_SIGNING) => {
                let signature = layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(COSIGN_SIGNATURE_ANNOTATION))
                    .map_or("", String::as_str);
                berth_trust::verify_cosign_simple_signing(
                    &signed,
                    &content,
                    signature,
                    &material.store,
                )
            }
            (SigningTool::Cosign, t) if t.starts_with(SIGSTORE_BUNDLE_PREFIX) => {
                berth_trust::verify_cosign_bundle(&signed, &content, &material.store)
            }
            (SigningTool::Notation, t @ (NOTATION_JWS | NOTATION_COSE)) => {
                let image = SignedImage {
                    digest: &signed,
                    media_type: subject.as_ref().map(|s| s.media_type.as_str()),
                    size: subject.as_ref().map(|s| s.size),
                };
                berth_trust::verify_notation(&image, t, &content, &material.store, now)
            }
            // Not a signature layer (a cosign `.sig` image holds only
            // signatures; anything else is no signature to show).
            _ => continue,
        };
        record_check(&mut record, &check);
    }
    if record.verdicts.is_empty() {
        untrusted(&mut record);
    }
    Ok(record)
}

/// Adds one signature's check to `record`, and when it lapses.
fn record_check(record: &mut TrustRecord, check: &SignatureCheck) {
    if let Some(detail) = &check.detail {
        tracing::debug!(
            tool = check.tool.as_str(),
            "signature not trusted: {detail}"
        );
    }
    let tool = match check.tool {
        Tool::Cosign => "cosign",
        Tool::Notation => "notation",
    };
    record.verdicts.push(SignatureVerdict {
        tool: tool.into(),
        trusted: check.trusted,
        author: check.author.clone(),
    });
    if check.trusted
        && let Some(until) = check.valid_until
    {
        let at = until
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_add(1));
        record.recheck_at = Some(record.recheck_at.map_or(at, |r| r.min(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags() {
        let hex = "a".repeat(64);
        assert_eq!(
            cosign_tag_subject(&format!("sha256-{hex}.sig")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(cosign_tag_subject(&format!("sha256-{hex}.att")), None);
        assert_eq!(cosign_tag_subject("sha256-abc.sig"), None);
        assert_eq!(cosign_tag_subject("v1"), None);
    }

    #[test]
    fn signatures_are_found_by_tag_and_by_artifact_type() {
        let hex = "b".repeat(64);
        let image = format!("sha256:{hex}");
        let tags = vec![
            ("v1".to_string(), image.clone()),
            (format!("sha256-{hex}.sig"), "sha256:5160".to_string()),
        ];
        let row = |digest: &str, artifact: &str| ManifestMeta {
            digest: digest.into(),
            artifact_type: Some(artifact.into()),
            subject: Some(image.clone()),
            ..Default::default()
        };
        let rows = vec![
            row("sha256:n0", NOTATION_SIGNATURE_ARTIFACT_TYPE),
            row("sha256:c0", COSIGN_SIGNATURE_ARTIFACT_TYPE),
            row("sha256:b0", "application/vnd.dev.sigstore.bundle.v0.3+json"),
            row("sha256:s0", "application/spdx+json"),
        ];
        let found = signatures_in(&tags, &rows);
        let named: Vec<(&str, SigningTool)> =
            found.iter().map(|s| (s.digest.as_str(), s.tool)).collect();
        assert_eq!(
            named,
            vec![
                ("sha256:5160", SigningTool::Cosign),
                ("sha256:b0", SigningTool::Cosign),
                ("sha256:c0", SigningTool::Cosign),
                ("sha256:n0", SigningTool::Notation),
            ]
        );
        assert!(found.iter().all(|s| s.signed == image));
    }
}

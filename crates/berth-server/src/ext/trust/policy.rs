//! `extensions.trust.requireSigned`: in the repositories a rule covers, a
//! manifest is served only when a signature of a tool the rule names,
//! verified with the uploaded keys and certificates, vouches for it — or
//! for an index that lists it (a multi-platform image is signed once, by
//! its index's digest). Signatures, referrers and cosign's tag-scheme
//! artifacts stay pullable, so that clients can verify. Anything else is
//! answered 403 `DENIED`.
//!
//! A decision is remembered per repository, digest, store generation and
//! material, so a pull after any write or material change decides anew.

use berth_oci::manifest::Manifest;
use berth_oci::{Digest, Reference, RepoName, Tag};

use super::Trust;
use super::sweep::stale;
use super::verify::{SignatureRef, referrer_signature};
use crate::config::SigningTool;
use crate::meta::TrustRecord;
use crate::registry::{PullGate, PullRefusal, RegistryError, RegistryResult};

/// What a refused pull is told.
const NOT_SIGNED: &str = "the image is not signed by a trusted key: this repository serves only images with a trusted signature (extensions.trust.requireSigned)";

impl Trust {
    /// Whether a signature by one of `tools`, verified now, vouches for
    /// `digest` in `repo` (a stale or missing verdict is made first).
    async fn signed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        tools: &[SigningTool],
    ) -> RegistryResult<bool> {
        let meta = self.registry.meta();
        let mut sigs: Vec<(SignatureRef, Option<TrustRecord>)> = Vec::new();
        if tools.contains(&SigningTool::Cosign)
            && let Ok(tag) = format!("sha256-{}.sig", digest.hex()).parse::<Tag>()
            && let Some(sig_digest) = meta.tag(repo, &tag).await?
            && let Ok(parsed) = sig_digest.parse::<Digest>()
        {
            let row = meta.manifest(repo, &parsed).await?;
            sigs.push((
                SignatureRef {
                    digest: sig_digest,
                    signed: digest.to_string(),
                    tool: SigningTool::Cosign,
                },
                row.and_then(|r| r.trust),
            ));
        }
        for row in meta.referrers(repo, digest).await? {
            if let Some(sig) = referrer_signature(&row).filter(|s| tools.contains(&s.tool)) {
                sigs.push((sig, row.trust));
            }
        }
        let fingerprint = self.material().fingerprint.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (sig, record) in sigs {
            let record = match record {
                Some(r) if !stale(Some(&r), &fingerprint, now) => r,
                _ => self.check_and_keep(repo, &sig).await?,
            };
            if record
                .verdicts
                .iter()
                .any(|v| v.trusted && tools.iter().any(|t| t.as_str() == v.tool))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `digest`, or an index in `repo` that lists it, is signed.
    async fn signed_or_listed_by_signed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        tools: &[SigningTool],
    ) -> RegistryResult<bool> {
        if self.signed(repo, digest, tools).await? {
            return Ok(true);
        }
        let wanted = digest.to_string();
        for row in self.registry.meta().manifests(repo).await? {
            if row.children.contains(&wanted)
                && let Ok(parent) = row.digest.parse::<Digest>()
                && self.signed(repo, &parent, tools).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Whether a manifest is a signature, a referrer or one of cosign's
/// tag-scheme artifacts, served without a signature so that clients can
/// verify: an image manifest (never an index) with no layer a runtime
/// could run (no tar or rootfs layer, no wasm module) that is either a
/// referrer or holds only signature, attestation or SBOM layers. Judged
/// by content, never by the tag it is asked by or a `subject` alone, so
/// a runnable image cannot slip through as a `.sig` tag or a referrer.
fn exempt(manifest: &[u8]) -> bool {
    let Ok(m) = Manifest::parse(manifest, None) else {
        return false;
    };
    if m.kind != berth_oci::media::ManifestKind::Image {
        return false;
    }
    let runnable = m.layers.iter().any(|l| {
        let t = l.media_type.as_str();
        t.contains("tar") || t.contains("rootfs") || t.contains("wasm")
    });
    let signature_like = !m.layers.is_empty()
        && m.layers.iter().all(|l| {
            let t = l.media_type.as_str();
            t == berth_trust::media::COSIGN_SIMPLE_SIGNING
                || t.starts_with("application/vnd.dev.sigstore.bundle")
                || t == "application/vnd.dsse.envelope.v1+json"
                || t == berth_trust::media::NOTATION_JWS
                || t == berth_trust::media::NOTATION_COSE
                || t.starts_with("text/spdx")
                || t.starts_with("application/spdx")
                || t.starts_with("application/vnd.cyclonedx")
                || t.starts_with("application/vnd.in-toto")
        });
    !runnable && (m.subject.is_some() || signature_like)
}

#[async_trait::async_trait]
impl PullGate for Trust {
    async fn check(
        &self,
        repo: &RepoName,
        _reference: &Reference,
        digest: &Digest,
        manifest: &[u8],
    ) -> Result<(), PullRefusal> {
        let Some(tools) = self.required_tools(repo.as_str()) else {
            return Ok(());
        };
        if exempt(manifest) {
            return Ok(());
        }
        let generation = self
            .registry
            .meta()
            .generation()
            .await
            .map_err(|e| PullRefusal::Failed(RegistryError::from(e)))?;
        let key = format!(
            "{repo}\0{digest}\0{generation}\0{}",
            self.material().fingerprint
        );
        let signed = match self.decisions.get(&key) {
            Some(signed) => signed,
            None => {
                let signed = self
                    .signed_or_listed_by_signed(repo, digest, tools)
                    .await
                    .map_err(PullRefusal::Failed)?;
                self.decisions.insert(key, signed);
                signed
            }
        };
        if signed {
            Ok(())
        } else {
            Err(PullRefusal::Denied(NOT_SIGNED.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &[&str], subject: bool, kind: &str) -> Vec<u8> {
        let d = format!("sha256:{}", "a".repeat(64));
        let layers: Vec<_> = layers
            .iter()
            .map(|t| serde_json::json!({"mediaType": t, "digest": d, "size": 1}))
            .collect();
        let mut m = serde_json::json!({"schemaVersion": 2, "mediaType": kind,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d, "size": 1},
            "layers": layers});
        if kind.contains("index") {
            m = serde_json::json!({"schemaVersion": 2, "mediaType": kind,
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 1}]});
        }
        if subject {
            m["subject"] = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 1});
        }
        m.to_string().into_bytes()
    }

    #[test]
    fn only_what_cannot_run_is_served_unsigned() {
        const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";
        const INDEX: &str = "application/vnd.oci.image.index.v1+json";
        const TGZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
        let cases = [
            (
                manifest(&[berth_trust::media::COSIGN_SIMPLE_SIGNING], false, IMAGE),
                true,
                "a cosign .sig image",
            ),
            (
                manifest(&["application/vnd.dsse.envelope.v1+json"], false, IMAGE),
                true,
                "a cosign attestation",
            ),
            (
                manifest(&[berth_trust::media::NOTATION_JWS], true, IMAGE),
                true,
                "a notation signature",
            ),
            (
                manifest(&["application/vnd.example.report+json"], true, IMAGE),
                true,
                "another referrer artifact",
            ),
            (manifest(&[TGZ], false, IMAGE), false, "an image"),
            (
                manifest(&[TGZ], true, IMAGE),
                false,
                "an image posing as a referrer",
            ),
            (
                manifest(
                    &[berth_trust::media::COSIGN_SIMPLE_SIGNING, TGZ],
                    false,
                    IMAGE,
                ),
                false,
                "a .sig image with a filesystem layer",
            ),
            (
                manifest(&["application/vnd.wasm.content.layer.v1+wasm"], true, IMAGE),
                false,
                "a wasm module",
            ),
            (
                manifest(&["application/vnd.example.report+json"], false, IMAGE),
                false,
                "an artifact that refers to nothing",
            ),
            (manifest(&[], true, INDEX), false, "an index"),
            (b"not json".to_vec(), false, "garbage"),
        ];
        for (m, want, what) in cases {
            assert_eq!(exempt(&m), want, "{what}");
        }
    }
}

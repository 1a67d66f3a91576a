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
use super::verify::{SignatureRef, is_cosign_artifact_tag, referrer_signature};
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
/// tag-scheme artifacts: always served, so that clients can verify.
fn exempt(reference: &Reference, manifest: &[u8]) -> bool {
    if let Reference::Tag(t) = reference
        && is_cosign_artifact_tag(t.as_str())
    {
        return true;
    }
    Manifest::parse(manifest, None).is_ok_and(|m| {
        m.subject.is_some()
            || m.layers.iter().any(|l| {
                l.media_type == berth_trust::media::COSIGN_SIMPLE_SIGNING
                    || l.media_type == "application/vnd.dsse.envelope.v1+json"
            })
    })
}

#[async_trait::async_trait]
impl PullGate for Trust {
    async fn check(
        &self,
        repo: &RepoName,
        reference: &Reference,
        digest: &Digest,
        manifest: &[u8],
    ) -> Result<(), PullRefusal> {
        let Some(tools) = self.required_tools(repo.as_str()) else {
            return Ok(());
        };
        if exempt(reference, manifest) {
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

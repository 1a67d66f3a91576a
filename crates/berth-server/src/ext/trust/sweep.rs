//! The background work of the trust extension:
//! - a signature is verified as soon as it is pushed (registry events);
//! - every signature whose verdict was made with other material, or has
//!   lapsed (`recheck_at`), is verified again by a sweep of every
//!   repository: at start, when the material changes, and every
//!   [`SWEEP_EVERY`];
//! - the material is read again when another instance announces new
//!   material (the `trust-material` setting, checked every
//!   [`ANNOUNCED_EVERY`]) and every [`RELOAD_EVERY`] (files put there by
//!   hand).
//!
//! Each verdict is written on the signature's row
//! ([`Registry::update_manifest_row`]), where search and the other
//! instances read it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_oci::manifest::Manifest;
use berth_oci::{Digest, RepoName};

use super::verify::{SignatureRef, cosign_tag_subject, referrer_signature, signatures_in, verify};
use super::{MATERIAL_SETTING, Trust};
use crate::meta::{ManifestMeta, TrustRecord};
use crate::registry::RegistryResult;
use crate::registry::events::RegistryEvent;

/// How often every signature is looked at (for verdicts that lapse).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// How often the announced material is compared with this instance's.
const ANNOUNCED_EVERY: Duration = Duration::from_secs(2);
/// How often the material is read again regardless.
const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// Seconds since the epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a row's verdict must be made (again) with `fingerprint`.
pub(super) fn stale(record: Option<&TrustRecord>, fingerprint: &str, now: u64) -> bool {
    match record {
        None => true,
        Some(r) => r.material != fingerprint || r.recheck_at.is_some_and(|at| at <= now),
    }
}

impl Trust {
    /// Verifies `sig` in `repo` and keeps the verdict on its row; the
    /// record made.
    pub(super) async fn check_and_keep(
        &self,
        repo: &RepoName,
        sig: &SignatureRef,
    ) -> RegistryResult<TrustRecord> {
        let material = self.material();
        let record = verify(&self.registry, &material, &self.tools, repo, sig).await?;
        tracing::debug!(?sig, ?record, "trust: verdict");
        if let Ok(digest) = sig.digest.parse::<Digest>() {
            let kept = record.clone();
            self.registry
                .update_manifest_row(repo, &digest, move |row| row.trust = Some(kept))
                .await?;
        }
        Ok(record)
    }

    /// Verifies every signature of every repository whose verdict is
    /// stale; how many were verified.
    pub(super) async fn sweep(&self) -> RegistryResult<usize> {
        let meta = self.registry.meta();
        let mut checked = 0;
        for name in meta.repos().await? {
            let Ok(repo) = name.parse::<RepoName>() else {
                continue;
            };
            let tags = meta.tags(&repo).await?;
            let rows = meta.manifests(&repo).await?;
            let by_digest: HashMap<&str, &ManifestMeta> =
                rows.iter().map(|m| (m.digest.as_str(), m)).collect();
            let (fingerprint, now) = (self.material().fingerprint.clone(), now_secs());
            for sig in signatures_in(&tags, &rows) {
                let Some(row) = by_digest.get(sig.digest.as_str()) else {
                    continue;
                };
                if stale(row.trust.as_ref(), &fingerprint, now) {
                    self.check_and_keep(&repo, &sig).await?;
                    checked += 1;
                }
            }
        }
        Ok(checked)
    }

    /// The signature a pushed manifest is, if it is one.
    fn pushed_signature(reference: &str, digest: &Digest, manifest: &[u8]) -> Option<SignatureRef> {
        if let Some(signed) = cosign_tag_subject(reference) {
            return Some(SignatureRef {
                digest: digest.to_string(),
                signed,
                tool: crate::config::SigningTool::Cosign,
            });
        }
        let parsed = Manifest::parse(manifest, None).ok()?;
        referrer_signature(&ManifestMeta {
            digest: digest.to_string(),
            artifact_type: parsed.effective_artifact_type(),
            subject: parsed.subject.map(|s| s.digest.to_string()),
            ..Default::default()
        })
    }
}

/// Starts the sweeper, the push listener and the material watcher.
pub(super) fn spawn(trust: &Arc<Trust>) -> Vec<tokio::task::JoinHandle<()>> {
    let sweeper = {
        let trust = trust.clone();
        tokio::spawn(async move {
            loop {
                match trust.sweep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(signatures = n, "trust: signatures verified"),
                    Err(e) => tracing::warn!("trust: verifying signatures failed: {e}"),
                }
                tokio::select! {
                    () = trust.changed.notified() => {}
                    () = tokio::time::sleep(SWEEP_EVERY) => {}
                }
            }
        })
    };
    let listener = {
        let trust = trust.clone();
        let mut events = trust.registry.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::ManifestPushed {
                        repo,
                        reference,
                        digest,
                        manifest,
                        ..
                    }) => {
                        let (Ok(repo), Some(sig)) = (
                            repo.parse::<RepoName>(),
                            Trust::pushed_signature(&reference, &digest, &manifest),
                        ) else {
                            continue;
                        };
                        if let Err(e) = trust.check_and_keep(&repo, &sig).await {
                            tracing::warn!("trust: verifying {repo}@{digest} failed: {e}");
                        }
                    }
                    Ok(_) => {}
                    // Missed pushes: the sweep finds their signatures.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        trust.changed.notify_one();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    };
    let watcher = {
        let trust = trust.clone();
        tokio::spawn(async move {
            let mut since_reload = Duration::ZERO;
            loop {
                tokio::time::sleep(ANNOUNCED_EVERY).await;
                since_reload += ANNOUNCED_EVERY;
                let announced = trust.registry.meta().setting(MATERIAL_SETTING).await;
                let differs =
                    matches!(&announced, Ok(Some(fp)) if *fp != trust.material().fingerprint);
                if differs || since_reload >= RELOAD_EVERY {
                    since_reload = Duration::ZERO;
                    if let Err(e) = trust.reload().await {
                        tracing::warn!("trust: reading the keys and certificates failed: {e}");
                    }
                }
            }
        })
    };
    vec![sweeper, listener, watcher]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_go_stale_with_other_material_or_when_they_lapse() {
        let record = |material: &str, recheck_at| TrustRecord {
            material: material.into(),
            verdicts: Vec::new(),
            recheck_at,
        };
        assert!(stale(None, "m1", 100));
        assert!(!stale(Some(&record("m1", None)), "m1", 100));
        assert!(stale(Some(&record("m0", None)), "m1", 100));
        assert!(!stale(Some(&record("m1", Some(101))), "m1", 100));
        assert!(stale(Some(&record("m1", Some(100))), "m1", 100));
    }
}

//! Periodic sync: every `pollInterval`, the upstream's repositories (its
//! catalog, or the content rules' literal names) and their tags are
//! walked; each tag a rule takes and whose upstream digest differs from
//! the local tag's is copied, several images at once (`reqConcurrent`).
//! A run that fails midway leaves nothing tagged that is not complete,
//! and the next run picks up from what is stored.

use std::sync::Arc;
use std::time::Duration;

use berth_oci::RepoName;
use futures_util::StreamExt;

use berth_client::copy::Outcome;

use super::copy::Job;
use super::upstream::Upstream;
use super::{Inner, SyncError, SyncOutcome};

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct RunReport {
    pub copied: usize,
    pub up_to_date: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// Runs `up`'s periodic sync until aborted: a first run at once, then one
/// every `interval` after the previous ended.
pub(super) async fn run(inner: Arc<Inner>, up: Arc<Upstream>, interval: Duration) {
    loop {
        let started = std::time::Instant::now();
        let report = run_once(&inner, &up).await;
        tracing::info!(
            target: "berth::sync",
            upstream = %up.name(),
            copied = report.copied,
            up_to_date = report.up_to_date,
            skipped = report.skipped,
            failed = report.failed,
            secs = started.elapsed().as_secs_f64(),
            "sync run finished"
        );
        tokio::time::sleep(interval).await;
    }
}

/// One walk of the upstream.
pub(super) async fn run_once(inner: &Arc<Inner>, up: &Arc<Upstream>) -> RunReport {
    let mut report = RunReport::default();
    let remotes = match up.rules.literal_repos() {
        Some(list) => list,
        None => match up.catalog().await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(target: "berth::sync", upstream = %up.name(), "listing the upstream's repositories failed: {e}");
                report.failed += 1;
                return report;
            }
        },
    };
    // Every (repository, tag) the rules take, then copied several at once.
    let mut work = Vec::new();
    for remote in remotes {
        let Some((rule, local)) = up.rules.local_for(&remote) else {
            continue;
        };
        let Ok(local) = local.parse::<RepoName>() else {
            tracing::warn!(target: "berth::sync", upstream = %up.name(), "{remote}: the local name {local:?} is not a valid repository name");
            report.failed += 1;
            continue;
        };
        let tags = match up.tags(&remote).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(target: "berth::sync", upstream = %up.name(), "{remote}: listing tags failed: {e}");
                report.failed += 1;
                continue;
            }
        };
        for tag in tags {
            if up.config.sync_legacy_cosign_tags && is_cosign_tag(&tag) {
                // Copied with the image it signs.
                continue;
            }
            if up.rules.tag_allowed(rule, &tag) {
                work.push((rule, remote.clone(), local.clone(), tag));
            }
        }
    }
    let at_once = up.config.req_concurrent.max(1);
    let mut results =
        futures_util::stream::iter(work.into_iter().map(|(rule, remote, local, tag)| {
            let inner = inner.clone();
            let up = up.clone();
            async move {
                let _slot = inner.registry.background_slot().await;
                let job = Job::new(
                    &inner.registry,
                    &inner.fetches,
                    &up,
                    rule,
                    local.clone(),
                    remote,
                );
                let options = job.options();
                let copy = job.copy(&options);
                let result =
                    match tokio::time::timeout(up.config.sync_timeout, copy.image(&tag)).await {
                        Ok(r) => r,
                        Err(_) => Err(SyncError::Timeout(up.config.sync_timeout)),
                    };
                record(&inner, &up, &local, &tag, result)
            }
        }))
        .buffer_unordered(at_once);
    while let Some(outcome) = results.next().await {
        match outcome {
            SyncOutcome::Copied => report.copied += 1,
            SyncOutcome::UpToDate => report.up_to_date += 1,
            SyncOutcome::Skipped => report.skipped += 1,
            SyncOutcome::Failed => report.failed += 1,
        }
    }
    report
}

/// Logs and announces one image's outcome.
pub(super) fn record(
    inner: &Inner,
    up: &Upstream,
    local: &RepoName,
    reference: &str,
    result: Result<Outcome, SyncError>,
) -> SyncOutcome {
    let (outcome, message) = match result {
        Ok(Outcome::Copied(digest)) => {
            tracing::info!(target: "berth::sync", upstream = %up.name(), "copied {local}:{reference} ({digest})");
            (SyncOutcome::Copied, None)
        }
        Ok(Outcome::UpToDate) => (SyncOutcome::UpToDate, None),
        Ok(Outcome::Unsigned) => {
            tracing::info!(target: "berth::sync", upstream = %up.name(), "skipped {local}:{reference}: not signed (onlySigned)");
            (SyncOutcome::Skipped, Some("not signed".to_string()))
        }
        Ok(Outcome::Missing) => (SyncOutcome::Skipped, Some("not upstream".to_string())),
        Err(e) => {
            tracing::warn!(target: "berth::sync", upstream = %up.name(), "copying {local}:{reference} failed: {e}");
            (SyncOutcome::Failed, Some(e.to_string()))
        }
    };
    if outcome != SyncOutcome::UpToDate {
        inner.announce(up, local.as_str(), reference, outcome, message);
    }
    outcome
}

/// cosign's `sha256-<hex>.sig|att|sbom`.
fn is_cosign_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, suffix)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(suffix, "sig" | "att" | "sbom")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_are_told_apart() {
        let hex = "a".repeat(64);
        assert!(is_cosign_tag(&format!("sha256-{hex}.sig")));
        assert!(is_cosign_tag(&format!("sha256-{hex}.att")));
        assert!(!is_cosign_tag(&format!("sha256-{hex}.other")));
        assert!(!is_cosign_tag("latest"));
        assert!(!is_cosign_tag("sha256-abc.sig"));
    }
}

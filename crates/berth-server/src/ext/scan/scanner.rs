//! Scanning one image manifest stored in a repository: its layers read
//! in order through the storage seam (so every backend, S3 included),
//! each streamed as it is consumed into `berth_vuln::inventory` on a
//! blocking thread (never unpacked to disk, memory bounded by its
//! `Limits`), and the packages found matched against the advisory
//! database. A layer that cannot be read makes a report with an error for
//! that image, never a failed scan queue.

use std::io::Read;
use std::sync::Arc;

use berth_oci::manifest::Manifest;
use berth_oci::media::ManifestKind;
use berth_oci::{Digest, RepoName};
use berth_vuln::advisory::Advisory;
use berth_vuln::inventory::{Layer, Limits, scan_layers};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::report::ScanReport;
use crate::registry::{Registry, RegistryError, RegistryResult};

/// The advisories of an ecosystem's package (a lookup in the database).
pub(crate) type Lookup = Arc<dyn Fn(&str, &str) -> Vec<Advisory> + Send + Sync>;

/// The largest manifest read.
const MAX_MANIFEST: u64 = 4 << 20;

/// A reader that fails at once: a layer whose blob cannot be opened.
struct Unreadable(String);

impl Read for Unreadable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other(self.0.clone()))
    }
}

/// Seconds since the epoch.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Scans the image manifest `digest` of `repo` against the database of
/// `db_version` (its `lookup`). An index is no image: the caller scans
/// its manifests. Fails only when the store fails; an image that cannot
/// be read is a report with an `error`.
pub(crate) async fn scan_image(
    reg: &Registry,
    repo: &RepoName,
    digest: &Digest,
    db_version: &str,
    lookup: Lookup,
    limits: Limits,
) -> RegistryResult<ScanReport> {
    let mut report = ScanReport {
        db_version: db_version.to_string(),
        scanned_at: now_secs(),
        ..Default::default()
    };
    let store = reg.store(repo).clone();
    let manifest = match store
        .blobs
        .read_small_blob(repo, digest, MAX_MANIFEST)
        .await?
        .map(|bytes| Manifest::parse(&bytes, None))
    {
        Some(Ok(m)) if m.kind == ManifestKind::Image => m,
        Some(Ok(_)) => {
            report.error = Some("an index: its manifests are scanned one by one".into());
            return Ok(report);
        }
        Some(Err(e)) => {
            report.error = Some(format!("the manifest does not parse: {e}"));
            return Ok(report);
        }
        None => return Err(RegistryError::ManifestUnknown(digest.to_string())),
    };
    let layers: Vec<(String, Digest, u64)> = manifest
        .layers
        .iter()
        .map(|l| (l.media_type.clone(), l.digest.clone(), l.size))
        .collect();
    let handle = tokio::runtime::Handle::current();
    let repo = repo.clone();
    let scanned = tokio::task::spawn_blocking(move || {
        // Each layer's blob is opened when the one before it is read.
        let readers = layers.into_iter().map(|(media_type, digest, size)| {
            let opened = handle.block_on(store.blobs.read_blob_range(&repo, &digest, 0, size));
            let reader: Box<dyn Read + Send> = match opened {
                Ok(Some(stream)) => Box::new(SyncIoBridge::new_with_handle(
                    StreamReader::new(stream),
                    handle.clone(),
                )),
                Ok(None) => Box::new(Unreadable(format!("layer {digest} is missing"))),
                Err(e) => Box::new(Unreadable(format!("layer {digest}: {e}"))),
            };
            Layer::new(media_type, reader)
        });
        let inventory = scan_layers(readers, limits)?;
        let findings =
            berth_vuln::matching::findings(&inventory.packages, |eco, name| lookup(eco, name));
        Ok::<_, berth_vuln::inventory::InventoryError>((inventory, findings))
    })
    .await;
    let scanned = match scanned {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%digest, "the scan stopped: {e}");
            return Err(RegistryError::Internal("a scan stopped"));
        }
    };
    match scanned {
        Ok((inventory, findings)) => {
            report.os = inventory.os.as_ref().and_then(|o| o.ecosystem());
            report.packages = inventory.packages.len();
            report.notes = inventory.notes;
            report.findings = findings;
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    Ok(report)
}

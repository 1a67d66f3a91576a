//! zot's signature verification (`extensions.trust`, feature `trust`):
//! cosign and notation signatures stored in the registry are checked
//! against uploaded public keys and certificates, and the verdicts shown
//! by search (`IsSigned`, `SignatureInfo{Tool, IsTrusted, Author}`); and,
//! beyond zot, `requireSigned`: repositories whose images are served only
//! with a trusted signature.
//!
//! - `material.rs`: the keys and certificates, kept under the main root
//!   as zot keeps them (`_cosign/`, `_notation/truststore/x509/…`), so
//!   every instance sharing the root sees them.
//! - `verify.rs`: which manifests are signatures, and one signature
//!   manifest verified with `berth-trust` into a `TrustRecord`.
//! - `sweep.rs`: the background work: a signature is checked when it is
//!   pushed, every signature again when the material changes (here or on
//!   another instance, told through the metadata store's
//!   `trust-material` setting) and when a verdict lapses; each verdict is
//!   kept on the signature's row in the metadata store (so every instance
//!   and search read it).
//! - `policy.rs`: the pull gate of `requireSigned`.
//! - `http.rs`: zot's upload routes (`POST /v2/_zot/ext/cosign`,
//!   `POST /v2/_zot/ext/notation?truststoreType=`), and Berth's listing
//!   (`GET`) and removal (`DELETE ?id=`) on the same paths.

mod http;
mod material;
mod policy;
mod sweep;
mod verify;

use std::sync::{Arc, RwLock};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tokio::sync::Notify;

pub(crate) use http::{
    delete as delete_material, list as list_material, upload_cosign, upload_notation,
};

use crate::config::{SigningTool, TrustConfig};
use crate::registry::Registry;
use crate::storage::{RootFiles, StorageError, StorageResult};
use material::Material;

/// The metadata store's setting naming the material in force, so that
/// other instances reload it when one changes it.
const MATERIAL_SETTING: &str = "trust-material";

/// The trust extension of a running server.
pub struct Trust {
    /// The tools turned on.
    tools: Vec<SigningTool>,
    registry: Arc<Registry>,
    /// The material in force; swapped whole when it changes.
    material: RwLock<Arc<Material>>,
    /// Wakes the sweeper: the material changed.
    changed: Notify,
    /// `requireSigned`: repository globs and the tools whose trusted
    /// signature they need, first match first.
    require: Vec<(GlobSet, Vec<SigningTool>)>,
    /// Pull decisions, keyed by repository, digest, the store's
    /// generation and the material (so any write or change is a miss).
    decisions: moka::sync::Cache<String, bool>,
}

impl Trust {
    /// The extension for `config`, with the material under the main root
    /// read (`None` when the section is off).
    pub async fn open(
        config: &TrustConfig,
        registry: Arc<Registry>,
    ) -> StorageResult<Option<Arc<Self>>> {
        if !config.enable {
            return Ok(None);
        }
        let tools = config.tools();
        let mut require = Vec::new();
        for rule in &config.require_signed {
            let mut set = GlobSetBuilder::new();
            for g in &rule.repositories {
                let glob = GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
                set.add(glob);
            }
            let set = set
                .build()
                .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
            let needs = if rule.tools.is_empty() {
                tools.clone()
            } else {
                rule.tools.clone()
            };
            require.push((set, needs));
        }
        let files = main_files(&registry)?;
        let material = material::load(files.as_ref(), &tools).await?;
        tracing::info!(
            files = material.files.len(),
            "trust: verifying {} signatures",
            tools
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        Ok(Some(Arc::new(Self {
            tools,
            registry,
            material: RwLock::new(Arc::new(material)),
            changed: Notify::new(),
            require,
            decisions: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
        })))
    }

    /// The material in force.
    fn material(&self) -> Arc<Material> {
        self.material
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The main root's files.
    fn files(&self) -> StorageResult<Arc<dyn RootFiles>> {
        main_files(&self.registry)
    }

    /// Reads the material again; whether it changed (then the sweeper is
    /// woken and decisions are forgotten).
    async fn reload(&self) -> StorageResult<bool> {
        let fresh = material::load(self.files()?.as_ref(), &self.tools).await?;
        let changed = fresh.fingerprint != self.material().fingerprint;
        if changed {
            tracing::info!(
                files = fresh.files.len(),
                "trust: material changed; checking signatures again"
            );
            *self.material.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
            self.decisions.invalidate_all();
            self.changed.notify_one();
        }
        Ok(changed)
    }

    /// After an upload or removal here: read the material again and tell
    /// the other instances.
    async fn material_written(&self) -> StorageResult<()> {
        self.reload().await?;
        let fingerprint = self.material().fingerprint.clone();
        if let Err(e) = self
            .registry
            .meta()
            .set_setting(MATERIAL_SETTING, &fingerprint)
            .await
        {
            tracing::warn!("trust: other instances are not told of the new material: {e}");
        }
        Ok(())
    }

    /// The tools whose trusted signature `repo` needs, when a
    /// `requireSigned` rule covers it.
    fn required_tools(&self, repo: &str) -> Option<&[SigningTool]> {
        self.require
            .iter()
            .find(|(globs, _)| globs.is_match(repo))
            .map(|(_, tools)| tools.as_slice())
    }

    /// The pull gate, when `requireSigned` has rules.
    pub fn gate(self: &Arc<Self>) -> Option<Arc<dyn crate::registry::PullGate>> {
        (!self.require.is_empty()).then(|| self.clone() as Arc<dyn crate::registry::PullGate>)
    }

    /// Starts the background work (see `sweep.rs`).
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        sweep::spawn(self)
    }
}

/// The main root's files (where the material is kept).
fn main_files(registry: &Registry) -> StorageResult<Arc<dyn RootFiles>> {
    registry
        .roots()
        .all()
        .first()
        .map(|r| r.store.files.clone())
        .ok_or_else(|| StorageError::InvalidInput("no storage root".into()))
}

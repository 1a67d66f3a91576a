//! `cluster`: zot's scale-out. Every member has the same list of members
//! (`host:port`, the same order everywhere) and the same `hashKey`; a
//! repository belongs to the member its name hashes to. What Berth does
//! with it is in `ext/cluster.rs`.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `cluster`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Every member's `host:port`, this one included.
    pub members: Vec<String>,
    /// The SipHash key: exactly 16 bytes.
    pub hash_key: String,
    /// How members reach each other over HTTPS (used when `http.tls` is
    /// set): the CA their certificates chain to, and a client certificate
    /// for members that ask for one.
    #[serde(default)]
    pub tls: Option<ClusterTls>,
}

/// `cluster.tls`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    #[serde(default)]
    pub cacert: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl ClusterConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.members.is_empty() {
            return Err(ConfigError::key("cluster.members", "must not be empty"));
        }
        for (i, m) in self.members.iter().enumerate() {
            let port = m.rsplit_once(':').map(|(_, p)| p);
            if port.is_none_or(|p| p.parse::<u16>().is_err()) {
                return Err(ConfigError::key(
                    format!("cluster.members[{i}]"),
                    format!("{m:?} is not host:port"),
                ));
            }
        }
        if self.hash_key.len() != 16 {
            return Err(ConfigError::key(
                "cluster.hashKey",
                format!(
                    "must be exactly 16 bytes (the SipHash key), not {}",
                    self.hash_key.len()
                ),
            ));
        }
        if let Some(tls) = &self.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            return Err(ConfigError::key(
                "cluster.tls.key",
                "cert and key go together",
            ));
        }
        Ok(())
    }
}

impl super::Config {
    /// Whether every instance with this config sees the same repositories:
    /// every storage root in a bucket and the metadata in a shared store.
    /// Cluster members sharing storage need no owner: each serves all.
    pub fn shares_storage(&self) -> bool {
        self.storage.storage_driver.is_some()
            && self.storage.cache_driver.is_some()
            && self
                .storage
                .sub_paths
                .values()
                .all(|s| s.storage_driver.is_some())
    }
}

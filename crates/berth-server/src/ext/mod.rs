//! Extensions: each behind its cargo feature, each built on the core
//! (registry events, the router, the config) without the core knowing it.
//! A config that turns on an extension this build lacks is refused by
//! name ([`check_built`]).

#[cfg(feature = "cluster")]
pub mod cluster;
#[cfg(feature = "events")]
pub mod events;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "openapi")]
pub mod openapi;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "scan")]
pub mod scan;
#[cfg(feature = "search")]
pub mod search;
#[cfg(feature = "sync")]
pub mod sync;
#[cfg(feature = "trust")]
pub mod trust;
#[cfg(feature = "ui")]
pub mod ui;

use crate::config::{Config, ConfigError};

/// Refuses a config that needs an extension this binary was built
/// without; the error names the key.
pub fn check_built(config: &Config) -> Result<(), ConfigError> {
    let missing = |key: &str, feature: &str| {
        Err(ConfigError::key(
            key,
            format!("this berth was built without the \"{feature}\" feature"),
        ))
    };
    if config.extensions.metrics_path().is_some() && !cfg!(feature = "metrics") {
        return missing("extensions.metrics", "metrics");
    }
    if config.extensions.events.as_ref().is_some_and(|e| e.enable) && !cfg!(feature = "events") {
        return missing("extensions.events", "events");
    }
    if config.extensions.search_enabled() && !cfg!(feature = "search") {
        return missing("extensions.search", "search");
    }
    if config.extensions.ui_enabled() && !cfg!(feature = "ui") {
        return missing("extensions.ui", "ui");
    }
    if config.extensions.cve().is_some() && !cfg!(feature = "scan") {
        return missing("extensions.search.cve", "scan");
    }
    if config.extensions.trust_enabled().is_some() && !cfg!(feature = "trust") {
        return missing("extensions.trust", "trust");
    }
    if config.extensions.sync_enabled().is_some() && !cfg!(feature = "sync") {
        return missing("extensions.sync", "sync");
    }
    if config.http.ratelimit.is_some() && !cfg!(feature = "ratelimit") {
        return missing("http.ratelimit", "ratelimit");
    }
    // Members that share storage need no routing, so no feature.
    if config
        .cluster
        .as_ref()
        .is_some_and(|c| c.members.len() > 1 && !config.shares_storage())
        && !cfg!(feature = "cluster")
    {
        return missing("cluster", "cluster");
    }
    Ok(())
}

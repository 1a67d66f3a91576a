//! The Berth registry server.
//!
//! Layers, from the bottom: [`config`] (the zot-schema config file),
//! [`storage`] (OCI image layouts on the local filesystem), [`registry`]
//! (the domain: uploads, manifests, tags, referrers), [`api`] (HTTP: a
//! request path parsed into a typed endpoint, handlers, the one place errors
//! become OCI error bodies) and [`server`] (binding, logging, shutdown).

/// The git commit this server was built from, when it was built from a
/// checkout (see `build.rs`).
pub const COMMIT: Option<&str> = option_env!("BERTH_COMMIT");

pub mod api;
pub mod auth;
pub mod config;
pub mod ext;
pub mod health;
pub mod logging;
pub mod meta;
mod os;
mod redb_file;
pub mod registry;
pub mod scrub;
pub mod server;
pub mod storage;
pub mod tls;
pub mod watch;

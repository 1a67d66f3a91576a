#![allow(unreachable_pub)]

//! Integration tests: a real server on 127.0.0.1:0 driven over HTTP.

mod base;
mod blobs;
mod concurrency;
mod connections;
mod dedupe;
mod gc;
mod image_meta;
mod layout;
mod library;
mod listing;
mod manifests;
mod meta;
mod outage;
mod policies;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_client;
#[cfg(feature = "redis")]
mod redis_locks;
#[cfg(feature = "redis")]
pub mod redis_server;
mod referrers;
mod retention;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "s3")]
pub mod s3_server;
mod scrub;
mod storage_conformance;
mod subpaths;
mod support;
#[cfg(feature = "s3")]
mod tls_proxy;
mod upload_limits;
mod uploads;

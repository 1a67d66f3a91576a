//! Tests of the real `berth` binary: config checking, serving, shutdown,
//! and real clients (skopeo, oras-py) pushing and pulling through it.

#![allow(unreachable_pub)]

mod abuse;
#[cfg(feature = "openapi")]
mod apidocs;
mod apikeys;
mod auth;
mod bearer;
mod bearer_oidc;
#[cfg(feature = "secretsmanager")]
mod bearer_secrets;
mod bench;
mod clients;
#[cfg(feature = "cluster")]
mod cluster;
mod conditions;
mod config;
// Open-files limits, read from /proc.
#[cfg(target_os = "linux")]
mod connections;
mod copy;
mod cors;
// The image, the Helm chart, the systemd unit, SIGHUP, completions and man
// pages.
mod deploy;
#[cfg(feature = "events")]
mod events;
#[cfg(feature = "events")]
mod events_nats;
mod gc_window;
// Fixtures for the sync tests (not all of them used yet).
#[cfg(feature = "azure")]
#[path = "../../../berth-server/tests/it/azurite_server.rs"]
#[allow(dead_code)]
mod azurite_server;
#[cfg(all(feature = "gcs", feature = "azure"))]
mod cloud;
// moto's server: DynamoDB, and ECR for the sync credential helper.
#[cfg(any(all(feature = "s3", feature = "dynamodb"), feature = "ecr"))]
#[path = "../../../berth-server/tests/it/dynamo_server.rs"]
#[allow(dead_code)]
mod dynamo_server;
#[cfg(any(feature = "sync", feature = "openid"))]
mod fake_http;
#[allow(dead_code)]
mod images;
mod ldap;
mod lifecycle;
#[cfg(any(all(feature = "s3", feature = "redis"), feature = "azure"))]
#[path = "../../../berth-server/tests/it/listening.rs"]
mod listening;
mod login;
mod matrix;
#[cfg(feature = "metrics")]
mod metrics;
mod oidc_issuer;
#[cfg(feature = "openid")]
mod openid_login;
#[cfg(all(
    feature = "metrics",
    feature = "search",
    feature = "s3",
    feature = "redis"
))]
mod policies;
#[allow(dead_code)]
mod proxy;
#[cfg(feature = "search")]
mod query;
#[cfg(feature = "ratelimit")]
mod ratelimit;
#[cfg(all(feature = "s3", feature = "redis"))]
#[path = "../../../berth-server/tests/it/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;
#[cfg(all(feature = "s3", any(feature = "redis", feature = "dynamodb")))]
#[path = "../../../berth-server/tests/it/s3_server.rs"]
#[allow(dead_code)]
mod s3_server;
#[cfg(all(feature = "s3", any(feature = "redis", feature = "dynamodb")))]
mod scaleout;
#[cfg(all(feature = "s3", feature = "dynamodb"))]
mod scaleout_dynamodb;
#[cfg(feature = "scan")]
mod scan;
#[cfg(feature = "scan")]
mod scan_server;
mod scrub;
#[cfg(feature = "search")]
mod search;
#[cfg(feature = "search")]
mod search_client;
#[cfg(feature = "search")]
mod search_data;
#[cfg(feature = "search")]
mod search_expect;
#[cfg(feature = "search")]
mod search_queries;
#[cfg(all(feature = "s3", feature = "redis", feature = "search"))]
mod search_shared;
#[cfg(feature = "search")]
mod search_ui;
mod slapd;
mod support;
#[cfg(feature = "sync")]
mod sync;
#[cfg(feature = "sync")]
mod sync_helpers;
#[cfg(feature = "sync")]
mod sync_oauth2;
#[cfg(feature = "sync")]
mod sync_on_demand;
mod tls;
mod token_exchange;
mod token_server;
#[cfg(all(feature = "trust", feature = "search"))]
mod trust;
#[cfg(feature = "ui")]
mod ui;
#[cfg(feature = "ui")]
mod ui_browser;
#[allow(dead_code)]
mod upstream;
mod upstream_smoke;

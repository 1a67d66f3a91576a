//! `storage.storageDriver` (where blobs and layouts live: S3) and
//! `storage.cacheDriver` (where metadata, locks and upload coordination
//! live: Redis), in zot's schema. Both need the matching cargo feature.

use serde::Deserialize;

use super::ConfigError;

/// `storage.storageDriver`: zot's keys for `name: s3` (lower case, as zot
/// passes them to the distribution driver).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageDriverConfig {
    /// Only `s3`.
    pub name: String,
    /// The key prefix inside the bucket (default: the bucket's root).
    #[serde(default)]
    pub rootdirectory: String,
    /// Default `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// An S3-compatible endpoint (`host:port` or a URL); default AWS.
    #[serde(default)]
    pub regionendpoint: Option<String>,
    pub bucket: String,
    /// Path-style requests (`endpoint/bucket/key`), as most S3-compatible
    /// servers want (default false: virtual-hosted style).
    #[serde(default)]
    pub forcepathstyle: bool,
    /// HTTPS to an endpoint given without a scheme (default true).
    #[serde(default = "yes")]
    pub secure: bool,
    /// Accept any TLS certificate from the endpoint (default false).
    #[serde(default)]
    pub skipverify: bool,
    /// Credentials; without them the AWS environment and instance
    /// metadata are used.
    #[serde(default)]
    pub accesskey: Option<String>,
    #[serde(default)]
    pub secretkey: Option<String>,
}

fn yes() -> bool {
    true
}

impl StorageDriverConfig {
    pub(super) fn check(&self, at: &str) -> Result<(), ConfigError> {
        if self.name != "s3" {
            return Err(ConfigError::key(
                format!("{at}.name"),
                format!(
                    "unsupported storage driver {:?} (berth has \"s3\")",
                    self.name
                ),
            ));
        }
        if !cfg!(feature = "s3") {
            return Err(ConfigError::key(
                at,
                "this berth was built without the \"s3\" feature",
            ));
        }
        if self.bucket.is_empty() {
            return Err(ConfigError::key(
                format!("{at}.bucket"),
                "must not be empty",
            ));
        }
        if self.accesskey.is_some() != self.secretkey.is_some() {
            return Err(ConfigError::key(
                format!("{at}.secretkey"),
                "accesskey and secretkey go together",
            ));
        }
        Ok(())
    }
}

/// `storage.cacheDriver`: zot's `redis` keys.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheDriverConfig {
    /// Only `redis`.
    pub name: String,
    /// `redis://[user:password@]host:port[/db]`; or `addr`.
    #[serde(default)]
    pub url: Option<String>,
    /// `host:port` addresses; the first is used (no cluster).
    #[serde(default)]
    pub addr: Vec<String>,
    /// Prefix of every key (default `berth`).
    #[serde(default = "default_prefix")]
    pub keyprefix: String,
    #[serde(default)]
    pub db: i64,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Berth's: how long one Redis command may take (reconnecting
    /// included) before the request that needs it answers 503; 1 s.
    #[serde(default = "default_command_timeout", rename = "commandTimeout")]
    pub command_timeout: super::value::DurationValue,
    // zot's go-redis options, as zot spells them: `redis_client.rs` says
    // what each does here, or why it is refused.
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub protocol: Option<u8>,
    #[serde(default)]
    pub max_retries: Option<i64>,
    #[serde(default)]
    pub min_retry_backoff: Option<super::value::DurationValue>,
    #[serde(default)]
    pub max_retry_backoff: Option<super::value::DurationValue>,
    #[serde(default)]
    pub dial_timeout: Option<super::value::DurationValue>,
    #[serde(default)]
    pub read_timeout: Option<super::value::DurationValue>,
    #[serde(default)]
    pub write_timeout: Option<super::value::DurationValue>,
    #[serde(default)]
    pub context_timeout_enabled: Option<bool>,
    #[serde(default)]
    pub pool_fifo: Option<bool>,
    #[serde(default)]
    pub pool_size: Option<usize>,
    #[serde(default)]
    pub pool_timeout: Option<super::value::DurationValue>,
    #[serde(default)]
    pub min_idle_conns: Option<usize>,
    #[serde(default)]
    pub max_idle_conns: Option<usize>,
    #[serde(default)]
    pub max_active_conns: Option<usize>,
    #[serde(default)]
    pub conn_max_idle_time: Option<super::value::DurationValue>,
    #[serde(default)]
    pub conn_max_lifetime: Option<super::value::DurationValue>,
    #[serde(default)]
    pub max_redirects: Option<i64>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub route_by_latency: Option<bool>,
    #[serde(default)]
    pub route_randomly: Option<bool>,
    #[serde(default)]
    pub master_name: Option<String>,
    #[serde(default)]
    pub sentinel_username: Option<String>,
    #[serde(default)]
    pub sentinel_password: Option<String>,
    #[serde(default)]
    pub disable_identity: Option<bool>,
    #[serde(default)]
    pub identity_suffix: Option<String>,
    #[serde(default)]
    pub unstable_resp3: Option<bool>,
    /// zot's directory of its embedded (boltdb) cache, which some of its
    /// redis examples carry; meaningless here, ignored as zot ignores it
    /// (Berth says so in its log at start).
    #[serde(default, rename = "rootDir")]
    pub root_dir: Option<std::path::PathBuf>,
}

fn default_prefix() -> String {
    "berth".into()
}

fn default_command_timeout() -> super::value::DurationValue {
    super::value::DurationValue(std::time::Duration::from_secs(1))
}

impl CacheDriverConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let at = "storage.cacheDriver";
        if self.name != "redis" {
            return Err(ConfigError::key(
                format!("{at}.name"),
                format!(
                    "unsupported cache driver {:?} (berth has \"redis\")",
                    self.name
                ),
            ));
        }
        if !cfg!(feature = "redis") {
            return Err(ConfigError::key(
                at,
                "this berth was built without the \"redis\" feature",
            ));
        }
        if self.url.is_none() && self.addr.is_empty() {
            return Err(ConfigError::key(format!("{at}.url"), "set url or addr"));
        }
        self.redis_client()?;
        let timeout = self.command_timeout.0;
        if timeout.is_zero() || timeout > std::time::Duration::from_secs(3) {
            return Err(ConfigError::key(
                format!("{at}.commandTimeout"),
                "must be above zero and at most 3s (a third of the lease of the locks kept in Redis)",
            ));
        }
        Ok(())
    }
}

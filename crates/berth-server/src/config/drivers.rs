//! `storage.storageDriver` (where blobs and layouts live: S3, GCS or
//! Azure Blob Storage) and
//! `storage.cacheDriver` (where metadata, locks and upload coordination
//! live: Redis), in zot's schema. Both need the matching cargo feature.

use serde::Deserialize;

use super::ConfigError;

/// `storage.storageDriver`: zot's keys for `name: s3`, `gcs` and `azure`
/// (lower case, as zot passes them to distribution's drivers). Each key
/// belongs to one driver (`bucket` and `rootdirectory` to several); a key
/// of another driver is refused by name.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageDriverConfig {
    /// `s3`, `gcs` or `azure`.
    pub name: String,
    /// The key prefix inside the bucket (default: the bucket's root).
    #[serde(default)]
    pub rootdirectory: String,
    /// S3 and GCS: the bucket.
    #[serde(default)]
    pub bucket: String,
    /// S3: default `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// S3: an S3-compatible endpoint (`host:port` or a URL); default AWS.
    #[serde(default)]
    pub regionendpoint: Option<String>,
    /// S3: path-style requests (`endpoint/bucket/key`), as most
    /// S3-compatible servers want (default false: virtual-hosted style).
    #[serde(default)]
    pub forcepathstyle: Option<bool>,
    /// S3: HTTPS to an endpoint given without a scheme (default true).
    #[serde(default)]
    pub secure: Option<bool>,
    /// S3: accept any TLS certificate from the endpoint (default false).
    #[serde(default)]
    pub skipverify: Option<bool>,
    /// S3 credentials; without them the AWS environment and instance
    /// metadata are used.
    #[serde(default)]
    pub accesskey: Option<String>,
    #[serde(default)]
    pub secretkey: Option<String>,
    /// GCS: a service account key file (distribution's key).
    #[serde(default)]
    pub keyfile: Option<std::path::PathBuf>,
    /// GCS: a service account key file (zot's example spells it so).
    #[serde(default, rename = "credentialsFile")]
    pub credentials_file: Option<std::path::PathBuf>,
    /// GCS: a service account key itself; Azure: `type` (`shared_key`,
    /// `client_secret`, `default_credentials`), `clientid`, `tenantid`,
    /// `secret`.
    #[serde(default)]
    pub credentials: Option<serde_json::Value>,
    /// GCS: the upload chunk size; Berth's parts are 5 MiB, so only
    /// 5242880 is accepted.
    #[serde(default)]
    pub chunksize: Option<u64>,
    /// Azure: the storage account.
    #[serde(default)]
    pub accountname: Option<String>,
    /// Azure: the account's shared key (base64).
    #[serde(default)]
    pub accountkey: Option<String>,
    /// Azure: the blob container.
    #[serde(default)]
    pub container: Option<String>,
    /// Azure: the domain of `https://<account>.blob.<realm>` (default
    /// `core.windows.net`).
    #[serde(default)]
    pub realm: Option<String>,
    /// Azure: the blob service's URL (an emulator's: its account is added
    /// as the path when the host is an IP address or `localhost`).
    #[serde(default)]
    pub serviceurl: Option<String>,
    /// Azure keys of distribution refused by name: Berth's own retries
    /// apply, and copies are never polled (see `check`).
    #[serde(default)]
    pub maxretries: Option<serde_json::Value>,
    #[serde(default)]
    pub retrydelay: Option<serde_json::Value>,
    #[serde(default)]
    pub copystatuspollmaxretry: Option<serde_json::Value>,
    #[serde(default)]
    pub copystatuspolldelay: Option<serde_json::Value>,
}

/// The drivers Berth has, each with whether its cargo feature is built in.
const DRIVERS: [(&str, bool); 3] = [
    ("s3", cfg!(feature = "s3")),
    ("gcs", cfg!(feature = "gcs")),
    ("azure", cfg!(feature = "azure")),
];

/// The Azure credentials `storage.storageDriver` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureCredentialsConfig {
    SharedKey(String),
    ClientSecret {
        client_id: String,
        tenant_id: String,
        secret: String,
    },
    Default,
}

/// The key `key` of a JSON object, in any case.
fn field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
}

impl StorageDriverConfig {
    /// Each key that is set, with the drivers it belongs to.
    fn keys_set(&self) -> Vec<(&'static str, &'static [&'static str])> {
        const S3: &[&str] = &["s3"];
        const GCS: &[&str] = &["gcs"];
        const AZURE: &[&str] = &["azure"];
        const GCS_AZURE: &[&str] = &["gcs", "azure"];
        const S3_GCS: &[&str] = &["s3", "gcs"];
        [
            ("bucket", !self.bucket.is_empty(), S3_GCS),
            ("region", self.region.is_some(), S3),
            ("regionendpoint", self.regionendpoint.is_some(), S3),
            ("forcepathstyle", self.forcepathstyle.is_some(), S3),
            ("secure", self.secure.is_some(), S3),
            ("skipverify", self.skipverify.is_some(), S3),
            ("accesskey", self.accesskey.is_some(), S3),
            ("secretkey", self.secretkey.is_some(), S3),
            ("keyfile", self.keyfile.is_some(), GCS),
            ("credentialsFile", self.credentials_file.is_some(), GCS),
            ("credentials", self.credentials.is_some(), GCS_AZURE),
            ("chunksize", self.chunksize.is_some(), GCS),
            ("accountname", self.accountname.is_some(), AZURE),
            ("accountkey", self.accountkey.is_some(), AZURE),
            ("container", self.container.is_some(), AZURE),
            ("realm", self.realm.is_some(), AZURE),
            ("serviceurl", self.serviceurl.is_some(), AZURE),
            ("maxretries", self.maxretries.is_some(), AZURE),
            ("retrydelay", self.retrydelay.is_some(), AZURE),
            (
                "copystatuspollmaxretry",
                self.copystatuspollmaxretry.is_some(),
                AZURE,
            ),
            (
                "copystatuspolldelay",
                self.copystatuspolldelay.is_some(),
                AZURE,
            ),
        ]
        .into_iter()
        .filter(|(_, set, _)| *set)
        .map(|(k, _, drivers)| (k, drivers))
        .collect()
    }

    /// Where the root's data is, as a URL-like text (`s3://bucket/prefix`,
    /// `gs://…`, `azure://account/container/prefix`).
    pub fn location(&self) -> String {
        let prefix = self.rootdirectory.trim_matches('/');
        match self.name.as_str() {
            "gcs" => format!("gs://{}/{prefix}", self.bucket),
            "azure" => format!(
                "azure://{}/{}/{prefix}",
                self.accountname.as_deref().unwrap_or_default(),
                self.container.as_deref().unwrap_or_default()
            ),
            _ => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    /// GCS: the service account key given inline (`credentials`), as JSON.
    pub fn gcs_key(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| match c {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Azure: how requests are signed (`check` made sure it is complete).
    pub fn azure_credentials(&self) -> AzureCredentialsConfig {
        let kind = self
            .credentials
            .as_ref()
            .and_then(|c| field(c, "type"))
            .unwrap_or(if self.accountkey.is_some() {
                "shared_key"
            } else {
                "default_credentials"
            });
        let get = |k: &str| {
            self.credentials
                .as_ref()
                .and_then(|c| field(c, k))
                .unwrap_or_default()
                .to_string()
        };
        match kind {
            "shared_key" => {
                AzureCredentialsConfig::SharedKey(self.accountkey.clone().unwrap_or_default())
            }
            "client_secret" => AzureCredentialsConfig::ClientSecret {
                client_id: get("clientid"),
                tenant_id: get("tenantid"),
                secret: get("secret"),
            },
            _ => AzureCredentialsConfig::Default,
        }
    }

    pub(super) fn check(&self, at: &str) -> Result<(), ConfigError> {
        let name = self.name.as_str();
        let Some((_, built)) = DRIVERS.iter().find(|(d, _)| *d == name) else {
            return Err(ConfigError::key(
                format!("{at}.name"),
                format!(
                    "unsupported storage driver {:?} (berth has \"s3\", \"gcs\" and \"azure\")",
                    self.name
                ),
            ));
        };
        if !built {
            return Err(ConfigError::key(
                at,
                format!("this berth was built without the {name:?} feature"),
            ));
        }
        if let Some((key, _)) = self
            .keys_set()
            .into_iter()
            .find(|(_, drivers)| !drivers.contains(&name))
        {
            return Err(ConfigError::key(
                format!("{at}.{key}"),
                format!("not a key of the {name} driver"),
            ));
        }
        match name {
            "s3" => self.check_s3(at),
            "gcs" => self.check_gcs(at),
            _ => self.check_azure(at),
        }
    }

    fn check_s3(&self, at: &str) -> Result<(), ConfigError> {
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

    fn check_gcs(&self, at: &str) -> Result<(), ConfigError> {
        if self.bucket.is_empty() {
            return Err(ConfigError::key(
                format!("{at}.bucket"),
                "must not be empty",
            ));
        }
        let given = [
            self.keyfile.is_some(),
            self.credentials_file.is_some(),
            self.credentials.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(ConfigError::key(
                format!("{at}.credentials"),
                "give one of keyfile, credentialsFile and credentials",
            ));
        }
        if let Some(c) = &self.credentials
            && !c.is_object()
            && serde_json::from_str::<serde_json::Value>(c.as_str().unwrap_or_default())
                .map_or(true, |v| !v.is_object())
        {
            return Err(ConfigError::key(
                format!("{at}.credentials"),
                "must be a service account key (a JSON object)",
            ));
        }
        if let Some(size) = self.chunksize
            && size != 5 << 20
        {
            return Err(ConfigError::key(
                format!("{at}.chunksize"),
                "berth uploads in parts of 5 MiB: only 5242880 is accepted",
            ));
        }
        Ok(())
    }

    fn check_azure(&self, at: &str) -> Result<(), ConfigError> {
        for (key, value) in [
            ("accountname", &self.accountname),
            ("container", &self.container),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::key(format!("{at}.{key}"), "must be set"));
            }
        }
        for key in [
            "maxretries",
            "retrydelay",
            "copystatuspollmaxretry",
            "copystatuspolldelay",
        ] {
            if self.keys_set().iter().any(|(k, _)| *k == key) {
                return Err(ConfigError::key(
                    format!("{at}.{key}"),
                    "zot key not supported: berth retries a failing request for about 10s and copies blobs only within one account and does not poll a copy (Azure completes those synchronously as a rule)",
                ));
            }
        }
        let kind = self
            .credentials
            .as_ref()
            .map(|c| field(c, "type").unwrap_or_default());
        match kind {
            None | Some("default_credentials") => {}
            Some("shared_key") if self.accountkey.is_none() => {
                return Err(ConfigError::key(
                    format!("{at}.accountkey"),
                    "credentials of type shared_key need accountkey",
                ));
            }
            Some("shared_key") => {}
            Some("client_secret") => {
                for k in ["clientid", "tenantid", "secret"] {
                    if self
                        .credentials
                        .as_ref()
                        .and_then(|c| field(c, k))
                        .is_none_or(str::is_empty)
                    {
                        return Err(ConfigError::key(
                            format!("{at}.credentials.{k}"),
                            "must be set for type client_secret",
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(ConfigError::key(
                    format!("{at}.credentials.type"),
                    "must be shared_key, client_secret or default_credentials",
                ));
            }
        }
        Ok(())
    }
}

/// `storage.cacheDriver`: zot's `redis` keys, and its `dynamodb` keys
/// (checked in `dynamodb.rs`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheDriverConfig {
    /// `redis` or `dynamodb`.
    pub name: String,
    // zot's `dynamodb` keys (refused with `redis`; see `dynamodb.rs`).
    /// A DynamoDB-compatible endpoint URL (default: AWS's, by region).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The AWS region (default `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Put before each default table name (newer zot's).
    #[serde(default, rename = "tablenamePrefix")]
    pub tablename_prefix: Option<String>,
    #[serde(default, rename = "cacheTablename")]
    pub cache_tablename: Option<String>,
    #[serde(default, rename = "repoMetaTablename")]
    pub repo_meta_tablename: Option<String>,
    #[serde(default, rename = "imageMetaTablename")]
    pub image_meta_tablename: Option<String>,
    #[serde(default, rename = "repoBlobsInfoTablename")]
    pub repo_blobs_info_tablename: Option<String>,
    #[serde(default, rename = "userDataTablename")]
    pub user_data_tablename: Option<String>,
    #[serde(default, rename = "apiKeyTablename")]
    pub api_key_tablename: Option<String>,
    #[serde(default, rename = "versionTablename")]
    pub version_tablename: Option<String>,
    /// zot's older single table (refused by name).
    #[serde(default, rename = "tableName")]
    pub table_name: Option<String>,
    /// zot 1.x's metadata tables, which zot 2 no longer reads (its own
    /// test configs still name them): accepted with a warning, no effect
    /// in either.
    #[serde(default, rename = "indexDataTablename")]
    pub index_data_tablename: Option<String>,
    #[serde(default, rename = "manifestDataTablename")]
    pub manifest_data_tablename: Option<String>,
    // zot's `redis` keys.
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
        if self.name == "dynamodb" {
            return self.check_dynamodb(at);
        }
        if self.name != "redis" {
            return Err(ConfigError::key(
                format!("{at}.name"),
                format!(
                    "unsupported cache driver {:?} (berth has \"redis\" and \"dynamodb\")",
                    self.name
                ),
            ));
        }
        self.check_redis_keys(at)
    }

    /// The `redis` driver's keys, checked as the section at `at` (the
    /// cache driver, or `http.auth.sessionDriver`).
    pub(super) fn check_redis_keys(&self, at: &str) -> Result<(), ConfigError> {
        self.refuse_dynamodb_keys(at)?;
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

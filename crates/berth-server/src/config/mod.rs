//! The configuration file, in zot's schema.
//!
//! A file is read as JSON, YAML or TOML by its extension, turned into one
//! `serde_json::Value`, and deserialised into [`Config`] with the path of
//! every key tracked, so an error names the key (`storage.gcDelay: ...`).
//! Unknown keys are refused. Keys that zot has but Berth does not implement
//! yet are refused with a message saying so, never silently ignored: a
//! security setting that is read but not enforced would be worse than none.

mod access;
mod auth;
mod bearer;
mod cluster;
mod drivers;
mod dynamodb;
mod legacy;
mod model;
pub mod openid;
mod policy;
mod redis_client;
mod retention;
mod scan;
mod search;
mod sync;
mod trust;
mod value;

use std::path::{Path, PathBuf};

pub use access::{
    AccessControlConfig, Action, ConditionConfig, Group, MetricsAccess, Policy, RepoAccess,
};
pub use auth::{AuthConfig, HtpasswdConfig, LdapConfig, MtlsConfig};
pub use bearer::{
    AwsSecretsManagerConfig, BearerConfig, ClaimMappingConfig, ClaimValidation, ClaimVariable,
    OidcProviderConfig, UpstreamTokenEndpoint,
};
pub use cluster::{ClusterConfig, ClusterTls};
pub use drivers::{AzureCredentialsConfig, CacheDriverConfig, StorageDriverConfig};
pub use model::{
    Config, EventsConfig, ExtensionsConfig, HttpConfig, LogConfig, LogFormat, LogLevel, MethodRate,
    MetricsConfig, PrometheusConfig, RateLimitConfig, RootSettings, SchedulerConfig, ScrubConfig,
    SinkConfig, SinkCredentials, SinkTls, StorageConfig, SubPathConfig, TlsConfig,
};
pub use policy::{ImmutableTagsConfig, LintConfig, QuotaConfig, anchored as anchored_pattern};
pub use redis_client::RedisClient;
pub use retention::{KeepTagsRule, KeepUntaggedRule, RetentionConfig, RetentionPolicy};
pub use scan::{CveConfig, OSV_PUBLIC, OsvConfig};
pub use search::{MgmtConfig, SearchConfig, UiConfig};
pub use sync::{
    Assertion, ContentRule, CredentialHelper, Grant, OAuth2Helper, SemverFilter, SyncConfig,
    SyncRegistry, TagFilter,
};
pub use sync::{CLIENT_CREDENTIALS, JWT_BEARER, TOKEN_EXCHANGE};
pub use trust::{RequireSigned, SigningTool, TrustConfig};
pub use value::{DurationValue, PortValue, TimeWindow};

/// The port `berth serve` listens on when no config is given (zot's default).
pub const DEFAULT_PORT: u16 = 8080;
/// The data directory `berth serve` uses when no config is given, relative
/// to the current directory.
pub const DEFAULT_ROOT: &str = "berth-data";
/// The distribution-spec version Berth implements.
pub const DIST_SPEC_VERSION: &str = "1.1.1";

/// A configuration that cannot be used. Its `Display` is one line naming the
/// offending key (or the file); [`ConfigError::Key`] carries the key and
/// the message apart.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file's extension names no format.
    #[error("{path}: unsupported config file extension (use .json, .yaml, .yml or .toml)")]
    Extension { path: PathBuf },
    /// The file is not valid in its format.
    #[error("{path}: not valid {format}: {message}")]
    Syntax {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    /// A key whose value cannot be used.
    #[error("{key}: {message}")]
    Key { key: String, message: String },
}

impl ConfigError {
    /// The error of a key, e.g. `("log.audit", "cannot open ...")`.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// The embedded default: 127.0.0.1:8080, data in `./berth-data`.
    pub fn embedded_default() -> Self {
        Config {
            notes: Vec::new(),
            dist_spec_version: DIST_SPEC_VERSION.to_string(),
            storage: StorageConfig::with_root(PathBuf::from(DEFAULT_ROOT)),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            extensions: ExtensionsConfig::default(),
            scheduler: None,
            cluster: None,
        }
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let syntax = |format: &'static str, message: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            format,
            message: message.replace('\n', " "),
        };
        let value: serde_json::Value = match ext.as_deref() {
            Some("json") => {
                serde_json::from_str(&text).map_err(|e| syntax("JSON", e.to_string()))?
            }
            Some("yaml" | "yml") => {
                serde_saphyr::from_str(&text).map_err(|e| syntax("YAML", e.to_string()))?
            }
            Some("toml") => {
                let v: toml::Value =
                    toml::from_str(&text).map_err(|e| syntax("TOML", e.to_string()))?;
                serde_json::to_value(v).map_err(|e| syntax("TOML", e.to_string()))?
            }
            _ => {
                return Err(ConfigError::Extension {
                    path: path.to_path_buf(),
                });
            }
        };
        Self::from_value(value)
    }

    /// Deserialises and checks a config already parsed into a JSON value.
    pub fn from_value(mut value: serde_json::Value) -> Result<Self, ConfigError> {
        NOTES.with(|n| n.borrow_mut().clear());
        if !value.is_object() {
            return Err(ConfigError::key(
                "(top level)",
                "the config must be an object",
            ));
        }
        legacy::upgrade(&mut value);
        // zot (viper) reads keys in any case: a key Berth does not know is
        // looked up again ignoring case, and renamed when it matches one
        // (`rootdirectory`, `PollInterval`), until none is left.
        let mut renames = 0;
        let parsed = loop {
            let mut attempt = value.clone();
            model::refuse_unimplemented(&mut attempt)?;
            match serde_path_to_error::deserialize::<_, Config>(attempt) {
                Err(e) if renames < MAX_CASE_RENAMES && rename_case(&mut value, &e) => {
                    renames += 1;
                }
                other => break other,
            }
        };
        let mut config: Config = parsed.map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().to_string();
            match message.strip_prefix("unknown field `") {
                Some(rest) => {
                    let field = rest.split('`').next().unwrap_or(rest);
                    let full = if key == "." || key.is_empty() {
                        field.to_string()
                    } else if key.ends_with(field) {
                        key.clone()
                    } else {
                        format!("{key}.{field}")
                    };
                    ConfigError::key(full, "unknown key")
                }
                None => ConfigError::key(
                    if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                    message,
                ),
            }
        })?;
        if config.storage.root_directory.as_os_str().is_empty()
            && config.storage.storage_driver.is_some()
            && config.storage.cache_driver.is_some()
        {
            config.storage.root_directory = PathBuf::from(DEFAULT_ROOT);
        }
        config.check()?;
        // The deserialisation may run more than once (keys renamed to
        // their case): each note once, in order.
        let mut notes = NOTES.with(|n| n.take());
        let mut seen = std::collections::HashSet::new();
        notes.retain(|n| seen.insert(n.clone()));
        config.notes = notes;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.storage.root_directory.as_os_str().is_empty() {
            return Err(ConfigError::key(
                "storage.rootDirectory",
                "must not be empty",
            ));
        }
        if self.storage.gc_interval.0.is_zero() {
            return Err(ConfigError::key(
                "storage.gcInterval",
                "must be greater than zero",
            ));
        }
        if let Some(i) = self.extensions.scrub_interval()
            && i < std::time::Duration::from_secs(2 * 3600)
        {
            return Err(ConfigError::key(
                "extensions.scrub.interval",
                "must be at least 2h",
            ));
        }
        if let Some(a) = &self.http.access_control {
            a.check()?;
        }
        self.extensions.check_search()?;
        if let Some(t) = &self.extensions.trust {
            t.check()?;
        }
        crate::ext::check_built(self)?;
        if let Some(s) = &self.extensions.sync {
            s.check()?;
        }
        if let Some(o) = &self.http.allow_origin {
            let _checked = crate::api::cors::layer(o)?;
        }
        if let Some(r) = &self.http.ratelimit {
            r.check()?;
        }
        if let Some(e) = &self.extensions.events {
            e.check()?;
        }
        if let Some(u) = &self.http.external_url {
            openid::check_external_url(u)?;
        }
        if let Some(a) = &self.http.auth {
            a.check(self.http.tls.as_ref().is_some_and(|t| t.cacert.is_some()))?;
            a.check_sessions(self.http.external_url.as_deref())?;
        }
        if let Some(r) = &self.storage.retention {
            r.check("storage.retention")?;
        }
        policy::check(&self.storage.quotas, &self.storage.immutable_tags)?;
        if self
            .scheduler
            .as_ref()
            .is_some_and(|s| s.num_workers == Some(0))
        {
            return Err(ConfigError::key(
                "scheduler.numWorkers",
                "must be at least 1",
            ));
        }
        if let Some(l) = &self.extensions.lint {
            l.check()?;
        }
        if let Some(c) = &self.cluster {
            c.check()?;
        }
        if let Some(d) = &self.storage.storage_driver {
            d.check("storage.storageDriver")?;
        }
        if let Some(c) = &self.storage.cache_driver {
            c.check()?;
            c.check_api_keys(self.http.auth.as_ref().is_some_and(|a| a.apikey))?;
        }
        dynamodb::check_remote_cache(
            self.storage.remote_cache,
            self.storage.cache_driver.as_ref(),
        )?;
        for (key, sub) in &self.storage.sub_paths {
            let at = |field: &str| format!("storage.subPaths.{key}{field}");
            dynamodb::check_sub_path_remote_cache(
                &at(".remoteCache"),
                sub.remote_cache,
                self.storage.cache_driver.is_some(),
            );
            if let Some(r) = &sub.retention {
                r.check(&at(".retention"))?;
            }
            if let Some(d) = &sub.storage_driver {
                d.check(&at(".storageDriver"))?;
            }
            let prefix = key.strip_prefix('/').unwrap_or("");
            if prefix.contains('/') || prefix.parse::<berth_oci::RepoName>().is_err() {
                return Err(ConfigError::key(
                    at(""),
                    "must be \"/\" and one repository name component, e.g. \"/team\"",
                ));
            }
            if sub.root_directory.as_os_str().is_empty() {
                return Err(ConfigError::key(at(".rootDirectory"), "must not be empty"));
            }
            // Roots may not hold one another: a repository would then be
            // served, locked and collected by two roots at once.
            let overlaps = |a: &std::path::Path, b: &std::path::Path| {
                let (a, b) = (absolute(a), absolute(b));
                a.starts_with(&b) || b.starts_with(&a)
            };
            if overlaps(&sub.root_directory, &self.storage.root_directory)
                || self
                    .storage
                    .sub_paths
                    .iter()
                    .any(|(k, o)| k != key && overlaps(&o.root_directory, &sub.root_directory))
            {
                return Err(ConfigError::key(
                    at(".rootDirectory"),
                    "must not be, contain or lie inside another storage root",
                ));
            }
            if sub.gc_interval.0.is_zero() {
                return Err(ConfigError::key(
                    at(".gcInterval"),
                    "must be greater than zero",
                ));
            }
            // zot's per-root cache driver holds that root's dedupe cache;
            // Berth's dedupe records are in the root's storage and its
            // metadata in the main store: nothing to connect to.
            if let Some(c) = &sub.cache_driver
                && Some(c) != self.storage.cache_driver.as_ref()
            {
                note(format!(
                    "{}: {} accepted, but berth keeps this root's dedupe records in its storage and its metadata in the main root's store; it is not used",
                    at(".cacheDriver"),
                    c.name
                ));
            }
            if sub
                .redirect_blob_url
                .is_some_and(|r| r != self.storage.redirect_blob_url)
            {
                return Err(ConfigError::key(
                    at(".redirectBlobURL"),
                    "one setting for every root in berth: set storage.redirectBlobURL, or leave this out",
                ));
            }
        }
        Ok(())
    }
}

thread_local! {
    /// The notes of the config being read (one `from_value` at a time on
    /// a thread; reading is synchronous).
    static NOTES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Notes `text` about the config being read: a setting accepted as it is
/// but worth a line in the log (see [`Config::notes`]).
pub(crate) fn note(text: String) {
    NOTES.with(|n| n.borrow_mut().push(text));
}

/// `path` made absolute against the current directory, with `.` and `..`
/// resolved lexically (the directory need not exist yet).
fn absolute(path: &std::path::Path) -> PathBuf {
    let joined = std::env::current_dir().unwrap_or_default().join(path);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The most keys renamed to their known case in one config.
const MAX_CASE_RENAMES: usize = 256;

/// When `error` is an unknown key whose name matches an expected one but
/// for case, renames it in `value` and says so (no rename when the known
/// spelling is present beside it).
fn rename_case(
    value: &mut serde_json::Value,
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> bool {
    let message = error.inner().to_string();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return false;
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return false;
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let Some(wanted) = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(field) && **k != field)
    else {
        return false;
    };
    let mut segments: Vec<&serde_path_to_error::Segment> = error.path().iter().collect();
    if let Some(serde_path_to_error::Segment::Map { key }) = segments.last()
        && key == field
    {
        segments.pop();
    }
    let mut at = value;
    for segment in segments {
        at = match (segment, at) {
            (serde_path_to_error::Segment::Map { key }, serde_json::Value::Object(o)) => {
                match o.get_mut(key) {
                    Some(v) => v,
                    None => return false,
                }
            }
            (serde_path_to_error::Segment::Seq { index }, serde_json::Value::Array(a)) => {
                match a.get_mut(*index) {
                    Some(v) => v,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    let Some(object) = at.as_object_mut() else {
        return false;
    };
    if object.contains_key(*wanted) {
        return false;
    }
    match object.remove(field) {
        Some(v) => {
            object.insert((*wanted).to_string(), v);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;

//! `extensions.sync`: zot's mirroring of upstream registries, periodic
//! (`pollInterval`) and on demand (`onDemand`), with zot's keys.
//!
//! The file's shape (`RegistryFile`, `ContentFile`) is resolved into the
//! types the engine reads ([`SyncRegistry`], [`ContentRule`]): URLs get a
//! scheme, durations become [`Duration`]s, and a rule that names no
//! `platforms` of its own takes its registry's. The matching rules
//! (prefix globs, `destination`, `stripPrefix`, tag and platform filters)
//! are compiled and checked by `ext::sync::content`; the files the section
//! names (`credentialsFile`, `certDir`) are read at start by
//! `ext::sync::upstream_files`, so a bad one stops the start. zot's cloud
//! credential helpers are refused by name.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::ConfigError;
use super::value::DurationValue;

fn yes() -> bool {
    true
}

/// `extensions.sync`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncConfig {
    /// zot's switch (default true when the section is present).
    #[serde(default = "yes")]
    pub enable: bool,
    /// A JSON file of upstream logins: `{"host[:port]": {"username",
    /// "password"}}`, looked up by each URL's host and port.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Where zot stages copies before committing them (zot needs it for
    /// cloud storage). Default: a directory the engine picks.
    #[serde(default)]
    pub download_dir: Option<PathBuf>,
    /// The upstream registries, each synced on its own.
    #[serde(default)]
    pub registries: Vec<SyncRegistry>,
}

/// One of `extensions.sync.registries`, resolved (see the module
/// documentation).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RegistryFile")]
pub struct SyncRegistry {
    /// The registry, then its mirrors, tried in order: `http://` or
    /// `https://` and a host (a bare host was given `https://`).
    pub urls: Vec<String>,
    /// Sync an image when a client asks for one this registry lacks.
    pub on_demand: bool,
    /// Time between periodic syncs; `None`: no periodic sync.
    pub poll_interval: Option<Duration>,
    /// Verify the upstream's TLS certificate (default true).
    pub tls_verify: bool,
    /// CA certificates (`*.crt`) and a client certificate and key
    /// (`client.cert`, `client.key`) for the upstream.
    pub cert_dir: Option<PathBuf>,
    /// How many times a failed request or on-demand sync is tried again.
    pub max_retries: Option<u32>,
    /// The first wait between tries.
    pub retry_delay: Option<Duration>,
    /// The longest wait between tries (zot: `retryDelay` when unset, a
    /// fixed delay).
    pub max_retry_delay: Option<Duration>,
    /// Copy only images with a signature upstream (cosign or notation).
    pub only_signed: bool,
    /// zot's switch to copy Docker manifests as they are; zot now ignores
    /// it (Docker media types follow `http.compat`).
    pub preserve_digest: bool,
    /// Copy cosign's `sha256-<hex>.sig/.att/.sbom` tags (default true).
    pub sync_legacy_cosign_tags: bool,
    /// How long an on-demand copy is served before the upstream is asked
    /// again whether the tag moved; `None`: never asked again.
    pub manifest_check_interval: Option<Duration>,
    /// The longest any one sync may take (default 3h).
    pub sync_timeout: Duration,
    /// Requests in flight per upstream host (zot's `reqConcurrent`,
    /// default 3).
    pub req_concurrent: usize,
    /// Requests per second per upstream host; `None`: unlimited.
    pub req_per_sec: Option<f64>,
    /// Speak HTTP/1.1 only, a connection per concurrent request.
    pub disable_http2: bool,
    /// Idle connections kept per upstream host; `None`: the client's
    /// default (zot: `reqConcurrent` when `disableHTTP2`).
    pub max_idle_conns_per_host: Option<usize>,
    /// zot's registry-wide platform list, already copied into every rule
    /// that names none (kept here for logs and reloads).
    pub platforms: Vec<String>,
    /// What to sync and under which local names; empty: every upstream
    /// repository, under its own name.
    pub content: Vec<ContentRule>,
    /// zot keys set that Berth refuses (checked by `check`).
    refused: Vec<&'static str>,
}

/// One rule of `content`: which upstream repositories (and tags, and
/// platforms) it takes, and under which local names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "ContentFile")]
pub struct ContentRule {
    /// A glob over upstream repository names, matched against the whole
    /// name (`*` within a component, `**` across; leading and trailing `/`
    /// ignored).
    pub prefix: String,
    /// Which tags; `None`: every tag.
    pub tags: Option<TagFilter>,
    /// The local namespace the repositories go under; `None`: their own
    /// names.
    pub destination: Option<String>,
    /// Drop the prefix's leading literal components from the local name.
    pub strip_prefix: bool,
    /// The platforms of an index copied by periodic sync: `os/arch`,
    /// `os/arch/variant`, an architecture alone (Linux), or `""` for
    /// entries without a platform; empty: every platform. Already the
    /// registry's list when the rule named none.
    pub platforms: Vec<String>,
}

/// `content[].tags`: a tag is taken when `regex` matches it, `excludeRegex`
/// does not, and it passes `semver`. The regular expressions match
/// anywhere in the tag (anchor them with `^…$`), as in zot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TagFilter {
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub exclude_regex: Option<String>,
    /// `true`, `false` (same as unset), or Berth's version range.
    #[serde(default, deserialize_with = "semver_filter")]
    pub semver: Option<SemverFilter>,
}

/// `content[].tags.semver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SemverFilter {
    /// zot's `semver: true`: only tags that read as a version: an optional
    /// `v`, one to three numbers, then an optional `-prerelease` and
    /// `+build` (`v1`, `1.2`, `1.2.3-rc.1`).
    Any,
    /// Berth's: a version range such as `">=1.2, <2"` (Cargo's syntax);
    /// tags read as above, missing numbers are 0. A prerelease passes
    /// only a range that names a prerelease of the same version.
    Range(String),
}

fn semver_filter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SemverFilter>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<SemverFilter>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("true, false or a version range such as \">=1.2, <2\"")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then_some(SemverFilter::Any))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(SemverFilter::Range(v.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A registry as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegistryFile {
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    on_demand: bool,
    #[serde(default)]
    poll_interval: Option<DurationValue>,
    #[serde(default = "yes")]
    tls_verify: bool,
    #[serde(default)]
    cert_dir: Option<PathBuf>,
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    retry_delay: Option<DurationValue>,
    #[serde(default)]
    max_retry_delay: Option<DurationValue>,
    #[serde(default)]
    only_signed: bool,
    #[serde(default)]
    preserve_digest: bool,
    #[serde(default = "yes")]
    sync_legacy_cosign_tags: bool,
    #[serde(default)]
    manifest_check_interval: Option<DurationValue>,
    #[serde(default = "three_hours")]
    sync_timeout: DurationValue,
    #[serde(default = "three")]
    req_concurrent: usize,
    #[serde(default)]
    req_per_sec: Option<f64>,
    #[serde(default, rename = "disableHTTP2", alias = "disableHttp2")]
    disable_http2: bool,
    #[serde(default)]
    max_idle_conns_per_host: Option<usize>,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default)]
    content: Vec<ContentFile>,
    /// zot's `ecr`/`gcp`/`oauth2` helpers: refused.
    #[serde(default)]
    credential_helper: Option<serde_json::Value>,
    #[serde(default)]
    oauth2_credential_helper: Option<serde_json::Value>,
}

/// A content rule as written in the file: `platforms` absent (the
/// registry's apply) differs from `[]` (every platform).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContentFile {
    prefix: String,
    #[serde(default)]
    tags: Option<TagFilter>,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    strip_prefix: bool,
    #[serde(default)]
    platforms: Option<Vec<String>>,
}

fn three_hours() -> DurationValue {
    DurationValue(Duration::from_secs(3 * 3600))
}

fn three() -> usize {
    3
}

impl From<ContentFile> for ContentRule {
    fn from(f: ContentFile) -> Self {
        ContentRule {
            prefix: f.prefix,
            tags: f.tags,
            destination: f.destination,
            strip_prefix: f.strip_prefix,
            platforms: f.platforms.unwrap_or_default(),
        }
    }
}

/// Whether a JSON value sets something (zot treats `""` as unset).
fn set(v: &Option<serde_json::Value>) -> bool {
    match v {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(serde_json::Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

impl From<RegistryFile> for SyncRegistry {
    fn from(f: RegistryFile) -> Self {
        let mut refused = Vec::new();
        if set(&f.credential_helper) {
            refused.push("credentialHelper");
        }
        if set(&f.oauth2_credential_helper) {
            refused.push("oauth2CredentialHelper");
        }
        let mut content: Vec<ContentRule> = f
            .content
            .into_iter()
            .map(|c| {
                let own = c.platforms.clone();
                let mut rule = ContentRule::from(c);
                if own.is_none() {
                    rule.platforms = f.platforms.clone();
                }
                rule
            })
            .collect();
        // No rules takes everything; with a registry-wide platform list,
        // that is one rule over every repository carrying the list.
        if content.is_empty() && !f.platforms.is_empty() {
            content.push(ContentRule {
                prefix: "**".into(),
                platforms: f.platforms.clone(),
                ..ContentRule::default()
            });
        }
        SyncRegistry {
            urls: f.urls.iter().map(|u| with_scheme(u)).collect(),
            on_demand: f.on_demand,
            poll_interval: f.poll_interval.map(|d| d.0),
            tls_verify: f.tls_verify,
            cert_dir: f.cert_dir,
            max_retries: f.max_retries,
            retry_delay: f.retry_delay.map(|d| d.0),
            max_retry_delay: f.max_retry_delay.map(|d| d.0),
            only_signed: f.only_signed,
            preserve_digest: f.preserve_digest,
            sync_legacy_cosign_tags: f.sync_legacy_cosign_tags,
            manifest_check_interval: f.manifest_check_interval.map(|d| d.0),
            sync_timeout: f.sync_timeout.0,
            req_concurrent: f.req_concurrent,
            req_per_sec: f.req_per_sec,
            disable_http2: f.disable_http2,
            max_idle_conns_per_host: f.max_idle_conns_per_host,
            platforms: f.platforms,
            content,
            refused,
        }
    }
}

/// `url` with `https://` in front when it names no scheme.
fn with_scheme(url: &str) -> String {
    let url = url.trim();
    if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    }
}

/// Checks an upstream URL: `http(s)://host[:port]`, nothing else.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url:?} is no URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{url:?}: must be an http:// or https:// URL"));
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("{url:?} names no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "{url:?}: no credentials in the URL (put them in extensions.sync.credentialsFile)"
        ));
    }
    if authority.host().is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{url:?}: a registry URL is a scheme and a host, with no path"
        ));
    }
    Ok(())
}

impl SyncRegistry {
    /// The first zot key set that Berth refuses, and why.
    fn refusal(&self) -> Option<(&'static str, &'static str)> {
        self.refused.first().map(|k| {
            (
                *k,
                "zot's cloud credential helpers are not supported by berth: put the upstream's login in extensions.sync.credentialsFile",
            )
        })
    }
}

impl SyncConfig {
    /// Checks the section when it is on; errors name the key. With the
    /// `sync` feature, also compiles every content rule and reads the
    /// credentials file and each `certDir`.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !self.enable {
            return Ok(());
        }
        for (r, reg) in self.registries.iter().enumerate() {
            let at = |k: &str| format!("extensions.sync.registries[{r}].{k}");
            if let Some((key, why)) = reg.refusal() {
                return Err(ConfigError::key(at(key), why));
            }
            if reg.urls.is_empty() {
                return Err(ConfigError::key(
                    at("urls"),
                    "name at least one registry URL",
                ));
            }
            for (u, url) in reg.urls.iter().enumerate() {
                check_url(url).map_err(|m| ConfigError::key(at(&format!("urls[{u}]")), m))?;
            }
            if !reg.on_demand && reg.poll_interval.is_none() {
                return Err(ConfigError::key(
                    format!("extensions.sync.registries[{r}]"),
                    "set pollInterval (periodic sync), onDemand: true, or both (nothing would be synced)",
                ));
            }
            let positive = [
                ("pollInterval", reg.poll_interval),
                ("manifestCheckInterval", reg.manifest_check_interval),
                ("syncTimeout", Some(reg.sync_timeout)),
            ];
            for (key, d) in positive {
                if d.is_some_and(|d| d.is_zero()) {
                    return Err(ConfigError::key(at(key), "must be above zero"));
                }
            }
            if let (Some(first), Some(max)) = (reg.retry_delay, reg.max_retry_delay)
                && max < first
            {
                return Err(ConfigError::key(
                    at("maxRetryDelay"),
                    "must be at least retryDelay",
                ));
            }
            if reg.req_concurrent == 0 {
                return Err(ConfigError::key(at("reqConcurrent"), "must be at least 1"));
            }
            if reg.req_per_sec.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                return Err(ConfigError::key(at("reqPerSec"), "must be above zero"));
            }
            #[cfg(feature = "sync")]
            {
                use crate::ext::sync::content::{ContentRules, check_platform};
                for p in &reg.platforms {
                    check_platform(p).map_err(|m| ConfigError::key(at("platforms"), m))?;
                }
                ContentRules::new(&reg.content).map_err(|e| {
                    ConfigError::key(at(&format!("content[{}].{}", e.rule, e.field)), e.message)
                })?;
            }
        }
        #[cfg(feature = "sync")]
        crate::ext::sync::upstream_files::check_files(self)?;
        Ok(())
    }
}

impl super::ExtensionsConfig {
    /// `extensions.sync`, when on.
    pub fn sync_enabled(&self) -> Option<&SyncConfig> {
        self.sync.as_ref().filter(|s| s.enable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> SyncConfig {
        serde_json::from_value(v).expect("parses")
    }

    #[test]
    fn zot_keys_and_defaults() {
        let c = parse(serde_json::json!({
            "credentialsFile": "/etc/berth/creds.json",
            "registries": [{
                "urls": ["registry-1.docker.io", "http://mirror:5000"],
                "onDemand": true,
                "content": [{"prefix": "library/**", "destination": "/docker", "stripPrefix": true,
                    "tags": {"regex": "^3\\.", "excludeRegex": "-rc", "semver": true}}]
            }, {
                "urls": ["https://ghcr.io"], "pollInterval": "6h", "tlsVerify": false,
                "maxRetries": 3, "retryDelay": "5m", "maxRetryDelay": "20m", "onlySigned": true,
                "syncLegacyCosignTags": false, "manifestCheckInterval": "1h", "syncTimeout": "30m",
                "reqConcurrent": 8, "reqPerSec": 2.5, "disableHTTP2": true, "maxIdleConnsPerHost": 8,
                "preserveDigest": true, "certDir": "/etc/berth/ghcr",
                "content": [{"prefix": "org/app", "tags": {"semver": ">=1.2, <2"}}]
            }]
        }));
        assert!(c.enable);
        let a = &c.registries[0];
        assert_eq!(
            a.urls,
            ["https://registry-1.docker.io", "http://mirror:5000"]
        );
        assert!(a.on_demand && a.tls_verify && a.sync_legacy_cosign_tags);
        assert_eq!((a.poll_interval, a.req_concurrent), (None, 3));
        assert_eq!(a.sync_timeout, Duration::from_secs(3 * 3600));
        let tags = a.content[0].tags.as_ref().expect("tags");
        assert_eq!(tags.semver, Some(SemverFilter::Any));
        assert_eq!(a.content[0].destination.as_deref(), Some("/docker"));
        assert!(a.content[0].strip_prefix);
        let b = &c.registries[1];
        assert_eq!(b.poll_interval, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(b.max_retry_delay, Some(Duration::from_secs(1200)));
        assert_eq!((b.req_concurrent, b.req_per_sec), (8, Some(2.5)));
        assert!(b.disable_http2 && !b.tls_verify && b.only_signed && !b.sync_legacy_cosign_tags);
        assert_eq!(
            b.content[0].tags.as_ref().and_then(|t| t.semver.clone()),
            Some(SemverFilter::Range(">=1.2, <2".into()))
        );
        let off = parse(
            serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true,
            "content": [{"prefix": "a", "tags": {"semver": false}}]}]}),
        );
        assert_eq!(
            off.registries[0].content[0]
                .tags
                .as_ref()
                .and_then(|t| t.semver.clone()),
            None
        );
    }

    #[test]
    fn platforms_are_inherited_unless_a_rule_names_its_own() {
        let c = parse(serde_json::json!({"registries": [{
            "urls": ["h"], "onDemand": true, "platforms": ["linux/amd64"],
            "content": [
                {"prefix": "a/**"},
                {"prefix": "b/**", "platforms": ["linux/arm64"]},
                {"prefix": "c/**", "platforms": []}
            ]}, {"urls": ["h"], "onDemand": true, "platforms": ["linux/amd64"]}]}));
        let rules = &c.registries[0].content;
        assert_eq!(rules[0].platforms, ["linux/amd64"]);
        assert_eq!(rules[1].platforms, ["linux/arm64"]);
        assert!(rules[2].platforms.is_empty());
        // No rules and a registry-wide list: one rule over everything.
        let all = &c.registries[1].content;
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].prefix.as_str(), all[0].platforms.as_slice()),
            ("**", &["linux/amd64".to_string()][..])
        );
    }

    #[test]
    fn checks_name_the_key() {
        let cases = [
            (
                serde_json::json!({"registries": [{"urls": [], "onDemand": true}]}),
                "extensions.sync.registries[0].urls: name at least one",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["ftp://h"], "onDemand": true}]}),
                "extensions.sync.registries[0].urls[0]: \"ftp://h\": must be an http",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["https://u:p@h"], "onDemand": true}]}),
                "extensions.sync.registries[0].urls[0]: \"https://u:p@h\": no credentials",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["https://h/v2"], "onDemand": true}]}),
                "extensions.sync.registries[0].urls[0]: \"https://h/v2\": a registry URL",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"]}]}),
                "extensions.sync.registries[0]: set pollInterval",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"], "pollInterval": "0s"}]}),
                "extensions.sync.registries[0].pollInterval: must be above zero",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "syncTimeout": 0}]}),
                "extensions.sync.registries[0].syncTimeout: must be above zero",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "reqConcurrent": 0}]}),
                "extensions.sync.registries[0].reqConcurrent: must be at least 1",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "reqPerSec": 0}]}),
                "extensions.sync.registries[0].reqPerSec: must be above zero",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "retryDelay": "5m", "maxRetryDelay": "1m"}]}),
                "extensions.sync.registries[0].maxRetryDelay: must be at least retryDelay",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true}, {"urls": ["h"], "onDemand": true, "credentialHelper": "ecr"}]}),
                "extensions.sync.registries[1].credentialHelper: zot's cloud credential helpers are not supported",
            ),
            (
                serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "oauth2CredentialHelper": {"tokenURL": "https://t"}}]}),
                "extensions.sync.registries[0].oauth2CredentialHelper: zot's cloud",
            ),
        ];
        for (v, want) in cases {
            let got = parse(v.clone()).check().expect_err("refused").to_string();
            assert!(got.starts_with(want), "{v}: got {got:?}, want {want:?}");
        }
        // Off: nothing is checked. An empty helper is zot's "unset".
        parse(serde_json::json!({"enable": false, "registries": [{"urls": []}]}))
            .check()
            .expect("off");
        parse(serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "credentialHelper": ""}]}))
            .check()
            .expect("empty helper");
    }

    #[test]
    fn semver_accepts_bool_string_or_null_only() {
        let bad: Result<TagFilter, _> = serde_json::from_value(serde_json::json!({"semver": 1}));
        let msg = bad.expect_err("a number").to_string();
        assert!(msg.contains("true, false or a version range"), "{msg}");
        let null: TagFilter =
            serde_json::from_value(serde_json::json!({"semver": null})).expect("null");
        assert_eq!(null.semver, None);
    }
}

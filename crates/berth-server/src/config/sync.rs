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
//! `ext::sync::upstream_files`, so a bad one stops the start.
//!
//! Every sync key zot has had is known here. The ones that only switch on
//! what Berth always does (streaming on-demand blobs, copying referrers
//! of referrers) are accepted when they ask for it and refused when they
//! ask for the opposite; the ones Berth cannot honour (a download rate,
//! answering a miss before the sync, keys of zot's development builds)
//! are refused by name with the reason, never read and ignored. The
//! credential helpers (`credentialHelper` and the `oauth2` helper's
//! section) are resolved in `sync/helper.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::ConfigError;
use super::value::DurationValue;

mod helper;
pub use helper::{
    Assertion, CLIENT_CREDENTIALS, CredentialHelper, Grant, JWT_BEARER, OAuth2Helper,
    TOKEN_EXCHANGE,
};

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
    /// "password"}}`, looked up by each URL's host and port. `""` is none
    /// (zot's credential-helper examples write it so).
    #[serde(default, deserialize_with = "path_or_none")]
    pub credentials_file: Option<PathBuf>,
    /// Where zot stages copies before committing them (zot needs it for
    /// cloud storage). Default (and `""`): a directory the engine picks.
    #[serde(default, deserialize_with = "path_or_none")]
    pub download_dir: Option<PathBuf>,
    /// The upstream registries, each synced on its own.
    #[serde(default)]
    pub registries: Vec<SyncRegistry>,
    /// zot's switch (`enableStreaming`; `enableStream` in some of zot's
    /// development builds) to serve on-demand blobs while they arrive:
    /// Berth always does, so `true` is accepted and `false` refused.
    #[serde(default)]
    enable_streaming: Option<bool>,
    #[serde(default)]
    enable_stream: Option<bool>,
    /// zot's `asyncManifest` (development builds): answer an on-demand
    /// miss before the image is synced. Refused when `true`.
    #[serde(default)]
    async_manifest: Option<bool>,
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
    /// Who logs in to the URLs in place of `credentialsFile`
    /// (`credentialHelper`); `None`: the credentials file.
    pub credential_helper: Option<CredentialHelper>,
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
    /// zot's `stream: true`. Berth streams every on-demand blob to its
    /// clients as it arrives whatever this says; it is kept to check
    /// `maxConcurrentStreams` and that `onDemand` is on, as zot asks.
    stream: bool,
    /// zot's cap on blobs streamed at once, shared by the streaming
    /// registries. Berth has no cap of its own; `check` makes sure its
    /// own bound (`reqConcurrent` per URL) stays under it.
    max_concurrent_streams: Option<usize>,
    /// The zot keys set here that Berth refuses, each with the key (below
    /// the registry) and why; `check` reports the first.
    refused: Vec<(String, String)>,
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
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    max_concurrent_streams: Option<usize>,
    #[serde(default)]
    sync_referrers_recursive: Option<bool>,
    #[serde(default)]
    on_demand_in_background: Option<bool>,
    /// zot's `ecr`/`gcp`/`oauth2` helpers and the `oauth2` helper's
    /// settings (under its development builds' name too).
    #[serde(default)]
    credential_helper: Option<String>,
    #[serde(default)]
    oauth2_credential_helper: Option<serde_json::Value>,
    #[serde(default)]
    credential_helper_config: Option<serde_json::Value>,
    /// zot keys Berth cannot honour, refused by name (see `refusals`).
    #[serde(default)]
    architectures: Option<serde_json::Value>,
    #[serde(default)]
    download_rate: Option<serde_json::Value>,
    #[serde(default)]
    stream_cache: Option<serde_json::Value>,
}

/// A content rule as written in the file: `platforms` absent (the
/// registry's apply) differs from `[]` (every platform).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContentFile {
    /// Required; optional here so that a rule of zot's development builds
    /// (`images` instead of `prefix`) is refused by name.
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    images: Option<serde_json::Value>,
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
            prefix: f.prefix.unwrap_or_default(),
            tags: f.tags,
            destination: f.destination,
            strip_prefix: f.strip_prefix,
            platforms: f.platforms.unwrap_or_default(),
        }
    }
}

/// A path, with `""` (or only white space) read as none, as zot reads it.
fn path_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from))
}

/// Whether a JSON value sets something (zot treats `""`, `[]` and `{}` as
/// unset).
fn set(v: &Option<serde_json::Value>) -> bool {
    match v {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::String(s)) => !s.trim().is_empty(),
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Why a streaming switch cannot be `false`.
const ALWAYS_STREAMS: &str = "berth always streams on-demand blobs to clients as they arrive and cannot turn it off; remove the key";

/// The registry's credential helper, or the key that is wrong and why.
fn credential_helper(f: &RegistryFile) -> Result<Option<CredentialHelper>, (String, String)> {
    let settings = match (
        set(&f.oauth2_credential_helper),
        set(&f.credential_helper_config),
    ) {
        (true, true) => {
            return Err((
                "credentialHelperConfig".into(),
                "the older name of oauth2CredentialHelper: set one of them".into(),
            ));
        }
        (true, false) => f
            .oauth2_credential_helper
            .as_ref()
            .map(|v| ("oauth2CredentialHelper", v)),
        (false, true) => f
            .credential_helper_config
            .as_ref()
            .map(|v| ("credentialHelperConfig", v)),
        (false, false) => None,
    };
    helper::resolve(f.credential_helper.as_deref(), settings)
}

/// The zot keys set in a registry that Berth refuses, with why.
fn refusals(f: &RegistryFile) -> Vec<(String, String)> {
    let mut refused = Vec::new();
    let mut refuse = |key: &str, why: &str| refused.push((key.to_string(), why.to_string()));
    if let Err((key, why)) = credential_helper(f) {
        refuse(&key, &why);
    }
    if set(&f.architectures) {
        refuse(
            "architectures",
            "zot's older key, replaced by platforms: list them there (\"linux/amd64\"; an architecture alone means linux/<arch>, where architectures took any OS)",
        );
    }
    if set(&f.download_rate) {
        refuse(
            "downloadRate",
            "berth does not limit the rate of sync downloads (reqPerSec limits requests a second); remove the key",
        );
    }
    let cache_off = f
        .stream_cache
        .as_ref()
        .and_then(|c| c.get("enable"))
        .is_some_and(|e| e == &serde_json::Value::Bool(false));
    if set(&f.stream_cache) && !cache_off {
        refuse(
            "streamCache",
            "zot's stream cache (development builds) is not supported: berth stages each on-demand blob once, under downloadDir, with no size cap; remove the key",
        );
    }
    if f.stream == Some(false) {
        refuse("stream", ALWAYS_STREAMS);
    }
    if f.on_demand_in_background == Some(true) {
        refuse(
            "onDemandInBackground",
            "berth answers an on-demand miss with the manifest once fetched, streaming the blobs; answering 404 and syncing in the background is not supported",
        );
    }
    if f.sync_referrers_recursive == Some(false) {
        refuse(
            "syncReferrersRecursive",
            "berth always copies the referrers of referrers; remove the key",
        );
    }
    for (i, c) in f.content.iter().enumerate() {
        if set(&c.images) {
            refuse(
                &format!("content[{i}].images"),
                "zot's images rules (development builds) are not supported: write a rule per repository, {\"prefix\": \"<repo>\", \"tags\": {\"regex\": \"^(<tag>|<tag>)$\"}}",
            );
        } else if c.prefix.is_none() {
            refuse(
                &format!("content[{i}].prefix"),
                "required: a glob naming the upstream repositories the rule takes",
            );
        }
    }
    refused
}

impl From<RegistryFile> for SyncRegistry {
    fn from(f: RegistryFile) -> Self {
        let refused = refusals(&f);
        let credential_helper = credential_helper(&f).ok().flatten();
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
            credential_helper,
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
            stream: f.stream == Some(true),
            max_concurrent_streams: f.max_concurrent_streams,
            refused,
        }
    }
}

/// `url` with `https://` in front when it names no scheme, and without a
/// path: zot keeps only the scheme and host of a registry URL (its own
/// example names `https://docker.io/library`), and so does Berth, saying
/// so in the log.
fn with_scheme(url: &str) -> String {
    let url = url.trim();
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    match url.parse::<http::Uri>() {
        Ok(uri) if !matches!(uri.path(), "" | "/") && uri.query().is_none() => {
            match (uri.scheme_str(), uri.authority()) {
                (Some(scheme), Some(authority)) => {
                    let bare = format!("{scheme}://{authority}");
                    super::note(format!(
                        "extensions.sync: registry URL {url:?} has a path, which zot ignores and berth too: using {bare:?}"
                    ));
                    bare
                }
                _ => url,
            }
        }
        _ => url,
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
    if uri.query().is_some() {
        return Err(format!(
            "{url:?}: a registry URL is a scheme and a host, with no query"
        ));
    }
    Ok(())
}

impl SyncRegistry {
    /// The first zot key set that Berth refuses, and why.
    fn refusal(&self) -> Option<(&str, &str)> {
        self.refused
            .first()
            .map(|(k, why)| (k.as_str(), why.as_str()))
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
        let switches = [
            ("enableStreaming", self.enable_streaming),
            ("enableStream", self.enable_stream),
        ];
        for (key, on) in switches {
            if on == Some(false) {
                return Err(ConfigError::key(
                    format!("extensions.sync.{key}"),
                    ALWAYS_STREAMS,
                ));
            }
        }
        if self.async_manifest == Some(true) {
            return Err(ConfigError::key(
                "extensions.sync.asyncManifest",
                "zot's asynchronous on-demand answers (development builds) are not supported: berth answers a miss with the manifest once fetched, streaming the blobs",
            ));
        }
        for (r, reg) in self.registries.iter().enumerate() {
            let at = |k: &str| format!("extensions.sync.registries[{r}].{k}");
            if let Some((key, why)) = reg.refusal() {
                return Err(ConfigError::key(at(key), why));
            }
            if reg.credential_helper == Some(CredentialHelper::Ecr) && !cfg!(feature = "ecr") {
                return Err(ConfigError::key(
                    at("credentialHelper"),
                    "this berth was built without the \"ecr\" feature",
                ));
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
            // Neither `onDemand` nor `pollInterval`: the registry does
            // nothing, as in zot, whose examples hold such entries.
            if reg.stream && !reg.on_demand {
                return Err(ConfigError::key(
                    at("stream"),
                    "streams on-demand syncs: set onDemand: true (as zot asks)",
                ));
            }
            match reg.max_concurrent_streams {
                Some(_) if !reg.stream => {
                    return Err(ConfigError::key(
                        at("maxConcurrentStreams"),
                        "applies only with stream: true",
                    ));
                }
                Some(0) => {
                    return Err(ConfigError::key(
                        at("maxConcurrentStreams"),
                        "must be at least 1",
                    ));
                }
                _ => {}
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
        self.check_stream_cap()?;
        #[cfg(feature = "sync")]
        crate::ext::sync::upstream_files::check_files(self)?;
        #[cfg(feature = "sync")]
        crate::ext::sync::helper::check_files(self)?;
        Ok(())
    }

    /// zot's `maxConcurrentStreams`: one cap shared by the streaming
    /// registries, so they must agree on it. Berth has no cap of its own,
    /// but a blob download holds one of its URL's `reqConcurrent` requests
    /// while it streams, so at most `reqConcurrent` × URLs blobs stream at
    /// once per registry: the cap is honoured when that sum is within it.
    fn check_stream_cap(&self) -> Result<(), ConfigError> {
        let streaming = || self.registries.iter().enumerate().filter(|(_, r)| r.stream);
        let Some((first, cap)) =
            streaming().find_map(|(r, reg)| reg.max_concurrent_streams.map(|c| (r, c)))
        else {
            return Ok(());
        };
        for (r, reg) in streaming() {
            if reg.max_concurrent_streams.is_some_and(|c| c != cap) {
                return Err(ConfigError::key(
                    format!("extensions.sync.registries[{r}].maxConcurrentStreams"),
                    format!(
                        "must be the same in every streaming registry (one cap for all, as in zot): registries[{first}] says {cap}"
                    ),
                ));
            }
        }
        let most: usize = streaming()
            .map(|(_, reg)| reg.req_concurrent.saturating_mul(reg.urls.len()))
            .fold(0, usize::saturating_add);
        if most > cap {
            return Err(ConfigError::key(
                format!("extensions.sync.registries[{first}].maxConcurrentStreams"),
                format!(
                    "berth streams up to reqConcurrent blobs at once per URL of a streaming registry, {most} in all here: set at least {most}, or lower reqConcurrent"
                ),
            ));
        }
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
mod tests;

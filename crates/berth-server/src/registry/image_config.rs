//! What an image's config blob says ([`ImageConfigMeta`]), read when a
//! manifest is recorded (at push time, and when a repository is derived
//! from its layout) so that search never opens a blob: platform, creation
//! time, author, history and labels of OCI and Docker image configs, and a
//! Helm chart's fields under the OCI annotation keys they stand for.
//!
//! Reading it never fails anything: a config of another media type, over
//! [`MAX_CONFIG_BYTES`], missing, unreadable or not parseable gives `None`,
//! and the push goes on. [`parse_config`] is pure (table-tested below);
//! [`Registry::image_config`] reads the blob, bounded by its descriptor's
//! size, so a descriptor that lies cannot make it read a large layer.

use std::collections::BTreeMap;

use berth_oci::manifest::Descriptor;
use berth_oci::{Digest, RepoName};
use serde_json::{Map, Value};

use super::Registry;
use crate::meta::{HistoryMeta, ImageConfigMeta};

/// An OCI image config.
pub(super) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A Docker (schema 2) image config.
pub(super) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// A Helm chart's config: its `Chart.yaml` as JSON.
pub(super) const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// The largest config read (zot's limit for manifests, and far above any
/// real image config).
pub(super) const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The OCI annotation keys a Helm chart's fields map to.
const TITLE: &str = "org.opencontainers.image.title";
const VERSION: &str = "org.opencontainers.image.version";
const DESCRIPTION: &str = "org.opencontainers.image.description";
const URL: &str = "org.opencontainers.image.url";
const SOURCE: &str = "org.opencontainers.image.source";
const AUTHORS: &str = "org.opencontainers.image.authors";
const LICENSES: &str = "org.opencontainers.image.licenses";

/// Whether configs of `media_type` are read at all.
pub(super) fn is_described(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG | HELM_CONFIG)
}

/// What a config blob of `media_type` says; `None` for another media
/// type or a blob that is not a JSON object.
pub(super) fn parse_config(media_type: &str, bytes: &[u8]) -> Option<ImageConfigMeta> {
    if !is_described(media_type) {
        return None;
    }
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    Some(if media_type == HELM_CONFIG {
        helm_chart(&v)
    } else {
        image_config(&v)
    })
}

/// A string field, if it is one and not empty (a field of another type is
/// ignored rather than failing the whole config).
fn text(v: &Map<String, Value>, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The string values of an object field.
fn strings(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// An OCI or Docker image config: the two spell these fields alike.
fn image_config(v: &Map<String, Value>) -> ImageConfigMeta {
    let history = v
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|h| HistoryMeta {
            created: text(h, "created"),
            created_by: text(h, "created_by"),
            author: text(h, "author"),
            comment: text(h, "comment"),
            empty_layer: h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
        .collect();
    ImageConfigMeta {
        os: text(v, "os"),
        arch: text(v, "architecture"),
        variant: text(v, "variant"),
        created: text(v, "created"),
        author: text(v, "author"),
        history,
        labels: strings(v.get("config").and_then(|c| c.get("Labels"))),
    }
}

/// A Helm chart's `Chart.yaml` fields as the OCI annotations they stand
/// for; a chart has no platform, creation time or history.
fn helm_chart(v: &Map<String, Value>) -> ImageConfigMeta {
    let mut labels = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            labels.insert(key.to_string(), value);
        }
    };
    let home = text(v, "home");
    let first_source = v
        .get("sources")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let maintainers: Vec<&str> = v
        .get("maintainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("name")?.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    put(TITLE, text(v, "name"));
    put(VERSION, text(v, "version"));
    put(DESCRIPTION, text(v, "description"));
    put(SOURCE, first_source.or_else(|| home.clone()));
    put(URL, home);
    put(
        AUTHORS,
        (!maintainers.is_empty()).then(|| maintainers.join(", ")),
    );
    put(LICENSES, strings(v.get("annotations")).remove("licenses"));
    ImageConfigMeta {
        labels,
        ..Default::default()
    }
}

impl Registry {
    /// What the config `config` of a manifest in `repo` says, if it is a
    /// config that is read ([`is_described`]) and reads and parses; never
    /// an error (a failure to read is logged).
    pub(super) async fn image_config(
        &self,
        repo: &RepoName,
        config: &Descriptor,
    ) -> Option<ImageConfigMeta> {
        if !is_described(&config.media_type) || config.size > MAX_CONFIG_BYTES {
            return None;
        }
        let bytes = self.read_config(repo, &config.digest, config.size).await?;
        parse_config(&config.media_type, &bytes)
    }

    /// A blob of at most `size` bytes (its descriptor's size), read in
    /// one step: a config descriptor naming a large layer reads no more.
    /// `None` if it is missing, longer, or fails to read (logged).
    async fn read_config(&self, repo: &RepoName, digest: &Digest, size: u64) -> Option<Vec<u8>> {
        let blobs = &self.store(repo).blobs;
        match blobs.read_small_blob(repo, digest, size).await {
            Ok(Some(bytes)) if bytes.len() as u64 <= size => Some(bytes),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(%repo, %digest, "reading an image config failed: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_config() {
        let config = br#"{
            "architecture": "arm64", "os": "linux", "variant": "v8",
            "created": "2024-05-01T10:00:00.123456789Z", "author": "Ann <ann@example.com>",
            "config": {"Labels": {"org.opencontainers.image.vendor": "Acme", "n": 3}},
            "history": [
                {"created": "2024-05-01T09:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:1 in /"},
                {"created_by": "ENV A=b", "empty_layer": true, "comment": "buildkit"},
                "not an entry"
            ]
        }"#;
        let got = parse_config(OCI_CONFIG, config).expect("parsed");
        assert_eq!(got.os.as_deref(), Some("linux"));
        assert_eq!(got.arch.as_deref(), Some("arm64"));
        assert_eq!(got.variant.as_deref(), Some("v8"));
        assert_eq!(
            got.created.as_deref(),
            Some("2024-05-01T10:00:00.123456789Z"),
            "as written"
        );
        assert_eq!(got.author.as_deref(), Some("Ann <ann@example.com>"));
        assert_eq!(
            got.labels,
            BTreeMap::from([(
                "org.opencontainers.image.vendor".to_string(),
                "Acme".to_string()
            )]),
            "string labels only"
        );
        assert_eq!(
            got.history,
            vec![
                HistoryMeta {
                    created: Some("2024-05-01T09:00:00Z".into()),
                    created_by: Some("/bin/sh -c #(nop) ADD file:1 in /".into()),
                    ..Default::default()
                },
                HistoryMeta {
                    created_by: Some("ENV A=b".into()),
                    comment: Some("buildkit".into()),
                    empty_layer: true,
                    ..Default::default()
                },
            ]
        );
        // Docker spells it the same.
        assert_eq!(parse_config(DOCKER_CONFIG, config), Some(got));
    }

    #[test]
    fn odd_configs() {
        // Fields of the wrong type are skipped, not fatal.
        let got = parse_config(
            OCI_CONFIG,
            br#"{"os": 1, "architecture": "amd64", "config": {"Labels": null}, "history": {}}"#,
        )
        .expect("parsed");
        assert_eq!(
            got,
            ImageConfigMeta {
                arch: Some("amd64".into()),
                ..Default::default()
            }
        );
        assert_eq!(parse_config(OCI_CONFIG, b"not json"), None);
        assert_eq!(parse_config(OCI_CONFIG, b"[1]"), None);
        assert_eq!(
            parse_config("application/vnd.oci.empty.v1+json", b"{}"),
            None,
            "not an image config"
        );
    }

    #[test]
    fn a_helm_chart() {
        let chart = br#"{
            "name": "nginx", "version": "15.1.0", "appVersion": "1.25",
            "description": "NGINX Open Source", "home": "https://nginx.org",
            "sources": ["https://github.com/bitnami/charts", "https://x"],
            "maintainers": [{"name": "Bitnami", "email": "b@example.com"}, {"email": "x"}, {"name": "Ann"}],
            "annotations": {"licenses": "Apache-2.0", "category": "web"}
        }"#;
        let got = parse_config(HELM_CONFIG, chart).expect("parsed");
        let want: BTreeMap<String, String> = [
            (TITLE, "nginx"),
            (VERSION, "15.1.0"),
            (DESCRIPTION, "NGINX Open Source"),
            (URL, "https://nginx.org"),
            (SOURCE, "https://github.com/bitnami/charts"),
            (AUTHORS, "Bitnami, Ann"),
            (LICENSES, "Apache-2.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got.labels, want);
        assert_eq!((got.os, got.arch, got.created), (None, None, None));

        // Without sources, the home page is the source; absent fields are
        // absent labels.
        let got =
            parse_config(HELM_CONFIG, br#"{"name": "x", "home": "https://h"}"#).expect("parsed");
        assert_eq!(
            got.labels.get(SOURCE).map(String::as_str),
            Some("https://h")
        );
        assert_eq!(got.labels.len(), 3, "{:?}", got.labels);
    }
}

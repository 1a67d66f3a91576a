//! A tolerant model of OCI manifests and indexes and Docker schema2
//! manifests and manifest lists: only the fields the registry needs to check
//! references and answer referrers. The stored bytes are always the client's
//! own; this model is never serialised back in their place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media::{self, ManifestKind};

/// A content descriptor. Fields Berth does not interpret (`urls`,
/// `platform`, `data`, ...) are kept in `extra` so rewriting an `index.json`
/// never drops them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The fields of a manifest or index that the registry reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Why a manifest body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid: {0}")]
    Invalid(String),
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
}

/// A checked manifest: its kind, media type and the references it makes.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub kind: ManifestKind,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The media type of a `Content-Type` header value, without parameters.
pub fn bare_media_type(content_type: &str) -> &str {
    content_type
        .split(';')
        .next()
        .unwrap_or(content_type)
        .trim()
}

impl Manifest {
    /// Parses and checks a manifest body. `content_type` is the request's
    /// `Content-Type`, if any.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        let raw: RawManifest =
            serde_json::from_slice(body).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if raw.schema_version != Some(2) {
            return Err(ManifestError::Invalid(format!(
                "schemaVersion must be 2, got {:?}",
                raw.schema_version
            )));
        }
        let header = content_type
            .map(bare_media_type)
            .filter(|t| media::manifest_kind(t).is_some());
        let media_type = match (&raw.media_type, header) {
            (Some(body), Some(h)) if body != h => {
                return Err(ManifestError::Invalid(format!(
                    "mediaType {body:?} does not match Content-Type {h:?}"
                )));
            }
            (Some(body), _) => body.clone(),
            (None, Some(h)) => h.to_string(),
            (None, None) if raw.manifests.is_some() => media::OCI_INDEX.to_string(),
            (None, None) if raw.config.is_some() => media::OCI_MANIFEST.to_string(),
            (None, None) => {
                return Err(ManifestError::Invalid(
                    "no mediaType and no Content-Type of a manifest".into(),
                ));
            }
        };
        let kind = media::manifest_kind(&media_type)
            .ok_or_else(|| ManifestError::UnsupportedMediaType(media_type.clone()))?;
        match kind {
            ManifestKind::Image if raw.config.is_none() => {
                return Err(ManifestError::Invalid(
                    "image manifest has no config".into(),
                ));
            }
            ManifestKind::Image if raw.layers.is_none() => {
                return Err(ManifestError::Invalid(
                    "image manifest has no layers".into(),
                ));
            }
            ManifestKind::Index if raw.manifests.is_none() => {
                return Err(ManifestError::Invalid("index has no manifests".into()));
            }
            _ => {}
        }
        Ok(Self {
            kind,
            media_type,
            artifact_type: raw.artifact_type,
            config: raw.config,
            layers: raw.layers.unwrap_or_default(),
            manifests: raw.manifests.unwrap_or_default(),
            subject: raw.subject,
            annotations: raw.annotations,
        })
    }

    /// The artifact type shown in a referrers list: `artifactType`, or for an
    /// image manifest without one, its config's media type.
    pub fn effective_artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
    }

    /// The blobs this manifest needs in the same repository (config and
    /// non-foreign layers).
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(
            self.layers
                .iter()
                .filter(|l| !media::is_foreign_layer(&l.media_type)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image(media: Option<&str>) -> String {
        let mt = media.map_or(String::new(), |m| format!("\"mediaType\":\"{m}\","));
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":0}},"layers":[]}}"#
        )
    }

    #[test]
    fn media_type_resolution() {
        let m = Manifest::parse(image(None).as_bytes(), None).expect("parse");
        assert_eq!(m.media_type, media::OCI_MANIFEST);
        let m =
            Manifest::parse(image(None).as_bytes(), Some(media::DOCKER_MANIFEST)).expect("parse");
        assert_eq!(m.media_type, media::DOCKER_MANIFEST);
        let m = Manifest::parse(
            image(Some(media::OCI_MANIFEST)).as_bytes(),
            Some("application/json"),
        )
        .expect("parse");
        assert_eq!(m.kind, ManifestKind::Image);
        assert!(
            Manifest::parse(
                image(Some(media::OCI_MANIFEST)).as_bytes(),
                Some(media::DOCKER_MANIFEST)
            )
            .is_err()
        );
        assert_eq!(
            m.effective_artifact_type().as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn refusals() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"schemaVersion":1}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:00","size":1}]}"#,
        ] {
            assert!(Manifest::parse(body.as_bytes(), None).is_err(), "{body}");
        }
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
    }

    proptest::proptest! {
        /// Any bytes, with any content type, are parsed or refused: never
        /// a panic.
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                              ct in proptest::option::of("[a-z./+-]{0,40}")) {
            let _ = Manifest::parse(&body, ct.as_deref());
        }

        /// JSON shaped like a manifest, with fields of any type and
        /// nesting, is parsed or refused: never a panic.
        #[test]
        fn manifest_shaped_json_never_panics(
            schema in proptest::num::i64::ANY,
            media in proptest::option::of("[a-z./+-]{0,60}"),
            field in "(config|layers|manifests|subject|blobs|artifactType)",
            value in "(null|1|-1|\"x\"|\\[\\]|\\{\\}|\\[\\{\"digest\":\"sha256:00\",\"size\":-1\\}\\])",
        ) {
            let mt = media.map_or(String::new(), |m| format!(",\"mediaType\":\"{m}\""));
            let body = format!("{{\"schemaVersion\":{schema}{mt},\"{field}\":{value}}}");
            let _ = Manifest::parse(body.as_bytes(), None);
        }
    }
}

//! The manifests a scan walks: an index (its children, by platform) or
//! an image manifest (its config and layers), OCI's or Docker's, read
//! leniently (only the fields a scan needs), and platforms.

use std::fmt;

use berth_oci::Digest;
use serde::Deserialize;

/// The most bytes of a manifest or a config read (4 MiB, as registries
/// cap manifests).
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;

/// The annotation buildx puts on an index's attestation manifests.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// A manifest that is neither an index nor an image manifest.
#[derive(Debug, thiserror::Error)]
#[error("{what} is not an image manifest nor an index: {reason}")]
pub(crate) struct ManifestError {
    pub(crate) what: String,
    pub(crate) reason: String,
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
}

/// An image's platform: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_owned);
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant,
        })
    }

    /// Whether an image of this platform is what `wanted` asks for (a
    /// `wanted` without a variant takes any variant).
    pub(crate) fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a manifest holds.
#[derive(Debug, Clone)]
pub(crate) enum Manifest {
    /// An index (OCI) or a manifest list (Docker).
    Index(Vec<Descriptor>),
    /// An image manifest.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

impl Manifest {
    /// Reads a manifest's bytes; `what` names it in errors.
    pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<Self, ManifestError> {
        let error = |reason: String| ManifestError {
            what: what.to_owned(),
            reason,
        };
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| error(e.to_string()))?;
        match raw {
            Raw {
                manifests: Some(children),
                ..
            } => Ok(Self::Index(children)),
            Raw {
                config: Some(config),
                layers: Some(layers),
                ..
            } => Ok(Self::Image { config, layers }),
            _ => Err(error(
                "it has neither manifests nor config and layers".into(),
            )),
        }
    }
}

/// Whether an index's child is an image to scan: not an attestation or
/// another artifact that buildx and others list beside the platforms
/// (`unknown/unknown`).
pub(crate) fn is_platform_image(child: &Descriptor) -> bool {
    !child.annotations.contains_key(REFERENCE_TYPE)
        && child.platform.as_ref().is_none_or(|p| p.os != "unknown")
}

/// The platform of an image config (`os`, `architecture`, `variant`).
pub(crate) fn config_platform(bytes: &[u8]) -> Option<Platform> {
    let p: Platform = serde_json::from_slice(bytes).ok()?;
    (!p.os.is_empty() && !p.architecture.is_empty()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let arm = Platform::parse("linux/arm64/v8");
        assert_eq!(
            arm.as_ref().map(ToString::to_string).as_deref(),
            Some("linux/arm64/v8")
        );
        let any_arm = Platform::parse("linux/arm64");
        assert!(matches!((&arm, &any_arm), (Some(a), Some(w)) if a.matches(w)));
        assert!(matches!((&any_arm, &arm), (Some(a), Some(w)) if !a.matches(w)));
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d"] {
            assert_eq!(Platform::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn manifests_of_each_kind() {
        let d = format!("sha256:{}", "a".repeat(64));
        let index = format!(
            r#"{{"manifests":[{{"digest":"{d}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
        );
        match Manifest::parse(index.as_bytes(), "x") {
            Ok(Manifest::Index(children)) => assert!(!is_platform_image(&children[0])),
            other => panic!("{other:?}"),
        }
        let image = format!(r#"{{"config":{{"digest":"{d}","size":1}},"layers":[]}}"#);
        assert!(matches!(
            Manifest::parse(image.as_bytes(), "x"),
            Ok(Manifest::Image { .. })
        ));
        let err = Manifest::parse(b"{}", "the top manifest").err();
        assert!(err.is_some_and(|e| e.to_string().starts_with("the top manifest")));
    }
}

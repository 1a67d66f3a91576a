//! What `berth scan`'s IMAGE names: an OCI image layout on disk or an
//! image in a registry, parsed once into a [`Target`].
//!
//! - `oci:PATH[:TAG]` (skopeo's spelling): a layout;
//! - `docker://HOST/REPO[:TAG|@DIGEST]`: a registry (tag `latest` when
//!   none is given);
//! - anything else: a layout if it is a directory holding `oci-layout`,
//!   else a registry reference if its first component names a host (it
//!   holds a `.` or a `:`, or is `localhost`), else an error.

use std::path::{Path, PathBuf};

use berth_oci::{Digest, RepoName, Tag};

/// A reference that names neither a layout nor an image in a registry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReferenceError {
    #[error(
        "{0:?} is not an OCI image layout (no oci-layout file there) nor a registry reference (docker://HOST/REPO:TAG)"
    )]
    Unknown(String),
    #[error("{image:?}: {reason}")]
    Invalid { image: String, reason: String },
}

/// The manifest of a registry image: by tag or by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ManifestRef {
    /// A tag, checked against the tag grammar.
    Tag(String),
    Digest(Digest),
}

impl std::fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

/// Where the image to scan is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// An OCI image layout; `tag` is `None` when IMAGE gave none.
    Layout { path: PathBuf, tag: Option<String> },
    /// An image in a registry at `host` (`host[:port]`).
    Registry {
        host: String,
        repo: RepoName,
        reference: ManifestRef,
    },
}

/// Parses IMAGE; `is_layout` says whether a path is a directory holding
/// `oci-layout` (the only question asked of the file system).
pub(crate) fn parse(
    image: &str,
    is_layout: impl Fn(&Path) -> bool,
) -> Result<Target, ReferenceError> {
    let invalid = |reason: &str| ReferenceError::Invalid {
        image: image.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(rest) = image.strip_prefix("oci:") {
        // The tag follows the last `:` that comes after the last `/`.
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last..].rfind(':') {
            Some(i) => (&rest[..last + i], Some(&rest[last + i + 1..])),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(invalid("no layout path after oci:"));
        }
        if let Some(tag) = tag {
            tag.parse::<Tag>().map_err(|e| invalid(&e.to_string()))?;
        }
        return Ok(Target::Layout {
            path: PathBuf::from(path),
            tag: tag.map(str::to_owned),
        });
    }
    if let Some(rest) = image.strip_prefix("docker://") {
        return registry(rest).map_err(|reason| invalid(&reason));
    }
    if is_layout(Path::new(image)) {
        return Ok(Target::Layout {
            path: PathBuf::from(image),
            tag: None,
        });
    }
    match image.split_once('/') {
        Some((host, _)) if host.contains(['.', ':']) || host == "localhost" => {
            registry(image).map_err(|reason| invalid(&reason))
        }
        _ => Err(ReferenceError::Unknown(image.to_owned())),
    }
}

/// `HOST/REPO[:TAG|@DIGEST]`.
fn registry(s: &str) -> Result<Target, String> {
    let (host, rest) = s
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
        .ok_or("a registry reference is HOST/REPO[:TAG|@DIGEST]")?;
    let (repo, reference) = if let Some((repo, digest)) = rest.split_once('@') {
        let digest: Digest = digest.parse().map_err(|e| format!("{e}"))?;
        (repo, ManifestRef::Digest(digest))
    } else {
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        match rest[last..].rfind(':') {
            Some(i) => {
                let tag = &rest[last + i + 1..];
                tag.parse::<Tag>().map_err(|e| format!("{e}"))?;
                (&rest[..last + i], ManifestRef::Tag(tag.to_owned()))
            }
            None => (rest, ManifestRef::Tag("latest".to_owned())),
        }
    };
    let repo: RepoName = repo.parse().map_err(|e| format!("{e}"))?;
    Ok(Target::Registry {
        host: host.to_owned(),
        repo,
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(image: &str) -> Result<Target, String> {
        parse(image, |p| p == Path::new("./layout")).map_err(|e| e.to_string())
    }

    fn layout(path: &str, tag: Option<&str>) -> Result<Target, String> {
        Ok(Target::Layout {
            path: PathBuf::from(path),
            tag: tag.map(str::to_owned),
        })
    }

    fn registry(host: &str, repo: &str, reference: &str) -> Result<Target, String> {
        let reference = match reference.parse::<Digest>() {
            Ok(d) => ManifestRef::Digest(d),
            Err(_) => ManifestRef::Tag(reference.to_owned()),
        };
        Ok(Target::Registry {
            host: host.to_owned(),
            repo: repo.parse().map_err(|e| format!("{e}"))?,
            reference,
        })
    }

    #[test]
    fn images_of_each_kind() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let table = [
            ("oci:/tmp/img", layout("/tmp/img", None)),
            ("oci:/tmp/img:v1", layout("/tmp/img", Some("v1"))),
            ("oci:rel/dir:latest", layout("rel/dir", Some("latest"))),
            ("oci:./a:b/c", layout("./a:b/c", None)),
            ("./layout", layout("./layout", None)),
            (
                "docker://127.0.0.1:5000/team/app:v1",
                registry("127.0.0.1:5000", "team/app", "v1"),
            ),
            (
                "docker://ghcr.io/team/app",
                registry("ghcr.io", "team/app", "latest"),
            ),
            (
                &*format!("docker://localhost/app@{digest}"),
                registry("localhost", "app", &digest),
            ),
            (
                "registry.example.com/library/debian:12",
                registry("registry.example.com", "library/debian", "12"),
            ),
            (
                "localhost:8080/app",
                registry("localhost:8080", "app", "latest"),
            ),
        ];
        for (image, want) in table {
            assert_eq!(target(image), want, "{image}");
        }
    }

    #[test]
    fn bad_images_say_why() {
        for image in [
            "oci:",
            "oci:/x:bad tag",
            "docker://host",
            "docker://host/",
            "docker:///repo",
            "docker://host/Repo:v1",
            "docker://host/app:-x",
            "docker://host/app@sha256:12",
            "missing-dir",
            "/no/such/layout",
            "debian:12",
        ] {
            let err = target(image).err();
            assert!(
                err.as_ref().is_some_and(|e| e.contains(image)),
                "{image}: {err:?}"
            );
        }
    }
}

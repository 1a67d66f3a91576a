//! Where an image is, as skopeo writes it: `docker://HOST/REPO[:TAG|@DIGEST]`
//! (a registry), `oci:DIR[:REF]` (an OCI image layout) and
//! `docker-archive:FILE[:REF]` (a `docker save` tarball). Pure parsing.

use std::fmt;
use std::path::PathBuf;

/// Why a location cannot be read (said on one line, naming the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(pub String);

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A repository of a registry.
    Registry(RegistryRef),
    /// An OCI image layout; `reference` is the `ref.name` annotation of an
    /// `index.json` entry (or a digest).
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// A `docker save` tarball; `reference` is `NAME:TAG` (a `RepoTags`
    /// entry), or `@N` for the N-th image of a source archive.
    Archive {
        file: PathBuf,
        reference: Option<String>,
    },
}

/// `HOST/REPO[:TAG|@DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host[:port]`; `docker.io` when the name has no host part.
    pub host: String,
    /// The repository (`library/` added on Docker Hub by the client).
    pub repo: String,
    /// The tag or digest; `None` when not given.
    pub reference: Option<String>,
}

impl RegistryRef {
    /// The tag or digest, `latest` when none was given.
    pub fn reference_or_latest(&self) -> &str {
        self.reference.as_deref().unwrap_or("latest")
    }

    /// The tag, if the reference is one (not a digest).
    pub fn tag(&self) -> Option<&str> {
        self.reference.as_deref().filter(|r| !r.contains(':'))
    }

    /// Parses `HOST/REPO[:TAG|@DIGEST]` (with or without `docker://`).
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let rest = text.strip_prefix("docker://").unwrap_or(text);
        let rest = rest.trim_start_matches('/');
        let (name, reference) = match rest.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => match rest.rsplit_once(':') {
                // A colon after the last slash is a tag; before, a port.
                Some((n, t)) if !t.contains('/') => (n, Some(t.to_string())),
                _ => (rest, None),
            },
        };
        if let Some(d) = &reference
            && d.contains(':')
            && d.parse::<berth_oci::Digest>().is_err()
        {
            return Err(LocationError(format!("{text}: {d:?} is not a digest")));
        }
        if let Some(t) = &reference
            && (t.is_empty() || (!t.contains(':') && t.parse::<berth_oci::Tag>().is_err()))
        {
            return Err(LocationError(format!("{text}: {t:?} is not a tag")));
        }
        let (first, repo) = match name.split_once('/') {
            Some((h, r)) if h.contains(['.', ':']) || h == "localhost" || h.starts_with('[') => {
                (h.to_string(), r.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        if repo.is_empty() || repo.parse::<berth_oci::RepoName>().is_err() {
            return Err(LocationError(format!(
                "{text}: {repo:?} is not a repository name"
            )));
        }
        Ok(Self {
            host: first.to_ascii_lowercase(),
            repo,
            reference,
        })
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "docker://{}/{}", self.host, self.repo)?;
        match &self.reference {
            Some(r) if r.contains(':') => write!(f, "@{r}"),
            Some(t) => write!(f, ":{t}"),
            None => Ok(()),
        }
    }
}

impl Location {
    /// Parses skopeo's `TRANSPORT:DETAILS`; without a known transport, a
    /// registry reference (`docker://` may be left out).
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let split = |rest: &str| -> (PathBuf, Option<String>) {
            match rest.split_once(':') {
                Some((p, r)) if !r.is_empty() => (PathBuf::from(p), Some(r.to_string())),
                Some((p, _)) => (PathBuf::from(p), None),
                None => (PathBuf::from(rest), None),
            }
        };
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, reference) = split(rest);
            if dir.as_os_str().is_empty() {
                return Err(LocationError(format!("{text}: no directory")));
            }
            return Ok(Self::Layout { dir, reference });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (file, reference) = split(rest);
            if file.as_os_str().is_empty() {
                return Err(LocationError(format!("{text}: no file")));
            }
            return Ok(Self::Archive { file, reference });
        }
        if let Some((transport, _)) = text.split_once(':')
            && !text.starts_with("docker://")
            && [
                "dir",
                "oci-archive",
                "containers-storage",
                "docker-daemon",
                "sif",
            ]
            .contains(&transport)
        {
            return Err(LocationError(format!(
                "{text}: the {transport} transport is not supported (docker://, oci:, docker-archive:)"
            )));
        }
        RegistryRef::parse(text).map(Self::Registry)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, reference) = match self {
            Self::Registry(r) => return r.fmt(f),
            Self::Layout { dir, reference } => ("oci", dir, reference),
            Self::Archive { file, reference } => ("docker-archive", file, reference),
        };
        write!(f, "{transport}:{}", path.display())?;
        match reference {
            Some(r) => write!(f, ":{r}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(host: &str, repo: &str, reference: Option<&str>) -> Location {
        Location::Registry(RegistryRef {
            host: host.into(),
            repo: repo.into(),
            reference: reference.map(String::from),
        })
    }

    #[test]
    fn skopeo_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        let table: Vec<(String, Location)> = vec![
            (
                "docker://127.0.0.1:5000/a/b:v1".into(),
                reg("127.0.0.1:5000", "a/b", Some("v1")),
            ),
            (
                "127.0.0.1:5000/a/b".into(),
                reg("127.0.0.1:5000", "a/b", None),
            ),
            (
                format!("docker://localhost/app@{d}"),
                reg("localhost", "app", Some(&d)),
            ),
            (
                "docker://alpine:3".into(),
                reg("docker.io", "alpine", Some("3")),
            ),
            (
                "oci:/tmp/lay:v2".into(),
                Location::Layout {
                    dir: "/tmp/lay".into(),
                    reference: Some("v2".into()),
                },
            ),
            (
                "oci:lay".into(),
                Location::Layout {
                    dir: "lay".into(),
                    reference: None,
                },
            ),
            (
                "docker-archive:/tmp/a.tar:app:v1".into(),
                Location::Archive {
                    file: "/tmp/a.tar".into(),
                    reference: Some("app:v1".into()),
                },
            ),
        ];
        for (text, want) in table {
            let got = Location::parse(&text).expect(&text);
            assert_eq!(got, want, "{text}");
            assert_eq!(Location::parse(&got.to_string()).expect("again"), want);
        }
        for bad in [
            "docker://h:5000/A:b",
            "docker://h/a@sha256:zz",
            "oci::x",
            "dir:/tmp/x",
            "docker://h/a:",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}

//! Registry profiles (`berth remote`): names for registry URLs, kept in
//! `$XDG_CONFIG_HOME/berth/remotes.json` (else `~/.config/berth/`), one of
//! them the default. Credentials are never kept here: they come from the
//! Docker/Podman auth file (`berth login`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Remote {
    pub(crate) url: String,
    /// Whether the registry's TLS certificate is checked.
    #[serde(default = "yes")]
    pub(crate) verify_tls: bool,
}

fn yes() -> bool {
    true
}

/// The profiles file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Remotes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default: Option<String>,
    #[serde(default)]
    pub(crate) remotes: BTreeMap<String, Remote>,
}

/// Why the profiles cannot be read or changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("no configuration directory: set XDG_CONFIG_HOME or HOME")]
    NoDirectory,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a profiles file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no remote named {0:?} (berth remote list)")]
    Unknown(String),
    #[error("a remote named {0:?} exists already (berth remote remove it first)")]
    Exists(String),
    #[error("{0:?} is not a registry URL: give http(s)://host[:port] or host[:port]")]
    BadUrl(String),
}

/// Where the profiles are kept.
pub(crate) fn path() -> Result<PathBuf, RemoteError> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .ok_or(RemoteError::NoDirectory)?;
    Ok(dir.join("berth").join("remotes.json"))
}

impl Remotes {
    /// The profiles in `path` (none when it does not exist).
    pub(crate) fn load(path: &Path) -> Result<Self, RemoteError> {
        match std::fs::read(path) {
            Ok(raw) => serde_json::from_slice(&raw).map_err(|source| RemoteError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(RemoteError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the profiles to `path` atomically (a temporary file renamed
    /// over it).
    pub(crate) fn save(&self, path: &Path) -> Result<(), RemoteError> {
        let io = |source| RemoteError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|source| RemoteError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Adds `name`; the first profile becomes the default.
    pub(crate) fn add(
        &mut self,
        name: &str,
        url: &str,
        verify_tls: bool,
    ) -> Result<(), RemoteError> {
        if self.remotes.contains_key(name) {
            return Err(RemoteError::Exists(name.into()));
        }
        let url = url.trim().trim_end_matches('/');
        let host = url.split_once("://").map_or(url, |(scheme, rest)| {
            if matches!(scheme, "http" | "https") {
                rest
            } else {
                ""
            }
        });
        if host.is_empty() || host.contains(['/', ' ', '?', '#']) {
            return Err(RemoteError::BadUrl(url.into()));
        }
        self.remotes.insert(
            name.into(),
            Remote {
                url: url.into(),
                verify_tls,
            },
        );
        if self.default.is_none() {
            self.default = Some(name.into());
        }
        Ok(())
    }

    /// Removes `name` (and its being the default).
    pub(crate) fn remove(&mut self, name: &str) -> Result<(), RemoteError> {
        self.remotes
            .remove(name)
            .ok_or_else(|| RemoteError::Unknown(name.into()))?;
        if self.default.as_deref() == Some(name) {
            self.default = None;
        }
        Ok(())
    }

    pub(crate) fn set_default(&mut self, name: &str) -> Result<(), RemoteError> {
        if !self.remotes.contains_key(name) {
            return Err(RemoteError::Unknown(name.into()));
        }
        self.default = Some(name.into());
        Ok(())
    }

    /// The profile `name`, or the default one.
    pub(crate) fn pick(&self, name: Option<&str>) -> Result<Option<&Remote>, RemoteError> {
        match name.or(self.default.as_deref()) {
            Some(n) => self
                .remotes
                .get(n)
                .map(Some)
                .ok_or_else(|| RemoteError::Unknown(n.into())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_and_the_first_is_the_default() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("b/remotes.json");
        let mut r = Remotes::load(&path).expect("none yet");
        r.add("main", "https://reg.example.com/", true)
            .expect("add");
        r.add("local", "127.0.0.1:5000", false).expect("add");
        assert!(matches!(
            r.add("main", "x", true),
            Err(RemoteError::Exists(_))
        ));
        assert!(matches!(
            r.add("bad", "https://h/path", true),
            Err(RemoteError::BadUrl(_))
        ));
        assert!(matches!(
            r.add("bad", "ftp://h", true),
            Err(RemoteError::BadUrl(_))
        ));
        r.save(&path).expect("save");
        let mut back = Remotes::load(&path).expect("load");
        assert_eq!(back, r);
        assert_eq!(
            back.pick(None).expect("pick").map(|p| p.url.as_str()),
            Some("https://reg.example.com")
        );
        back.set_default("local").expect("default");
        assert!(!back.pick(None).expect("pick").expect("one").verify_tls);
        back.remove("local").expect("remove");
        assert_eq!(back.pick(None).expect("pick"), None);
        assert!(matches!(
            back.pick(Some("gone")),
            Err(RemoteError::Unknown(_))
        ));
    }
}

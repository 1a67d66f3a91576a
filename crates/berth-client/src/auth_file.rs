//! Docker's and Podman's auth files: where `docker login`, `podman login`
//! and `skopeo login` keep registry credentials, so a login made with any
//! of them serves `berth`, and one made with `berth login` serves them.
//!
//! The format is Docker's `config.json`: `{"auths": {"<host[:port]>":
//! {"auth": base64("user:password")}}}`. Everything else in the file
//! (`credsStore`, `credHelpers`, proxies, other tools' keys) is kept as it
//! is when an entry is written. A file is replaced whole (a temporary file
//! renamed over it), readable by its owner only.
//!
//! Credential helpers (`credsStore`, `credHelpers`) are not run: a file
//! that hands this registry's credentials to one is refused with
//! [`AuthFileError::Helper`], not silently bypassed.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Why an auth file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not an auth file: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} hands {registry}'s credentials to the credential helper {helper:?}, which berth does not run; give another file with --authfile",
        path.display()
    )]
    Helper {
        path: PathBuf,
        registry: String,
        helper: String,
    },
}

/// One auth file, as read.
#[derive(Debug, Clone)]
pub struct AuthFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// Where auth files are looked for, in Podman's order: `$REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config`), then Docker's
/// `$DOCKER_CONFIG/config.json` (`~/.docker`).
pub fn search_path() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut out = Vec::new();
    out.extend(env("REGISTRY_AUTH_FILE"));
    out.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    out.extend(
        env("XDG_CONFIG_HOME")
            .or_else(|| home.as_ref().map(|h| h.join(".config")))
            .map(|d| d.join("containers/auth.json")),
    );
    out.extend(
        env("DOCKER_CONFIG")
            .or_else(|| home.as_ref().map(|h| h.join(".docker")))
            .map(|d| d.join("config.json")),
    );
    out
}

/// The file a login is written to: `explicit`, else `$REGISTRY_AUTH_FILE`,
/// else Docker's `config.json` (which Podman and skopeo read too).
pub fn login_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("REGISTRY_AUTH_FILE").or_else(|| {
        env("DOCKER_CONFIG")
            .or_else(|| env("HOME").map(|h| h.join(".docker")))
            .map(|d| d.join("config.json"))
    })
}

/// The key a registry's entry is under: `host[:port]`, lower case, with
/// any scheme and path dropped.
pub fn registry_key(registry: &str) -> String {
    let rest = registry.split_once("://").map_or(registry, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

impl AuthFile {
    /// Reads `path`; a file that does not exist is an empty one.
    pub fn load(path: &Path) -> Result<Self, AuthFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(AuthFileError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let doc = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(o)) => o,
                Ok(_) => {
                    return Err(AuthFileError::Invalid {
                        path: path.to_path_buf(),
                        message: "not a JSON object".into(),
                    });
                }
                Err(e) => {
                    return Err(AuthFileError::Invalid {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    });
                }
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper this file hands `registry`'s credentials to, if any.
    fn helper_for(&self, key: &str) -> Option<String> {
        self.doc
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .or_else(|| self.doc.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(String::from)
    }

    fn entries(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// `registry`'s user and password, if the file has them.
    pub fn get(&self, registry: &str) -> Result<Option<(String, String)>, AuthFileError> {
        let key = registry_key(registry);
        let entry = self.entries().and_then(|a| {
            a.iter()
                .find(|(k, _)| registry_key(k) == key)
                .map(|(_, v)| v)
        });
        let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) else {
            return match self.helper_for(&key) {
                Some(helper) => Err(AuthFileError::Helper {
                    path: self.path.clone(),
                    registry: key,
                    helper,
                }),
                None => Ok(None),
            };
        };
        let invalid = |message: &str| AuthFileError::Invalid {
            path: self.path.clone(),
            message: format!("the entry of {key}: {message}"),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| invalid("auth is not base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("auth is not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| invalid("auth is not user:password"))?;
        Ok(Some((user.to_string(), password.to_string())))
    }

    /// Records `user` and `password` for `registry` (replacing its entry).
    pub fn set(&mut self, registry: &str, user: &str, password: &str) -> Result<(), AuthFileError> {
        let key = registry_key(registry);
        if self.entries().is_none_or(|a| !a.contains_key(&key))
            && let Some(helper) = self.helper_for(&key)
        {
            return Err(AuthFileError::Helper {
                path: self.path.clone(),
                registry: key,
                helper,
            });
        }
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(a) = auths.as_object_mut() {
            a.retain(|k, _| registry_key(k) != key);
            a.insert(key, json!({ "auth": auth }));
        }
        Ok(())
    }

    /// Forgets `registry`'s credentials; whether there were any.
    pub fn remove(&mut self, registry: &str) -> bool {
        let key = registry_key(registry);
        let Some(a) = self.doc.get_mut("auths").and_then(Value::as_object_mut) else {
            return false;
        };
        let before = a.len();
        a.retain(|k, _| registry_key(k) != key);
        a.len() != before
    }

    /// Writes the file whole: a temporary file beside it, readable by its
    /// owner only, renamed over it.
    pub fn save(&self) -> Result<(), AuthFileError> {
        let write_err = |source| AuthFileError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let text = serde_json::to_string_pretty(&self.doc)
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let written = (|| {
            use std::io::Write as _;
            let mut f = options.open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(write_err)
    }
}

/// `registry`'s credentials from the first auth file on the
/// [`search_path`] that has them.
pub fn lookup(registry: &str) -> Result<Option<(String, String)>, AuthFileError> {
    for path in search_path() {
        if !path.is_file() {
            continue;
        }
        if let Some(found) = AuthFile::load(&path)?.get(registry)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_the_rest_is_kept() {
        let dir = std::env::temp_dir().join(format!("berth-auth-{}", std::process::id()));
        let path = dir.join("auth.json");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            &path,
            r#"{"auths": {"https://other.example:5000/v1/": {"auth": "eDp5"}}, "proxies": {"default": {}}}"#,
        )
        .expect("write");
        let mut f = AuthFile::load(&path).expect("load");
        assert_eq!(
            f.get("other.example:5000").expect("get"),
            Some(("x".into(), "y".into()))
        );
        f.set("HTTPS://Reg.example:443/", "ana", "p:w")
            .expect("set");
        f.save().expect("save");
        let f = AuthFile::load(&path).expect("load");
        assert_eq!(
            f.get("reg.example:443").expect("get"),
            Some(("ana".into(), "p:w".into()))
        );
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("proxies"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut f = f;
        assert!(f.remove("reg.example:443"));
        assert!(!f.remove("reg.example:443"));
        assert_eq!(f.get("reg.example:443").expect("get"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn helpers_are_refused_not_bypassed() {
        let f = AuthFile {
            path: PathBuf::from("/x/config.json"),
            doc: serde_json::from_str(r#"{"credHelpers": {"gcr.io": "gcloud"}}"#).expect("json"),
        };
        assert!(matches!(f.get("gcr.io"), Err(AuthFileError::Helper { .. })));
        assert_eq!(f.get("quay.io").expect("no helper"), None);
        let mut f = AuthFile {
            path: PathBuf::from("/x/config.json"),
            doc: serde_json::from_str(r#"{"credsStore": "desktop"}"#).expect("json"),
        };
        assert!(matches!(
            f.set("quay.io", "a", "b"),
            Err(AuthFileError::Helper { .. })
        ));
    }
}

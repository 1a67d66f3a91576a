//! The files `extensions.sync` names, read as zot reads them:
//! `credentialsFile` (upstream logins) and each registry's `certDir` (CA
//! certificates and a client certificate). Read at start by the config
//! check ([`check_files`]), so a missing or unreadable one stops the start
//! with the key named, and again by the engine when it builds its clients.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::config::{ConfigError, SyncConfig};

/// A file of `extensions.sync` that cannot be used; the message names it.
#[derive(Debug, thiserror::Error)]
pub enum SyncFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The credentials file is not zot's JSON.
    #[error(
        "{path}: not a credentials file ({message}); expected {{\"host[:port]\": {{\"username\": \"...\", \"password\": \"...\"}}}}"
    )]
    Credentials { path: PathBuf, message: String },
    /// A certificate or key file holds no usable PEM.
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    /// A certificate directory's set of files is incomplete.
    #[error("{path}: {message}")]
    CertDir { path: PathBuf, message: String },
}

/// Upstream logins by `host[:port]`.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_host: HashMap<String, (String, String)>,
}

/// One login as zot's file writes it (Go reads the keys whatever their
/// case; the two spellings seen in practice are accepted).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    #[serde(default, alias = "Username")]
    username: String,
    #[serde(default, alias = "Password")]
    password: String,
}

/// `host[:port]` of a URL, lower-cased; a bare host counts as `https://`.
pub fn host_of(url: &str) -> Option<String> {
    let url = url.trim();
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    let uri: http::Uri = full.parse().ok()?;
    let authority = uri.authority()?.as_str();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host_port.is_empty()).then(|| host_port.to_ascii_lowercase())
}

impl Credentials {
    /// The login for an upstream URL, looked up by its `host[:port]` as zot
    /// does (`https://ghcr.io` → `ghcr.io`; a port must be written as in
    /// the URL). A login with neither name nor password is none.
    pub fn for_url(&self, url: &str) -> Option<(String, String)> {
        self.by_host.get(&host_of(url)?).cloned()
    }

    /// Whether the file held no login.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

/// Reads zot's `credentialsFile`: a JSON object keyed by `host[:port]`
/// (zot's key form; Berth also accepts a key written as a URL, reading its
/// host and port), each `{"username", "password"}`.
pub fn load_credentials(path: &Path) -> Result<Credentials, SyncFileError> {
    let text = std::fs::read(path).map_err(|source| SyncFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| SyncFileError::Credentials {
        path: path.to_path_buf(),
        message,
    };
    let file: HashMap<String, Login> =
        serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    let mut by_host = HashMap::new();
    for (key, login) in file {
        let host = host_of(&key).ok_or_else(|| bad(format!("{key:?} is no host[:port]")))?;
        if login.username.is_empty() && login.password.is_empty() {
            continue;
        }
        if by_host
            .insert(host.clone(), (login.username, login.password))
            .is_some()
        {
            return Err(bad(format!("two entries for {host}")));
        }
    }
    Ok(Credentials { by_host })
}

/// What a registry's `certDir` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertDir {
    /// Each CA file's PEM (one or more certificates each), trusted beside
    /// the system roots.
    pub ca_pem: Vec<Vec<u8>>,
    /// The client certificate (chain) followed by its private key, PEM
    /// (what `reqwest::Identity::from_pem` takes).
    pub identity_pem: Option<Vec<u8>>,
}

/// Reads a `certDir` with zot's file names: `ca.crt` and every other
/// `*.crt` as CA certificates (zot reads `ca.crt`, else the first `*.crt`;
/// Docker's convention, which Berth follows, trusts them all); `client.cert`
/// (else the first `*.cert` by name) as the client certificate, and
/// `client.key` (else the certificate's own `<name>.key`, else the first
/// `*.key`) as its key. Subdirectories (Docker's per-host `certs.d`
/// layout) are not read. A certificate without a key, a key without a
/// certificate, or a directory with none of these files is refused.
pub fn load_cert_dir(dir: &Path) -> Result<CertDir, SyncFileError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SyncFileError::Read { path, source }
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        let path = entry.path();
        // Follows links, as zot's reads do.
        if std::fs::metadata(&path).map_err(read_err(&path))?.is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    let with = |ext: &str| -> Vec<&String> {
        names
            .iter()
            .filter(|n| n.len() > ext.len() && n.ends_with(ext))
            .collect()
    };
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(read_err(&path))
    };
    let pem_err = |name: &str, message: String| SyncFileError::Pem {
        path: dir.join(name),
        message,
    };

    let mut out = CertDir::default();
    for name in with(".crt") {
        let pem = read(name)?;
        certificates(&pem).map_err(|m| pem_err(name, m))?;
        out.ca_pem.push(pem);
    }
    let certs = with(".cert");
    let keys = with(".key");
    let cert = names
        .iter()
        .find(|n| *n == "client.cert")
        .or(certs.first().copied());
    let key = names.iter().find(|n| *n == "client.key").or_else(|| {
        cert.and_then(|c| {
            let own = format!("{}.key", c.trim_end_matches(".cert"));
            names.iter().find(|n| **n == own)
        })
        .or(keys.first().copied())
    });
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let mut pem = read(cert)?;
            certificates(&pem).map_err(|m| pem_err(cert, m))?;
            let key_pem = read(key)?;
            PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| pem_err(key, format!("no private key: {e}")))?;
            if !pem.ends_with(b"\n") {
                pem.push(b'\n');
            }
            pem.extend_from_slice(&key_pem);
            out.identity_pem = Some(pem);
        }
        (Some(cert), None) => {
            return Err(SyncFileError::CertDir {
                path: dir.to_path_buf(),
                message: format!("{cert} has no key (client.key or {cert}'s own .key)"),
            });
        }
        (None, Some(key)) => {
            return Err(SyncFileError::CertDir {
                path: dir.to_path_buf(),
                message: format!("{key} has no certificate (client.cert)"),
            });
        }
        (None, None) => {}
    }
    if out.ca_pem.is_empty() && out.identity_pem.is_none() {
        return Err(SyncFileError::CertDir {
            path: dir.to_path_buf(),
            message: "holds no *.crt (CA), client.cert or client.key".into(),
        });
    }
    Ok(out)
}

/// Checks that a PEM holds at least one certificate and nothing broken.
fn certificates(pem: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| format!("bad PEM: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("no PEM certificate".into());
    }
    Ok(n)
}

/// Reads the credentials file and every `certDir` of a sync section, so a
/// missing or unreadable one is a start-up error naming its key.
pub fn check_files(config: &SyncConfig) -> Result<(), ConfigError> {
    if let Some(path) = &config.credentials_file {
        load_credentials(path)
            .map_err(|e| ConfigError::key("extensions.sync.credentialsFile", e.to_string()))?;
    }
    for (i, reg) in config.registries.iter().enumerate() {
        if let Some(dir) = &reg.cert_dir {
            load_cert_dir(dir).map_err(|e| {
                ConfigError::key(
                    format!("extensions.sync.registries[{i}].certDir"),
                    e.to_string(),
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &[u8]) {
        std::fs::write(dir.join(name), body).expect("write");
    }

    #[test]
    fn credentials_by_host_and_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("creds.json");
        write(
            dir.path(),
            "creds.json",
            br#"{"registry-1.docker.io": {"username": "u", "password": "p"},
                "Mirror.example:5000": {"Username": "m", "Password": "q"},
                "https://ghcr.io/": {"username": "g", "password": "h"},
                "anon.example": {}}"#,
        );
        let c = load_credentials(&path).expect("loads");
        let login = |u, p: &str| Some((String::from(u), p.to_string()));
        assert_eq!(c.for_url("https://registry-1.docker.io"), login("u", "p"));
        assert_eq!(c.for_url("registry-1.docker.io"), login("u", "p"));
        assert_eq!(c.for_url("http://mirror.example:5000"), login("m", "q"));
        assert_eq!(
            c.for_url("https://mirror.example"),
            None,
            "the port is part of the key"
        );
        assert_eq!(c.for_url("https://ghcr.io"), login("g", "h"));
        assert_eq!(c.for_url("https://anon.example"), None);
        assert_eq!(c.for_url("https://docker.io"), None);
    }

    #[test]
    fn credentials_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("creds.json");
        let missing = load_credentials(&path).expect_err("missing").to_string();
        assert!(
            missing.starts_with(&format!("cannot read {}", path.display())),
            "{missing}"
        );
        for body in [
            &br#"["not", "a map"]"#[..],
            br#"{"h": {"username": "u", "passwd": "p"}}"#,
            br#"{"h": {"username": "u"}, "https://h": {"username": "v"}}"#,
        ] {
            write(dir.path(), "creds.json", body);
            let e = load_credentials(&path).expect_err("refused").to_string();
            assert!(
                e.starts_with(&format!("{}: not a credentials file", path.display())),
                "{e}"
            );
        }
    }

    fn pems() -> (String, String, String) {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).expect("ca");
        let client =
            rcgen::generate_simple_self_signed(vec!["client.test".into()]).expect("client");
        (
            ca.cert.pem(),
            client.cert.pem(),
            client.signing_key.serialize_pem(),
        )
    }

    #[test]
    fn cert_dir_with_zot_names() {
        let (ca, cert, key) = pems();
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "ca.crt", ca.as_bytes());
        write(dir.path(), "extra.crt", ca.as_bytes());
        write(dir.path(), "client.cert", cert.as_bytes());
        write(dir.path(), "client.key", key.as_bytes());
        write(dir.path(), "README", b"ignored");
        std::fs::create_dir(dir.path().join("registry.example:5000")).expect("subdir");
        let c = load_cert_dir(dir.path()).expect("loads");
        assert_eq!(c.ca_pem.len(), 2);
        let identity = String::from_utf8(c.identity_pem.expect("identity")).expect("utf8");
        assert!(
            identity.starts_with(&cert) && identity.ends_with(&key),
            "{identity}"
        );

        // Other names: the first *.cert, with its own key.
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "b.cert", cert.as_bytes());
        write(dir.path(), "a.key", b"not a key");
        write(dir.path(), "b.key", key.as_bytes());
        let c = load_cert_dir(dir.path()).expect("loads");
        assert!(c.ca_pem.is_empty() && c.identity_pem.is_some());
    }

    #[test]
    fn cert_dir_errors_name_the_file() {
        let (ca, cert, key) = pems();
        type Files<'a> = Vec<(&'a str, &'a [u8])>;
        let cases: Vec<(Files, &str)> = vec![
            (vec![], ": holds no *.crt"),
            (
                vec![("client.cert", cert.as_bytes())],
                ": client.cert has no key",
            ),
            (
                vec![("ca.crt", ca.as_bytes()), ("client.key", key.as_bytes())],
                ": client.key has no certificate",
            ),
            (vec![("ca.crt", b"garbage")], "ca.crt: no PEM certificate"),
            (
                vec![
                    ("client.cert", cert.as_bytes()),
                    ("client.key", ca.as_bytes()),
                ],
                "client.key: no private key",
            ),
        ];
        for (files, want) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            for (name, body) in &files {
                write(dir.path(), name, body);
            }
            let e = load_cert_dir(dir.path()).expect_err("refused").to_string();
            assert!(e.contains(want), "{files:?}: {e}");
            assert!(e.starts_with(&dir.path().display().to_string()), "{e}");
        }
        let gone = load_cert_dir(Path::new("/nonexistent/berth-certs")).expect_err("missing");
        assert!(
            gone.to_string()
                .starts_with("cannot read /nonexistent/berth-certs"),
            "{gone}"
        );
    }

    #[test]
    fn check_files_names_the_key() {
        let config: SyncConfig = serde_json::from_value(serde_json::json!({
            "credentialsFile": "/nonexistent/creds.json",
            "registries": [{"urls": ["h"], "onDemand": true}]
        }))
        .expect("parses");
        let e = check_files(&config).expect_err("refused").to_string();
        assert!(
            e.starts_with("extensions.sync.credentialsFile: cannot read /nonexistent/creds.json"),
            "{e}"
        );
        let config: SyncConfig = serde_json::from_value(serde_json::json!({
            "registries": [{"urls": ["h"], "onDemand": true}, {"urls": ["h"], "onDemand": true, "certDir": "/nonexistent/certs"}]
        }))
        .expect("parses");
        let e = check_files(&config).expect_err("refused").to_string();
        assert!(
            e.starts_with("extensions.sync.registries[1].certDir: cannot read /nonexistent/certs"),
            "{e}"
        );
    }
}

//! Opening a copy's ends from what was typed: a registry's client (its
//! scheme, TLS and credentials), a layout, an archive.

use std::path::{Path, PathBuf};

use berth_client::auth_file::{self, AuthFile};
use berth_client::copy::{ArchiveSource, LayoutSource, Location, RegistryRef, Source};
use berth_client::{Client, ClientOptions};

use super::CliError;

/// How one side's registry is reached (skopeo's `--src-*` / `--dest-*`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    /// Check the TLS certificate.
    pub(crate) tls_verify: bool,
    /// `USER:PASSWORD`; else the auth files.
    pub(crate) creds: Option<String>,
    /// A directory of `*.crt` CA certificates (and a `*.cert`/`*.key`
    /// client pair), as skopeo's `--cert-dir`.
    pub(crate) cert_dir: Option<PathBuf>,
    /// The auth file to read (else the usual search path).
    pub(crate) authfile: Option<PathBuf>,
}

/// A client for `r`'s registry: plain HTTP for a loopback host, else
/// HTTPS.
pub(crate) fn client(r: &RegistryRef, access: &Access) -> Result<Client, CliError> {
    let mut base = crate::login::base_url(&r.host);
    // A loopback registry given certificates is spoken to over TLS.
    if access.cert_dir.is_some()
        && let Some(rest) = base.strip_prefix("http://")
    {
        base = format!("https://{rest}");
    }
    let creds = match &access.creds {
        Some(c) => Some(c.clone()),
        None => {
            let found = match &access.authfile {
                Some(p) => AuthFile::load(p)?.get(&r.host)?,
                None => auth_file::lookup(&r.host)?,
            };
            found.map(|(u, p)| format!("{u}:{p}"))
        }
    };
    let mut options = ClientOptions {
        accept_invalid_certs: !access.tls_verify,
        max_retries: 3,
        retry_delay: std::time::Duration::from_millis(200),
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(300)),
        ..ClientOptions::default()
    };
    if let Some(dir) = &access.cert_dir {
        read_cert_dir(dir, &mut options)?;
    }
    Ok(Client::with_options(&base, creds.as_deref(), options)?)
}

/// CA certificates (`*.crt`) and a client pair (`*.cert` + `*.key`) of
/// `dir`.
pub(crate) fn read_cert_dir(dir: &Path, options: &mut ClientOptions) -> Result<(), CliError> {
    let io = |p: &Path, e: std::io::Error| CliError::Usage(format!("{}: {e}", p.display()));
    let mut identity = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if matches!(ext, "crt" | "cert" | "key") {
            let text = std::fs::read(&path).map_err(|e| io(&path, e))?;
            if ext == "crt" {
                options.ca_certs_pem.push(text);
            } else {
                identity.extend(text);
                identity.push(b'\n');
            }
        }
    }
    if !identity.is_empty() {
        options.identity_pem = Some(identity);
    }
    Ok(())
}

/// A source opened: the source, the repository named in it and the
/// reference to copy.
pub(crate) struct Opened {
    pub(crate) source: Source,
    pub(crate) repo: String,
    pub(crate) reference: String,
    /// The tag the source names, if it names one.
    pub(crate) tag: Option<String>,
}

/// Opens `location` to read from.
pub(crate) async fn open_source(location: &Location, access: &Access) -> Result<Opened, CliError> {
    Ok(match location {
        Location::Registry(r) => Opened {
            source: Source::Registry(client(r, access)?),
            repo: r.repo.clone(),
            reference: r.reference_or_latest().to_string(),
            tag: match &r.reference {
                None => Some("latest".to_string()),
                Some(t) => r.tag().map(|_| t.clone()),
            },
        },
        Location::Layout { dir, reference } => {
            let layout = LayoutSource::open(dir)?;
            let chosen = match reference {
                Some(r) => r.clone(),
                None => layout.only_entry()?,
            };
            Opened {
                source: Source::Layout(layout),
                repo: String::new(),
                tag: reference.clone().filter(|r| !r.contains(':')),
                reference: chosen,
            }
        }
        Location::Archive { file, reference } => {
            let archive = ArchiveSource::open(file, reference.as_deref()).await?;
            let tag = archive
                .repo_tags
                .first()
                .and_then(|t| t.rsplit_once(':'))
                .map(|(_, t)| t.to_string());
            Opened {
                source: Source::Archive(archive),
                repo: String::new(),
                reference: "latest".to_string(),
                tag,
            }
        }
    })
}

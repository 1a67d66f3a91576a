//! The query commands (zli's role): `berth remote`, `images`, `image`,
//! `cve`, `repos`, `search`, `referrers`, `status`. Each asks zot's search
//! API (GraphQL, `berth_client::search`), so they work against zot too,
//! and prints a table (`-o text`) or a stable JSON or YAML shape.
//!
//! The registry is `--url`, else the profile `--remote`, else the default
//! profile; credentials are `--user`, else the login the Docker/Podman
//! auth file holds for that host (`berth login`).

mod commands;
mod output;
mod remote;

use berth_client::search::SortBy;
use berth_client::{Client, ClientError, ClientOptions};

pub(crate) use commands::{CveCommand, ImageArgs, RemoteCommand};
use output::Format;

/// Where to ask and how to print: the flags every query command takes.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Target {
    /// The registry (`http(s)://host[:port]`, or `host[:port]`: HTTPS, or
    /// plain HTTP for a loopback address).
    #[arg(long, global = true)]
    url: Option<String>,
    /// A registry profile (`berth remote list`); default: the default one.
    #[arg(long, global = true, conflicts_with = "url")]
    remote: Option<String>,
    /// `user:password` (default: the auth file's login for the registry).
    #[arg(short, long, global = true)]
    user: Option<String>,
    /// Check the registry's TLS certificate (default: yes, or as the
    /// profile says).
    #[arg(long, global = true, action = clap::ArgAction::Set)]
    tls_verify: Option<bool>,
    /// CA certificates (`*.crt`) to trust, and a client certificate
    /// (`*.cert` with its `*.key`), as skopeo's `--cert-dir`; a loopback
    /// registry is then reached over HTTPS.
    #[arg(long, global = true)]
    cert_dir: Option<std::path::PathBuf>,
    /// Output: an aligned table, JSON or YAML.
    #[arg(short, long, global = true, value_enum, default_value = "text")]
    output: Format,
    /// Order of the results.
    #[arg(long, global = true, value_enum)]
    sort_by: Option<Sort>,
}

/// `--sort-by`, as zli spells it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Sort {
    Relevance,
    UpdateTime,
    AlphaAsc,
    AlphaDsc,
    Severity,
}

impl Sort {
    fn criteria(self) -> SortBy {
        match self {
            Self::Relevance => SortBy::Relevance,
            Self::UpdateTime => SortBy::UpdateTime,
            Self::AlphaAsc => SortBy::AlphaAsc,
            Self::AlphaDsc => SortBy::AlphaDsc,
            Self::Severity => SortBy::Severity,
        }
    }
}

/// Why a query command failed (said on one line).
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
    #[error(transparent)]
    AuthFile(#[from] berth_client::auth_file::AuthFileError),
    #[error("{0}")]
    Registry(#[from] ClientError),
    #[error(transparent)]
    Output(#[from] output::OutputError),
    #[error("{0}")]
    Usage(String),
    #[error("no registry: give --url, or add one with `berth remote add NAME URL`")]
    NoRegistry,
}

impl Target {
    /// The sort order asked for, else `default`.
    fn sort(&self, default: SortBy) -> SortBy {
        self.sort_by.map_or(default, Sort::criteria)
    }

    /// The client for the registry these flags name.
    fn client(&self) -> Result<Client, QueryError> {
        // The profiles are read only when no URL is given.
        let remotes = match &self.url {
            Some(_) => remote::Remotes::default(),
            None => remote::Remotes::load(&remote::path()?)?,
        };
        let profile = match &self.url {
            Some(_) => None,
            None => remotes.pick(self.remote.as_deref())?,
        };
        let url = match (&self.url, profile) {
            (Some(u), _) => u.clone(),
            (None, Some(p)) => p.url.clone(),
            (None, None) => return Err(QueryError::NoRegistry),
        };
        let verify = self
            .tls_verify
            .or(profile.map(|p| p.verify_tls))
            .unwrap_or(true);
        let mut base = crate::login::base_url(&url);
        if self.cert_dir.is_some()
            && let Some(rest) = base.strip_prefix("http://")
        {
            base = format!("https://{rest}");
        }
        let auth = match &self.user {
            Some(u) => Some(u.clone()),
            None => berth_client::auth_file::lookup(&base)?.map(|(u, p)| format!("{u}:{p}")),
        };
        let mut options = ClientOptions {
            accept_invalid_certs: !verify,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..Default::default()
        };
        if let Some(dir) = &self.cert_dir {
            crate::copy::read_cert_dir(dir, &mut options)
                .map_err(|e| QueryError::Usage(e.to_string()))?;
        }
        Ok(Client::with_options(&base, auth.as_deref(), options)?)
    }
}

/// `REPO:TAG` split (the tag is required).
fn repo_tag(image: &str) -> Result<(&str, &str), QueryError> {
    // A port's colon comes before the last `/`; the tag's after it.
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && !repo.is_empty() && !tag.is_empty() => {
            Ok((repo, tag))
        }
        _ => Err(QueryError::Usage(format!(
            "{image:?}: give an image as REPOSITORY:TAG"
        ))),
    }
}

/// `REPO@DIGEST` split.
fn repo_digest(image: &str) -> Result<(&str, &str), QueryError> {
    match image.split_once('@') {
        Some((repo, digest)) if !repo.is_empty() && digest.contains(':') => Ok((repo, digest)),
        _ => Err(QueryError::Usage(format!(
            "{image:?}: give an artifact as REPOSITORY@DIGEST"
        ))),
    }
}

/// Runs `work` on a new runtime, printing what it gives.
fn print(
    work: impl std::future::Future<Output = Result<String, QueryError>>,
) -> std::process::ExitCode {
    match crate::block_on(1, work) {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `berth remote …` (no registry is asked).
pub(crate) fn remote(cmd: RemoteCommand) -> std::process::ExitCode {
    match commands::remote(cmd) {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => crate::fail("berth remote: ", e, 1),
    }
}

pub(crate) fn images(target: Target, repo: Option<String>) -> std::process::ExitCode {
    print(commands::images(target, repo))
}

pub(crate) fn image(args: ImageArgs) -> std::process::ExitCode {
    print(commands::image(args))
}

pub(crate) fn cve(target: Target, cmd: CveCommand) -> std::process::ExitCode {
    print(commands::cve(target, cmd))
}

pub(crate) fn repos(target: Target) -> std::process::ExitCode {
    print(commands::repos(target))
}

pub(crate) fn search(target: Target, text: String) -> std::process::ExitCode {
    print(commands::search(target, text))
}

pub(crate) fn referrers(target: Target, artifact: String) -> std::process::ExitCode {
    print(commands::referrers(target, artifact))
}

pub(crate) fn status(target: Target) -> std::process::ExitCode {
    print(commands::status(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split() {
        assert_eq!(repo_tag("a/b:v1").expect("ok"), ("a/b", "v1"));
        assert!(repo_tag("a/b").is_err());
        assert!(repo_tag("host:5000/a").is_err(), "a port is no tag");
        assert_eq!(repo_digest("a@sha256:00").expect("ok"), ("a", "sha256:00"));
        assert!(repo_digest("a:v1").is_err());
    }
}

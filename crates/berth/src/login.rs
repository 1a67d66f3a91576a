//! `berth login` and `berth logout`: credentials kept in Docker's and
//! Podman's auth file (`berth_client::auth_file`), checked against the
//! registry before they are kept.

use std::io::BufRead as _;
use std::path::PathBuf;

use berth_client::auth_file::{self, AuthFile};
use berth_client::{Client, ClientError, ClientOptions};

/// `berth login`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  echo \"$TOKEN\" | berth login -u ci --password-stdin registry.example.com\n  berth login localhost:5000   (asks for the user and the password)"
)]
pub(crate) struct LoginArgs {
    /// The registry: `host[:port]`, or a URL to choose the scheme. Without
    /// one, HTTPS, but plain HTTP for a loopback address (as Docker).
    registry: String,
    /// The user (asked for when missing).
    #[arg(short, long)]
    username: Option<String>,
    /// Read the password from standard input (one line) instead of asking.
    #[arg(long)]
    password_stdin: bool,
    /// The auth file to write (default: $REGISTRY_AUTH_FILE, else
    /// ~/.docker/config.json, which Podman and skopeo read too).
    #[arg(long)]
    authfile: Option<PathBuf>,
    /// Check the registry's TLS certificate (skopeo's spelling).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    tls_verify: bool,
}

/// `berth logout`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  berth logout registry.example.com")]
pub(crate) struct LogoutArgs {
    /// The registry whose credentials to forget.
    registry: String,
    /// The auth file (default: every file berth reads logins from).
    #[arg(long)]
    authfile: Option<PathBuf>,
}

/// Why a login or logout failed (said on one line).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error(transparent)]
    File(#[from] auth_file::AuthFileError),
    #[error("{0} refused the credentials")]
    Refused(String),
    #[error("{0}")]
    Registry(#[from] ClientError),
    #[error("{0}")]
    Input(String),
    #[error("no auth file: set HOME, REGISTRY_AUTH_FILE or --authfile")]
    NoFile,
    #[error("not logged in to {0}")]
    NotLoggedIn(String),
}

/// The registry's base URL: as given with a scheme; else HTTPS, or plain
/// HTTP for a loopback host.
pub(crate) fn base_url(registry: &str) -> String {
    if registry.contains("://") {
        return registry.trim_end_matches('/').to_string();
    }
    let host = auth_file::registry_key(registry);
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h),
    };
    let loopback = name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    format!("{}://{host}", if loopback { "http" } else { "https" })
}

fn read_line(prompt: Option<&str>) -> Result<String, LoginError> {
    if let Some(p) = prompt {
        eprint!("{p}");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| LoginError::Input(format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub(crate) async fn login(args: LoginArgs) -> Result<String, LoginError> {
    let username = match args.username {
        Some(u) => u,
        None if args.password_stdin => {
            return Err(LoginError::Input(
                "--password-stdin needs --username".into(),
            ));
        }
        None => read_line(Some("Username: "))?,
    };
    let password = if args.password_stdin {
        read_line(None)?
    } else {
        rpassword::prompt_password("Password: ")
            .map_err(|e| LoginError::Input(format!("cannot read the password: {e}")))?
    };
    if username.is_empty() || password.is_empty() {
        return Err(LoginError::Input(
            "the user and the password must not be empty".into(),
        ));
    }
    let path = auth_file::login_path(args.authfile.as_deref()).ok_or(LoginError::NoFile)?;
    // Read first: a file that cannot be kept is said before the registry
    // is asked.
    let mut file = AuthFile::load(&path)?;
    let base = base_url(&args.registry);
    let options = ClientOptions {
        accept_invalid_certs: !args.tls_verify,
        ..Default::default()
    };
    let client = Client::with_options(&base, Some(&format!("{username}:{password}")), options)?;
    match client.ping().await {
        Ok(()) => {}
        Err(e)
            if e.status()
                .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) =>
        {
            return Err(LoginError::Refused(args.registry));
        }
        Err(e) => return Err(e.into()),
    }
    file.set(&args.registry, &username, &password)?;
    file.save()?;
    Ok(format!("Login Succeeded ({})", path.display()))
}

pub(crate) fn logout(args: LogoutArgs) -> Result<String, LoginError> {
    let paths = match args.authfile {
        Some(p) => vec![p],
        None => auth_file::search_path(),
    };
    let mut removed = Vec::new();
    for path in paths.into_iter().filter(|p| p.is_file()) {
        let mut file = AuthFile::load(&path)?;
        if file.remove(&args.registry) {
            file.save()?;
            removed.push(path.display().to_string());
        }
    }
    if removed.is_empty() {
        return Err(LoginError::NotLoggedIn(args.registry));
    }
    Ok(format!(
        "Removed login credentials for {} ({})",
        args.registry,
        removed.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        assert_eq!(base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(base_url("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(
            base_url("registry.example.com"),
            "https://registry.example.com"
        );
        assert_eq!(
            base_url("https://127.0.0.1:5000/"),
            "https://127.0.0.1:5000"
        );
    }
}

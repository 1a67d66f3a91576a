//! Why an `http.auth` setting cannot be put in force, at start-up or on a
//! reload. Every message is the config key, then what is wrong with it.

use std::path::PathBuf;

/// The cause under a file that cannot be read (an I/O or PEM error).
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An `http.auth` setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", self.key(), self.message())]
pub enum AuthConfigError {
    /// A file the setting names cannot be read.
    Unreadable {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: Cause,
    },
    /// A file was read but what it holds is not what the setting wants.
    BadFile {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
    /// A certificate file holds no certificate.
    NoCertificate { key: &'static str, path: PathBuf },
    /// A setting's value is not valid.
    Invalid { key: &'static str, message: String },
    /// A setting works only together with another one.
    Needs {
        key: &'static str,
        needs: &'static str,
    },
    /// The API key store cannot be opened.
    ApiKeyStore(#[from] super::apikeys::StoreError),
}

impl AuthConfigError {
    /// A file of `key` that cannot be read.
    pub(crate) fn unreadable(
        key: &'static str,
        path: &std::path::Path,
        source: impl Into<Cause>,
    ) -> Self {
        Self::Unreadable {
            key,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    /// A file of `key` whose content is unusable.
    pub(crate) fn bad_file(
        key: &'static str,
        path: &std::path::Path,
        message: impl std::fmt::Display,
    ) -> Self {
        Self::BadFile {
            key,
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// The config key at fault, e.g. `http.auth.htpasswd.path`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Unreadable { key, .. }
            | Self::BadFile { key, .. }
            | Self::NoCertificate { key, .. }
            | Self::Invalid { key, .. }
            | Self::Needs { key, .. } => key,
            Self::ApiKeyStore(_) => "http.auth.apikey",
        }
    }

    /// What is wrong with the key's value.
    pub fn message(&self) -> String {
        match self {
            Self::Unreadable { path, source, .. } => {
                format!("cannot read {}: {source}", path.display())
            }
            Self::BadFile { path, message, .. } => format!("{}: {message}", path.display()),
            Self::NoCertificate { path, .. } => format!("no certificate in {}", path.display()),
            Self::Invalid { message, .. } => message.clone(),
            Self::Needs { needs, .. } => format!("needs {needs}"),
            Self::ApiKeyStore(e) => e.to_string(),
        }
    }
}

/// Why a bearer token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token does not verify, or its claims are refused: 401.
    #[error("{0}")]
    Invalid(String),
    /// What verifies tokens cannot be reached (the OIDC issuer, AWS
    /// Secrets Manager) and no keys are at hand: 503.
    #[error("{service} is unreachable: {cause}")]
    Unavailable {
        service: &'static str,
        cause: String,
    },
}

impl TokenError {
    pub(crate) fn invalid(message: impl std::fmt::Display) -> Self {
        Self::Invalid(message.to_string())
    }
}

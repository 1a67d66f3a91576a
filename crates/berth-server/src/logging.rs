//! Logging set-up from the `log` config section.

use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Why logging cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `log.output` cannot be opened for appending.
    #[error("log.output: cannot open {path}: {source}")]
    Output {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A global subscriber is installed already.
    #[error("cannot install the logger: {0}")]
    Install(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The filter of a level: at `info`, object_store's line per retried S3
/// request (dozens in an outage's first seconds) is left out; the request
/// that finally fails, and the health checks' change of state, are logged.
fn directives(level: crate::config::LogLevel) -> String {
    match level {
        crate::config::LogLevel::Info => "info,object_store=warn".into(),
        other => other.directive().into(),
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides
/// `log.level`. Fails if the output file cannot be opened.
pub fn init(config: &LogConfig) -> Result<(), LoggingError> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(directives(config.level)));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (&config.output, config.format) {
        (Some(path), format) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LoggingError::Output {
                    path: path.clone(),
                    source,
                })?;
            let b = builder.with_ansi(false).with_writer(Mutex::new(file));
            match format {
                LogFormat::Json => b.json().try_init(),
                LogFormat::Text => b.try_init(),
            }
        }
        (None, LogFormat::Json) => builder.json().with_writer(std::io::stderr).try_init(),
        (None, LogFormat::Text) => builder.with_writer(std::io::stderr).try_init(),
    };
    result.map_err(LoggingError::Install)
}

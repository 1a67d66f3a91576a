//! Logging set-up from the `log` config section.

use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides
/// `log.level`. Returns an error message if the output file cannot be
/// opened.
pub fn init(config: &LogConfig) -> Result<(), String> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(config.level.directive()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (&config.output, config.format) {
        (Some(path), format) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("log.output: cannot open {}: {e}", path.display()))?;
            let b = builder.with_ansi(false).with_writer(Mutex::new(file));
            match format {
                LogFormat::Json => b.json().try_init(),
                LogFormat::Text => b.try_init(),
            }
        }
        (None, LogFormat::Json) => builder.json().with_writer(std::io::stderr).try_init(),
        (None, LogFormat::Text) => builder.with_writer(std::io::stderr).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

//! `berth health URL`: a probe for images without curl (the container
//! image's HEALTHCHECK calls it on `/livez`).

use std::time::Duration;

/// How long the whole request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub(crate) enum HealthError {
    #[error("health: {url}: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("health: {url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
}

/// Succeeds when `url` answers 200 within `TIMEOUT`.
pub(crate) async fn probe(url: &str) -> Result<(), HealthError> {
    let request = |source| HealthError::Request {
        url: url.to_string(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(request)?;
    let status = client.get(url).send().await.map_err(request)?.status();
    if status == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(HealthError::Status {
            url: url.to_string(),
            status,
        })
    }
}

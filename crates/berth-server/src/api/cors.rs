//! CORS (`http.allowOrigin`): browsers on that origin (or any, with `*`)
//! may call the API. Preflight `OPTIONS` requests are answered here, before
//! authentication (browsers send them without credentials); every answer
//! carries the CORS headers, exposing the registry's own response headers.

use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::ConfigError;

/// The layer for `origin`; the error names the key.
pub fn layer(origin: &str) -> Result<CorsLayer, ConfigError> {
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    let allow_headers = [
        header::AUTHORIZATION,
        header::ACCEPT,
        header::CONTENT_TYPE,
        header::CONTENT_RANGE,
        header::RANGE,
        HeaderName::from_static("oci-tag"),
    ];
    let expose = [
        HeaderName::from_static("docker-content-digest"),
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderName::from_static("docker-upload-uuid"),
        HeaderName::from_static("oci-subject"),
        HeaderName::from_static("oci-filters-applied"),
        header::LOCATION,
        header::RANGE,
        header::LINK,
        header::WWW_AUTHENTICATE,
        header::CONTENT_LENGTH,
    ];
    let base = CorsLayer::new()
        .allow_methods(methods)
        .allow_headers(allow_headers)
        .expose_headers(expose)
        .max_age(std::time::Duration::from_secs(3600));
    if origin.trim() == "*" {
        // Browsers refuse credentials with a wildcard origin.
        return Ok(base.allow_origin(AllowOrigin::any()));
    }
    let value = HeaderValue::from_str(origin.trim())
        .ok()
        .filter(|_| origin.starts_with("http://") || origin.starts_with("https://"))
        .ok_or_else(|| {
            ConfigError::key(
                "http.allowOrigin",
                format!("{origin:?} is not \"*\" or an origin such as https://ui.example.com"),
            )
        })?;
    Ok(base
        .allow_origin(AllowOrigin::exact(value))
        .allow_credentials(true))
}

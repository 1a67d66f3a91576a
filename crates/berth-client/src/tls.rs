//! TLS settings of a client: certificates not checked at all
//! (`accept_invalid_certs`), extra trusted roots added to the system's,
//! and a client certificate for mutual TLS.

use crate::{ClientError, ClientOptions, ClientResult, with_causes};

/// `builder` with the TLS settings of `options`; a PEM text that holds no
/// certificate, or an identity without its key, is a
/// [`ClientError::Config`].
pub(crate) fn configure(
    mut builder: reqwest::ClientBuilder,
    options: &ClientOptions,
) -> ClientResult<reqwest::ClientBuilder> {
    if options.accept_invalid_certs {
        builder = builder
            .tls_danger_accept_invalid_certs(true)
            .tls_danger_accept_invalid_hostnames(true);
    }
    let mut roots = Vec::new();
    for (i, pem) in options.ca_certs_pem.iter().enumerate() {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            ClientError::Config(format!(
                "trusted certificates #{}: {}",
                i + 1,
                with_causes(&e)
            ))
        })?;
        if certs.is_empty() {
            return Err(ClientError::Config(format!(
                "trusted certificates #{}: no PEM certificate in it",
                i + 1
            )));
        }
        roots.extend(certs);
    }
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    if let Some(pem) = &options.identity_pem {
        let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
            ClientError::Config(format!("client certificate and key: {}", with_causes(&e)))
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

//! HTTPS with rustls (`http.tls`): the server's certificate and key, and
//! with `cacert` required client certificates (mTLS). The files are
//! watched and re-read when they change, so a renewed certificate takes
//! effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Why the `http.tls` files cannot be served; each message names its key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("http.tls.cert: no certificate in {}", path.display())]
    NoCertificate { path: PathBuf },
    /// A CA certificate is not one rustls can trust.
    #[error("http.tls.cacert: {}: {source}", path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    /// No client-certificate verifier can be built from the CAs.
    #[error("http.tls.cacert: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The key is not the certificate's.
    #[error("http.tls: certificate and key do not fit: {0}")]
    KeyMismatch(#[source] rustls::Error),
}

/// The error of a PEM file of `key` at `path` that cannot be read.
fn unreadable(
    key: &'static str,
    path: &Path,
) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError + use<> {
    let path = path.to_path_buf();
    move |source| TlsError::Unreadable { key, path, source }
}

/// Builds the rustls configuration; the error names the config key.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(unreadable("http.tls.cert", &tls.cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: tls.cert.clone(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_file(&tls.key).map_err(unreadable("http.tls.key", &tls.key))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &tls.cacert {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(unreadable("http.tls.cacert", ca))?;
            for c in cas {
                roots.add(c).map_err(|source| TlsError::BadCa {
                    path: ca.clone(),
                    source,
                })?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(TlsError::KeyMismatch)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Re-reads the certificate files whenever one of them changes (see
/// [`crate::watch`]) and swaps the configuration in; a broken edit is
/// logged and the running one kept.
pub fn spawn_reload(tls: TlsConfig, live: RustlsConfig) -> tokio::task::JoinHandle<()> {
    let files = [
        Some(tls.cert.clone()),
        Some(tls.key.clone()),
        tls.cacert.clone(),
    ];
    let files = crate::watch::Files {
        what: "http.tls",
        paths: Box::new(move || files.iter().flatten().cloned().collect()),
        rewatch: None,
    };
    crate::watch::spawn(files, move || match server_config(&tls) {
        Ok(c) => {
            live.reload_from_config(c);
            tracing::info!("http.tls: certificate files changed, reloaded");
        }
        Err(e) => {
            tracing::warn!("http.tls: not reloaded, keeping the running certificate: {e}")
        }
    })
}

/// The TLS version a request's connection negotiated (`"1.2"`, `"1.3"`),
/// left in each request's extensions by [`VersionedTls`] (what the
/// access-control conditions see as `req.tls.version`).
#[derive(Debug, Clone)]
pub struct TlsVersion(pub String);

/// The rustls acceptor, with each connection's [`TlsVersion`] added to its
/// requests (axum-server's `TlsInfo` does not carry the version).
#[derive(Clone)]
pub struct VersionedTls(pub axum_server::tls_rustls::RustlsAcceptor);

impl<I, S> axum_server::accept::Accept<I, S> for VersionedTls
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream =
        <axum_server::tls_rustls::RustlsAcceptor as axum_server::accept::Accept<I, S>>::Stream;
    type Service = tower_http::add_extension::AddExtension<
        <axum_server::tls_rustls::RustlsAcceptor as axum_server::accept::Accept<I, S>>::Service,
        TlsVersion,
    >;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send>,
    >;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepting = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            let version = match stream.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
                _ => "",
            };
            let service = tower_http::add_extension::AddExtension::new(
                service,
                TlsVersion(version.to_string()),
            );
            Ok((stream, service))
        })
    }
}

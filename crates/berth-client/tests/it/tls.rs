//! HTTPS with extra trusted roots and mutual TLS, against an
//! axum-server rustls listener that requires a client certificate.

use std::sync::Arc;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use berth_client::{Client, ClientOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// A CA, and PEM texts of certificates it signed.
struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
    /// Client certificate and key in one PEM text.
    client_identity_pem: String,
}

fn ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let cert = params.self_signed(&key).expect("ca");
    (rcgen::Issuer::new(params, key), cert.pem())
}

fn pki() -> Pki {
    let (issuer, ca_pem) = ca("berth-client");
    let server_key = rcgen::KeyPair::generate().expect("key");
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let client_key = rcgen::KeyPair::generate().expect("key");
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sync");
    let client = client.signed_by(&client_key, &issuer).expect("client cert");
    Pki {
        ca_pem,
        server_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_identity_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
    }
}

/// An HTTPS registry on 127.0.0.1 that requires a client certificate
/// signed by `pki`'s CA; its base URL.
async fn mtls_registry(pki: &Pki) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("ca"))
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.server_pem.as_bytes()).expect("cert")],
            PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).expect("key"),
        )
        .expect("config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let app = Router::new().fallback(|| async { "{}" });
    let server =
        axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(config)))
            .expect("server");
    tokio::spawn(async move { server.serve(app.into_make_service()).await.expect("serve") });
    base
}

fn options(ca_pem: &str, identity: Option<&str>) -> ClientOptions {
    ClientOptions {
        ca_certs_pem: vec![ca_pem.as_bytes().to_vec()],
        identity_pem: identity.map(|i| i.as_bytes().to_vec()),
        ..Default::default()
    }
}

#[tokio::test]
async fn mutual_tls_with_a_private_ca() {
    let pki = pki();
    let base = mtls_registry(&pki).await;

    let client = Client::with_options(
        &base,
        None,
        options(&pki.ca_pem, Some(&pki.client_identity_pem)),
    )
    .expect("client");
    client
        .ping()
        .await
        .expect("with the CA and a client certificate");

    // HTTP/1.1 only works the same.
    let mut http1 = options(&pki.ca_pem, Some(&pki.client_identity_pem));
    http1.http1_only = true;
    let client = Client::with_options(&base, None, http1).expect("client");
    client.ping().await.expect("over HTTP/1.1");

    let client = Client::with_options(&base, None, options(&pki.ca_pem, None)).expect("client");
    let e = client.ping().await.expect_err("no client certificate");
    assert_eq!(e.status(), None, "{e}");

    let (_, other_ca) = ca("other");
    let client = Client::with_options(
        &base,
        None,
        options(&other_ca, Some(&pki.client_identity_pem)),
    )
    .expect("client");
    let e = client.ping().await.expect_err("untrusted server");
    let text = e.to_string();
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(text.contains(&base), "names the registry: {text}");
}

#[tokio::test]
async fn several_roots_in_one_pem() {
    let pki = pki();
    let base = mtls_registry(&pki).await;
    let (_, other_ca) = ca("other");
    let bundle = format!("{other_ca}{}", pki.ca_pem);
    let client = Client::with_options(
        &base,
        None,
        options(&bundle, Some(&pki.client_identity_pem)),
    )
    .expect("client");
    client.ping().await.expect("the second root of the bundle");
}

//! Base URLs, hosts and Docker Hub's names.

use berth_client::{Client, ClientError, ClientOptions};

#[test]
fn hosts_bases_and_upstream_names() {
    // (base given, base used, host, "alpine" upstream, "team/app" upstream)
    let table = [
        (
            "docker.io",
            "https://registry-1.docker.io",
            "docker.io",
            "library/alpine",
        ),
        (
            "https://docker.io/",
            "https://registry-1.docker.io",
            "docker.io",
            "library/alpine",
        ),
        (
            "https://index.docker.io",
            "https://registry-1.docker.io",
            "index.docker.io",
            "library/alpine",
        ),
        (
            "https://registry-1.docker.io",
            "https://registry-1.docker.io",
            "registry-1.docker.io",
            "library/alpine",
        ),
        (
            "localhost:5000",
            "http://localhost:5000",
            "localhost:5000",
            "alpine",
        ),
        ("https://ghcr.io/", "https://ghcr.io", "ghcr.io", "alpine"),
        (
            "https://Reg.Example:8443",
            "https://Reg.Example:8443",
            "reg.example:8443",
            "alpine",
        ),
    ];
    for (given, base, host, alpine) in table {
        let client = Client::new(given, None).expect("client");
        assert_eq!(client.base(), base, "{given}");
        assert_eq!(client.host(), host, "{given}");
        assert_eq!(client.upstream_repo("alpine"), alpine, "{given}");
        assert_eq!(client.upstream_repo("team/app"), "team/app", "{given}");
        assert_eq!(
            client.upstream_repo("library/alpine"),
            "library/alpine",
            "{given}"
        );
    }
}

#[test]
fn unreadable_certificates_are_config_errors() {
    let options = ClientOptions {
        ca_certs_pem: vec![b"not a certificate".to_vec()],
        ..Default::default()
    };
    let e = Client::with_options("https://r", None, options).expect_err("refused");
    assert!(matches!(e, ClientError::Config(_)), "{e:?}");
    let options = ClientOptions {
        identity_pem: Some(b"-----BEGIN NOTHING-----\n-----END NOTHING-----\n".to_vec()),
        ..Default::default()
    };
    let e = Client::with_options("https://r", None, options).expect_err("refused");
    assert!(matches!(e, ClientError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("client certificate"), "{e}");
}

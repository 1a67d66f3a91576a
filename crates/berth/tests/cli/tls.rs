//! HTTPS and mTLS (`http.tls`), with certificates the test makes: curl and
//! skopeo against the real binary, and a certificate swapped while it runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// A CA and a server certificate for 127.0.0.1 it signed, plus client
/// certificates from the same CA, written as PEM files: `client.*` (CN
/// "alice") and `bob.*` (CN "bob", URI SAN `spiffe://berth.test/ci/robot`).
pub fn make_pki(dir: &Path, name: &str) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let server_key = rcgen::KeyPair::generate().expect("key");
    let server =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params")
            .signed_by(&server_key, &issuer)
            .expect("server cert");
    let client_key = rcgen::KeyPair::generate().expect("key");
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "alice");
    let client = client.signed_by(&client_key, &issuer).expect("client cert");
    let bob_key = rcgen::KeyPair::generate().expect("key");
    let mut bob = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    bob.distinguished_name
        .push(rcgen::DnType::CommonName, "bob");
    bob.subject_alt_names.push(rcgen::SanType::URI(
        "spiffe://berth.test/ci/robot".try_into().expect("uri"),
    ));
    let bob = bob.signed_by(&bob_key, &issuer).expect("bob cert");
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("bob.cert"), bob.pem()).expect("write");
    std::fs::write(dir.join("bob.key"), bob_key.serialize_pem()).expect("write");
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("write");
    std::fs::write(dir.join("server.crt"), server.pem()).expect("write");
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).expect("write");
    std::fs::write(dir.join("client.cert"), client.pem()).expect("write");
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).expect("write");
}

/// `curl` exit status and HTTP code for `url`.
fn curl(args: &[&str], url: &str) -> (bool, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn https_with_skopeo_and_a_certificate_swapped_live() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    make_pki(&pki, "first");
    let p = |f: &str| pki.join(f).display().to_string();
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"tls": {"cert": p("server.crt"), "key": p("server.key")}}),
        &[],
    );
    let url = format!("https://{}/v2/", b.addr);
    assert_eq!(
        curl(&["--cacert", &p("ca.crt")], &url),
        (true, "200".into())
    );
    assert!(!curl(&[], &url).0, "an unknown CA is refused by the client");
    assert!(
        !curl(&[], &format!("http://{}/v2/", b.addr))
            .1
            .starts_with('2'),
        "no plain HTTP"
    );

    // skopeo verifies the server with the CA from a certificate directory.
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let policy = skopeo_policy(tmp.path());
    let certs = tmp.path().join("certs.d");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(pki.join("ca.crt"), certs.join("ca.crt")).expect("copy");
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(["copy", "--dest-cert-dir"])
        .arg(&certs)
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/tls/app:v1", b.addr))
        .output()
        .expect("skopeo is required (the README's test command installs it)");
    assert!(
        out.status.success(),
        "skopeo over HTTPS: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A renewed certificate from another CA is picked up without a restart.
    let next = tmp.path().join("next");
    make_pki(&next, "second");
    for f in ["server.crt", "server.key"] {
        std::fs::copy(next.join(f), pki.join(f)).expect("swap");
    }
    let new_ca = next.join("ca.crt").display().to_string();
    let mut swapped = false;
    for _ in 0..150 {
        if curl(&["--cacert", &new_ca], &url) == (true, "200".into()) {
            swapped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(swapped, "the new certificate is served");
    assert!(
        !curl(&["--cacert", &p("ca.crt")], &url).0,
        "the old CA no longer verifies it"
    );
}

#[test]
fn mtls_requires_a_client_certificate_from_the_ca() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    make_pki(&pki, "mtls");
    let other = tmp.path().join("other");
    make_pki(&other, "stranger");
    let p = |f: &str| pki.join(f).display().to_string();
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"tls": {"cert": p("server.crt"), "key": p("server.key"), "cacert": p("ca.crt")}}),
        &[],
    );
    let url = format!("https://{}/v2/", b.addr);
    assert!(
        !curl(&["--cacert", &p("ca.crt")], &url).1.starts_with('2'),
        "no client certificate"
    );
    let stranger = (
        other.join("client.cert").display().to_string(),
        other.join("client.key").display().to_string(),
    );
    assert!(
        !curl(
            &[
                "--cacert",
                &p("ca.crt"),
                "--cert",
                &stranger.0,
                "--key",
                &stranger.1
            ],
            &url
        )
        .1
        .starts_with('2'),
        "a certificate from another CA"
    );
    assert_eq!(
        curl(
            &[
                "--cacert",
                &p("ca.crt"),
                "--cert",
                &p("client.cert"),
                "--key",
                &p("client.key")
            ],
            &url
        ),
        (true, "200".into())
    );
}

#[test]
fn oras_over_https_with_a_test_ca_and_basic_auth() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    make_pki(&pki, "oras");
    let p = |f: &str| pki.join(f).display().to_string();
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("alice-pw", 4).expect("bcrypt")),
    )
    .expect("htpasswd");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"tls": {"cert": p("server.crt"), "key": p("server.key")},
               "auth": {"htpasswd": {"path": htpasswd}}}),
        &[],
    );
    let out = Command::new(oras_python())
        .arg(workspace().join("tests/clients/oras_auth.py"))
        .arg(&b.addr)
        .arg(p("ca.crt"))
        .args(["alice", "alice-pw", "basic"])
        .output()
        .expect("run oras script");
    assert!(
        out.status.success(),
        "oras-py over HTTPS failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn client_certificates_name_the_caller_for_access_control() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    make_pki(&pki, "mtls");
    let p = |f: &str| pki.join(f).display().to_string();
    let access = json!({
        "repositories": {
            "alice/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]}]},
            "robots/**": {"policies": [{"users": ["robot"], "actions": ["read", "create"]}]}
        }
    });
    let start = |mtls: serde_json::Value, root: &str| {
        Berth::start_full(
            &tmp.path().join(root),
            json!({}),
            json!({"tls": {"cert": p("server.crt"), "key": p("server.key"), "cacert": p("ca.crt")},
                   "auth": {"mtls": mtls}, "accessControl": access}),
            &[],
        )
    };
    let post = |b: &Berth, who: &str, repo: &str| {
        curl(
            &[
                "-X",
                "POST",
                "--cacert",
                &p("ca.crt"),
                "--cert",
                &p(&format!("{who}.cert")),
                "--key",
                &p(&format!("{who}.key")),
            ],
            &format!("https://{}/v2/{repo}/blobs/uploads/", b.addr),
        )
        .1
    };

    // The Common Name by default.
    let b = start(json!({}), "cn");
    assert_eq!(post(&b, "client", "alice/app"), "202");
    // Empty Basic credentials (what some clients send after a challenge)
    // do not hide the certificate.
    let with_empty_basic = curl(
        &[
            "-X",
            "POST",
            "-u",
            ":",
            "--cacert",
            &p("ca.crt"),
            "--cert",
            &p("client.cert"),
            "--key",
            &p("client.key"),
        ],
        &format!("https://{}/v2/alice/app/blobs/uploads/", b.addr),
    )
    .1;
    assert_eq!(with_empty_basic, "202");
    assert_eq!(post(&b, "bob", "alice/app"), "403");
    assert_eq!(post(&b, "client", "robots/app"), "403");
    drop(b);

    // A URI SAN through a pattern, falling back to the Common Name.
    let b = start(
        json!({"identityAttributes": ["URI", "CommonName"],
               "uriSanPattern": "^spiffe://berth\\.test/ci/(.+)$"}),
        "uri",
    );
    assert_eq!(
        post(&b, "bob", "robots/app"),
        "202",
        "bob's certificate names robot"
    );
    assert_eq!(post(&b, "bob", "alice/app"), "403");
    assert_eq!(post(&b, "client", "alice/app"), "202", "no URI: the CN");
}

#[test]
fn unreadable_tls_files_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("tls.json");
    std::fs::write(
        &cfg,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
               "http": {"port": "0", "tls": {"cert": "/nonexistent/server.crt", "key": "/nonexistent/server.key"}}})
        .to_string(),
    )
    .expect("write");
    let out = berth().arg("verify").arg(&cfg).output().expect("run");
    assert!(
        out.status.success(),
        "verify checks the config, not the files it names"
    );
    let out = berth().arg("serve").arg(&cfg).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("http.tls.cert: cannot read"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

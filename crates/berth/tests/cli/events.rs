//! `extensions.events`: CloudEvents reach webhook receivers started by the
//! test, with zot's types, `ce-*` headers, the sink's headers and
//! credentials; a receiver that fails at first gets them after retries; a
//! dead one and one that never answers do not hold pushes up.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

pub type Received = Arc<Mutex<Vec<(HashMap<String, String>, Value)>>>;

/// A webhook receiver: records what it gets (the request line under
/// `:request-line`); answers 500 to the first `fail_first` requests; with
/// `hang`, never answers at all.
pub fn receiver(fail_first: usize, hang: bool) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got: Received = Arc::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        for stream in listener.incoming().flatten() {
            if hang {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(600));
                    drop(stream);
                });
                continue;
            }
            seen += 1;
            answer(stream, seen <= fail_first, &sink);
        }
    });
    (url, got)
}

/// A webhook receiver over TLS with the test PKI's server certificate,
/// asking clients for a certificate of its CA.
pub fn tls_receiver(pki: &std::path::Path) -> (String, Received) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(pki.join("server.crt"))
        .expect("cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("cert");
    let key = PrivateKeyDer::from_pem_file(pki.join("server.key")).expect("key");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.join("ca.crt")).expect("ca") {
        roots.add(ca.expect("ca")).expect("ca");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .expect("verifier");
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://{}/hook", listener.local_addr().expect("addr"));
    let got: Received = Arc::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            answer(rustls::StreamOwned::new(conn, tcp), false, &sink);
        }
    });
    (url, got)
}

/// Reads one request from `stream`, records it unless `fail`, answers.
fn answer<S: Read + Write>(stream: S, fail: bool, sink: &Received) {
    let mut reader = BufReader::new(stream);
    let mut headers = HashMap::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return; // A failed handshake or a closed connection.
    }
    headers.insert(":request-line".to_string(), line.trim().to_string());
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let status = if fail {
        "500 Internal Server Error"
    } else {
        sink.lock().expect("lock").push((
            headers,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ));
        "200 OK"
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.flush();
}

fn wait_for(got: &Received, n: usize) -> Vec<(HashMap<String, String>, Value)> {
    for _ in 0..200 {
        if got.lock().expect("lock").len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    got.lock().expect("lock").clone()
}

#[test]
fn events_reach_webhooks_without_holding_pushes_up() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (good, good_got) = receiver(0, false);
    let (flaky, flaky_got) = receiver(2, false);
    let (hanging, _) = receiver(0, true);
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/gone", l.local_addr().expect("addr"))
    };
    let config = tmp.path().join("events.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
        "http": {"address": "127.0.0.1", "port": "0"},
        "extensions": {"events": {"enable": true, "sinks": [
            {"type": "http", "address": good, "timeout": "5s",
             "headers": {"X-Team": "platform"},
             "credentials": {"username": "hook", "password": "s3cret"}},
            {"type": "http", "address": flaky, "credentials": {"token": "tok"}},
            {"type": "http", "address": hanging, "timeout": "1s"},
            {"type": "http", "address": dead, "timeout": "1s"}
        ]}}})
        .to_string(),
    )
    .expect("config");
    let b = Berth::start_config(&config);
    let c = reqwest::blocking::Client::new();

    // Pushes go through while one sink hangs and one is gone.
    // The same manifest under three tags.
    push_empty_image_as(&b, "team/app", "v1", None);
    push_empty_image_as(&b, "team/app", "v2", None);
    let (md, manifest) = push_empty_image_as(&b, "team/app", "v3", None);
    let r = c
        .delete(b.url("/v2/team/app/manifests/v3"))
        .send()
        .expect("delete");
    assert_eq!(r.status(), 202);

    let events = wait_for(&good_got, 5);
    let kinds: Vec<&str> = events
        .iter()
        .map(|(h, _)| h.get("ce-type").map(String::as_str).unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "zotregistry.repository.created",
            "zotregistry.image.updated",
            "zotregistry.image.updated",
            "zotregistry.image.updated",
            "zotregistry.image.deleted"
        ]
    );
    let (h, data) = &events[1];
    assert_eq!(h["ce-specversion"], "1.0");
    assert_eq!(h["ce-source"], "berth");
    assert!(!h["ce-id"].is_empty());
    assert_eq!(h["x-team"], "platform");
    assert_eq!(h["authorization"], "Basic aG9vazpzM2NyZXQ=");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(data["name"], "team/app");
    assert_eq!(data["reference"], "v1");
    assert_eq!(data["digest"], md.to_string());
    assert_eq!(
        data["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(data["manifest"], manifest);
    let (_, deleted) = &events[4];
    assert_eq!(deleted["reference"], "v3");
    assert_eq!(deleted["digest"], md.to_string());

    // The flaky sink failed twice, then got every event, in order.
    let flaky_events = wait_for(&flaky_got, 5);
    assert_eq!(flaky_events.len(), 5);
    assert_eq!(
        flaky_events[0].0["ce-type"],
        "zotregistry.repository.created"
    );
    assert_eq!(flaky_events[0].0["authorization"], "Bearer tok");
}

#[test]
fn webhooks_over_mutual_tls_and_through_a_proxy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    crate::tls::make_pki(&pki, "hooks");
    let p = |f: &str| pki.join(f).display().to_string();
    let (secure, secure_got) = tls_receiver(&pki);
    let (uncertified, uncertified_got) = tls_receiver(&pki);
    // The "proxy" is a receiver: a request sent through it names the
    // whole target URL in its request line.
    let (proxy, proxy_got) = receiver(0, false);
    let proxy = proxy.trim_end_matches("/hook").to_string();
    let config = tmp.path().join("events.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
        "http": {"address": "127.0.0.1", "port": "0"},
        "extensions": {"events": {"source": "registry-7", "sinks": [
            {"type": "http", "address": secure, "timeout": "5s",
             "tlsconfig": {"cacertfile": p("ca.crt"), "certfile": p("client.cert"), "keyfile": p("client.key")}},
            {"type": "http", "address": uncertified, "timeout": "1s", "tlsconfig": {"cacertfile": p("ca.crt")}},
            {"type": "http", "address": "http://events.example.invalid/hook", "proxy": proxy, "timeout": "5s"}
        ]}}})
        .to_string(),
    )
    .expect("config");
    let b = Berth::start_config(&config);
    push_empty_image_as(&b, "team/app", "v1", None);
    let events = wait_for(&secure_got, 2);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0["ce-type"], "zotregistry.repository.created");
    assert_eq!(events[0].0["ce-source"], "registry-7");
    let proxied = wait_for(&proxy_got, 2);
    assert_eq!(proxied.len(), 2);
    assert_eq!(
        proxied[0].0[":request-line"],
        "POST http://events.example.invalid/hook HTTP/1.1"
    );
    // The receiver that asks for a client certificate gets nothing from
    // the sink without one.
    std::thread::sleep(Duration::from_secs(1));
    assert!(uncertified_got.lock().expect("lock").is_empty());
}

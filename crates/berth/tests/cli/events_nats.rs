//! The events extension's NATS sink against a real `nats-server`
//! (Debian's) that asks for a login: pushes arrive on the sink's subject as
//! structured CloudEvents with zot's types; a sink with a wrong password
//! delivers nothing and holds no push up; a server started after Berth
//! still gets the events (the connection is made when delivering).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::images::block_on;
use crate::support::*;

/// A `nats-server` on 127.0.0.1 with a username and password.
struct NatsServer {
    child: Child,
    url: String,
}

impl NatsServer {
    fn start(port: u16) -> Self {
        Self::start_with(port, &["--user", "berth", "--pass", "s3cret"])
    }

    /// A server with these options beside its address and port.
    fn start_with(port: u16, options: &[&str]) -> Self {
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is required (the README's test command installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Subscribes to `subject` with the test server's login; the messages, as
/// JSON, arrive on the channel.
fn subscribe(url: &str, subject: &str) -> std::sync::mpsc::Receiver<Value> {
    subscribe_with(
        async_nats::ConnectOptions::with_user_and_password("berth".into(), "s3cret".into()),
        url,
        subject,
    )
}

fn subscribe_with(
    options: async_nats::ConnectOptions,
    url: &str,
    subject: &str,
) -> std::sync::mpsc::Receiver<Value> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, subject) = (url.to_string(), subject.to_string());
    block_on(async move {
        let client = options
            .connect(url.as_str())
            .await
            .expect("subscriber connects");
        let mut sub = client.subscribe(subject).await.expect("subscribe");
        client.flush().await.expect("flush");
        tokio::spawn(async move {
            let _keep = client;
            while let Some(m) = sub.next().await {
                let v = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
    });
    rx
}

#[test]
fn events_are_published_on_nats_as_structured_cloudevents() {
    let port = free_port();
    let tmp = tempfile::tempdir().expect("tmp");
    let url = format!("nats://127.0.0.1:{port}");
    let config = tmp.path().join("events.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
        "http": {"address": "127.0.0.1", "port": "0"},
        "extensions": {"events": {"sinks": [
            {"type": "nats", "address": url, "channel": "registry.events", "timeout": "2s",
             "credentials": {"username": "berth", "password": "s3cret"}},
            {"type": "nats", "address": url, "channel": "refused.events", "timeout": "1s",
             "credentials": {"username": "berth", "password": "wrong"}}
        ]}}})
        .to_string(),
    )
    .expect("config");
    // Berth first: the server comes up after it, before the first push.
    let b = Berth::start_config(&config);
    let nats = NatsServer::start(port);
    let got = subscribe(&nats.url, "registry.events");
    let refused = subscribe(&nats.url, "refused.events");

    let started = Instant::now();
    push_empty_image_as(&b, "team/app", "v1", None);
    push_empty_image_as(&b, "team/app", "v2", None);
    // The pushes did not wait for the refused sink's retries.
    assert!(started.elapsed() < Duration::from_secs(10));

    let mut events = Vec::new();
    while events.len() < 3 {
        let e = got
            .recv_timeout(Duration::from_secs(30))
            .expect("an event on NATS");
        events.push(e);
    }
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "zotregistry.repository.created",
            "zotregistry.image.updated",
            "zotregistry.image.updated"
        ],
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(e["specversion"], "1.0", "{e}");
        assert_eq!(e["source"], "berth", "{e}");
        assert!(e["id"].as_str().is_some_and(|i| !i.is_empty()), "{e}");
    }
    assert_eq!(events[0]["data"]["name"], "team/app");
    assert_eq!(events[2]["data"]["reference"], "v2");
    // The wrong password delivers nothing, and says why in the log.
    assert!(refused.recv_timeout(Duration::from_secs(2)).is_err());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = b.log.lock().expect("log").join("\n");
        if log.contains("refused.events") || log.contains("event delivery failed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery failure logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn events_reach_nats_over_mutual_tls_named_as_configured() {
    let port = free_port();
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    crate::tls::make_pki(&pki, "nats");
    let p = |f: &str| pki.join(f).display().to_string();
    // The server asks every client for a certificate from the test CA.
    let nats = NatsServer::start_with(
        port,
        &[
            "--tls",
            "--tlscert",
            &p("server.crt"),
            "--tlskey",
            &p("server.key"),
            "--tlsverify",
            "--tlscacert",
            &p("ca.crt"),
        ],
    );
    let subscriber = || {
        async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(pki.join("ca.crt"))
            .add_client_certificate(pki.join("client.cert"), pki.join("client.key"))
    };
    let got = subscribe_with(subscriber(), &nats.url, "secure.events");
    let uncertified = subscribe_with(subscriber(), &nats.url, "nocert.events");
    let config = tmp.path().join("events.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
        "http": {"address": "127.0.0.1", "port": "0"},
        "extensions": {"events": {
            "source": "https://registry.example.com", "typePrefix": "com.example.registry",
            "sinks": [
                // zot's spelling of the section and its keys.
                {"type": "nats", "address": nats.url, "channel": "secure.events", "timeout": "2s",
                 "TLSConfig": {"CACertFile": p("ca.crt"), "CertFile": p("client.cert"), "KeyFile": p("client.key")}},
                {"type": "nats", "address": nats.url, "channel": "nocert.events", "timeout": "1s",
                 "tls": {"cacert": p("ca.crt")}}
            ]}}})
        .to_string(),
    )
    .expect("config");
    let b = Berth::start_config(&config);
    push_empty_image_as(&b, "team/app", "v1", None);
    let mut events = Vec::new();
    while events.len() < 2 {
        events.push(
            got.recv_timeout(Duration::from_secs(30))
                .expect("an event over TLS"),
        );
    }
    assert_eq!(
        events[0]["type"], "com.example.registry.repository.created",
        "{events:#?}"
    );
    assert_eq!(
        events[1]["type"], "com.example.registry.image.updated",
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(e["source"], "https://registry.example.com", "{e}");
    }
    // Without a client certificate the server refuses the sink.
    assert!(uncertified.recv_timeout(Duration::from_secs(2)).is_err());
}

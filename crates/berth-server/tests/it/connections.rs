//! Connection limits (`http.readTimeout`, `writeTimeout`, `idleTimeout`,
//! `maxConnections`), over plain HTTP and TLS: idle and slow clients are
//! closed, stalled bodies and readers cut, flowing transfers never, and
//! past the cap new connections are refused while the others are served.
//! Timings are asserted only within generous bounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_oci::Digest;
use berth_server::config::Config;
use berth_server::server::ConnLimits;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A limit short enough for a test, long enough for a loaded machine to
/// answer a request well within it.
const LIMIT: Duration = Duration::from_secs(1);
/// How long a connection past its limit may take to be closed.
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

struct Served {
    addr: SocketAddr,
    /// The server's certificate, when it serves TLS.
    cert: Option<rustls::pki_types::CertificateDer<'static>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _tmp: tempfile::TempDir,
}

fn limits(max_connections: usize) -> ConnLimits {
    ConnLimits {
        read_timeout: Some(LIMIT),
        write_timeout: Some(LIMIT),
        idle_timeout: Some(LIMIT),
        max_connections,
    }
}

async fn serve(limits: ConnLimits, tls: bool) -> Served {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = Config::from_value(json!({
        "storage": {"rootDirectory": tmp.path()},
        "http": {"address": "127.0.0.1", "port": 0}
    }))
    .expect("config");
    let state = berth_server::server::build_state(&config)
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (cert, live) = if tls {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let mut server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .expect("tls config");
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let live = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server));
        (Some(made.cert.der().clone()), Some(live))
    } else {
        (None, None)
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(berth_server::server::serve(
        listener,
        state,
        live,
        limits,
        async {
            let _ = rx.await;
        },
    ));
    Served {
        addr,
        cert,
        stop: Some(tx),
        task,
        _tmp: tmp,
    }
}

impl Served {
    async fn tcp(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    /// A TLS connection with its handshake done.
    async fn tls(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert.clone().expect("a TLS server"))
            .expect("root");
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, self.tcp().await)
            .await
            .expect("handshake")
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(CLOSED_WITHIN, &mut self.task)
            .await
            .expect("stops")
            .expect("join")
            .expect("served");
    }
}

/// Reads one response (head and a `content-length` body) off `io`.
async fn response<S: AsyncRead + Unpin>(io: &mut S) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = io.read(&mut byte).await.expect("read head");
        assert!(n > 0, "closed mid-head: {}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).expect("head");
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await.expect("read body");
    head + &String::from_utf8_lossy(&body)
}

async fn get<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, path: &str) -> String {
    io.write_all(format!("GET {path} HTTP/1.1\r\nhost: berth\r\n\r\n").as_bytes())
        .await
        .expect("send");
    response(io).await
}

/// Waits until the server closes `io` (end of stream or a reset),
/// discarding what it sends; how long that took. Panics past
/// [`CLOSED_WITHIN`].
async fn closed<S: AsyncRead + Unpin>(io: &mut S) -> Duration {
    let start = Instant::now();
    let drain = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(CLOSED_WITHIN, drain)
        .await
        .expect("the server closes the connection");
    start.elapsed()
}

#[tokio::test]
async fn idle_and_slow_clients_are_closed_over_http() {
    let s = serve(limits(64), false).await;
    // Nothing at all, half a header, a finished request kept alive.
    let mut silent = s.tcp().await;
    let mut half = s.tcp().await;
    half.write_all(b"GET /v2/ HTTP/1.1\r\nhost: berth\r\n")
        .await
        .expect("half");
    let mut kept = s.tcp().await;
    assert!(get(&mut kept, "/v2/").await.starts_with("HTTP/1.1 200"));
    // HTTP/2 with prior knowledge: the preface, then nothing.
    let mut h2 = s.tcp().await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    let (a, b, c, d) = tokio::join!(
        closed(&mut silent),
        closed(&mut half),
        closed(&mut kept),
        closed(&mut h2)
    );
    for took in [a, b, c, d] {
        assert!(took >= LIMIT / 2, "closed before its time: {took:?}");
    }
    // The server itself is fine.
    let mut fresh = s.tcp().await;
    assert!(get(&mut fresh, "/v2/").await.starts_with("HTTP/1.1 200"));
    drop(fresh);
    s.stop().await;
}

#[tokio::test]
async fn idle_and_slow_clients_are_closed_over_tls() {
    let s = serve(limits(64), true).await;
    // A TCP connection that never starts its handshake.
    let mut no_handshake = s.tcp().await;
    // Handshakes done, then nothing, or half a header.
    let mut silent = s.tls().await;
    let mut half = s.tls().await;
    half.write_all(b"GET /v2/ HTTP/1.1\r\nhost: berth\r\n")
        .await
        .expect("half");
    half.flush().await.expect("flush");
    let mut kept = s.tls().await;
    assert!(get(&mut kept, "/v2/").await.starts_with("HTTP/1.1 200"));
    let (a, b, c, d) = tokio::join!(
        closed(&mut no_handshake),
        closed(&mut silent),
        closed(&mut half),
        closed(&mut kept)
    );
    for took in [a, b, c, d] {
        assert!(took >= LIMIT / 2, "closed before its time: {took:?}");
    }
    let mut fresh = s.tls().await;
    assert!(get(&mut fresh, "/v2/").await.starts_with("HTTP/1.1 200"));
    drop(fresh);
    s.stop().await;
}

#[tokio::test]
async fn past_the_cap_new_connections_are_refused_and_the_others_served() {
    let mut generous = limits(3);
    generous.read_timeout = Some(Duration::from_secs(60));
    generous.idle_timeout = Some(Duration::from_secs(60));
    let s = serve(generous, false).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = s.tcp().await;
        assert!(get(&mut c, "/v2/").await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    // A fourth is told so and closed, at once.
    let mut refused = s.tcp().await;
    let took = closed_with(&mut refused).await;
    assert!(
        took.1.is_empty() || took.1.starts_with("HTTP/1.1 503"),
        "{}",
        took.1
    );
    assert!(
        took.1.is_empty() || took.1.contains("UNAVAILABLE"),
        "{}",
        took.1
    );
    // The three are still answered.
    for c in &mut held {
        assert!(get(c, "/v2/").await.starts_with("HTTP/1.1 200"));
    }
    // One leaves: its place is free again.
    drop(held.pop());
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        let mut c = s.tcp().await;
        let mut answer = String::new();
        c.write_all(b"GET /v2/ HTTP/1.1\r\nhost: berth\r\nconnection: close\r\n\r\n")
            .await
            .expect("send");
        let _ = tokio::time::timeout(LIMIT * 5, c.read_to_string(&mut answer)).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    s.stop().await;
}

/// Like [`closed`], with what was read.
async fn closed_with(io: &mut TcpStream) -> (Duration, String) {
    let start = Instant::now();
    let mut got = Vec::new();
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(CLOSED_WITHIN, drain)
        .await
        .expect("the server closes the connection");
    (start.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn a_stalled_body_is_cut_and_a_flowing_one_is_not() {
    let s = serve(limits(64), false).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", s.addr);
    // A body that sends a little, then nothing: cut after the limit.
    let mut c = s.tcp().await;
    c.write_all(
        b"POST /v2/stall/blobs/uploads/?digest=sha256:0000000000000000000000000000000000000000000000000000000000000000 HTTP/1.1\r\n\
          host: berth\r\ncontent-length: 100000\r\n\r\n0123456789",
    )
    .await
    .expect("send");
    let answered = tokio::time::timeout(CLOSED_WITHIN, response(&mut c))
        .await
        .expect("answered while the body stalls");
    assert!(answered.starts_with("HTTP/1.1 400"), "{answered}");
    assert!(answered.contains("readTimeout"), "{answered}");

    // A body that keeps coming for several times the limit: accepted.
    let chunk = vec![42u8; 16 * 1024];
    let chunks = 40;
    let whole: Vec<u8> = chunk.repeat(chunks);
    let d = Digest::sha256(&whole);
    let body = futures_util::stream::unfold(0, move |i| {
        let chunk = chunk.clone();
        async move {
            if i == chunks {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Ok::<_, std::io::Error>(chunk), i + 1))
        }
    });
    let started = Instant::now();
    let r = http
        .post(format!("{base}/v2/flow/blobs/uploads/?digest={d}"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("slow push");
    assert_eq!(r.status(), 201);
    assert!(started.elapsed() > LIMIT * 2);
    drop(c);
    s.stop().await;
}

#[tokio::test]
async fn a_reader_that_stops_is_cut_and_a_slow_one_is_not() {
    let s = serve(limits(64), false).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", s.addr);
    // Larger than what the socket buffers hold on loopback.
    let blob: Vec<u8> = (0..48 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::sha256(&blob);
    let r = http
        .post(format!("{base}/v2/big/blobs/uploads/?digest={d}"))
        .body(blob.clone())
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 201);
    let request = format!("GET /v2/big/blobs/{d} HTTP/1.1\r\nhost: berth\r\n\r\n");

    // Asks, then reads nothing for several times the limit: the server
    // gives up and closes; what arrives is short of the blob.
    let mut stopped = s.tcp().await;
    stopped.write_all(request.as_bytes()).await.expect("send");
    tokio::time::sleep(LIMIT * 4).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(CLOSED_WITHIN, stopped.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(
        got.len() < blob.len(),
        "cut short: {} of {}",
        got.len(),
        blob.len()
    );

    // Reads steadily, if slowly, for longer than the limit: gets it all.
    let mut slow = s.tcp().await;
    slow.write_all(request.as_bytes()).await.expect("send");
    let started = Instant::now();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(
            slow.read(&mut byte).await.expect("head") > 0,
            "closed mid-head"
        );
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let mut got = Vec::with_capacity(blob.len());
    let mut buf = vec![0u8; 1024 * 1024];
    while got.len() < blob.len() {
        tokio::time::sleep(Duration::from_millis(60)).await;
        match slow.read(&mut buf).await.expect("read") {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(started.elapsed() > LIMIT, "read for longer than the limit");
    assert_eq!(got.len(), blob.len(), "the whole blob");
    assert!(got == blob);
    drop(slow);
    s.stop().await;
}

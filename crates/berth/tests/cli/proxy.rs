//! A reverse proxy in front of an upstream registry, for the sync tests:
//! plain HTTP on both sides, bodies streamed both ways, headers and
//! statuses passed through (a `Location` pointing at the target is
//! rewritten to point at the proxy). It counts requests per method and
//! path and the body bytes it forwarded per path, and on command it slows
//! response bodies down, cuts blob responses short, or refuses requests.
//!
//! It runs on a thread and runtime of its own, so that it serves the same
//! from a plain `#[test]` and from a `#[tokio::test]`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

type ProxyBody = BoxBody<Bytes, std::io::Error>;

/// How a refusing proxy turns callers away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every request gets `503 Service Unavailable` (counted, not
    /// forwarded).
    Unavailable,
    /// The port is closed: connections are refused, and those already
    /// open are dropped.
    Connection,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    control: mpsc::UnboundedSender<(Control, std::sync::mpsc::Sender<()>)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the proxy knows and is told; shared by every connection.
struct State {
    /// `http://host:port` of the upstream, without a trailing slash.
    target: String,
    /// `http://127.0.0.1:port` of the proxy itself.
    own: String,
    http: reqwest::Client,
    /// Every request that arrived: method and path (no query).
    requests: Mutex<Vec<(Method, String)>>,
    /// Response body bytes handed to the client, per path.
    forwarded: Mutex<HashMap<String, u64>>,
    /// Bytes per second for response bodies; 0 is unthrottled.
    throttle: AtomicU64,
    /// Blob responses end (with an error) after this many body bytes;
    /// `u64::MAX` is never.
    cut_blobs_after: AtomicU64,
    /// The next `PATCH` body is cut after this many bytes (the upload
    /// broken off on its way to the registry), once; `u64::MAX`: none.
    cut_next_patch_after: AtomicU64,
    /// Whether requests get a 503 (std Mutex: only held to copy it).
    unavailable: Mutex<bool>,
}

/// A change the accept loop makes, acknowledged once made.
enum Control {
    Refuse(Refusal),
    Heal,
    Shutdown,
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `target`
    /// (`http://host:port`).
    pub fn start(target: &str) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let target = target.trim_end_matches('/').to_string();
        assert!(
            target.starts_with("http://"),
            "the proxy speaks plain HTTP to its target, not {target}"
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                let addr = listener.local_addr().expect("addr");
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .expect("reqwest client");
                let state = Arc::new(State {
                    target,
                    own: format!("http://{addr}"),
                    http,
                    requests: Mutex::new(Vec::new()),
                    forwarded: Mutex::new(HashMap::new()),
                    throttle: AtomicU64::new(0),
                    cut_blobs_after: AtomicU64::new(u64::MAX),
                    cut_next_patch_after: AtomicU64::new(u64::MAX),
                    unavailable: Mutex::new(false),
                });
                let _ = ready_tx.send((addr, state.clone()));
                accept_loop(listener, addr, state, control_rx).await;
            });
        });
        let (addr, state) = ready_rx.recv().expect("proxy started");
        Self {
            addr,
            state,
            control,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        self.state.own.clone()
    }

    /// `127.0.0.1:port`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Requests whose method is `method` (`"*"` for any) and whose path
    /// starts with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.count_where(method, |p| p.starts_with(path_prefix))
    }

    /// Requests whose method is `method` (`"*"` for any) and whose path
    /// matches the regular expression `path_re`.
    pub fn count_matching(&self, method: &str, path_re: &str) -> usize {
        let re = regex::Regex::new(path_re).expect("regex");
        self.count_where(method, |p| re.is_match(p))
    }

    fn count_where(&self, method: &str, matches: impl Fn(&str) -> bool) -> usize {
        self.state
            .requests
            .lock()
            .expect("requests")
            .iter()
            .filter(|(m, p)| {
                (method == "*" || m.as_str().eq_ignore_ascii_case(method)) && matches(p)
            })
            .count()
    }

    /// Every request so far.
    pub fn total(&self) -> usize {
        self.state.requests.lock().expect("requests").len()
    }

    /// Every request so far, as (method, path), in order of arrival.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state
            .requests
            .lock()
            .expect("requests")
            .iter()
            .map(|(m, p)| (m.to_string(), p.clone()))
            .collect()
    }

    /// Forgets the requests and bytes counted so far.
    pub fn reset_counts(&self) {
        self.state.requests.lock().expect("requests").clear();
        self.state.forwarded.lock().expect("forwarded").clear();
    }

    /// Response body bytes forwarded for `path` (summed over requests).
    pub fn forwarded(&self, path: &str) -> u64 {
        self.state
            .forwarded
            .lock()
            .expect("forwarded")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Response body bytes forwarded for every path.
    pub fn forwarded_total(&self) -> u64 {
        self.state
            .forwarded
            .lock()
            .expect("forwarded")
            .values()
            .sum()
    }

    /// Limits every response body (those streaming now too) to about
    /// `bytes_per_second`; `None` lifts the limit.
    pub fn throttle(&self, bytes_per_second: Option<u64>) {
        self.state
            .throttle
            .store(bytes_per_second.unwrap_or(0), Ordering::SeqCst);
    }

    /// Ends every blob body (`GET /v2/<name>/blobs/<digest>`) after
    /// `bytes` with a broken connection, before its `Content-Length` is
    /// reached (the client gets the status and headers, and at most
    /// `bytes` of the body); `None` lets them through whole again.
    /// Cuts the body of the next `PATCH` (an upload chunk) after `bytes`,
    /// so the registry sees it break off; the client gets a 502.
    pub fn cut_next_patch_after(&self, bytes: u64) {
        self.state
            .cut_next_patch_after
            .store(bytes, Ordering::SeqCst);
    }

    pub fn cut_blobs_after(&self, bytes: Option<u64>) {
        self.state
            .cut_blobs_after
            .store(bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Turns callers away until [`Proxy::heal`].
    pub fn refuse(&self, how: Refusal) {
        self.command(Control::Refuse(how));
    }

    /// Serves again, on the same port.
    pub fn heal(&self) {
        self.command(Control::Heal);
    }

    fn command(&self, control: Control) {
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        self.control.send((control, ack_tx)).expect("proxy running");
        ack_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the proxy acknowledged");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let (ack_tx, _ack_rx) = std::sync::mpsc::channel();
        let _ = self.control.send((Control::Shutdown, ack_tx));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections, and obeys [`Control`]s: closing the port drops
/// every open connection too (through `epoch`).
async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<State>,
    mut control: mpsc::UnboundedReceiver<(Control, std::sync::mpsc::Sender<()>)>,
) {
    let (epoch, _) = watch::channel(0u64);
    let mut listener = Some(listener);
    loop {
        let accepted = async {
            match &listener {
                Some(l) => l.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = accepted => {
                if let Some((stream, _)) = accepted {
                    tokio::spawn(serve_connection(stream, state.clone(), epoch.subscribe()));
                }
            }
            command = control.recv() => {
                let Some((command, ack)) = command else { return };
                match command {
                    Control::Refuse(Refusal::Unavailable) => {
                        *state.unavailable.lock().expect("unavailable") = true;
                    }
                    Control::Refuse(Refusal::Connection) => {
                        listener = None;
                        epoch.send_modify(|e| *e += 1);
                    }
                    Control::Heal => {
                        *state.unavailable.lock().expect("unavailable") = false;
                        if listener.is_none() {
                            // tokio sets SO_REUSEADDR: the port can be
                            // bound again at once.
                            listener = Some(TcpListener::bind(addr).await.unwrap_or_else(|e| {
                                panic!("the proxy could not listen on {addr} again: {e}")
                            }));
                        }
                    }
                    Control::Shutdown => {
                        epoch.send_modify(|e| *e += 1);
                        let _ = ack.send(());
                        return;
                    }
                }
                let _ = ack.send(());
            }
        }
    }
}

/// Serves one connection until it ends or the port is closed.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<State>,
    mut epoch: watch::Receiver<u64>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = epoch.changed() => {}
    }
}

/// Headers that belong to one hop, not passed on either way.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::HOST,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Whether `GET path` downloads a blob: `/v2/<name>/blobs/<digest>`.
fn is_blob_path(path: &str) -> bool {
    path.starts_with("/v2/")
        && path
            .rsplit_once("/blobs/")
            .is_some_and(|(_, digest)| digest.contains(':') && !digest.contains('/'))
}

fn text(status: StatusCode, body: &str) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("response")
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    state
        .requests
        .lock()
        .expect("requests")
        .push((method.clone(), path.clone()));
    if *state.unavailable.lock().expect("unavailable") {
        return Ok(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the test proxy refuses requests",
        ));
    }

    let mut upstream = state
        .http
        .request(method.clone(), format!("{}{path_and_query}", state.target));
    for (name, value) in req.headers() {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if chunked || length.is_some_and(|n| n > 0) {
        // Streamed as it arrives; with its Content-Length, when it has one.
        let cut = match method == Method::PATCH {
            true => state.cut_next_patch_after.swap(u64::MAX, Ordering::SeqCst),
            false => u64::MAX,
        };
        let mut sent = 0u64;
        let body = req.into_body().into_data_stream().map(move |piece| {
            let piece = piece.map_err(std::io::Error::other)?;
            if sent + piece.len() as u64 > cut {
                return Err(std::io::Error::other("the test proxy cut the upload"));
            }
            sent += piece.len() as u64;
            Ok(piece)
        });
        upstream = upstream.body(reqwest::Body::wrap_stream(body));
    }
    let resp = match upstream.send().await {
        Ok(r) => r,
        Err(e) => {
            return Ok(text(
                StatusCode::BAD_GATEWAY,
                &format!("the test proxy could not reach {}: {e}", state.target),
            ));
        }
    };

    let status = resp.status();
    let mut out = Response::builder().status(status);
    for (name, value) in resp.headers() {
        if hop_by_hop(name) {
            continue;
        }
        let value = match (name == header::LOCATION, value.to_str()) {
            (true, Ok(v)) if v.starts_with(&state.target) => {
                HeaderValue::from_str(&format!("{}{}", state.own, &v[state.target.len()..]))
                    .expect("location")
            }
            _ => value.clone(),
        };
        out = out.header(name, value);
    }
    let no_body = method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let body = if no_body {
        Empty::new().map_err(|never| match never {}).boxed()
    } else {
        let cut = if method == Method::GET && is_blob_path(&path) {
            state.cut_blobs_after.load(Ordering::SeqCst)
        } else {
            u64::MAX
        };
        let stream = resp.bytes_stream().map_err(std::io::Error::other);
        let frames = paced(stream, state.clone(), path, cut).map_ok(Frame::data);
        BodyExt::boxed(StreamBody::new(frames))
    };
    Ok(out.body(body).expect("response"))
}

/// What [`paced`] carries from one piece to the next.
struct Pacing<S> {
    upstream: S,
    /// What came from upstream and is not yet forwarded.
    pending: Bytes,
    state: Arc<State>,
    path: String,
    sent: u64,
    cut: u64,
    done: bool,
}

/// `upstream` as the client gets it: in pieces of a twentieth of a second
/// at the throttled rate (read again before every piece), counted per path
/// as they are handed on, and ended by an error after `cut` bytes.
fn paced<S>(
    upstream: S,
    state: Arc<State>,
    path: String,
    cut: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let pacing = Pacing {
        upstream,
        pending: Bytes::new(),
        state,
        path,
        sent: 0,
        cut,
        done: false,
    };
    futures_util::stream::unfold(pacing, |mut p| async move {
        if p.done {
            return None;
        }
        if p.pending.is_empty() {
            match p.upstream.next().await {
                Some(Ok(chunk)) => p.pending = chunk,
                Some(Err(e)) => {
                    p.done = true;
                    return Some((Err(e), p));
                }
                None => return None,
            }
        }
        if p.sent >= p.cut {
            p.done = true;
            // hyper drops what it has not written yet when a body fails:
            // a pause first, so that the head and the bytes before the
            // cut reach the client (hyper flushes while a body waits).
            tokio::time::sleep(Duration::from_millis(50)).await;
            let e =
                std::io::Error::other(format!("the test proxy cut the body after {} bytes", p.cut));
            return Some((Err(e), p));
        }
        let rate = p.state.throttle.load(Ordering::SeqCst);
        let mut n = p.pending.len() as u64;
        if rate > 0 {
            n = n.min((rate / 20).max(1));
        }
        n = n.min(p.cut - p.sent);
        let piece = p.pending.split_to(n as usize);
        if rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
        p.sent += n;
        *p.state
            .forwarded
            .lock()
            .expect("forwarded")
            .entry(p.path.clone())
            .or_default() += n;
        Some((Ok(piece), p))
    })
}

//! Serving connections, plain or TLS, with the limits that keep slow and
//! idle clients from holding the process's file descriptors: a cap on the
//! connections served at once (`http.maxConnections`), the time a client
//! has for its TLS handshake and each request header (`http.readTimeout`),
//! how long a request body or a response may stall (`readTimeout`,
//! `http.writeTimeout`), and how long a connection may sit with no request
//! (`http.idleTimeout`).
//!
//! Every limit acts only where nothing moves: an upload or a download that
//! keeps sending is never cut, however long it takes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum_server::accept::Accept;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpConfig;

/// File descriptors the default connection cap leaves for everything else
/// (the metadata store, logs, Redis and S3 connections, watched files).
const RESERVED_FDS: u64 = 64;
/// The connection cap when the open-files limit is unknown or unlimited.
const FALLBACK_MAX_CONNECTIONS: usize = 16_384;
/// How long an idle connection told to go away may take to say goodbye
/// (an HTTP/2 GOAWAY) before it is dropped.
const GOODBYE: Duration = Duration::from_secs(1);
/// At most one warning per this long about refused connections or failed
/// accepts, so a flood does not flood the log too.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The answer of a plain-HTTP connection refused at `http.maxConnections`.
pub(crate) const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 95\r\n\
\r\n\
{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"too many connections; retry later\",\"detail\":null}]}";

/// The limits connections are served with (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// A TLS handshake, each request header (for HTTP/1.1 counted from
    /// when the connection waits for it, so the wait between requests
    /// too), the first request of a connection, and each stall of a
    /// request body.
    pub read_timeout: Option<Duration>,
    /// A stall of a response: the client takes no byte for this long.
    pub write_timeout: Option<Duration>,
    /// A connection with no request in flight.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The limits `http` sets (zero durations: no limit), with the
    /// connection cap from the open-files limit when it sets none.
    pub fn from_config(http: &HttpConfig) -> Self {
        let some = |d: Duration| Some(d).filter(|d| !d.is_zero());
        Self {
            read_timeout: some(http.read_timeout.0),
            write_timeout: some(http.write_timeout.0),
            idle_timeout: some(http.idle_timeout.0),
            max_connections: http
                .max_connections
                .map_or_else(default_max_connections, |n| n.get()),
        }
    }

    /// The TLS handshake's limit: `read_timeout`, or axum-server's 10 s
    /// when that is off (a handshake never waits forever).
    pub fn handshake_timeout(&self) -> Duration {
        self.read_timeout.unwrap_or(Duration::from_secs(10))
    }
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self::from_config(&HttpConfig::default())
    }
}

/// The connection cap when the config sets none: half of what the
/// open-files limit leaves after `RESERVED_FDS` (a connection's request
/// may hold a file open too: an upload's data, a blob being sent), at
/// least 16.
pub fn default_max_connections() -> usize {
    match open_files_limit() {
        Some(n) => usize::try_from(n.saturating_sub(RESERVED_FDS) / 2)
            .unwrap_or(usize::MAX)
            .clamp(16, Semaphore::MAX_PERMITS),
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// The soft `RLIMIT_NOFILE` (`None`: unlimited, or not a Unix system).
#[cfg(unix)]
fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<u64> {
    None
}

/// The open-files limit at start, and what raising it did; said by
/// [`OpenFiles::log`] once the server is built (a config that fails to
/// start says only why).
#[derive(Debug, Default)]
pub struct OpenFiles {
    /// The soft limit before and after (`None`: unlimited).
    before: Option<u64>,
    after: Option<u64>,
    hard: Option<u64>,
    /// Why it could not be raised.
    error: Option<String>,
    /// `false` where there is no such limit (not Unix).
    known: bool,
}

impl OpenFiles {
    pub fn log(&self) {
        if !self.known {
            return;
        }
        let show = |n: Option<u64>| n.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
        let (before, after, hard) = (show(self.before), show(self.after), show(self.hard));
        match &self.error {
            Some(e) => tracing::warn!(
                "open files limit left at {before} (hard limit {hard}): cannot raise it: {e}"
            ),
            None if self.before != self.after => {
                tracing::info!("open files limit raised from {before} to the hard limit, {after}")
            }
            None => tracing::info!("open files limit: {after} (the hard limit)"),
        }
    }
}

/// Raises the soft open-files limit to the hard one, as Go's runtime does
/// for zot (the soft limit is often 1,024, far below what a registry
/// serving many clients needs).
#[cfg(unix)]
pub fn raise_open_files_limit() -> OpenFiles {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let mut done = OpenFiles {
        before: limit.current,
        after: limit.current,
        hard: limit.maximum,
        error: None,
        known: true,
    };
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => done.after = limit.maximum,
            Err(e) => done.error = Some(e.to_string()),
        }
    }
    done
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> OpenFiles {
    OpenFiles::default()
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (however long they take) and returns once
/// every connection is closed. `acceptor` turns a TCP stream into what is
/// served (TLS, or the stream itself); `busy`, when set, is written to a
/// connection refused at the cap before it is closed.
pub(crate) async fn serve<A>(
    listener: TcpListener,
    acceptor: A,
    router: Router,
    limits: ConnLimits,
    busy: Option<&'static [u8]>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    A: Accept<WriteDeadline<TcpStream>, ConnService> + Clone + Send + Sync + 'static,
    A::Future: Send,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: tower::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    <A::Service as tower::Service<Request<Incoming>>>::Future: Send + 'static,
{
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut refused = Warnings::default();
    let mut failed = Warnings::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors or memory: wait a little
                        // instead of spinning; what is in flight goes on.
                        failed.warn(|n| tracing::warn!("cannot accept connections ({n} times): {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            if let Some(answer) = busy {
                // Best effort: a socket that cannot take it now is closed
                // all the same.
                let _ = tcp.try_write(answer);
            }
            refused.warn(|n| {
                tracing::warn!(
                    "refused {n} connections: {} served at once (http.maxConnections)",
                    limits.max_connections
                )
            });
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
        connections.spawn(connection(
            tcp,
            peer,
            acceptor.clone(),
            router.clone(),
            limits,
            stop.clone(),
            place,
        ));
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Errors of one connection that came and went before it was accepted:
/// accepting goes straight on.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One connection, from its TLS handshake to its close. `_place` is its
/// place among `http.maxConnections`, given back when it ends.
async fn connection<A>(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: A,
    router: Router,
    limits: ConnLimits,
    stop: CancellationToken,
    _place: OwnedSemaphorePermit,
) where
    A: Accept<WriteDeadline<TcpStream>, ConnService>,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: tower::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    <A::Service as tower::Service<Request<Incoming>>>::Future: Send + 'static,
{
    let activity = Activity::new();
    let service = ConnService {
        router,
        peer,
        activity: activity.clone(),
        body_stall: limits.read_timeout,
    };
    let io = WriteDeadline::new(tcp, limits.write_timeout);
    let accepted = tokio::select! {
        a = acceptor.accept(io, service) => a,
        () = stop.cancelled() => return,
    };
    let (stream, service) = match accepted {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, "connection dropped before serving: {e}");
            return;
        }
    };
    activity.restart();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let idle = activity.idle(limits.read_timeout, limits.idle_timeout);
    tokio::pin!(idle);
    let stopping = tokio::select! {
        served = conn.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            return;
        }
        () = stop.cancelled() => true,
        () = &mut idle => {
            tracing::debug!(%peer, "closing a connection with no request");
            false
        }
    };
    conn.as_mut().graceful_shutdown();
    if stopping {
        // Requests in flight finish, as long as they take.
        let _ = conn.await;
    } else {
        // Nothing is in flight: a moment for the goodbye, then close.
        let _ = tokio::time::timeout(GOODBYE, conn).await;
    }
}

/// A warning said at most once per [`WARN_EVERY`], with how many times
/// its cause happened meanwhile.
#[derive(Default)]
struct Warnings {
    last: Option<Instant>,
    count: u64,
}

impl Warnings {
    fn warn(&mut self, say: impl FnOnce(u64)) {
        self.count += 1;
        if self.last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            say(self.count);
            self.last = Some(Instant::now());
            self.count = 0;
        }
    }
}

/// A connection's requests: how many are in flight (a response counts
/// until its body is sent or dropped), when the last one ended, and
/// whether one ever began. A `watch` channel so that the idle timer sees
/// each change.
#[derive(Clone)]
struct Activity(Arc<watch::Sender<ActivityState>>);

#[derive(Clone, Copy)]
struct ActivityState {
    in_flight: usize,
    since: Instant,
    served: bool,
}

impl Activity {
    fn new() -> Self {
        Self(Arc::new(watch::Sender::new(ActivityState {
            in_flight: 0,
            since: Instant::now(),
            served: false,
        })))
    }

    /// Counts from now (the handshake is over: its own limit applied).
    fn restart(&self) {
        self.0.send_modify(|s| s.since = Instant::now());
    }

    fn begin(&self) -> InFlight {
        self.0.send_modify(|s| {
            s.in_flight += 1;
            s.served = true;
        });
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `idle` (for
    /// `first` before the first request: until then the client is still
    /// to send a header, however its protocol is detected).
    async fn idle(&self, first: Option<Duration>, idle: Option<Duration>) {
        let mut seen = self.0.subscribe();
        loop {
            let s = *seen.borrow_and_update();
            let limit = if s.served { idle } else { first };
            match limit.filter(|_| s.in_flight == 0) {
                Some(limit) => {
                    let deadline = tokio::time::Instant::from_std(s.since + limit);
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => return,
                        changed = seen.changed() => if changed.is_err() {
                            return std::future::pending().await;
                        },
                    }
                }
                None => {
                    if seen.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }
}

/// A request in flight on its connection, until dropped.
struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.0.send_modify(|s| {
            s.in_flight -= 1;
            s.since = Instant::now();
        });
    }
}

/// What serves one connection's requests: the router, with the client's
/// address (`ConnectInfo`, for the audit log, rate limits and upload
/// caps), each request counted in flight until its response is sent, and
/// each request body cut when it stalls.
#[derive(Clone)]
pub(crate) struct ConnService {
    router: Router,
    peer: SocketAddr,
    activity: Activity,
    body_stall: Option<Duration>,
}

impl tower::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let mut req = req.map(|body| Body::new(StallLimit::new(body, self.body_stall)));
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let response = tower::Service::call(&mut self.router.clone(), req);
        Box::pin(async move {
            let resp = response.await?;
            Ok(resp.map(|body| {
                Body::new(Counted {
                    body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A response body that keeps its request counted in flight.
struct Counted {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A timer that runs while an I/O makes no progress: armed by the first
/// `Pending`, disarmed by any progress (the `Sleep` is kept and reset, so
/// a transfer that stalls often allocates it once).
struct Stall {
    limit: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Stall {
    fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            timer: None,
            armed: false,
        }
    }

    fn progressed(&mut self) {
        self.armed = false;
    }

    /// After a `Pending`: the limit, if the stall has lasted it (else the
    /// task is woken when it will have).
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<Duration> {
        let limit = self.limit?;
        if !self.armed {
            let deadline = tokio::time::Instant::now() + limit;
            match &mut self.timer {
                Some(t) => t.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        self.timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready())
            .then_some(limit)
    }
}

/// A request body that fails once the client has sent nothing of it for
/// the limit (`http.readTimeout`): a client that stops mid-upload does
/// not hold its connection and its upload session open forever.
struct StallLimit {
    body: Incoming,
    stall: Stall,
}

impl StallLimit {
    fn new(body: Incoming, limit: Option<Duration>) -> Self {
        Self {
            body,
            stall: Stall::new(limit),
        }
    }
}

/// A request body that stopped coming.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing for {0:?} (http.readTimeout)")]
struct BodyStalled(Duration);

impl HttpBody for StallLimit {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stall.progressed();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.stall.expired(cx) {
                Some(limit) => Poll::Ready(Some(Err(BodyStalled(limit).into()))),
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket whose writes fail once the client has taken no
/// byte for the limit (`http.writeTimeout`): a client that stops reading a
/// response does not hold the connection forever. Under TLS too (it is
/// the socket beneath).
pub(crate) struct WriteDeadline<T> {
    io: T,
    stall: Stall,
}

impl<T> WriteDeadline<T> {
    fn new(io: T, limit: Option<Duration>) -> Self {
        Self {
            io,
            stall: Stall::new(limit),
        }
    }

    fn bound<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(r) => {
                self.stall.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => match self.stall.expired(cx) {
                Some(limit) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client took nothing for {limit:?} (http.writeTimeout)"),
                ))),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.bound(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.bound(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.bound(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.bound(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_busy_answer_says_its_length() {
        let text = std::str::from_utf8(BUSY).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let _: serde_json::Value = serde_json::from_str(body).expect("json");
    }

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_limit() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut w = WriteDeadline::new(near, Some(Duration::from_millis(200)));
        let started = Instant::now();
        let err = w
            .write_all(&vec![7u8; 64 * 1024])
            .await
            .expect_err("nobody reads");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Something was written before the stall: the far side has it.
        let mut got = vec![0u8; 1024];
        assert_eq!(far.read(&mut got).await.expect("read"), 1024);
    }

    #[tokio::test]
    async fn a_slow_steady_reader_is_never_cut() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut w = WriteDeadline::new(near, Some(Duration::from_millis(150)));
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 512];
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match far.read(&mut buf).await.expect("read") {
                    0 => return total,
                    n => total += n,
                }
            }
        });
        // 16 KiB at 512 bytes per 50 ms: well over the limit in all.
        w.write_all(&vec![1u8; 16 * 1024]).await.expect("write");
        w.shutdown().await.expect("shutdown");
        drop(w);
        assert_eq!(reader.await.expect("join"), 16 * 1024);
    }

    #[tokio::test]
    async fn idle_counts_from_the_last_response() {
        let a = Activity::new();
        let limit = Some(Duration::from_millis(100));
        let first = a.begin();
        // In flight: never idle.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), a.idle(limit, limit))
                .await
                .is_err()
        );
        drop(first);
        let ended = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), a.idle(limit, limit))
            .await
            .expect("idle after the request");
        assert!(ended.elapsed() >= Duration::from_millis(90));
    }
}

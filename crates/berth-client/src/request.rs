//! The one path every request takes.
//!
//! [`Client::call`] → [`Client::send`] (credentials and the token
//! challenge) → [`Client::exchange`] (a concurrency permit, the request,
//! retries). The answer comes back as an [`Answer`] that keeps the permit
//! until its body has been read or dropped.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderMap, Method, StatusCode};
use reqwest::{RequestBuilder, Url};
use tokio::sync::OwnedSemaphorePermit;

use crate::{Client, ClientError, ClientResult, auth, retry, transport};

/// An answer with the concurrency permit it holds.
pub(crate) struct Answer {
    resp: reqwest::Response,
    permit: Option<OwnedSemaphorePermit>,
}

impl Answer {
    pub(crate) fn status(&self) -> StatusCode {
        self.resp.status()
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        self.resp.headers()
    }

    /// The URL that answered (after redirects).
    pub(crate) fn url(&self) -> &Url {
        self.resp.url()
    }

    /// The value of header `name`, if it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// `Content-Length` as sent (also on a `HEAD`, where the body is
    /// empty).
    pub(crate) fn declared_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// The whole body.
    pub(crate) async fn bytes(self) -> ClientResult<bytes::Bytes> {
        let bytes = self.resp.bytes().await.map_err(transport)?;
        drop(self.permit);
        Ok(bytes)
    }

    /// The whole body, refused beyond `max` bytes (`what` names it in
    /// the error).
    pub(crate) async fn bytes_at_most(self, max: u64, what: &str) -> ClientResult<bytes::Bytes> {
        let too_large =
            |n: u64| ClientError::Protocol(format!("{what}: over {max} bytes ({n} or more)"));
        if let Some(n) = self.declared_length().filter(|n| *n > max) {
            return Err(too_large(n));
        }
        let mut body = bytes::BytesMut::new();
        let mut stream = self.into_stream();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk?);
            if body.len() as u64 > max {
                return Err(too_large(body.len() as u64));
            }
        }
        Ok(body.freeze())
    }

    /// The body as JSON; `what` names it in the error.
    pub(crate) async fn json(self, what: &str) -> ClientResult<serde_json::Value> {
        let body = self.bytes().await?;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("{what}: an answer that is not JSON: {e}")))
    }

    /// The body as a stream that holds the permit until it ends or is
    /// dropped.
    pub(crate) fn into_stream(self) -> BoxStream<'static, ClientResult<bytes::Bytes>> {
        let permit = self.permit;
        let body = self.resp.bytes_stream();
        // At the end of the body the state, permit included, is dropped:
        // the place is free before the consumer drops the stream.
        futures_util::stream::unfold((body.boxed(), permit), |(mut body, permit)| async move {
            let item = body.next().await?;
            Some((item.map_err(transport), (body, permit)))
        })
        .boxed()
    }

    /// `Ok(self)` if the status is one of `want`, else a
    /// [`ClientError::Status`] with the start of the body.
    pub(crate) async fn check(
        self,
        method: &Method,
        path: &str,
        want: &[StatusCode],
    ) -> ClientResult<Self> {
        let status = self.status();
        if want.contains(&status) {
            return Ok(self);
        }
        let body = self.bytes().await.unwrap_or_default();
        Err(ClientError::Status {
            method: method_name(method),
            path: path.to_string(),
            status,
            body: String::from_utf8_lossy(&body).chars().take(300).collect(),
        })
    }
}

/// The name of `method`, for errors.
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

impl Client {
    /// The URL of `path`: a path under the base, or an absolute URL (an
    /// upload `Location`, a `Link`).
    pub(crate) fn url(&self, path: &str) -> ClientResult<Url> {
        let text = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        Url::parse(&text).map_err(|e| ClientError::Protocol(format!("{text}: not a URL: {e}")))
    }

    /// Whether `url` is on the registry's own origin, the only one that
    /// gets its credentials.
    pub(crate) fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base_url.scheme()
            && url.host_str() == self.base_url.host_str()
            && url.port_or_known_default() == self.base_url.port_or_known_default()
    }

    /// Sends `method path` (as `build` shapes it; it may be called more
    /// than once) and checks the answer is one of `want`.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        want: &[StatusCode],
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> ClientResult<Answer> {
        self.send(&method, path, build)
            .await?
            .check(&method, path, want)
            .await
    }

    /// Sends `method path` with credentials: a cached token for the
    /// request's scope, else the Basic credentials; after a `401` with a
    /// `Bearer` challenge, once more with a fresh token. Any status comes
    /// back as it is.
    pub(crate) async fn send(
        &self,
        method: &Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> ClientResult<Answer> {
        let url = self.url(path)?;
        let own = self.same_origin(&url);
        let scope = auth::scope_for(url.path(), method);
        let key = scope.clone().unwrap_or_default();
        let mut refreshed = false;
        loop {
            let bearer = if own { self.tokens.get(&key) } else { None };
            let login = if own { self.credentials() } else { None };
            let answer = self
                .exchange(method, &url, |r| {
                    let r = match (&bearer, &login) {
                        _ if !own => r,
                        (Some(token), _) => r.bearer_auth(token),
                        (None, Some((user, password))) => r.basic_auth(user, Some(password)),
                        (None, None) => r,
                    };
                    build(r)
                })
                .await?;
            if answer.status() == StatusCode::UNAUTHORIZED
                && !refreshed
                && own
                && self.same_origin(answer.url())
                && let Some(challenge) = auth::bearer_challenge(answer.headers())
            {
                drop(answer);
                self.refresh_token(&challenge, scope.as_deref(), &key, bearer.as_deref())
                    .await?;
                refreshed = true;
                continue;
            }
            return Ok(answer);
        }
    }

    /// Sends one request, as `build` shapes it, with a concurrency permit;
    /// a `GET` or `HEAD` is sent again (see [`retry`]) after a transport
    /// error or a "try again later" status, as long as retries are left.
    pub(crate) async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> ClientResult<Answer> {
        let mut tried = 0;
        loop {
            let permit = self.permit().await?;
            let sent = build(self.http.request(method.clone(), url.clone()))
                .send()
                .await;
            let wait = match sent {
                Ok(resp)
                    if retry::retryable(resp.status()) && self.retry.may_retry(method, tried) =>
                {
                    self.retry.delay(tried, retry::retry_after(resp.headers()))
                }
                Ok(resp) => return Ok(Answer { resp, permit }),
                Err(_) if self.retry.may_retry(method, tried) => self.retry.delay(tried, None),
                Err(e) => return Err(transport(e)),
            };
            drop(permit);
            tokio::time::sleep(wait).await;
            tried += 1;
        }
    }

    /// A place among the requests in flight, when they are limited, and
    /// the request's turn, when they are paced.
    async fn permit(&self) -> ClientResult<Option<OwnedSemaphorePermit>> {
        if let Some(pace) = &self.pace {
            pace.wait().await;
        }
        match &self.limit {
            None => Ok(None),
            Some(limit) => limit.clone().acquire_owned().await.map(Some).map_err(|_| {
                ClientError::Transport("the client's request limit was closed".to_string())
            }),
        }
    }
}

/// Requests spaced to a rate: each takes the next free slot.
#[derive(Debug)]
pub(crate) struct Pace {
    every: std::time::Duration,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    pub(crate) fn new(per_second: f64) -> Self {
        Self {
            every: std::time::Duration::from_secs_f64(1.0 / per_second),
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for this request's slot.
    pub(crate) async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.every;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod pace_tests {
    use super::Pace;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_to_the_rate() {
        let pace = Pace::new(4.0);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            pace.wait().await;
        }
        // The first at once, then one every 250 ms (paused clock: exact).
        assert_eq!(start.elapsed(), std::time::Duration::from_millis(1000));
    }
}

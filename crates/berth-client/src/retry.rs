//! Which answers are worth asking again for, and how long to wait.
//!
//! Only idempotent requests (`GET`, `HEAD`) are retried: a `PUT` or
//! `POST` that failed midway may have happened. Retried are transport
//! errors (no answer at all) and the statuses of a registry that is
//! overloaded or behind a gateway that lost it: `429`, `502`, `503`,
//! `504`. The wait doubles from `retry_delay` up to `max_retry_delay`;
//! a `Retry-After` in seconds replaces it, capped the same way.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use crate::ClientOptions;

/// The retry settings of a client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    max_retries: u32,
    delay: Duration,
    max_delay: Duration,
}

impl RetryPolicy {
    pub(crate) fn from_options(options: &ClientOptions) -> Self {
        Self {
            max_retries: options.max_retries,
            delay: options.retry_delay,
            max_delay: options.max_retry_delay,
        }
    }

    /// Whether a request of `method` that failed on try number `tried`
    /// (0 for the first) may be sent again.
    pub(crate) fn may_retry(&self, method: &Method, tried: u32) -> bool {
        idempotent(method) && tried < self.max_retries
    }

    /// The wait after try number `tried` (0 for the first) failed;
    /// `retry_after` is what the answer asked for.
    pub(crate) fn delay(&self, tried: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = retry_after.unwrap_or_else(|| {
            self.delay
                .checked_mul(2u32.saturating_pow(tried))
                .unwrap_or(self.max_delay)
        });
        backoff.min(self.max_delay)
    }
}

/// Methods that may be sent twice without harm.
fn idempotent(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// Statuses that say "try again later".
pub(crate) fn retryable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_retries: u32, delay_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            delay: Duration::from_millis(delay_ms),
            max_delay: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy(10, 100, 1000);
        let waits: Vec<u128> = (0..6).map(|t| p.delay(t, None).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(64, None).as_millis(), 1000);
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = policy(3, 100, 5000);
        assert_eq!(p.delay(0, Some(Duration::from_secs(2))).as_secs(), 2);
        assert_eq!(p.delay(0, Some(Duration::from_secs(60))).as_secs(), 5);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", http::HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            "retry-after",
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn only_reads_are_retried_and_only_so_often() {
        let p = policy(2, 1, 1);
        assert!(p.may_retry(&Method::GET, 0));
        assert!(p.may_retry(&Method::HEAD, 1));
        assert!(!p.may_retry(&Method::GET, 2));
        for m in [Method::PUT, Method::POST, Method::PATCH, Method::DELETE] {
            assert!(!p.may_retry(&m, 0), "{m}");
        }
        assert!(!policy(0, 1, 1).may_retry(&Method::GET, 0));
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).expect("status")), "{s}");
        }
        for s in [200, 401, 404, 500, 501] {
            assert!(!retryable(StatusCode::from_u16(s).expect("status")), "{s}");
        }
    }
}

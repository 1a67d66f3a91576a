//! Rate limits (`http.ratelimit`): `rate` requests per second over all
//! clients, and per method (`methods[]{method, rate}`); a request must
//! pass every limit that applies. Over a limit the answer is 429
//! `TOOMANYREQUESTS` with `Retry-After`. Health checks are never limited.
//! The limiters are GCRA (governor), with a burst of one second's worth.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{Method, header};

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::config::RateLimitConfig;

pub struct RateLimits {
    global: Option<DefaultDirectRateLimiter>,
    by_method: HashMap<Method, DefaultDirectRateLimiter>,
}

fn limiter(rate: u32) -> Option<DefaultDirectRateLimiter> {
    NonZeroU32::new(rate).map(|r| RateLimiter::direct(Quota::per_second(r)))
}

impl RateLimits {
    /// The limits of the config (already checked: rates above zero,
    /// methods valid).
    pub fn new(config: &RateLimitConfig) -> Arc<Self> {
        Arc::new(Self {
            global: config.rate.and_then(limiter),
            by_method: config
                .methods
                .iter()
                .filter_map(|m| {
                    let method =
                        Method::from_bytes(m.method.to_ascii_uppercase().as_bytes()).ok()?;
                    Some((method, limiter(m.rate)?))
                })
                .collect(),
        })
    }

    /// `Err(wait)` when a limit is reached.
    fn check(&self, method: &Method) -> Result<(), Duration> {
        let clock = DefaultClock::default();
        for l in self.global.iter().chain(self.by_method.get(method)) {
            if let Err(not_until) = l.check() {
                return Err(not_until.wait_time_from(clock.now()));
            }
        }
        Ok(())
    }
}

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limits) = state.ratelimit.clone() else {
        return next.run(req).await;
    };
    if crate::api::is_health_route(req.uri().path()) {
        return next.run(req).await;
    }
    match limits.check(req.method()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new(berth_oci::ErrorCode::TooManyRequests, "too many requests")
                .with_header(header::RETRY_AFTER, &secs.max(1).to_string())
                .into_response()
        }
    }
}

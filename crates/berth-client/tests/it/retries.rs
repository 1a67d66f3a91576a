//! Retries: reads only, on "try again later", with a capped backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_client::{Client, ClientOptions};
use bytes::Bytes;

/// A registry that answers `503` (with `retry_after`, if any) to the
/// first `failures` requests, then `200` with a tag list; and its count
/// of requests.
async fn flaky(failures: usize, retry_after: Option<&'static str>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new().fallback(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < failures {
                let mut r = (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
                if let Some(after) = retry_after {
                    r.headers_mut()
                        .insert("retry-after", after.parse().expect("value"));
                }
                return r;
            }
            Response::new(axum::body::Body::from(r#"{"name":"x","tags":["a"]}"#))
        }
    });
    (crate::serve(app).await, hits)
}

fn retrying(max_retries: u32) -> ClientOptions {
    ClientOptions {
        max_retries,
        retry_delay: Duration::from_millis(10),
        max_retry_delay: Duration::from_millis(50),
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_are_retried_until_they_succeed() {
    let (base, hits) = flaky(2, None).await;
    let client = Client::with_options(&base, None, retrying(3)).expect("client");
    assert_eq!(client.tags("x").await.expect("tags"), ["a"]);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn without_retries_the_first_503_is_the_answer() {
    let (base, hits) = flaky(2, None).await;
    let client = Client::with_options(&base, None, retrying(0)).expect("client");
    let e = client.tags("x").await.expect_err("503");
    assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_run_out() {
    let (base, hits) = flaky(10, None).await;
    let client = Client::with_options(&base, None, retrying(2)).expect("client");
    let e = client.tags("x").await.expect_err("503");
    assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retry_after_is_capped_by_the_longest_delay() {
    let (base, hits) = flaky(1, Some("3600")).await;
    let client = Client::with_options(&base, None, retrying(1)).expect("client");
    let start = Instant::now();
    assert_eq!(client.tags("x").await.expect("tags"), ["a"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn writes_are_never_retried() {
    let (base, hits) = flaky(10, None).await;
    let client = Client::with_options(&base, None, retrying(3)).expect("client");
    let e = client
        .put_manifest(
            "x",
            "t",
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from_static(b"{}"),
        )
        .await
        .expect_err("503");
    assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let e = client.delete_manifest("x", "t").await.expect_err("503");
    assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn transport_errors_of_reads_are_retried() {
    // A port nothing listens on: refused at once, every time.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let options = ClientOptions {
        max_retries: 2,
        retry_delay: Duration::from_millis(100),
        max_retry_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let client = Client::with_options(&base, None, options).expect("client");
    let start = Instant::now();
    let e = client.ping().await.expect_err("refused");
    assert_eq!(e.status(), None, "{e}");
    assert!(start.elapsed() >= Duration::from_millis(200), "two waits");
}

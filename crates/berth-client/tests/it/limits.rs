//! `max_concurrent`: requests in flight, streamed bodies included.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use berth_client::{Client, ClientOptions};
use berth_oci::Digest;
use futures_util::StreamExt;

#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

#[tokio::test]
async fn never_more_than_max_concurrent_in_flight() {
    let flight = Arc::new(InFlight::default());
    let counted = flight.clone();
    let app = Router::new().fallback(move || {
        let flight = counted.clone();
        async move {
            let now = flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            flight.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            flight.now.fetch_sub(1, Ordering::SeqCst);
            Response::new(axum::body::Body::from(r#"{"name":"x","tags":["a"]}"#))
        }
    });
    let base = crate::serve(app).await;
    let options = ClientOptions {
        max_concurrent: Some(2),
        ..Default::default()
    };
    let client = Client::with_options(&base, None, options).expect("client");
    let calls = (0..10).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.tags("x").await })
    });
    for call in futures_util::future::join_all(calls).await {
        call.expect("task").expect("tags");
    }
    assert_eq!(flight.most.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_blob_stream_holds_its_place_until_dropped() {
    let app =
        Router::new().fallback(|| async { Response::new(axum::body::Body::from("0123456789")) });
    let base = crate::serve(app).await;
    let options = ClientOptions {
        max_concurrent: Some(1),
        ..Default::default()
    };
    let client = Client::with_options(&base, None, options).expect("client");
    let digest = Digest::sha256(b"0123456789");
    let blob = client
        .blob_stream("x", &digest)
        .await
        .expect("stream")
        .expect("found");
    assert_eq!(blob.len, Some(10));
    let waiting = tokio::time::timeout(Duration::from_millis(200), client.ping()).await;
    assert!(
        waiting.is_err(),
        "a second request went out beside the stream"
    );
    drop(blob);
    tokio::time::timeout(Duration::from_secs(5), client.ping())
        .await
        .expect("in time")
        .expect("ping");

    // Read to the end, the stream gives its place back by itself.
    let mut blob = client
        .blob_stream("x", &digest)
        .await
        .expect("stream")
        .expect("found");
    let mut body = Vec::new();
    while let Some(chunk) = blob.stream.next().await {
        body.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(body, b"0123456789");
    tokio::time::timeout(Duration::from_secs(5), client.ping())
        .await
        .expect("in time, with the stream not yet dropped")
        .expect("ping");
    drop(blob);
}

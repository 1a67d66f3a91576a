//! Blob downloads redirected to storage elsewhere: credentials stay home.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_client::Client;
use berth_oci::Digest;
use futures_util::StreamExt;

const BLOB: &[u8] = b"the blob's bytes";

/// The `Authorization` headers the storage saw.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// Storage on one port; a registry on another that wants `token` (or
/// Basic `alice:secret` when `token` is `None`) and redirects blob
/// `GET`s to the storage.
async fn registry_and_storage(bearer: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let recorded = seen.clone();
    let storage = crate::serve(Router::new().fallback(move |headers: HeaderMap| {
        let seen = recorded.clone();
        async move {
            seen.lock().expect("lock").push(
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            );
            BLOB
        }
    }))
    .await;
    let (listener, base) = crate::bind().await;
    let realm = format!("{base}/token");
    let app = Router::new()
        .route(
            "/token",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"token": "t0k"})) }),
        )
        .fallback(move |headers: HeaderMap| {
            let storage = storage.clone();
            let realm = realm.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                let wanted = if bearer {
                    "Bearer t0k"
                } else {
                    "Basic YWxpY2U6c2VjcmV0"
                };
                if auth != Some(wanted) {
                    let challenge = format!("Bearer realm=\"{realm}\"");
                    return (
                        StatusCode::UNAUTHORIZED,
                        [("www-authenticate", challenge)],
                        "",
                    )
                        .into_response();
                }
                let mut r = Response::new(axum::body::Body::empty());
                *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                r.headers_mut().insert(
                    "location",
                    format!("{storage}/bucket/blob?X-Amz-Signature=abc")
                        .parse()
                        .expect("location"),
                );
                r
            }
        });
    crate::spawn(listener, app);
    (base, seen)
}

async fn read_blob(client: &Client) -> Vec<u8> {
    let mut blob = client
        .blob_stream("x", &Digest::sha256(BLOB))
        .await
        .expect("blob")
        .expect("found");
    assert_eq!(blob.len, Some(BLOB.len() as u64));
    let mut body = Vec::new();
    while let Some(chunk) = blob.stream.next().await {
        body.extend_from_slice(&chunk.expect("chunk"));
    }
    body
}

#[tokio::test]
async fn basic_credentials_are_not_sent_to_the_redirect_target() {
    let (base, seen) = registry_and_storage(false).await;
    let client = Client::new(&base, Some("alice:secret")).expect("client");
    assert_eq!(read_blob(&client).await, BLOB);
    assert_eq!(*seen.lock().expect("lock"), [None]);
}

#[tokio::test]
async fn tokens_are_not_sent_to_the_redirect_target() {
    let (base, seen) = registry_and_storage(true).await;
    let client = Client::new(&base, None).expect("client");
    assert_eq!(read_blob(&client).await, BLOB);
    // Again, with the token cached and sent up front.
    assert_eq!(read_blob(&client).await, BLOB);
    assert_eq!(*seen.lock().expect("lock"), [None, None]);
}

#[tokio::test]
async fn a_missing_blob_is_none() {
    let app = Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "") });
    let client = Client::new(&crate::serve(app).await, None).expect("client");
    let blob = client
        .blob_stream("x", &Digest::sha256(BLOB))
        .await
        .expect("answer");
    assert!(blob.is_none());
}

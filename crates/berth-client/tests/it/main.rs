//! The client against real HTTP(S) servers on 127.0.0.1 (axum, in
//! process): tokens, retries, the concurrency limit, pages, manifests,
//! redirects, mutual TLS, Docker Hub names.

mod auth;
mod limits;
mod manifests;
mod names;
mod pages;
mod redirect;
mod retries;
mod tls;

use axum::Router;

/// A listener on a free port of 127.0.0.1 and its `http://` base URL
/// (known before the router is built, for challenges and links that
/// name it).
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

/// Serves `app` on `listener` until the test ends.
pub fn spawn(listener: tokio::net::TcpListener, app: Router) {
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
}

/// Serves `app` on a free port; returns its base URL.
pub async fn serve(app: Router) -> String {
    let (listener, base) = bind().await;
    spawn(listener, app);
    base
}

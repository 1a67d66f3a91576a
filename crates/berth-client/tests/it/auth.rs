//! The Docker token flow: challenge, token endpoint, cache, refusals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_client::{Client, ClientError};

/// `alice:secret`, as a Basic header carries it.
const ALICE: &str = "Basic YWxpY2U6c2VjcmV0";

#[derive(Default)]
struct Seen {
    token_requests: AtomicUsize,
    registry_requests: AtomicUsize,
    /// The `scope` of each token request.
    scopes: Mutex<Vec<String>>,
    /// The `Authorization` of each registry request.
    authorizations: Mutex<Vec<Option<String>>>,
}

struct Registry {
    base: String,
    seen: Seen,
}

/// A registry that takes `Bearer good` (alice's token) and challenges
/// anything else; its token endpoint gives alice `good`, anyone
/// without credentials `anonymous`, and refuses wrong credentials.
async fn token_registry() -> (String, Arc<Registry>) {
    let (listener, base) = crate::bind().await;
    let state = Arc::new(Registry {
        base: base.clone(),
        seen: Seen::default(),
    });
    let app = Router::new()
        .route("/token", get(token))
        .fallback(registry)
        .with_state(state.clone());
    crate::spawn(listener, app);
    (base, state)
}

async fn token(
    State(state): State<Arc<Registry>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    state.seen.token_requests.fetch_add(1, Ordering::SeqCst);
    let url =
        reqwest::Url::parse(&format!("http://x/?{}", query.unwrap_or_default())).expect("query");
    let param = |name: &str| -> Vec<String> {
        url.query_pairs()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    };
    assert_eq!(param("service"), ["test registry"]);
    state
        .seen
        .scopes
        .lock()
        .expect("lock")
        .push(param("scope").join(" "));
    let token = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(ALICE) => "good",
        None => "anonymous",
        Some(_) => return (StatusCode::UNAUTHORIZED, "bad credentials").into_response(),
    };
    axum::Json(serde_json::json!({ "access_token": token, "expires_in": 300 })).into_response()
}

async fn registry(State(state): State<Arc<Registry>>, uri: Uri, headers: HeaderMap) -> Response {
    state.seen.registry_requests.fetch_add(1, Ordering::SeqCst);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    state
        .seen
        .authorizations
        .lock()
        .expect("lock")
        .push(authorization.clone());
    if authorization.as_deref() == Some("Bearer good") {
        return axum::Json(serde_json::json!({ "name": "team/app", "tags": ["v1"] }))
            .into_response();
    }
    // Tag lists get a challenge without a scope (the client derives it),
    // manifests one with two.
    let scope = if uri.path().contains("/manifests/") {
        ",scope=\"repository:team/app:pull repository:base/img:pull\""
    } else {
        ""
    };
    let challenge = format!(
        "Bearer realm=\"{}/token\",service=\"test registry\"{scope}",
        state.base
    );
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", challenge)],
        "unauthorized",
    )
        .into_response()
}

#[tokio::test]
async fn a_token_is_fetched_once_and_reused() {
    let (base, state) = token_registry().await;
    let client = Client::new(&base, Some("alice:secret")).expect("client");
    assert_eq!(client.tags_all("team/app").await.expect("tags"), ["v1"]);
    assert_eq!(client.tags_all("team/app").await.expect("tags"), ["v1"]);
    // A clone shares the cache.
    assert_eq!(client.clone().tags("team/app").await.expect("tags"), ["v1"]);
    let seen = &state.seen;
    assert_eq!(seen.token_requests.load(Ordering::SeqCst), 1);
    // 401, then with the token, then twice with it up front.
    assert_eq!(seen.registry_requests.load(Ordering::SeqCst), 4);
    let auths = seen.authorizations.lock().expect("lock").clone();
    assert_eq!(auths[0].as_deref(), Some(ALICE), "Basic sent up front");
    assert!(
        auths[1..]
            .iter()
            .all(|a| a.as_deref() == Some("Bearer good")),
        "{auths:?}"
    );
    assert_eq!(
        *seen.scopes.lock().expect("lock"),
        ["repository:team/app:pull"],
        "derived from the path"
    );
}

#[tokio::test]
async fn the_challenge_scope_is_asked_for() {
    let (base, state) = token_registry().await;
    let client = Client::new(&base, Some("alice:secret")).expect("client");
    // The body is not a manifest, but the answer is a 200 after the token.
    let _ = client.get_manifest_raw("team/app", "v1").await;
    assert_eq!(
        *state.seen.scopes.lock().expect("lock"),
        ["repository:team/app:pull repository:base/img:pull"]
    );
    assert_eq!(state.seen.token_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn wrong_credentials_are_a_401_naming_the_realm() {
    let (base, state) = token_registry().await;
    let client = Client::new(&base, Some("alice:wrong")).expect("client");
    let e = client.tags_all("team/app").await.expect_err("refused");
    assert_eq!(e.status(), Some(StatusCode::UNAUTHORIZED), "{e}");
    assert!(matches!(e, ClientError::Auth { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("401"), "{text}");
    assert!(text.contains(&format!("{base}/token")), "{text}");
    assert_eq!(state.seen.token_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_token_the_registry_refuses_is_a_401_status() {
    let (base, state) = token_registry().await;
    let client = Client::new(&base, None).expect("client");
    let e = client.tags("team/app").await.expect_err("refused");
    assert!(
        matches!(&e, ClientError::Status { status, .. } if *status == StatusCode::UNAUTHORIZED),
        "{e:?}"
    );
    // One token, one retry: no loop.
    assert_eq!(state.seen.token_requests.load(Ordering::SeqCst), 1);
    assert_eq!(state.seen.registry_requests.load(Ordering::SeqCst), 2);
    let auths = state.seen.authorizations.lock().expect("lock").clone();
    assert_eq!(auths, [None, Some("Bearer anonymous".to_string())]);
}

#[tokio::test]
async fn basic_only_registries_get_basic() {
    let app = Router::new().fallback(|headers: HeaderMap| async move {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(ALICE) => (StatusCode::OK, "{}").into_response(),
            _ => (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", "Basic realm=\"x\"")],
                "",
            )
                .into_response(),
        }
    });
    let base = crate::serve(app).await;
    Client::new(&base, Some("alice:secret"))
        .expect("client")
        .ping()
        .await
        .expect("ping");
    let e = Client::new(&base, Some("alice:nope"))
        .expect("client")
        .ping()
        .await
        .expect_err("refused");
    assert_eq!(e.status(), Some(StatusCode::UNAUTHORIZED));
}

#[tokio::test]
async fn requests_meeting_the_challenge_at_once_fetch_one_token() {
    let (base, state) = token_registry().await;
    let client = Client::new(&base, Some("alice:secret")).expect("client");
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.tags_all("team/app").await })
    });
    for call in futures_util::future::join_all(calls).await {
        assert_eq!(call.expect("task").expect("tags"), ["v1"]);
    }
    assert_eq!(state.seen.token_requests.load(Ordering::SeqCst), 1);
}

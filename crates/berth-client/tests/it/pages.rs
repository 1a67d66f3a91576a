//! Catalogs, tag lists and referrers across `Link` pages.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_client::Client;
use berth_oci::Digest;

/// One page of `all` after `last`, `n` long, with a `Link` to the next:
/// relative on odd pages, absolute on even ones.
fn page(base: &str, path: &str, key: &str, all: &[&str], q: &HashMap<String, String>) -> Response {
    let n: usize = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(2);
    let start = q
        .get("last")
        .and_then(|l| all.iter().position(|x| x == l))
        .map_or(0, |i| i + 1);
    let items = &all[start.min(all.len())..(start + n).min(all.len())];
    let body = serde_json::json!({ "name": "x", key: items }).to_string();
    let mut r = Response::new(body.into());
    if start + n < all.len() {
        let last = items[items.len() - 1];
        let link = if (start / n).is_multiple_of(2) {
            format!("<{path}?n={n}&last={last}>; rel=\"next\"")
        } else {
            format!("<{base}{path}?last={last}&n={n}>; rel=\"next\"")
        };
        r.headers_mut().insert("link", link.parse().expect("link"));
    }
    r
}

const REPOS: [&str; 5] = ["a", "b/c", "d", "e", "f"];
const TAGS: [&str; 7] = ["1", "2", "3", "4", "5", "6", "7"];

async fn catalog(State(base): State<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    page(&base, "/v2/_catalog", "repositories", &REPOS, &q)
}

async fn tags(
    State(base): State<String>,
    Path(repo): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if repo != "x" {
        return (
            StatusCode::NOT_FOUND,
            r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#,
        )
            .into_response();
    }
    page(&base, "/v2/x/tags/list", "tags", &TAGS, &q)
}

async fn paged_registry() -> String {
    let (listener, base) = crate::bind().await;
    let app = Router::new()
        .route("/v2/_catalog", get(catalog))
        .route("/v2/{repo}/tags/list", get(tags))
        .with_state(base.clone());
    crate::spawn(listener, app);
    base
}

#[tokio::test]
async fn the_whole_catalog_across_pages() {
    let client = Client::new(&paged_registry().await, None).expect("client");
    assert_eq!(client.catalog_all().await.expect("catalog"), REPOS);
    // The first page alone, as before.
    assert_eq!(client.catalog(None).await.expect("page"), ["a", "b/c"]);
}

#[tokio::test]
async fn all_tags_across_pages_and_none_for_a_missing_repository() {
    let client = Client::new(&paged_registry().await, None).expect("client");
    assert_eq!(client.tags_all("x").await.expect("tags"), TAGS);
    assert!(client.tags_all("missing").await.expect("tags").is_empty());
}

#[tokio::test]
async fn a_link_back_to_a_seen_page_is_an_error() {
    let app = Router::new().route(
        "/v2/_catalog",
        get(|| async {
            (
                [("link", "</v2/_catalog>; rel=\"next\"")],
                r#"{"repositories":["a"]}"#,
            )
        }),
    );
    let client = Client::new(&crate::serve(app).await, None).expect("client");
    let e = client.catalog_all().await.expect_err("loop");
    assert!(e.to_string().contains("loop"), "{e}");
}

#[tokio::test]
async fn referrers_across_pages_and_none_without_the_api() {
    let subject = Digest::sha256(b"subject");
    let sig = Digest::sha256(b"sig");
    let sbom = Digest::sha256(b"sbom");
    let first = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "digest": sig.to_string(),
            "size": 123,
        }],
    })
    .to_string();
    let second = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sbom.to_string(),
            "size": 456,
        }],
    })
    .to_string();
    let path = format!("/v2/x/referrers/{subject}");
    let app = Router::new().route(
        &path,
        get(move |Query(q): Query<HashMap<String, String>>| async move {
            if q.contains_key("page") {
                second.into_response()
            } else {
                ([("link", "<?page=2>; rel=\"next\"")], first).into_response()
            }
        }),
    );
    let client = Client::new(&crate::serve(app).await, None).expect("client");
    let referrers = client.referrers("x", &subject).await.expect("referrers");
    assert_eq!(referrers.len(), 2);
    assert_eq!(referrers[0].digest, sig);
    assert_eq!(
        referrers[0].artifact_type.as_deref(),
        Some("application/vnd.dev.cosign.artifact.sig.v1+json")
    );
    assert_eq!(referrers[0].size, 123);
    assert_eq!(referrers[1].digest, sbom);
    assert_eq!(referrers[1].artifact_type, None);
    assert_eq!(
        referrers[1].media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(
        client
            .referrers("other", &subject)
            .await
            .expect("none")
            .is_empty()
    );
}

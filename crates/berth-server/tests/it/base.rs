//! `/v2/`, health checks, discovery and routing errors.

use crate::support::*;

#[tokio::test]
async fn base_health_and_discover() {
    let s = Server::start().await;
    let r = s.get("/v2/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    for p in ["/livez", "/readyz", "/startupz"] {
        assert_eq!(s.get(p).await.status(), 200, "{p}");
    }
    let r = s.get("/v2/_oci/ext/discover").await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["extensions"], serde_json::json!([]));
}

#[tokio::test]
async fn routing_errors() {
    let s = Server::start().await;
    assert_error(s.get("/v2/a/nothing/x").await, 404, "NAME_UNKNOWN").await;
    assert_error(s.get("/v2/UPPER/tags/list").await, 400, "NAME_INVALID").await;
    assert_error(s.get("/v2/a/..b/tags/list").await, 400, "NAME_INVALID").await;
    assert_error(
        s.get("/v2/a/blobs/sha256:1234").await,
        400,
        "DIGEST_INVALID",
    )
    .await;
    let r = s
        .http
        .patch(s.url("/v2/a/tags/list"))
        .send()
        .await
        .expect("req");
    assert_error(r, 405, "UNSUPPORTED").await;
    assert_error(
        s.get("/v2/a/blobs/uploads/not-a-session").await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert_eq!(s.get("/nothing").await.status(), 404);
}

/// `api::v2_routes()` (the route table's `/v2` rows) is exactly what the dispatcher serves: every listed
/// (method, route) is answered, every other method gets 405.
#[tokio::test]
async fn the_route_table_is_what_the_dispatcher_serves() {
    let s = Server::start().await;
    let zero = format!("sha256:{}", "0".repeat(64));
    let samples = [
        ("/v2/", "/v2/".to_string()),
        ("/v2/_catalog", "/v2/_catalog".to_string()),
        ("/v2/_oci/ext/discover", "/v2/_oci/ext/discover".to_string()),
        ("/v2/{name}/tags/list", "/v2/app/tags/list".to_string()),
        (
            "/v2/{name}/manifests/{reference}",
            "/v2/app/manifests/v1".to_string(),
        ),
        ("/v2/{name}/blobs/{digest}", format!("/v2/app/blobs/{zero}")),
        (
            "/v2/{name}/blobs/uploads/",
            "/v2/app/blobs/uploads/".to_string(),
        ),
        (
            "/v2/{name}/blobs/uploads/{uuid}",
            "/v2/app/blobs/uploads/00000000-0000-4000-8000-000000000000".to_string(),
        ),
        (
            "/v2/{name}/referrers/{digest}",
            format!("/v2/app/referrers/{zero}"),
        ),
    ];
    let routes = berth_server::api::v2_routes();
    let mut templates: Vec<&str> = routes.iter().map(|(_, t)| *t).collect();
    templates.dedup();
    for (template, _) in &samples {
        assert!(templates.contains(template), "{template} has no entry");
    }
    for (template, path) in samples {
        for method in ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"] {
            let r = s
                .http
                .request(method.parse().expect("method"), s.url(&path))
                .send()
                .await
                .expect("request");
            let listed = routes.contains(&(method, template));
            assert_eq!(
                r.status() != 405,
                listed,
                "{method} {path}: {} (listed: {listed})",
                r.status()
            );
        }
    }
}

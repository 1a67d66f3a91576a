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

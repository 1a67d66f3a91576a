//! Tag lists and the catalog, with pagination.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn tags_sorted_and_paginated() {
    let s = Server::start().await;
    let (m, _) = s.push_image("list/me", "b", &[b"x"]).await;
    for t in ["c", "a", "e", "d"] {
        assert_eq!(
            s.put_manifest("list/me", t, OCI_MANIFEST, &m)
                .await
                .status(),
            201
        );
    }
    let v: Value = s
        .get("/v2/list/me/tags/list")
        .await
        .json()
        .await
        .expect("j");
    assert_eq!(v, json!({"name":"list/me","tags":["a","b","c","d","e"]}));

    let r = s.get("/v2/list/me/tags/list?n=2").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/list/me/tags/list?n=2&last=b>; rel=\"next\""
    );
    assert_eq!(
        r.json::<Value>().await.expect("j")["tags"],
        json!(["a", "b"])
    );
    let r = s.get("/v2/list/me/tags/list?n=2&last=b").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/list/me/tags/list?n=2&last=d>; rel=\"next\""
    );
    assert_eq!(
        r.json::<Value>().await.expect("j")["tags"],
        json!(["c", "d"])
    );
    let r = s.get("/v2/list/me/tags/list?n=2&last=d").await;
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.json::<Value>().await.expect("j")["tags"], json!(["e"]));
    let r = s.get("/v2/list/me/tags/list?last=c").await;
    assert_eq!(
        r.json::<Value>().await.expect("j")["tags"],
        json!(["d", "e"])
    );
    let r = s.get("/v2/list/me/tags/list?n=0").await;
    assert_eq!(r.json::<Value>().await.expect("j")["tags"], json!([]));
    let r = s.get("/v2/list/me/tags/list?n=10").await;
    assert!(r.headers().get("link").is_none());

    assert_error(
        s.get("/v2/list/me/tags/list?n=-1").await,
        400,
        "UNSUPPORTED",
    )
    .await;
    assert_error(s.get("/v2/list/none/tags/list").await, 404, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn catalog_sorted_and_paginated() {
    let s = Server::start().await;
    for r in ["zeta", "alpha/one", "alpha/one/nested", "beta"] {
        s.push_blob(r, r.as_bytes()).await;
    }
    // Directories that are not repositories are not listed.
    std::fs::create_dir_all(s.root.join("_trivy/db")).expect("mkdir");
    std::fs::create_dir_all(s.root.join("empty/dir")).expect("mkdir");
    let v: Value = s.get("/v2/_catalog").await.json().await.expect("j");
    assert_eq!(
        v,
        json!({"repositories":["alpha/one","alpha/one/nested","beta","zeta"]})
    );
    let r = s.get("/v2/_catalog?n=3").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=3&last=beta>; rel=\"next\""
    );
    let r = s.get("/v2/_catalog?n=3&last=beta").await;
    assert_eq!(
        r.json::<Value>().await.expect("j")["repositories"],
        json!(["zeta"])
    );
}

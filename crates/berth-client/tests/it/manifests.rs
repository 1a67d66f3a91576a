//! Raw manifests and manifest heads: digests checked, media types found.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use berth_client::{Client, ClientError, OCI_MANIFEST, image_manifest};
use berth_oci::{Algorithm, Digest};

fn manifest() -> bytes::Bytes {
    image_manifest(
        (&Digest::sha256(b"config"), 6),
        &[(&Digest::sha256(b"layer"), 5)],
    )
}

/// A registry with one manifest, tagged `latest` and under its digest;
/// `bad-header` answers it with a wrong `Docker-Content-Digest`,
/// `untyped` with no `Content-Type` and no digest (on `HEAD` too). It
/// counts `GET`s.
async fn registry() -> (String, Arc<AtomicUsize>) {
    let gets = Arc::new(AtomicUsize::new(0));
    let counted = gets.clone();
    let app = Router::new().route(
        "/v2/{repo}/manifests/{reference}",
        any(
            move |method: Method, Path((_repo, reference)): Path<(String, String)>| {
                let gets = counted.clone();
                async move {
                    if method == Method::GET {
                        gets.fetch_add(1, Ordering::SeqCst);
                    }
                    let body = manifest();
                    let digest = Digest::sha256(&body).to_string();
                    let len = body.len().to_string();
                    let body = if method == Method::HEAD {
                        bytes::Bytes::new()
                    } else {
                        body
                    };
                    let with = |headers: Vec<(&'static str, String)>| {
                        let mut r = Response::new(body.clone().into());
                        for (k, v) in headers {
                            r.headers_mut().insert(k, v.parse().expect("value"));
                        }
                        r
                    };
                    match reference.as_str() {
                        "latest" => with(vec![
                            ("content-type", format!("{OCI_MANIFEST}; charset=utf-8")),
                            ("docker-content-digest", digest),
                            ("content-length", len),
                        ]),
                        r if r == digest => with(vec![("content-type", OCI_MANIFEST.to_string())]),
                        "bad-header" => with(vec![
                            ("content-type", OCI_MANIFEST.to_string()),
                            (
                                "docker-content-digest",
                                Digest::sha256(b"other").to_string(),
                            ),
                        ]),
                        "untyped" => with(vec![]),
                        _ => (StatusCode::NOT_FOUND, "").into_response(),
                    }
                }
            },
        ),
    );
    (crate::serve(app).await, gets)
}

#[tokio::test]
async fn a_manifest_by_tag_and_by_digest() {
    let (base, _) = registry().await;
    let client = Client::new(&base, None).expect("client");
    let digest = Digest::sha256(&manifest());
    let m = client
        .get_manifest_raw("x", "latest")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(m.bytes, manifest());
    assert_eq!(m.media_type, OCI_MANIFEST);
    assert_eq!(m.digest, digest);
    let by_digest = client
        .get_manifest_raw("x", &digest.to_string())
        .await
        .expect("get")
        .expect("found");
    assert_eq!(by_digest, m);
    // No Content-Type: the body's mediaType.
    let untyped = client
        .get_manifest_raw("x", "untyped")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(untyped.media_type, OCI_MANIFEST);
}

#[tokio::test]
async fn a_missing_manifest_is_none() {
    let (base, _) = registry().await;
    let client = Client::new(&base, None).expect("client");
    assert_eq!(
        client.get_manifest_raw("x", "missing").await.expect("get"),
        None
    );
    assert_eq!(
        client
            .head_manifest_digest("x", "missing")
            .await
            .expect("head"),
        None
    );
}

#[tokio::test]
async fn a_docker_content_digest_that_does_not_match_is_a_protocol_error() {
    let (base, _) = registry().await;
    let client = Client::new(&base, None).expect("client");
    let e = client
        .get_manifest_raw("x", "bad-header")
        .await
        .expect_err("mismatch");
    assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("Docker-Content-Digest"), "{e}");
}

#[tokio::test]
async fn a_manifest_under_a_digest_it_does_not_have_is_refused() {
    // A registry that answers every reference with the same bytes.
    let app = Router::new().fallback(|| async { ([("content-type", OCI_MANIFEST)], manifest()) });
    let client = Client::new(&crate::serve(app).await, None).expect("client");
    for asked in [
        Digest::sha256(b"wanted"),
        Digest::compute(Algorithm::Sha512, b"wanted"),
    ] {
        let e = client
            .get_manifest_raw("x", &asked.to_string())
            .await
            .expect_err("mismatch");
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
        let computed = Digest::compute(asked.algorithm(), &manifest());
        assert!(
            e.to_string().contains(&computed.to_string()),
            "digest computed in the asked algorithm: {e}"
        );
    }
    // The same bytes asked for under their own sha512 digest are fine.
    let sha512 = Digest::compute(Algorithm::Sha512, &manifest());
    let m = client
        .get_manifest_raw("x", &sha512.to_string())
        .await
        .expect("get")
        .expect("found");
    assert_eq!(m.digest, sha512);
}

#[tokio::test]
async fn heads_with_and_without_a_digest() {
    let (base, gets) = registry().await;
    let client = Client::new(&base, None).expect("client");
    let digest = Digest::sha256(&manifest());
    let head = client
        .head_manifest_digest("x", "latest")
        .await
        .expect("head")
        .expect("found");
    assert_eq!(head.digest, digest);
    assert_eq!(head.media_type, OCI_MANIFEST);
    assert_eq!(head.size, Some(manifest().len() as u64));
    assert_eq!(gets.load(Ordering::SeqCst), 0);
    // No digest on HEAD: a GET, and the digest computed.
    let head = client
        .head_manifest_digest("x", "untyped")
        .await
        .expect("head")
        .expect("found");
    assert_eq!(head.digest, digest);
    assert_eq!(head.media_type, OCI_MANIFEST);
    assert_eq!(head.size, Some(manifest().len() as u64));
    assert_eq!(gets.load(Ordering::SeqCst), 1);
}

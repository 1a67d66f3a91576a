//! Upload sessions: chunks, streams, completion, cancellation, restarts.

use berth_oci::{Algorithm, Digest};

use crate::support::*;

async fn start_session(s: &Server, repo: &str) -> String {
    let r = s
        .http
        .post(s.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-0");
    assert!(r.headers().contains_key("docker-upload-uuid"));
    header(&r, "location").to_string()
}

async fn patch(s: &Server, loc: &str, range: Option<&str>, data: &[u8]) -> reqwest::Response {
    let mut req = s
        .http
        .patch(s.url(loc))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec());
    if let Some(r) = range {
        req = req.header("content-range", r);
    }
    req.send().await.expect("patch")
}

#[tokio::test]
async fn chunked_in_order_then_put() {
    let s = Server::start().await;
    let loc = start_session(&s, "chunky").await;
    let data = b"0123456789abcdefghij";
    let r = patch(&s, &loc, Some("0-9"), &data[..10]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-9");
    let loc = header(&r, "location").to_string();

    let r = s.get(&loc).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), "0-9");

    // Out of order: 416 with the current range.
    let r = patch(&s, &loc, Some("15-19"), &data[15..]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "range"), "0-9");
    // Malformed Content-Range: 416 too.
    let r = patch(&s, &loc, Some("ten-twenty"), &data[10..]).await;
    assert_eq!(r.status(), 416);
    // Content-Range and body length disagree.
    let r = patch(&s, &loc, Some("10-12"), &data[10..]).await;
    assert_eq!(r.status(), 416);

    let r = patch(&s, &loc, Some("10-19"), &data[10..]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-19");

    let d = Digest::sha256(data);
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={d}")))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/chunky/blobs/{d}"));
    assert_eq!(
        s.get(&format!("/v2/chunky/blobs/{d}"))
            .await
            .bytes()
            .await
            .expect("b")
            .as_ref(),
        data
    );
    // The session is gone.
    assert_error(s.get(&loc).await, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn streamed_patch_and_final_chunk_in_put() {
    let s = Server::start().await;
    let loc = start_session(&s, "streamed").await;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = patch(&s, &loc, None, &big[..2_000_000]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-1999999");
    let d = Digest::sha256(&big);
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={d}")))
        .header("content-range", "2000000-2999999")
        .body(big[2_000_000..].to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    let got = s
        .get(&format!("/v2/streamed/blobs/{d}"))
        .await
        .bytes()
        .await
        .expect("b");
    assert!(got.as_ref() == &big[..]);
}

#[tokio::test]
async fn put_monolithic_into_session_and_sha512() {
    let s = Server::start().await;
    let data = b"sha512 content";
    let d = Digest::compute(Algorithm::Sha512, data);
    let loc = start_session(&s, "five").await;
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={d}")))
        .body(data.to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    let r = s.get(&format!("/v2/five/blobs/{d}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "docker-content-digest"), d.to_string());
    assert!(s.root.join("five/blobs/sha512").join(d.hex()).is_file());
}

#[tokio::test]
async fn digest_mismatch_and_missing_digest() {
    let s = Server::start().await;
    let wrong = Digest::sha256(b"something else");
    // Monolithic POST with a wrong digest: refused, nothing stored.
    let r = s
        .http
        .post(s.url(&format!("/v2/mono/blobs/uploads/?digest={wrong}")))
        .body(b"content".to_vec())
        .send()
        .await
        .expect("post");
    assert_error(r, 400, "DIGEST_INVALID").await;
    assert_eq!(
        s.get(&format!("/v2/mono/blobs/{wrong}")).await.status(),
        404
    );
    // The two `index.json` slots (dot names) belong there.
    let leftovers: Vec<_> = std::fs::read_dir(s.root.join("mono/.uploads"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| !n.to_string_lossy().starts_with(".index-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let loc = start_session(&s, "mono").await;
    let r = s
        .http
        .put(s.url(&loc))
        .body(b"x".to_vec())
        .send()
        .await
        .expect("put");
    assert_error(r, 400, "DIGEST_INVALID").await;
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest=sha256:nothex")))
        .send()
        .await
        .expect("put");
    assert_error(r, 400, "DIGEST_INVALID").await;
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={wrong}")))
        .body(b"x".to_vec())
        .send()
        .await
        .expect("put");
    assert_error(r, 400, "DIGEST_INVALID").await;
    assert_error(s.get(&loc).await, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn cancel() {
    let s = Server::start().await;
    let loc = start_session(&s, "cancel").await;
    patch(&s, &loc, None, b"abc").await;
    let r = s.http.delete(s.url(&loc)).send().await.expect("delete");
    assert_eq!(r.status(), 204);
    assert_error(s.get(&loc).await, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert_error(
        s.http.delete(s.url(&loc)).send().await.expect("delete"),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    // A session id is bound to its repository.
    let loc = start_session(&s, "cancel").await;
    let id = loc.rsplit('/').next().expect("id");
    assert_error(
        s.get(&format!("/v2/other/blobs/uploads/{id}")).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn aborted_body_leaves_no_blob() {
    let s = Server::start().await;
    let loc = start_session(&s, "abort").await;
    let data = vec![7u8; 1 << 20];
    let d = Digest::sha256(&data);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(data[..1000].to_vec()),
        Err(std::io::Error::other("client gave up")),
    ];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let _ = s
        .http
        .put(s.url(&format!("{loc}?digest={d}")))
        .body(body)
        .send()
        .await;
    assert_error(
        s.get(&format!("/v2/abort/blobs/{d}")).await,
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    assert!(!s.root.join("abort/blobs/sha256").join(d.hex()).exists());
}

#[tokio::test]
async fn upload_resumes_after_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 7) as u8).collect();
    let d = Digest::sha256(&data);
    let loc = {
        let s = Server::start_at(tmp.path()).await;
        let loc = start_session(&s, "resume/me").await;
        let r = patch(&s, &loc, Some("0-199999"), &data[..200_000]).await;
        assert_eq!(r.status(), 202);
        s.stop().await;
        loc
    };
    let s = Server::start_at(tmp.path()).await;
    let r = s.get(&loc).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), "0-199999");
    let r = patch(&s, &loc, Some("200000-499999"), &data[200_000..]).await;
    assert_eq!(r.status(), 202);
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={d}")))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    assert_eq!(
        s.get(&format!("/v2/resume/me/blobs/{d}"))
            .await
            .bytes()
            .await
            .expect("b")
            .len(),
        500_000
    );
    s.stop().await;

    // Same again, with the saved hash state lost: the file is re-hashed.
    let s = Server::start_at(tmp.path()).await;
    let loc = start_session(&s, "resume/me").await;
    patch(&s, &loc, None, &data[..1234]).await;
    s.stop().await;
    let id = loc.rsplit('/').next().expect("id");
    std::fs::remove_file(tmp.path().join(format!("resume/me/.uploads/{id}.state")))
        .expect("state file exists");
    let s = Server::start_at(tmp.path()).await;
    let d2 = Digest::sha256(&data[..2000]);
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={d2}")))
        .header("content-range", "1234-1999")
        .body(data[1234..2000].to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn refused_chunk_says_where_the_session_stands() {
    let s = Server::start().await;
    let loc = start_session(&s, "where").await;
    patch(&s, &loc, Some("0-2"), b"abc").await;
    let r = patch(&s, &loc, Some("5-7"), b"fgh").await;
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "location"), loc);
    assert_eq!(header(&r, "range"), "0-2");
    assert_eq!(
        header(&r, "blob-upload-session-id"),
        loc.rsplit('/').next().expect("id")
    );
    // A range whose length overflows is refused, not wrapped.
    let r = s
        .http
        .patch(s.url(&loc))
        .header("content-range", "3-18446744073709551615")
        .body(b"d".to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 416);
}

#[tokio::test]
async fn a_damaged_upload_file_is_caught_after_restart() {
    // The saved hash state vouches for bytes that a power loss may have
    // lost; after a restart the file itself is hashed before acceptance.
    let tmp = tempfile::tempdir().expect("tmp");
    let data = vec![42u8; 4096];
    let s = Server::start_at(tmp.path()).await;
    let loc = start_session(&s, "damaged").await;
    patch(&s, &loc, Some("0-4095"), &data).await;
    s.stop().await;
    let id = loc.rsplit('/').next().expect("id");
    std::fs::write(
        tmp.path().join(format!("damaged/.uploads/{id}")),
        vec![0u8; 4096],
    )
    .expect("damage");
    let s = Server::start_at(tmp.path()).await;
    let d = Digest::sha256(&data);
    let r = s
        .http
        .put(s.url(&format!("{loc}?digest={d}")))
        .send()
        .await
        .expect("put");
    assert_error(r, 400, "DIGEST_INVALID").await;
    assert_error(
        s.get(&format!("/v2/damaged/blobs/{d}")).await,
        404,
        "BLOB_UNKNOWN",
    )
    .await;
}

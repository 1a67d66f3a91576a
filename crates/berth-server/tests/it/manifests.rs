//! Manifest push, pull and delete for every manifest media type.

use berth_oci::Digest;
use serde_json::json;

use crate::support::*;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[tokio::test]
async fn push_pull_by_tag_and_digest() {
    let s = Server::start().await;
    let (m, d) = s
        .push_image("app", "v1", &[b"layer one", b"layer two"])
        .await;
    for reference in ["v1".to_string(), d.to_string()] {
        let path = format!("/v2/app/manifests/{reference}");
        let r = s.get(&path).await;
        assert_eq!(r.status(), 200, "{reference}");
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), d.to_string());
        assert_eq!(r.bytes().await.expect("b").as_ref(), &m[..], "byte-exact");
        let r = s.http.head(s.url(&path)).send().await.expect("head");
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), m.len().to_string());
        assert_eq!(header(&r, "docker-content-digest"), d.to_string());
    }
    assert_error(s.get("/v2/app/manifests/v2").await, 404, "MANIFEST_UNKNOWN").await;
    assert_error(
        s.get(&format!("/v2/app/manifests/{}", Digest::sha256(b"x")))
            .await,
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_error(
        s.get("/v2/nothere/manifests/v1").await,
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    let r = s
        .http
        .head(s.url("/v2/app/manifests/v2"))
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn put_response_headers_and_digest_reference() {
    let s = Server::start().await;
    let cd = s.push_blob("app", b"{}").await;
    let m = image_manifest(desc(OCI_CONFIG, &cd, 2), vec![], None);
    let d = Digest::sha256(&m);
    let r = s
        .put_manifest("app", &d.to_string(), OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/app/manifests/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d.to_string());
    assert!(
        s.get("/v2/app/tags/list")
            .await
            .json::<serde_json::Value>()
            .await
            .expect("j")["tags"]
            .as_array()
            .expect("tags")
            .is_empty()
    );
    // Pushing by a digest that is not the body's.
    let wrong = Digest::sha256(b"other");
    assert_error(
        s.put_manifest("app", &wrong.to_string(), OCI_MANIFEST, &m)
            .await,
        400,
        "DIGEST_INVALID",
    )
    .await;
}

#[tokio::test]
async fn missing_references_are_refused() {
    let s = Server::start().await;
    let cd = s.push_blob("app", b"{}").await;
    let ghost = Digest::sha256(b"ghost layer");
    let m = image_manifest(
        desc(OCI_CONFIG, &cd, 2),
        vec![desc(OCI_LAYER, &ghost, 11)],
        None,
    );
    let r = s.put_manifest("app", "v1", OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["digest"], ghost.to_string());
    // Missing config.
    let m = image_manifest(desc(OCI_CONFIG, &ghost, 11), vec![], None);
    assert_error(
        s.put_manifest("app", "v1", OCI_MANIFEST, &m).await,
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    .await;
    // An index whose child is not in the repository.
    let idx = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[desc(OCI_MANIFEST,&ghost,11)]})).expect("j");
    assert_error(
        s.put_manifest("app", "multi", OCI_INDEX, &idx).await,
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    .await;
    assert_error(s.get("/v2/app/manifests/v1").await, 404, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn invalid_and_oversized_manifests() {
    let s = Server::start().await;
    s.push_blob("app", b"{}").await;
    for body in [
        &b"not json"[..],
        b"{}",
        br#"{"schemaVersion":1,"name":"x"}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
    ] {
        assert_error(
            s.put_manifest("app", "bad", OCI_MANIFEST, body).await,
            400,
            "MANIFEST_INVALID",
        )
        .await;
    }
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = s.put_manifest("app", "huge", OCI_MANIFEST, &huge).await;
    assert_eq!(r.status(), 413);
    assert_error(
        s.put_manifest("app", "-badtag", OCI_MANIFEST, b"{}").await,
        400,
        "MANIFEST_INVALID",
    )
    .await;
}

#[tokio::test]
async fn index_and_docker_types_are_byte_exact() {
    let s = Server::start().await;
    let (m1, d1) = s.push_image("multi", "amd", &[b"amd64"]).await;
    let (m2, d2) = s.push_image("multi", "arm", &[b"arm64"]).await;
    // Key order and whitespace are the client's; the registry must keep them.
    let idx = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_INDEX}\",\n  \"manifests\": [\n    {{\"mediaType\":\"{OCI_MANIFEST}\",\"size\":{},\"digest\":\"{d1}\",\"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\"}}}},\n    {{\"mediaType\":\"{OCI_MANIFEST}\",\"size\":{},\"digest\":\"{d2}\",\"platform\":{{\"architecture\":\"arm64\",\"os\":\"linux\"}}}}\n  ]\n}}",
        m1.len(),
        m2.len()
    );
    let r = s
        .put_manifest("multi", "latest", OCI_INDEX, idx.as_bytes())
        .await;
    assert_eq!(r.status(), 201);
    let r = s.get("/v2/multi/manifests/latest").await;
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert_eq!(r.bytes().await.expect("b").as_ref(), idx.as_bytes());

    // Docker schema2 manifest and manifest list.
    let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = s.push_blob("docker", cfg).await;
    let ld = s.push_blob("docker", b"docker layer").await;
    let dm = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":{},"digest":"{cd}"}},"layers":[{{"mediaType":"{DOCKER_LAYER}","size":12,"digest":"{ld}"}},{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":5,"digest":"{}","urls":["https://example.invalid/x"]}}]}}"#,
        cfg.len(),
        Digest::sha256(b"foreign, never pushed")
    );
    let r = s
        .put_manifest("docker", "v2s2", DOCKER_MANIFEST, dm.as_bytes())
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let dmd = Digest::sha256(dm.as_bytes());
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","size":{},"digest":"{dmd}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        dm.len()
    );
    let r = s
        .put_manifest("docker", "list", DOCKER_LIST, list.as_bytes())
        .await;
    assert_eq!(r.status(), 201);
    for (tag, body, mt) in [("v2s2", &dm, DOCKER_MANIFEST), ("list", &list, DOCKER_LIST)] {
        let r = s.get(&format!("/v2/docker/manifests/{tag}")).await;
        assert_eq!(header(&r, "content-type"), mt);
        assert_eq!(
            header(&r, "docker-content-digest"),
            Digest::sha256(body.as_bytes()).to_string()
        );
        assert_eq!(r.bytes().await.expect("b").as_ref(), body.as_bytes());
    }
}

#[tokio::test]
async fn subject_header() {
    let s = Server::start().await;
    let (_, target) = s.push_image("sig", "v1", &[b"l"]).await;
    let cd = s.push_blob("sig", b"{}").await;
    let m = image_manifest(
        desc("application/vnd.oci.empty.v1+json", &cd, 2),
        vec![],
        Some(
            json!({"artifactType":"application/example","subject":{"mediaType":OCI_MANIFEST,"digest":target.to_string(),"size":1}}),
        ),
    );
    let r = s
        .put_manifest("sig", &Digest::sha256(&m).to_string(), OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "oci-subject"), target.to_string());
}

#[tokio::test]
async fn delete_by_tag_and_by_digest() {
    let s = Server::start().await;
    let (_, d) = s.push_image("del", "a", &[b"x"]).await;
    let r = s
        .put_manifest(
            "del",
            "b",
            OCI_MANIFEST,
            &s.get("/v2/del/manifests/a").await.bytes().await.expect("b"),
        )
        .await;
    assert_eq!(r.status(), 201);

    // Untag: the manifest stays reachable by digest and the other tag.
    let r = s
        .http
        .delete(s.url("/v2/del/manifests/a"))
        .send()
        .await
        .expect("del");
    assert_eq!(r.status(), 202);
    assert_error(s.get("/v2/del/manifests/a").await, 404, "MANIFEST_UNKNOWN").await;
    assert_eq!(s.get("/v2/del/manifests/b").await.status(), 200);
    assert_eq!(s.get(&format!("/v2/del/manifests/{d}")).await.status(), 200);
    assert_error(
        s.http
            .delete(s.url("/v2/del/manifests/a"))
            .send()
            .await
            .expect("del"),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;

    // Delete by digest removes the manifest and its remaining tags.
    let r = s
        .http
        .delete(s.url(&format!("/v2/del/manifests/{d}")))
        .send()
        .await
        .expect("del");
    assert_eq!(r.status(), 202);
    assert_error(
        s.get(&format!("/v2/del/manifests/{d}")).await,
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_error(s.get("/v2/del/manifests/b").await, 404, "MANIFEST_UNKNOWN").await;
    assert_error(
        s.http
            .delete(s.url(&format!("/v2/del/manifests/{d}")))
            .send()
            .await
            .expect("del"),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;

    // Untagging the only tag keeps the manifest by digest.
    let (_, d) = s.push_image("del", "only", &[b"y"]).await;
    s.http
        .delete(s.url("/v2/del/manifests/only"))
        .send()
        .await
        .expect("del");
    assert_eq!(s.get(&format!("/v2/del/manifests/{d}")).await.status(), 200);
}

#[tokio::test]
async fn retag_keeps_old_manifest_by_digest() {
    let s = Server::start().await;
    let (_, old) = s.push_image("re", "latest", &[b"1"]).await;
    let (_, new) = s.push_image("re", "latest", &[b"2"]).await;
    let r = s.get("/v2/re/manifests/latest").await;
    assert_eq!(header(&r, "docker-content-digest"), new.to_string());
    assert_eq!(
        s.get(&format!("/v2/re/manifests/{old}")).await.status(),
        200
    );
}

#[tokio::test]
async fn malformed_tag_is_unknown_on_read_and_invalid_on_push() {
    let s = Server::start().await;
    s.push_image("t", "ok", &[b"x"]).await;
    assert_error(
        s.get("/v2/t/manifests/.INVALID_MANIFEST_NAME").await,
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    let r = s
        .http
        .head(s.url("/v2/t/manifests/.INVALID_MANIFEST_NAME"))
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), 404);
    let r = s
        .http
        .delete(s.url("/v2/t/manifests/.bad"))
        .send()
        .await
        .expect("del");
    assert_error(r, 404, "MANIFEST_UNKNOWN").await;
    assert_error(
        s.put_manifest("t", ".bad", OCI_MANIFEST, b"{}").await,
        400,
        "MANIFEST_INVALID",
    )
    .await;
}

#[tokio::test]
async fn deleted_child_manifest_is_gone_even_if_an_index_names_it() {
    let s = Server::start().await;
    let (m, d) = s.push_image("kids", "child", &[b"x"]).await;
    let idx = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[desc(OCI_MANIFEST,&d,m.len())]})).expect("j");
    assert_eq!(
        s.put_manifest("kids", "all", OCI_INDEX, &idx)
            .await
            .status(),
        201
    );
    let r = s
        .http
        .delete(s.url(&format!("/v2/kids/manifests/{d}")))
        .send()
        .await
        .expect("del");
    assert_eq!(r.status(), 202);
    assert_error(
        s.get(&format!("/v2/kids/manifests/{d}")).await,
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_error(
        s.http
            .delete(s.url(&format!("/v2/kids/manifests/{d}")))
            .send()
            .await
            .expect("del"),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn a_manifest_is_not_deleted_through_the_blob_route() {
    let s = Server::start().await;
    let (_, d) = s.push_image("guard", "v1", &[b"x"]).await;
    let r = s
        .http
        .delete(s.url(&format!("/v2/guard/blobs/{d}")))
        .send()
        .await
        .expect("del");
    assert_error(r, 405, "UNSUPPORTED").await;
    assert_eq!(s.get("/v2/guard/manifests/v1").await.status(), 200);
}

/// A caller who may create tags but not move them: many pushes racing to
/// create one tag, exactly one wins; the rest are refused, not silently
/// overwriting the winner.
#[tokio::test]
async fn create_only_pushes_racing_for_one_tag_leave_one_winner() {
    let s = Server::start().await;
    let cd = s.push_blob("app", b"{}").await;
    let repo: berth_oci::RepoName = "app".parse().expect("name");
    let reference: berth_oci::Reference = "v1".parse().expect("reference");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let layer = s.push_blob("app", format!("layer {i}").as_bytes()).await;
        let m = image_manifest(
            desc(OCI_CONFIG, &cd, 2),
            vec![desc(OCI_LAYER, &layer, format!("layer {i}").len())],
            None,
        );
        let reg = s.registry.clone();
        let (repo, reference) = (repo.clone(), reference.clone());
        tasks.push(tokio::spawn(async move {
            reg.put_manifest_as(&repo, &reference, Some(OCI_MANIFEST), &m, true, None)
                .await
                .map(|p| p.digest)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(d) => winners.push(d),
            Err(e) => assert!(
                matches!(e, berth_server::registry::RegistryError::TagExists(_)),
                "{e}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one push creates the tag");
    let r = s.get("/v2/app/manifests/v1").await;
    assert_eq!(header(&r, "docker-content-digest"), winners[0].to_string());
}

/// The registry announces repository creation, pushes, pulls and deletes.
#[tokio::test]
async fn registry_events_announce_what_happened() {
    use berth_server::registry::events::RegistryEvent as E;
    let s = Server::start().await;
    let mut rx = s.registry.subscribe();
    let (_, d) = s.push_image("app", "v1", &[b"layer"]).await;
    assert_eq!(s.get("/v2/app/manifests/v1").await.status(), 200);
    let r = s
        .http
        .delete(s.url("/v2/app/manifests/v1"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 202);
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    assert!(
        matches!(&seen[0], E::RepoCreated { repo } if repo == "app"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(
            |e| matches!(e, E::ManifestPushed { repo, reference, digest, .. }
            if repo == "app" && reference == "v1" && *digest == d)
        ),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, E::ManifestPulled { repo } if repo == "app"))
    );
    assert!(
        seen.iter().any(
            |e| matches!(e, E::ManifestDeleted { repo, reference, digest: Some(x), .. }
            if repo == "app" && reference == "v1" && *x == d)
        ),
        "{seen:?}"
    );
}

/// A client that writes its whole body before it reads (Python's
/// `http.client`, some proxies) is answered 413 for a manifest over the
/// limit, not cut off mid-write: the body is read and dropped first.
#[tokio::test]
async fn an_oversized_manifest_is_answered_after_its_body() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = Server::start().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let body = vec![b' '; 5 << 20];
    let head = format!(
        "PUT /v2/app/manifests/big HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("headers");
    tcp.write_all(&body).await.expect("the whole body is taken");
    let mut answer = vec![0; 1024];
    let n = tcp.read(&mut answer).await.expect("answer");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

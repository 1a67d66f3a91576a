//! What a push records for search: layer and config sizes, what the image
//! config (or a Helm chart's) says, and who pushed it; recorded again when
//! a repository is derived from its layout.

use std::collections::BTreeMap;

use axum::body::Body;
use berth_oci::{Digest, RepoName};
use berth_server::meta::{HistoryMeta, ManifestMeta};
use berth_server::server::{ServeOptions, Server as Built};
use serde_json::json;
use tower::ServiceExt;

use crate::library::{config, htpasswd};
use crate::support::*;

const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// An image config with everything search shows.
fn image_config() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "created": "2024-05-01T10:00:00Z", "author": "Ann",
        "config": {"Labels": {"org.opencontainers.image.vendor": "Acme"}},
        "history": [
            {"created": "2024-05-01T09:00:00Z", "created_by": "ADD rootfs.tar /"},
            {"created": "2024-05-01T10:00:00Z", "created_by": "ENV A=b", "empty_layer": true}
        ],
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("json")
}

/// The in-process server with htpasswd users, driven by `oneshot` as
/// `user`.
struct Authed {
    server: Built,
    auth: String,
}

impl Authed {
    async fn call(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", &self.auth)
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request");
        let resp = self.server.router().oneshot(req).await.expect("call");
        resp.status().as_u16()
    }

    async fn blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256(data);
        let path = format!("/v2/{repo}/blobs/uploads/?digest={d}");
        let status = self
            .call("POST", &path, "application/octet-stream", data.to_vec())
            .await;
        assert_eq!(status, 201, "push blob");
        d
    }

    /// Pushes `config` (of `config_type`) and `layers` (of `layer_type`),
    /// then a manifest tagged `tag`; returns what the store recorded.
    async fn push(
        &self,
        repo: &str,
        tag: &str,
        (config_type, config): (&str, &[u8]),
        (layer_type, layers): (&str, &[&[u8]]),
    ) -> ManifestMeta {
        let cd = self.blob(repo, config).await;
        let mut descs = Vec::new();
        for l in layers {
            descs.push(desc(layer_type, &self.blob(repo, l).await, l.len()));
        }
        let m = image_manifest(desc(config_type, &cd, config.len()), descs, None);
        let path = format!("/v2/{repo}/manifests/{tag}");
        assert_eq!(self.call("PUT", &path, OCI_MANIFEST, m.clone()).await, 201);
        recorded(self.server.registry(), repo, &Digest::sha256(&m)).await
    }
}

/// What the store recorded of a manifest.
async fn recorded(
    reg: &berth_server::registry::Registry,
    repo: &str,
    digest: &Digest,
) -> ManifestMeta {
    let repo: RepoName = repo.parse().expect("name");
    reg.meta()
        .manifest(&repo, digest)
        .await
        .expect("read")
        .expect("recorded")
}

async fn authed(dir: &std::path::Path) -> Authed {
    let c = config(
        dir,
        json!({"address": "127.0.0.1", "port": 0,
               "auth": {"htpasswd": {"path": htpasswd(dir)}}}),
        json!({}),
    );
    let server = Built::build(&c, ServeOptions::default())
        .await
        .expect("build");
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "alice:wonderland"
        )
    );
    Authed { server, auth }
}

#[tokio::test]
async fn a_push_records_the_image_config_sizes_and_pusher() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = authed(tmp.path()).await;
    let config = image_config();
    let m = s
        .push(
            "lib/app",
            "v1",
            (OCI_CONFIG, &config),
            (OCI_LAYER, &[b"layer one", b"two"]),
        )
        .await;
    assert_eq!(m.layer_sizes, vec![9, 3]);
    assert_eq!(m.config_size, config.len() as u64);
    assert_eq!(m.config_media_type.as_deref(), Some(OCI_CONFIG));
    assert_eq!(m.pushed_by.as_deref(), Some("alice"));
    let image = m.image.expect("image details");
    assert_eq!(
        (
            image.os.as_deref(),
            image.arch.as_deref(),
            image.variant.as_deref()
        ),
        (Some("linux"), Some("arm64"), Some("v8"))
    );
    assert_eq!(image.created.as_deref(), Some("2024-05-01T10:00:00Z"));
    assert_eq!(image.author.as_deref(), Some("Ann"));
    assert_eq!(
        image.labels,
        BTreeMap::from([(
            "org.opencontainers.image.vendor".to_string(),
            "Acme".to_string()
        )])
    );
    assert_eq!(image.history.len(), 2);
    assert_eq!(
        image.history[1],
        HistoryMeta {
            created: Some("2024-05-01T10:00:00Z".into()),
            created_by: Some("ENV A=b".into()),
            empty_layer: true,
            ..Default::default()
        }
    );

    // A config that does not parse, or that is no image config, records
    // no details and fails nothing.
    let m = s
        .push(
            "lib/app",
            "broken",
            (OCI_CONFIG, b"{not json"),
            (OCI_LAYER, &[b"l"]),
        )
        .await;
    assert_eq!((m.image, m.config_size), (None, 9));
    let m = s
        .push(
            "lib/app",
            "artifact",
            ("application/vnd.example.config+json", b"{\"os\":\"linux\"}"),
            ("application/vnd.example.layer", &[b"l"]),
        )
        .await;
    assert_eq!(m.image, None);
    assert_eq!(
        m.config_media_type.as_deref(),
        Some("application/vnd.example.config+json")
    );
}

#[tokio::test]
async fn a_helm_chart_maps_to_oci_annotations() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = authed(tmp.path()).await;
    let chart = serde_json::to_vec(&json!({
        "apiVersion": "v2", "name": "nginx", "version": "15.1.0", "appVersion": "1.25",
        "description": "NGINX", "home": "https://nginx.org",
        "sources": ["https://github.com/bitnami/charts"],
        "maintainers": [{"name": "Bitnami"}, {"name": "Ann", "email": "a@example.com"}],
        "annotations": {"licenses": "Apache-2.0"}
    }))
    .expect("json");
    let m = s
        .push(
            "charts/nginx",
            "15.1.0",
            (HELM_CONFIG, &chart),
            (HELM_LAYER, &[b"chart.tgz"]),
        )
        .await;
    let image = m.image.expect("chart details");
    let label = |k: &str| {
        image
            .labels
            .get(&format!("org.opencontainers.image.{k}"))
            .cloned()
    };
    assert_eq!(label("title").as_deref(), Some("nginx"));
    assert_eq!(label("version").as_deref(), Some("15.1.0"));
    assert_eq!(label("description").as_deref(), Some("NGINX"));
    assert_eq!(label("url").as_deref(), Some("https://nginx.org"));
    assert_eq!(
        label("source").as_deref(),
        Some("https://github.com/bitnami/charts")
    );
    assert_eq!(label("authors").as_deref(), Some("Bitnami, Ann"));
    assert_eq!(label("licenses").as_deref(), Some("Apache-2.0"));
    assert_eq!((image.os, image.arch), (None, None));
    assert_eq!(m.pushed_by.as_deref(), Some("alice"));
}

/// Pushes an image with [`image_config`] through the plain test server.
async fn push_described(s: &Server, repo: &str) -> Digest {
    let config = image_config();
    let cd = s.push_blob(repo, &config).await;
    let ld = s.push_blob(repo, b"layer").await;
    let m = image_manifest(
        desc(OCI_CONFIG, &cd, config.len()),
        vec![desc(OCI_LAYER, &ld, 5)],
        None,
    );
    assert_eq!(
        s.put_manifest(repo, "v1", OCI_MANIFEST, &m).await.status(),
        201
    );
    Digest::sha256(&m)
}

#[tokio::test]
async fn a_derive_records_the_same_and_fills_rows_of_older_versions() {
    let s = Server::start().await;
    let d = push_described(&s, "meta/derived").await;
    let pushed = recorded(&s.registry, "meta/derived", &d).await;
    assert_eq!(pushed.pushed_by, None, "no authentication: nobody");
    assert!(pushed.image.is_some());

    // A row as an older Berth wrote it, and a version that makes the next
    // read derive the repository: the row is read again, keeping its push
    // time.
    let repo: RepoName = "meta/derived".parse().expect("name");
    let old = ManifestMeta {
        layer_sizes: Vec::new(),
        config_size: 0,
        config_media_type: None,
        image: None,
        pushed_at: 12345,
        ..pushed.clone()
    };
    let change = berth_server::meta::RepoChange {
        put_manifests: vec![old],
        set_tags: vec![("v1".into(), d.to_string())],
        version: berth_server::meta::IndexVersion::new("stale"),
        replace: true,
        ..Default::default()
    };
    s.registry
        .meta()
        .apply(&repo, &change, false)
        .await
        .expect("apply");
    assert_eq!(s.get("/v2/meta/derived/tags/list").await.status(), 200);
    let again = recorded(&s.registry, "meta/derived", &d).await;
    assert_eq!(
        again,
        ManifestMeta {
            pushed_at: 12345,
            ..pushed.clone()
        }
    );

    // A store derived afresh from the layout records the same details.
    let root = s.stop().await.expect("temporary root");
    std::fs::remove_file(root.path().join(".berth/meta.redb")).expect("rm meta");
    let s = Server::start_at(root.path()).await;
    assert_eq!(s.get("/v2/meta/derived/tags/list").await.status(), 200);
    let derived = recorded(&s.registry, "meta/derived", &d).await;
    assert_eq!(derived.image, pushed.image);
    assert_eq!(derived.layer_sizes, vec![5]);
    assert_eq!(derived.config_size, pushed.config_size);
}

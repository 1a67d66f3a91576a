//! The sync tests' fixtures at work: docker-registry and a second Berth
//! over HTTPS with htpasswd take the image helpers' pushes and serve them
//! back to a client that trusts only the test CA; the proxy counts,
//! throttles, cuts and refuses; an upstream stopped and started again
//! keeps its port and data.

use berth_client::Client;
use berth_oci::Digest;
use futures_util::StreamExt;

use crate::images::*;
use crate::proxy::{Proxy, Refusal};
use crate::support::layer;
use crate::upstream::*;

const CREDS: (&str, &str) = ("alice", "wonderland");

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// `GET url` with Basic credentials: status, headers and body.
async fn get(
    http: &reqwest::Client,
    url: &str,
    accept: &str,
) -> (u16, reqwest::header::HeaderMap, bytes::Bytes) {
    let resp = http
        .get(url)
        .basic_auth(CREDS.0, Some(CREDS.1))
        .header("accept", accept)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body"))
}

/// Pushes every kind of content the helpers make to `up` (htpasswd and
/// TLS) and reads it back with a client that trusts only the test CA.
/// Answers the image and its referrer.
async fn push_and_read_back(up: &dyn Upstream) -> (Pushed, Digest) {
    let ca = up.ca_pem().expect("tls");
    let https = https_client(ca);
    let base = up.url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let cert_dir: Vec<_> = std::fs::read_dir(up.cert_dir().expect("tls"))
        .expect("cert dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(cert_dir, ["ca.crt"]);

    let anonymous = https
        .get(format!("{base}/v2/"))
        .send()
        .await
        .expect("the CA is trusted");
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .expect("ascii");
    assert!(challenge.starts_with("Basic "), "{challenge}");
    let err = plain_client()
        .get(format!("{base}/v2/"))
        .send()
        .await
        .expect_err("a client without the CA refuses the certificate");
    assert!(err.is_connect(), "{err:?}");

    let client = up.client(Some(&format!("{}:{}", CREDS.0, CREDS.1)));
    let (gz, _) = layer("hello.txt", b"hello from upstream");
    let image = push_image(&client, "sync/app", "v1", &[&gz]).await;
    let docker = push_docker_image(&client, "sync/docker", "v1", &[b"a docker layer"]).await;
    let platforms = [("linux", "amd64", None), ("linux", "arm64", Some("v8"))];
    let (index, children) = push_multiarch_index(&client, "sync/multi", "v1", &platforms).await;
    let signature = push_cosign_signature_tag(&client, "sync/app", &image.digest).await;
    let referrer = push_referrer(
        &client,
        "sync/app",
        &image.digest,
        "application/vnd.test.sbom",
    )
    .await;

    let (status, headers, body) = get(
        &https,
        &format!("{base}/v2/sync/app/manifests/v1"),
        berth_client::ACCEPT_MANIFESTS,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["docker-content-digest"],
        image.digest.to_string().as_str()
    );
    assert_eq!(Digest::sha256(&body), image.digest);
    let (status, _, body) = get(
        &https,
        &format!("{base}/v2/sync/app/blobs/{}", image.layers[0].0),
        "*/*",
    )
    .await;
    assert_eq!((status, &body[..]), (200, &gz[..]));

    let (status, headers, _) = get(
        &https,
        &format!("{base}/v2/sync/docker/manifests/v1"),
        berth_client::ACCEPT_MANIFESTS,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], DOCKER_MANIFEST);
    assert_eq!(
        headers["docker-content-digest"],
        docker.digest.to_string().as_str()
    );

    let (status, _, body) = get(
        &https,
        &format!("{base}/v2/sync/multi/manifests/v1"),
        berth_client::ACCEPT_MANIFESTS,
    )
    .await;
    assert_eq!((status, Digest::sha256(&body)), (200, index.clone()));
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let listed: Vec<&str> = value["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["digest"].as_str().expect("digest"))
        .collect();
    let children: Vec<String> = children.iter().map(Digest::to_string).collect();
    assert_eq!(listed, children);
    assert_eq!(value["manifests"][1]["platform"]["variant"], "v8");

    let (status, _, body) = get(
        &https,
        &format!("{base}/v2/sync/app/tags/list"),
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
    let tags: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let sig_tag = format!("sha256-{}.sig", image.digest.hex());
    assert!(
        tags["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t == sig_tag.as_str()),
        "{tags}"
    );
    let (status, _, body) = get(
        &https,
        &format!("{base}/v2/sync/app/manifests/{sig_tag}"),
        berth_client::ACCEPT_MANIFESTS,
    )
    .await;
    assert_eq!((status, Digest::sha256(&body)), (200, signature));
    let sig: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(
        sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].is_string(),
        "{sig}"
    );

    let (status, _, body) = get(
        &https,
        &format!("{base}/v2/sync/app/manifests/{referrer}"),
        berth_client::ACCEPT_MANIFESTS,
    )
    .await;
    assert_eq!(status, 200);
    let art: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(art["subject"]["digest"], image.digest.to_string().as_str());
    assert_eq!(art["artifactType"], "application/vnd.test.sbom");
    (image, referrer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_registry_with_htpasswd_and_tls_takes_pushes_and_serves_them() {
    let up = DockerRegistry::start(UpstreamOptions::new().user(CREDS.0, CREDS.1).tls());
    push_and_read_back(&up).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_upstream_with_htpasswd_and_tls_takes_pushes_and_lists_referrers() {
    let up = BerthUpstream::start(UpstreamOptions::new().user(CREDS.0, CREDS.1).tls());
    let (image, referrer) = push_and_read_back(&up).await;
    let https = https_client(up.ca_pem().expect("tls"));
    let (status, _, body) = get(
        &https,
        &format!("{}/v2/sync/app/referrers/{}", up.url(), image.digest),
        "application/vnd.oci.image.index.v1+json",
    )
    .await;
    assert_eq!(status, 200);
    let index: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        index["manifests"][0]["digest"],
        referrer.to_string().as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_counts_throttles_cuts_and_refuses() {
    let up = DockerRegistry::start(UpstreamOptions::new());
    let proxy = Proxy::start(&up.url());
    let via = Client::new(&proxy.url(), None).expect("client");

    // Pushed through the proxy: the upload's Location names the proxy, so
    // every step of it is counted.
    let image = push_image(&via, "p/app", "v1", &[b"a small layer"]).await;
    assert_eq!(
        proxy.count("POST", "/v2/p/app/blobs/uploads/"),
        2,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count_matching("PUT", r"^/v2/p/app/blobs/uploads/[^/]+$"),
        2,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("PUT", "/v2/p/app/manifests/v1"), 1);
    assert_eq!(proxy.total(), 5);
    let (body, _) = via.get_manifest("p/app", "v1").await.expect("manifest");
    assert_eq!(Digest::sha256(&body), image.digest);
    assert_eq!(proxy.count("GET", "/v2/p/app/manifests/"), 1);
    assert_eq!(proxy.count("*", "/v2/p/app/manifests/"), 2);
    assert_eq!(proxy.forwarded("/v2/p/app/manifests/v1"), body.len() as u64);
    assert!(
        via.blob_exists("p/app", &image.layers[0].0)
            .await
            .expect("head")
    );

    // Throttled: the client gets the first bytes of a large blob long
    // before the proxy has sent it all.
    let big = push_random_layer_image(&up.client(None), "p/big", "v1", 8 << 20).await;
    let (layer_digest, len) = big.layers[0].clone();
    let path = format!("/v2/p/big/blobs/{layer_digest}");
    proxy.throttle(Some(1 << 20));
    let http = plain_client();
    let resp = http
        .get(format!("{}{path}", proxy.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(len));
    let mut stream = resp.bytes_stream();
    let mut hasher = berth_oci::DigestHasher::new(layer_digest.algorithm());
    let mut received = 0u64;
    let first = stream.next().await.expect("a first chunk").expect("chunk");
    received += first.len() as u64;
    hasher.update(&first);
    assert!(proxy.forwarded(&path) < len, "streamed, not buffered");
    while received < 1 << 20 {
        let chunk = stream.next().await.expect("more").expect("chunk");
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let sent = proxy.forwarded(&path);
    assert!(
        received <= sent && sent < len,
        "{received} received, {sent} sent of {len}"
    );
    proxy.throttle(None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(received, len);
    assert_eq!(hasher.finish(), layer_digest);
    assert_eq!(proxy.forwarded(&path), len);

    // Cut: blob bodies end early and broken; manifests pass whole.
    proxy.reset_counts();
    proxy.cut_blobs_after(Some(1000));
    let resp = http
        .get(format!("{}{path}", proxy.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.content_length(), Some(len));
    let mut stream = resp.bytes_stream();
    let mut got = 0u64;
    let mut broken = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got += c.len() as u64,
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    assert!(broken && got <= 1000, "{got} bytes, broken: {broken}");
    assert_eq!(proxy.forwarded(&path), 1000);
    assert!(via.pull_blob("p/big", &layer_digest).await.is_err());
    via.get_manifest("p/big", "v1")
        .await
        .expect("manifests are not cut");
    proxy.cut_blobs_after(None);
    let whole = via
        .pull_blob("p/big", &layer_digest)
        .await
        .expect("whole again");
    assert_eq!(whole.bytes, len);

    // Refusals, and healing.
    proxy.refuse(Refusal::Unavailable);
    let before = proxy.total();
    let err = via.ping().await.expect_err("503");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(proxy.total(), before + 1, "a 503 is counted");
    proxy.heal();
    via.ping().await.expect("healed");

    proxy.throttle(Some(1 << 20));
    let resp = http
        .get(format!("{}{path}", proxy.url()))
        .send()
        .await
        .expect("get");
    let mut stream = resp.bytes_stream();
    stream.next().await.expect("a first chunk").expect("chunk");
    proxy.refuse(Refusal::Connection);
    let mut rest = 0u64;
    let mut broken = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => rest += c.len() as u64,
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    assert!(broken && rest < len, "an open download is dropped");
    let err = plain_client()
        .get(format!("{}/v2/", proxy.url()))
        .send()
        .await
        .expect_err("refused");
    assert!(err.is_connect(), "{err:?}");
    proxy.throttle(None);
    proxy.heal();
    via.ping().await.expect("healed, on the same port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_stopped_and_restarted_keep_their_port_and_data() {
    let mut docker = DockerRegistry::start(UpstreamOptions::new().user(CREDS.0, CREDS.1).tls());
    let mut berth = BerthUpstream::start(UpstreamOptions::new().user(CREDS.0, CREDS.1));
    let creds = format!("{}:{}", CREDS.0, CREDS.1);
    for up in [&mut docker as &mut dyn Upstream, &mut berth] {
        let client = up.client(Some(&creds));
        let image = push_image(&client, "keep/app", "v1", &[b"kept"]).await;
        let host = up.host().to_string();
        up.stop();
        let err = client.ping().await.expect_err("stopped");
        assert!(err.status().is_none(), "{err}");
        up.restart();
        assert_eq!(up.host(), host);
        let (body, _) = client.get_manifest("keep/app", "v1").await.expect("kept");
        assert_eq!(Digest::sha256(&body), image.digest);
        push_image(&client, "keep/app", "v2", &[b"after the restart"]).await;
    }
}

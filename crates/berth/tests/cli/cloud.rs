//! The GCS and Azure drivers from the command line: `berth serve` on a
//! zot-style Azure config (zot's key spellings, any case) against a real
//! Azurite, pushed to and pulled from over HTTP, and restarted on a new
//! local directory; `berth verify` on zot's GCS and Azure examples.

use std::path::Path;

use berth_oci::Digest;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::json;

use crate::azurite_server::{ACCOUNT, AzuriteServer, CONTAINER, KEY};
use crate::support::{Berth, berth};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// zot's `config-azure.json`, pointed at this Azurite, keys as users
/// write them in YAML or JSON.
fn azure_config(dir: &Path, azure: &AzuriteServer) -> std::path::PathBuf {
    let config = dir.join("config.json");
    let storage = json!({
        "rootDirectory": dir.join("local"),
        "storageDriver": {
            "name": "azure",
            "RootDirectory": "/zot",
            "container": CONTAINER,
            "AccountName": ACCOUNT,
            "accountkey": KEY,
            "serviceURL": azure.endpoint(),
        },
    });
    std::fs::write(
        &config,
        json!({"storage": storage, "http": {"address": "127.0.0.1", "port": "0"}}).to_string(),
    )
    .expect("config");
    config
}

/// A chunked push of `layer` (two PATCHes, the first a whole part),
/// then an image using it, tagged `v1`.
fn push(http: &Client, b: &Berth, repo: &str, layer: &[u8]) -> Vec<u8> {
    let r = http
        .post(b.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .expect("start");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut location = r.headers()["location"].to_str().expect("loc").to_string();
    let half = 6 << 20;
    for (from, chunk) in [(0, &layer[..half]), (half, &layer[half..])] {
        let r = http
            .patch(b.url(&location))
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{from}-{}", from + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .expect("patch");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        location = r.headers()["location"].to_str().expect("loc").to_string();
    }
    let ld = Digest::sha256(layer);
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = http
        .put(b.url(&format!("{location}{sep}digest={ld}")))
        .send()
        .expect("finish");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = Digest::sha256(config);
    let r = http
        .post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={cd}")))
        .body(config.to_vec())
        .send()
        .expect("config");
    assert_eq!(r.status(), StatusCode::CREATED);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let r = http
        .put(b.url(&format!("/v2/{repo}/manifests/v1")))
        .header("content-type", MANIFEST)
        .body(manifest.clone())
        .send()
        .expect("manifest");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
    manifest
}

/// Pulls the image tagged `v1` of `repo` and its layer.
fn pull(http: &Client, b: &Berth, repo: &str) -> (Vec<u8>, Vec<u8>) {
    let r = http
        .get(b.url(&format!("/v2/{repo}/manifests/v1")))
        .header("accept", MANIFEST)
        .send()
        .expect("manifest");
    assert_eq!(r.status(), StatusCode::OK);
    let manifest = r.bytes().expect("body").to_vec();
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
    let ld = parsed["layers"][0]["digest"]
        .as_str()
        .expect("layer digest");
    let r = http
        .get(b.url(&format!("/v2/{repo}/blobs/{ld}")))
        .send()
        .expect("layer");
    assert_eq!(r.status(), StatusCode::OK);
    (manifest, r.bytes().expect("body").to_vec())
}

#[test]
fn serve_on_azure_pushes_pulls_and_restarts_from_the_container() {
    let azure = AzuriteServer::start();
    let http = Client::new();
    let layer: Vec<u8> = (0..(8 << 20) + 3).map(|i| (i % 251) as u8).collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let b = Berth::start_config(&azure_config(dir.path(), &azure));
    let manifest = push(&http, &b, "cloud/app", &layer);
    assert_eq!(
        pull(&http, &b, "cloud/app"),
        (manifest.clone(), layer.clone())
    );
    assert!(
        !dir.path().join("local/cloud").exists(),
        "nothing of the image on the local disk"
    );
    assert!(b.terminate().success());

    // Another instance with nothing local serves what the container holds.
    let other = tempfile::tempdir().expect("tempdir");
    let b = Berth::start_config(&azure_config(other.path(), &azure));
    assert_eq!(pull(&http, &b, "cloud/app"), (manifest, layer));
    let catalog: serde_json::Value = http
        .get(b.url("/v2/_catalog"))
        .send()
        .expect("catalog")
        .json()
        .expect("json");
    assert_eq!(catalog["repositories"], json!(["cloud/app"]));
    assert!(b.terminate().success());
}

#[test]
fn verify_accepts_zots_gcs_and_azure_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("gcs-credentials.json");
    std::fs::write(&key, "{}").expect("key");
    // zot's examples/config-gcs.json and config-azure.json, file paths and
    // the (base64) account key changed; without the sub-paths that set
    // `remoteCache` (a key of the DynamoDB work, not of the drivers).
    let gcs = json!({
        "storage": {"rootDirectory": dir.path().join("zot"), "dedupe": false,
            "storageDriver": {"name": "gcs", "bucket": "zot-storage", "credentialsFile": key}},
        "http": {"address": "127.0.0.1", "port": "8080"},
        "log": {"level": "debug"},
    });
    let driver = |root: &str| {
        json!({"name": "azure", "rootdirectory": root, "container": "zot-storage",
            "accountname": "zot-storage", "accountkey": "YXp1cml0ZQ==",
            "serviceurl": "http://localhost:10000"})
    };
    let azure = json!({
        "distSpecVersion": "1.1.0-dev",
        "storage": {"rootDirectory": dir.path().join("zot"), "storageDriver": driver("/zot"),
            "subPaths": {
                "/a": {"rootDirectory": dir.path().join("zot1"), "storageDriver": driver("/zot-a")},
            }},
        "http": {"address": "127.0.0.1", "port": "8080"},
        "log": {"level": "debug"},
    });
    for (name, config) in [("gcs", gcs), ("azure", azure)] {
        let path = dir.path().join(format!("config-{name}.json"));
        std::fs::write(&path, config.to_string()).expect("write");
        let out = berth().arg("verify").arg(&path).output().expect("run");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

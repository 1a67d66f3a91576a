//! Two `berth serve` processes sharing one S3 bucket (a real `s3s-fs`)
//! and one DynamoDB (a real moto server), configured as zot's
//! `examples/config-dynamodb.json` is (`remoteCache: true`, zot's table
//! names): an upload's chunks alternate between them, what one pushes the
//! other serves and lists; with DynamoDB gone what needs metadata is a
//! 503 naming the store. (A DynamoDB that cannot be reached at start:
//! `scaleout.rs`.)

use std::path::Path;
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dynamo_server::DynamoServer;
use crate::s3_server::S3Server;
use crate::scaleout::{
    node, pull_image, push_image, start_nodes, upload_round_robin, write_config,
};
use crate::support::{Berth, berth};

/// zot's dynamodb `cacheDriver` (its example's table names) at `endpoint`.
pub(crate) fn zot_cache_driver(endpoint: &str) -> Value {
    json!({
        "name": "dynamodb",
        "endpoint": endpoint,
        "region": "us-east-2",
        "cacheTablename": "ZotBlobTable",
        "repoMetaTablename": "ZotRepoMetadataTable",
        "imageMetaTablename": "ZotImageMetaTable",
        "repoBlobsInfoTablename": "ZotRepoBlobsInfoTable",
        "userDataTablename": "ZotUserDataTable",
        "versionTablename": "ZotVersion",
        // moto is Python on a shared machine: slower than DynamoDB.
        "commandTimeout": "3s"
    })
}

/// `berth serve CONFIG` with credentials for the DynamoDB server (moto
/// takes any), as the AWS environment would give them.
fn serve(config: &Path) -> Berth {
    let child = berth()
        .arg("serve")
        .arg(config)
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn berth");
    Berth::attach(child)
}

/// The config for one instance, with zot's `remoteCache: true`.
fn config(dir: &Path, s3: &S3Server, dynamo: &DynamoServer) -> std::path::PathBuf {
    let path = write_config(dir, s3, zot_cache_driver(&dynamo.endpoint()), false);
    let mut c: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    c["storage"]["remoteCache"] = json!(true);
    std::fs::write(&path, c.to_string()).expect("write");
    path
}

#[test]
fn two_instances_share_one_bucket_and_one_dynamodb() {
    let s3 = S3Server::start();
    let mut dynamo = DynamoServer::start();
    let (_dirs, nodes, http) = start_nodes(2, |_, dir| serve(&config(dir, &s3, &dynamo)));

    // One upload, its chunks alternating between the two instances (the
    // upload's lock is shared through DynamoDB).
    let blob: Vec<u8> = (0..(6 << 20) + 3).map(|i| (i * 7 % 251) as u8).collect();
    let digest = upload_round_robin(&http, &nodes, "team/app", &blob, 2);
    for i in 0..2 {
        let r = http
            .head(node(&nodes, i).url(&format!("/v2/team/app/blobs/{digest}")))
            .send()
            .expect("head");
        assert_eq!(r.status(), StatusCode::OK, "instance {i}");
    }

    // What one pushes the other serves, both ways, and both list it.
    let m1 = push_image(&http, node(&nodes, 0), "team/app", "v1", 1);
    assert_eq!(pull_image(&http, node(&nodes, 1), "team/app", "v1"), m1);
    let m2 = push_image(&http, node(&nodes, 1), "team/app", "v2", 2);
    assert_eq!(pull_image(&http, node(&nodes, 0), "team/app", "v2"), m2);
    for i in 0..2 {
        let tags: Value = http
            .get(node(&nodes, i).url("/v2/team/app/tags/list"))
            .send()
            .expect("tags")
            .json()
            .expect("json");
        assert_eq!(tags["tags"], json!(["v1", "v2"]), "instance {i}");
        let catalog: Value = http
            .get(node(&nodes, i).url("/v2/_catalog"))
            .send()
            .expect("catalog")
            .json()
            .expect("json");
        assert_eq!(catalog["repositories"], json!(["team/app"]), "instance {i}");
    }

    // DynamoDB gone: what needs the metadata answers 503 UNAVAILABLE with
    // Retry-After, naming the store, while a blob read goes on.
    dynamo.kill();
    for i in 0..2 {
        let r = http
            .get(node(&nodes, i).url("/v2/team/app/tags/list"))
            .send()
            .expect("tags");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "instance {i}");
        assert!(r.headers().contains_key("retry-after"), "instance {i}");
        let body: Value = r.json().expect("json");
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("metadata store"), "{message}");
        let r = http
            .get(node(&nodes, i).url(&format!("/v2/team/app/blobs/{digest}")))
            .send()
            .expect("blob");
        assert_eq!(r.status(), StatusCode::OK, "instance {i}: a blob read");
    }
}

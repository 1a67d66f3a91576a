//! The DynamoDB metadata store against a real DynamoDB-compatible server
//! (moto, `dynamo_server.rs`): the conformance suite, racing writers,
//! large changes written in chunks, the tables zot's keys name, and an
//! unreachable server. Its shared locks: `dynamo_locks.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_server::meta::{
    DynamoMetaStore, DynamoOptions, DynamoTables, IndexVersion, MetaStore, conformance,
};

use crate::dynamo_server::DynamoServer;
use crate::meta_backends::{self, created, dg, manifest, repo};

/// Options for `server` with fixed credentials (moto takes any) and
/// tables named after `prefix`.
pub(crate) fn options(server: &DynamoServer, prefix: &str) -> DynamoOptions {
    DynamoOptions {
        endpoint: Some(server.endpoint()),
        region: "us-east-2".into(),
        tables: DynamoTables::with_prefix(prefix),
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        session_token: None,
        // moto is Python on a shared machine: slower than DynamoDB.
        command_timeout: Duration::from_secs(3),
    }
}

pub(crate) async fn store(server: &DynamoServer, prefix: &str) -> DynamoMetaStore {
    DynamoMetaStore::open(&options(server, prefix))
        .await
        .expect("open")
}

#[tokio::test]
async fn conformance_suite() {
    let server = DynamoServer::start();
    conformance::run(&store(&server, "conformance").await).await;
}

/// Four writers on four threads, each applying its own changes to one
/// repository: each change is one transaction conditional on the
/// repository's revision, retried when another came first, so no count or
/// row is lost to a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_applies_to_one_repository_lose_nothing() {
    let server = DynamoServer::start();
    meta_backends::concurrent_applies_lose_nothing(Arc::new(store(&server, "race").await), 8).await;
}

/// The same random changes (removals, overwrites, subjects, children,
/// replaces) leave DynamoDB answering exactly as the embedded store does.
#[tokio::test]
async fn dynamo_answers_as_redb_does_after_any_changes() {
    let server = DynamoServer::start();
    meta_backends::answers_as_redb_does(&store(&server, "diff").await, 60).await;
}

/// A change past a transaction's 100 items is written in chunks under a
/// commit marker: whole once done, and a claim left by a writer that died
/// keeps the version matching nothing until it lapses and is taken over.
#[tokio::test]
async fn large_changes_are_written_in_chunks_and_a_dead_writers_claim_is_taken_over() {
    let server = DynamoServer::start();
    let store = store(&server, "large").await;
    let r = repo("big/app");
    let mut change = created(1);
    change.replace = true;
    for i in 0..150 {
        let name = format!("m{i}");
        change
            .put_manifests
            .push(manifest(&name, &[&format!("l{i}"), "shared"]));
        change
            .set_tags
            .push((format!("t{i}"), dg(&name).to_string()));
    }
    store.apply(&r, &change, false).await.expect("large apply");
    assert_eq!(store.manifests(&r).await.expect("ms").len(), 150);
    assert_eq!(store.tags(&r).await.expect("tags").len(), 150);
    assert_eq!(store.blob_refs(&r, &dg("shared")).await.expect("refs"), 150);
    assert_eq!(
        store.version(&r).await.expect("version"),
        Some(IndexVersion::new("v1"))
    );
    let stamps = store.repo_stamps().await.expect("stamps");
    assert_eq!(stamps[0].1.revision, 1);

    // A writer that claimed the repository and died: the version matches
    // no index.json meanwhile; a fresh claim makes others wait, a lapsed
    // one is taken over.
    let client = raw_client(&server);
    let claim = |at: u64| {
        client
            .put_item()
            .table_name("largeRepoMetadataTable")
            .item("pk", s("#repos"))
            .item("sk", s("big/app"))
            .item("v", s(""))
            .item("rev", n(1))
            .item("pend", s("a-dead-writer"))
            .item("pend_at", n(at))
            .send()
    };
    claim(now()).await.expect("claim");
    assert_eq!(
        store.version(&r).await.expect("version"),
        Some(IndexVersion::new("")),
        "matches no index.json"
    );
    let start = Instant::now();
    let e = store
        .apply(&r, &created(2), false)
        .await
        .expect_err("a fresh claim holds others off");
    assert!(e.is_unavailable(), "{e}");
    assert!(start.elapsed() < Duration::from_secs(30), "{e}");
    claim(now() - 3600).await.expect("claim");
    store
        .apply(&r, &created(3), false)
        .await
        .expect("takes over");
    assert_eq!(
        store.version(&r).await.expect("version"),
        Some(IndexVersion::new("v3"))
    );
}

fn s(v: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(v.into())
}

fn n(v: u64) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(v.to_string())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A client of its own for `server`, to look at or plant items.
pub(crate) fn raw_client(server: &DynamoServer) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-2"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(server.endpoint())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The tables are the ones zot's keys name, made at start; a table zot
/// made (one `TableKey`) is refused by name.
#[tokio::test]
async fn tables_are_made_as_named_and_zots_are_refused() {
    let server = DynamoServer::start();
    let mut o = options(&server, "");
    o.tables = DynamoTables {
        cache: "ZotBlobTable".into(),
        repo_meta: "ZotRepoMetadataTable".into(),
        image_meta: "ZotImageMetaTable".into(),
        repo_blobs: "ZotRepoBlobsInfoTable".into(),
        user_data: "ZotUserDataTable".into(),
        version: "ZotVersion".into(),
    };
    let store = DynamoMetaStore::open(&o).await.expect("open");
    let app = repo("lib/app");
    let mut change = created(1);
    change.put_manifests.push(manifest("m1", &["l1"]));
    store.apply(&app, &change, false).await.expect("apply");
    let client = raw_client(&server);
    let mut names = client
        .list_tables()
        .send()
        .await
        .expect("list")
        .table_names
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        [
            "ZotBlobTable",
            "ZotImageMetaTable",
            "ZotRepoBlobsInfoTable",
            "ZotRepoMetadataTable",
            "ZotUserDataTable",
            "ZotVersion"
        ]
    );
    let manifests = client
        .scan()
        .table_name("ZotImageMetaTable")
        .send()
        .await
        .expect("scan");
    assert_eq!(manifests.count, 1, "the manifest is in imageMetaTablename");

    // A table zot made: one hash key, TableKey.
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name("ZotsOwn")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("TableKey")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("TableKey")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create");
    o.tables.repo_meta = "ZotsOwn".into();
    let e = DynamoMetaStore::open(&o)
        .await
        .expect_err("refused")
        .to_string();
    assert!(e.contains("ZotsOwn") && e.contains("TableKey"), "{e}");
}

/// An unreachable server fails at open and on each call as unavailable,
/// quickly and naming the endpoint.
#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let mut server = DynamoServer::start();
    let store = store(&server, "gone").await;
    let app = repo("lib/app");
    store.apply(&app, &created(1), false).await.expect("apply");
    server.kill();
    for _ in 0..2 {
        let start = Instant::now();
        let e = store.version(&app).await.expect_err("down");
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().contains(&server.endpoint()), "{e}");
        assert!(start.elapsed() < Duration::from_secs(8), "{e}");
    }
    let e = DynamoMetaStore::open(&options(&server, "gone"))
        .await
        .expect_err("down");
    assert!(e.is_unavailable(), "{e}");
}

/// Tables deleted under a running store: the next check finds the store
/// lost its data (once: it makes the tables again and marks them), so the
/// registry rebuilds it from storage.
#[tokio::test]
async fn a_store_whose_tables_were_deleted_is_found_lost_once() {
    use berth_server::meta::StoreCheck;
    let server = DynamoServer::start();
    let store = store(&server, "lost").await;
    assert_eq!(store.check().await.expect("check"), StoreCheck::Kept);
    let client = raw_client(&server);
    let tables = client.list_tables().send().await.expect("list");
    for t in tables.table_names.unwrap_or_default() {
        client
            .delete_table()
            .table_name(t)
            .send()
            .await
            .expect("delete");
    }
    assert_eq!(store.check().await.expect("check"), StoreCheck::Lost);
    assert_eq!(store.check().await.expect("check"), StoreCheck::Kept);
    store
        .apply(&repo("a"), &created(1), false)
        .await
        .expect("apply to the new tables");
    assert_eq!(store.repos().await.expect("repos"), ["a"]);
}

/// A large change (written in chunks) racing small ones on the same
/// repository: each small one waits for the claim or fails as contended,
/// never lands in the middle, so every count matches the rows in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_changes_racing_a_large_one_keep_the_counts_right() {
    let server = DynamoServer::start();
    let store = Arc::new(store(&server, "mixed").await);
    let r = repo("mixed/app");
    store.apply(&r, &created(0), false).await.expect("create");
    let large = {
        let (store, r) = (store.clone(), r.clone());
        tokio::spawn(async move {
            let mut change = created(1);
            change.replace = true;
            for i in 0..120 {
                change
                    .put_manifests
                    .push(manifest(&format!("big{i}"), &["shared"]));
            }
            store.apply(&r, &change, false).await.expect("large");
        })
    };
    let mut applied = 0;
    for i in 0..20 {
        let mut change = created(100 + i);
        change
            .put_manifests
            .push(manifest(&format!("small{i}"), &["shared"]));
        match store.apply(&r, &change, false).await {
            Ok(()) => applied += 1,
            Err(e) => assert!(e.is_unavailable(), "only contention may refuse: {e}"),
        }
    }
    large.await.expect("large");
    let manifests = store.manifests(&r).await.expect("ms");
    assert!(manifests.len() >= 120, "{}", manifests.len());
    let using = manifests
        .iter()
        .filter(|m| m.layers.contains(&dg("shared").to_string()));
    assert_eq!(
        store.blob_refs(&r, &dg("shared")).await.expect("refs"),
        using.count() as u64,
        "the count is the rows'"
    );
    assert_eq!(
        store.blob_refs(&r, &dg("config")).await.expect("refs"),
        manifests.len() as u64
    );
    let stamps = store.repo_stamps().await.expect("stamps");
    assert_eq!(stamps[0].1.revision, 2 + applied, "one per change applied");
}

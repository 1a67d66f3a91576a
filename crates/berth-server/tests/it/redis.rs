//! The Redis metadata store against a real redis-server (its shared
//! locks: `redis_locks.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::aio::MultiplexedConnection;
use berth_oci::Tag;
use berth_server::meta::{
    IndexVersion, MetaStore, RedisLocks, RedisMetaStore, RedisOptions, conformance,
};

use crate::meta_backends::{self, created, dg, manifest, repo};
use crate::redis_server::RedisServer;

pub(crate) fn options(server: &RedisServer, prefix: &str) -> RedisOptions {
    RedisOptions {
        addr: vec![server.addr()],
        key_prefix: prefix.into(),
        ..Default::default()
    }
}

pub(crate) async fn store(server: &RedisServer, prefix: &str) -> RedisMetaStore {
    RedisMetaStore::open(&options(server, prefix))
        .await
        .expect("open")
}

#[tokio::test]
async fn conformance_suite() {
    let server = RedisServer::start();
    conformance::run(&store(&server, "conformance").await).await;
}

#[tokio::test]
async fn conformance_over_a_url_with_a_password_and_a_database() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let options = RedisOptions {
        url: Some(format!("redis://:s3cret@{}/2", server.addr())),
        ..Default::default()
    };
    conformance::run(&RedisMetaStore::open(&options).await.expect("open")).await;

    let wrong = RedisOptions {
        addr: vec![server.addr()],
        password: Some("wrong-secret".into()),
        ..Default::default()
    };
    let e = RedisMetaStore::open(&wrong)
        .await
        .err()
        .expect("a wrong password is refused")
        .to_string();
    assert!(e.contains(&server.addr()), "{e}");
    assert!(!e.contains("wrong-secret"), "{e}");
}

#[tokio::test]
async fn key_prefixes_and_databases_keep_stores_apart() {
    let server = RedisServer::start();
    let one = store(&server, "one").await;
    let two = store(&server, "two").await;
    let app = repo("lib/app");
    let v1: Tag = "v1".parse().expect("tag");
    let mut change = created(1);
    change.put_manifests.push(manifest("m1", &["l1"]));
    change.set_tags.push(("v1".into(), dg("m1").to_string()));
    one.apply(&app, &change, false).await.expect("apply");
    one.record_pulls(&app, &dg("m1"), 1, 5).await.expect("pull");
    one.set_setting("roots", "one").await.expect("set");

    assert_eq!(two.repos().await.expect("repos"), Vec::<String>::new());
    assert_eq!(two.tag(&app, &v1).await.expect("tag"), None);
    assert_eq!(two.manifest(&app, &dg("m1")).await.expect("m"), None);
    assert_eq!(two.blob_refs(&app, &dg("l1")).await.expect("refs"), 0);
    assert_eq!(
        two.pull_stats(&app, &dg("m1")).await.expect("pulls").count,
        0
    );
    assert_eq!(two.setting("roots").await.expect("setting"), None);

    // Forgetting the repository in one store leaves the other's.
    two.apply(&app, &created(2), false).await.expect("apply");
    two.remove_repo("lib/app").await.expect("remove");
    assert_eq!(one.repos().await.expect("repos"), vec!["lib/app"]);
    assert_eq!(
        one.tag(&app, &v1).await.expect("tag"),
        Some(dg("m1").to_string())
    );
    assert_eq!(one.blob_refs(&app, &dg("l1")).await.expect("refs"), 1);

    // The same prefix in another database is another store.
    let other_db = RedisMetaStore::open(&RedisOptions {
        db: 1,
        ..options(&server, "one")
    })
    .await
    .expect("open");
    assert_eq!(other_db.repos().await.expect("repos"), Vec::<String>::new());
    assert_eq!(other_db.setting("roots").await.expect("setting"), None);
}

/// Four writers on four threads of the runtime, each applying its own
/// changes to one repository: the script applies each whole, so no count
/// or row is lost to a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_applies_to_one_repository_lose_nothing() {
    let server = RedisServer::start();
    meta_backends::concurrent_applies_lose_nothing(Arc::new(store(&server, "race").await), 15)
        .await;
}

/// A field of a hash, read raw.
async fn hget(con: &mut MultiplexedConnection, key: &str, field: &str) -> Option<String> {
    ::redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(con)
        .await
        .expect("hget")
}

/// A sorted set's members and scores, raw.
async fn scored(con: &mut MultiplexedConnection, key: &str) -> Vec<(String, f64)> {
    ::redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(con)
        .await
        .expect("zrange")
}

/// The count of the blob the tests call `blob` in `fmt:`'s `lib/app`, raw.
async fn blob_count(con: &mut MultiplexedConnection, blob: &str) -> Option<String> {
    hget(con, "fmt:repo:lib/app:blobs", &dg(blob).to_string()).await
}

/// The same random changes leave Redis answering exactly as the embedded
/// store does.
#[tokio::test]
async fn redis_answers_as_redb_does_after_any_changes() {
    let server = RedisServer::start();
    meta_backends::answers_as_redb_does(&store(&server, "diff").await, 150).await;
}

/// While the server is down every command fails as unavailable, at once
/// and naming the server; once it is back the same store works again,
/// with no reopening.
#[tokio::test]
async fn a_store_recovers_once_its_server_is_back() {
    let mut server = RedisServer::start();
    let store = store(&server, "back").await;
    let app = repo("lib/app");
    store.apply(&app, &created(1), false).await.expect("apply");

    server.kill();
    for _ in 0..3 {
        let start = Instant::now();
        let e = store.version(&app).await.expect_err("the server is down");
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().contains(&server.addr()), "{e}");
        assert!(start.elapsed() < Duration::from_secs(4), "{e}");
    }

    server.restart();
    let start = Instant::now();
    loop {
        match store.apply(&app, &created(2), false).await {
            Ok(()) => break,
            Err(e) => assert!(start.elapsed() < Duration::from_secs(10), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store.version(&app).await.expect("version"),
        Some(IndexVersion::new("v2"))
    );
}

/// What `apply` writes is what the key layout in `redis_store.rs` says,
/// byte for byte, so a store written by an earlier Berth keeps working; a
/// row that does not decode fails the change whole.
#[tokio::test]
async fn applied_rows_keep_their_stored_format() {
    let server = RedisServer::start();
    let store = store(&server, "fmt").await;
    let app = repo("lib/app");
    let mut m1 = manifest("m1", &["l1", "shared"]);
    m1.annotations
        .insert("note".into(), "caf\u{e9} \"q\"\n".into());
    let mut r1 = manifest("r1", &["shared"]);
    r1.subject = Some(m1.digest.clone());
    let mut change = created(7);
    change.put_manifests = vec![m1.clone(), r1.clone()];
    change.set_tags = vec![("v1".into(), m1.digest.clone())];
    store.apply(&app, &change, false).await.expect("apply");

    let client = ::redis::Client::open(server.url()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    assert_eq!(
        hget(&mut con, "fmt:repo:lib/app:manifests", &m1.digest).await,
        Some(serde_json::to_string(&m1).expect("json")),
        "the manifest's JSON as serde_json writes it"
    );
    assert_eq!(
        hget(&mut con, "fmt:repo:lib/app:tags", "v1").await,
        Some(m1.digest.clone())
    );
    let tagged_at = hget(&mut con, "fmt:repo:lib/app:tagtimes", "v1").await;
    assert!(
        tagged_at.is_some_and(|t| t.parse::<u64>().is_ok_and(|t| t > 1_700_000_000)),
        "seconds since the epoch"
    );
    assert_eq!(blob_count(&mut con, "shared").await, Some("2".into()));
    assert_eq!(blob_count(&mut con, "config").await, Some("2".into()));
    let fp: Option<String> = ::redis::cmd("GET")
        .arg("fmt:repo:lib/app:fp")
        .query_async(&mut con)
        .await
        .expect("get");
    assert_eq!(fp.as_deref(), Some("v7"));
    assert_eq!(
        scored(&mut con, "fmt:repo:lib/app:referrers").await,
        vec![(format!("{}\0{}", m1.digest, r1.digest), 0.0)]
    );
    assert_eq!(
        scored(&mut con, "fmt:repos").await,
        vec![("lib/app".to_string(), 0.0)]
    );

    // A row that does not decode: the change fails as corrupt, and writes
    // nothing (the tag it would have set is not there).
    ::redis::cmd("HSET")
        .arg("fmt:repo:lib/app:manifests")
        .arg(&r1.digest)
        .arg("{not json")
        .exec_async(&mut con)
        .await
        .expect("hset");
    let mut change = created(8);
    change.remove_manifests = vec![r1.digest.clone()];
    change.set_tags = vec![("v2".into(), m1.digest.clone())];
    let e = store
        .apply(&app, &change, false)
        .await
        .expect_err("a corrupt row");
    assert!(
        matches!(e, berth_server::meta::MetaError::Corrupt { .. }),
        "{e}"
    );
    assert_eq!(hget(&mut con, "fmt:repo:lib/app:tags", "v2").await, None);
    assert_eq!(blob_count(&mut con, "shared").await, Some("2".into()));
}

/// The pulls of each repository, as its stamp counts them.
async fn pulls(store: &RedisMetaStore) -> Vec<(String, u64)> {
    let stamps = store.repo_stamps().await.expect("stamps");
    stamps.into_iter().map(|(n, s)| (n, s.pulls)).collect()
}

/// A store an older Berth counted pulls in gets each repository's total:
/// from the manifests' counts when a pull finds none, and for every
/// repository, once, when a store is opened.
#[tokio::test]
async fn a_store_from_before_pull_totals_adds_them_up() {
    let server = RedisServer::start();
    let store = store(&server, "old").await;
    let (app, two) = (repo("lib/app"), repo("lib/two"));
    for r in [&app, &two] {
        store.apply(r, &created(1), false).await.expect("apply");
    }
    for (r, m, n) in [(&app, "m1", 3), (&app, "m2", 2), (&two, "m1", 4)] {
        store.record_pulls(r, &dg(m), n, 10).await.expect("pulls");
    }
    // As an older Berth left it: no totals, and no setting saying so.
    let client = ::redis::Client::open(server.url()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    ::redis::pipe()
        .cmd("DEL")
        .arg("old:pulls")
        .cmd("HDEL")
        .arg("old:settings")
        .arg("pull-totals")
        .exec_async(&mut con)
        .await
        .expect("clear");

    store
        .record_pulls(&two, &dg("m1"), 1, 20)
        .await
        .expect("pull");
    assert_eq!(
        pulls(&store).await,
        vec![("lib/app".to_string(), 0), ("lib/two".to_string(), 5)],
        "a pull that finds no total makes it from the manifests' counts"
    );
    for _ in 0..2 {
        let reopened = self::store(&server, "old").await;
        assert_eq!(
            pulls(&reopened).await,
            vec![("lib/app".to_string(), 5), ("lib/two".to_string(), 5)],
            "added up once"
        );
    }
    assert_eq!(
        hget(&mut con, "old:settings", "pull-totals")
            .await
            .as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn an_unreachable_server_is_named_in_the_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let by_addr = RedisOptions {
        addr: vec![addr.clone()],
        password: Some("pa55word".into()),
        ..Default::default()
    };
    let by_url = RedisOptions {
        url: Some(format!("redis://me:pa55word@{addr}/0")),
        ..Default::default()
    };
    for options in [by_addr, by_url] {
        let e = RedisMetaStore::open(&options)
            .await
            .err()
            .expect("nothing listens there")
            .to_string();
        assert!(e.contains(&addr), "{e}");
        assert!(!e.contains("pa55word"), "{e}");
        let e = RedisLocks::open(&options)
            .await
            .err()
            .expect("nothing listens there")
            .to_string();
        assert!(e.contains(&addr), "{e}");
    }
}

/// A Redis that dies under a running server: what needs the metadata
/// store answers 503 `UNAVAILABLE` with `Retry-After`, naming the store,
/// never a 500 that calls the store corrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_answered_as_unavailable() {
    let mut redis = RedisServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = crate::support::Server::start_with(
        tmp.path(),
        serde_json::json!({"cacheDriver": {"name": "redis", "url": redis.url(), "keyprefix": "outage"}}),
    )
    .await;
    server.push_image("app", "v1", &[b"layer"]).await;
    let blob = server.push_blob("app", b"a blob").await;
    assert_eq!(server.get("/v2/app/manifests/v1").await.status(), 200);

    redis.kill();
    // A blob read does not need the metadata store.
    let r = server.get(&format!("/v2/app/blobs/{blob}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"a blob");
    for path in ["/v2/app/manifests/v1", "/v2/app/tags/list", "/v2/_catalog"] {
        let r = server.get(path).await;
        assert_eq!(r.status().as_u16(), 503, "{path}");
        assert_eq!(crate::support::header(&r, "retry-after"), "1", "{path}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{path}: {body}");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("metadata store"), "{path}: {message}");
        assert!(!message.contains("corrupt"), "{path}: {message}");
    }
    server.stop().await;
}

/// A server that lost its data (here flushed): `check` says so once (the
/// store is marked again at once, so two instances do not both rebuild
/// it), and the generation never repeats an answer given before the loss,
/// so a search index built then is not taken as current.
#[tokio::test]
async fn a_store_that_lost_its_data_says_so_once() {
    use berth_server::meta::StoreCheck;
    let server = RedisServer::start();
    let store = store(&server, "lost").await;
    let other = self::store(&server, "lost").await;
    assert_eq!(store.check().await.expect("check"), StoreCheck::Kept);
    let app = repo("lib/app");
    for n in 1..=3 {
        store.apply(&app, &created(n), false).await.expect("apply");
    }
    let before = store.generation().await.expect("generation");

    let mut con = ::redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = ::redis::cmd("FLUSHALL")
        .query_async(&mut con)
        .await
        .expect("flush");
    assert_eq!(store.check().await.expect("check"), StoreCheck::Lost);
    assert_eq!(store.check().await.expect("check"), StoreCheck::Kept);
    assert_eq!(other.check().await.expect("check"), StoreCheck::Kept);
    assert_eq!(store.repos().await.expect("repos"), Vec::<String>::new());
    for n in 1..=3 {
        store.apply(&app, &created(n), false).await.expect("apply");
    }
    assert_ne!(store.generation().await.expect("generation"), before);
    assert_eq!(
        store.generation().await.expect("generation"),
        other.generation().await.expect("generation"),
        "instances sharing the store agree"
    );
}

/// Browser sessions in Redis (`http.auth.sessionDriver: redis`) pass the
/// session store suite, and instances sharing the server share the secret
/// their cookies are signed with.
#[tokio::test]
async fn session_store_conformance_and_a_shared_cookie_secret() {
    use berth_server::auth::session::{SessionStore, conformance, redis::RedisStore};
    let server = RedisServer::start();
    let driver: berth_server::config::CacheDriverConfig = serde_json::from_value(
        serde_json::json!({"name": "redis", "addr": [server.addr()], "keyprefix": "sess"}),
    )
    .expect("driver");
    let one = RedisStore::connect(&driver).await.expect("connect");
    conformance::run(Arc::new(one)).await;
    let a = RedisStore::connect(&driver).await.expect("connect");
    let b = RedisStore::connect(&driver).await.expect("connect");
    let sa = a.shared_secret().await.expect("secret").expect("shared");
    let sb = b.shared_secret().await.expect("secret").expect("shared");
    assert_eq!(sa, sb);
    assert_eq!(sa.len(), 64);
    // Another prefix is another registry: another secret.
    let other: berth_server::config::CacheDriverConfig = serde_json::from_value(
        serde_json::json!({"name": "redis", "addr": [server.addr()], "keyprefix": "other"}),
    )
    .expect("driver");
    let so = RedisStore::connect(&other)
        .await
        .expect("connect")
        .shared_secret()
        .await
        .expect("s")
        .expect("s");
    assert_ne!(sa, so);
}

//! The Redis metadata store and shared locks against a real redis-server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_server::meta::{
    IndexVersion, ManifestMeta, MetaStore, RedisLocks, RedisMetaStore, RedisOptions, RepoChange,
    SharedLock, conformance,
};

use crate::redis_server::RedisServer;

fn options(server: &RedisServer, prefix: &str) -> RedisOptions {
    RedisOptions {
        addr: vec![server.addr()],
        key_prefix: prefix.into(),
        ..Default::default()
    }
}

fn store(server: &RedisServer, prefix: &str) -> RedisMetaStore {
    RedisMetaStore::open(&options(server, prefix)).expect("open")
}

fn created(n: u64) -> RepoChange {
    RepoChange {
        version: IndexVersion::new(format!("v{n}")),
        ..Default::default()
    }
}

fn manifest(digest: &str, layers: &[&str]) -> ManifestMeta {
    ManifestMeta {
        digest: digest.into(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 10,
        config: Some("config".into()),
        layers: layers.iter().map(|l| l.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn conformance_suite() {
    let server = RedisServer::start();
    conformance::run(&store(&server, "conformance"));
}

#[test]
fn conformance_over_a_url_with_a_password_and_a_database() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let options = RedisOptions {
        url: Some(format!("redis://:s3cret@{}/2", server.addr())),
        ..Default::default()
    };
    conformance::run(&RedisMetaStore::open(&options).expect("open"));

    let wrong = RedisOptions {
        addr: vec![server.addr()],
        password: Some("wrong-secret".into()),
        ..Default::default()
    };
    let e = RedisMetaStore::open(&wrong)
        .err()
        .expect("a wrong password is refused")
        .to_string();
    assert!(e.contains(&server.addr()), "{e}");
    assert!(!e.contains("wrong-secret"), "{e}");
}

#[test]
fn key_prefixes_and_databases_keep_stores_apart() {
    let server = RedisServer::start();
    let one = store(&server, "one");
    let two = store(&server, "two");
    let mut change = created(1);
    change.put_manifests.push(manifest("m1", &["l1"]));
    change.set_tags.push(("v1".into(), "m1".into()));
    one.apply("lib/app", &change, false).expect("apply");
    one.record_pull("lib/app", "m1", 5).expect("pull");
    one.set_setting("roots", "one").expect("set");

    assert_eq!(two.repos().expect("repos"), Vec::<String>::new());
    assert_eq!(two.tag("lib/app", "v1").expect("tag"), None);
    assert_eq!(two.manifest("lib/app", "m1").expect("m"), None);
    assert_eq!(two.blob_refs("lib/app", "l1").expect("refs"), 0);
    assert_eq!(two.pull_stats("lib/app", "m1").expect("pulls").count, 0);
    assert_eq!(two.setting("roots").expect("setting"), None);

    // Forgetting the repository in one store leaves the other's.
    two.apply("lib/app", &created(2), false).expect("apply");
    two.remove_repo("lib/app").expect("remove");
    assert_eq!(one.repos().expect("repos"), vec!["lib/app"]);
    assert_eq!(one.tag("lib/app", "v1").expect("tag"), Some("m1".into()));
    assert_eq!(one.blob_refs("lib/app", "l1").expect("refs"), 1);

    // The same prefix in another database is another store.
    let other_db = RedisMetaStore::open(&RedisOptions {
        db: 1,
        ..options(&server, "one")
    })
    .expect("open");
    assert_eq!(other_db.repos().expect("repos"), Vec::<String>::new());
    assert_eq!(other_db.setting("roots").expect("setting"), None);
}

#[test]
fn concurrent_applies_to_one_repository_lose_nothing() {
    let server = RedisServer::start();
    let store = Arc::new(store(&server, "race"));
    store.apply("r", &created(0), true).expect("create");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let mut change = created(i);
                    let digest = format!("m-{t}-{i}");
                    change
                        .put_manifests
                        .push(manifest(&digest, &["shared", &format!("own-{t}-{i}")]));
                    change.set_tags.push((format!("t{t}-{i}"), digest));
                    store.apply("r", &change, false).expect("apply");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(store.manifests("r").expect("ms").len(), 60);
    assert_eq!(store.tags("r").expect("tags").len(), 60);
    assert_eq!(
        store.blob_refs("r", "shared").expect("refs"),
        60,
        "every apply counted, none lost to a race"
    );
    assert_eq!(store.blob_refs("r", "config").expect("refs"), 60);
}

#[test]
fn a_held_lock_excludes_others_until_dropped() {
    let server = RedisServer::start();
    let a = store(&server, "locks").locks();
    let b = RedisLocks::open(&options(&server, "locks")).expect("open");

    let held = a.acquire("a", Duration::ZERO).expect("acquire");
    assert!(held.is_some(), "a free lock is taken at once");
    assert!(
        b.acquire("a", Duration::ZERO).expect("try").is_none(),
        "held elsewhere"
    );
    assert!(
        a.acquire("a", Duration::ZERO).expect("try").is_none(),
        "not reentrant: the same handle is excluded too"
    );
    let start = Instant::now();
    assert!(
        b.acquire("a", Duration::from_millis(200))
            .expect("wait")
            .is_none(),
        "still held after waiting"
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(
        b.acquire("b", Duration::ZERO).expect("other").is_some(),
        "another name is another lock"
    );

    drop(held);
    let again = b.acquire("a", Duration::ZERO).expect("after drop");
    assert!(again.is_some(), "released on drop");

    // A waiter gets the lock as soon as it is let go.
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        let got = a.acquire("a", Duration::from_secs(5)).expect("wait");
        (got.is_some(), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(150));
    drop(again);
    let (got, waited) = waiter.join().expect("waiter");
    assert!(got);
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_live_holder_keeps_its_lock_past_the_lease() {
    let server = RedisServer::start();
    // Renewal runs every third of the lease: 2 s leaves ample slack for a
    // thread descheduled on a loaded machine.
    let lease = Duration::from_secs(2);
    let a = RedisLocks::open(&options(&server, "renew"))
        .expect("open")
        .with_lease(lease);
    let b = RedisLocks::open(&options(&server, "renew"))
        .expect("open")
        .with_lease(lease);
    let held = a.acquire("long", Duration::ZERO).expect("acquire");
    assert!(held.is_some());
    std::thread::sleep(lease * 2);
    assert!(
        b.acquire("long", Duration::ZERO).expect("try").is_none(),
        "renewed past its lease"
    );
    assert!(
        b.acquire("long", lease).expect("wait").is_none(),
        "and while another waits"
    );
    drop(held);
    assert!(b.acquire("long", Duration::ZERO).expect("try").is_some());
}

#[test]
fn a_dead_holders_lock_is_taken_over_after_its_lease() {
    let server = RedisServer::start();
    // A holder that died: its token, with a lease nobody renews.
    let client = ::redis::Client::open(server.url()).expect("client");
    let mut con = client.get_connection().expect("connection");
    ::redis::cmd("SET")
        .arg("dead:lock:gone")
        .arg("a-dead-process")
        .arg("PX")
        .arg(300)
        .exec(&mut con)
        .expect("set");
    let locks = RedisLocks::open(&options(&server, "dead")).expect("open");
    assert!(
        locks
            .acquire("gone", Duration::ZERO)
            .expect("try")
            .is_none()
    );
    let start = Instant::now();
    let got = locks.acquire("gone", Duration::from_secs(5)).expect("wait");
    assert!(got.is_some(), "taken over once the lease ran out");
    assert!(start.elapsed() >= Duration::from_millis(150));
    let token: String = ::redis::cmd("GET")
        .arg("dead:lock:gone")
        .query(&mut con)
        .expect("get");
    assert_ne!(token, "a-dead-process");

    // A holder that lost its lock (here deleted by hand, as if its lease
    // lapsed) does not release the next holder's when it lets go.
    let stale = locks.acquire("lost", Duration::ZERO).expect("acquire");
    assert!(stale.is_some());
    ::redis::cmd("DEL")
        .arg("dead:lock:lost")
        .exec(&mut con)
        .expect("del");
    let other = RedisLocks::open(&options(&server, "dead")).expect("open");
    let next = other.acquire("lost", Duration::ZERO).expect("acquire");
    assert!(next.is_some());
    drop(stale);
    assert!(
        locks
            .acquire("lost", Duration::ZERO)
            .expect("try")
            .is_none(),
        "the next holder still has it"
    );
    drop(next);
    assert!(
        locks
            .acquire("lost", Duration::ZERO)
            .expect("try")
            .is_some()
    );
}

#[test]
fn contending_threads_are_mutually_excluded() {
    let server = RedisServer::start();
    // Two handles, as two Berth instances would have.
    let handles = [
        store(&server, "many").locks(),
        RedisLocks::open(&options(&server, "many")).expect("open"),
    ];
    let inside = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let locks = handles[t % 2].clone();
            let inside = inside.clone();
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let guard = locks
                        .acquire("counter", Duration::from_secs(30))
                        .expect("acquire")
                        .expect("taken within the wait");
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    // A read-modify-write that only the lock makes safe.
                    let n = counter.load(Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(200));
                    counter.store(n + 1, Ordering::SeqCst);
                    inside.store(false, Ordering::SeqCst);
                    drop(guard);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(counter.load(Ordering::SeqCst), 200);
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
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
            .err()
            .expect("nothing listens there")
            .to_string();
        assert!(e.contains(&addr), "{e}");
        assert!(!e.contains("pa55word"), "{e}");
        let e = RedisLocks::open(&options)
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
    assert_eq!(server.get("/v2/app/manifests/v1").await.status(), 200);

    redis.kill();
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

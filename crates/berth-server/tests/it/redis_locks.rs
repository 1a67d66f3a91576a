//! The Redis shared locks against a real redis-server: exclusion, a live
//! holder's renewal, a dead holder's lease, the renewing task's end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_server::meta::{RedisLocks, SharedLock};

use crate::meta_backends;
use crate::redis::{options, store};
use crate::redis_server::RedisServer;

async fn locks(server: &RedisServer, prefix: &str) -> RedisLocks {
    RedisLocks::open(&options(server, prefix))
        .await
        .expect("open")
}

/// How long a dropped guard's release (spawned, one round trip) may take
/// at most here: far below any lease, so a lock free within it was
/// released, not lapsed.
const RELEASED_WITHIN: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_held_lock_excludes_others_until_dropped() {
    let server = RedisServer::start();
    let a = store(&server, "locks").await.locks();
    let b = locks(&server, "locks").await;

    let held = a.acquire("a", Duration::ZERO).await.expect("acquire");
    assert!(held.is_some(), "a free lock is taken at once");
    assert!(
        b.acquire("a", Duration::ZERO).await.expect("try").is_none(),
        "held elsewhere"
    );
    assert!(
        a.acquire("a", Duration::ZERO).await.expect("try").is_none(),
        "not reentrant: the same handle is excluded too"
    );
    let start = Instant::now();
    assert!(
        b.acquire("a", Duration::from_millis(200))
            .await
            .expect("wait")
            .is_none(),
        "still held after waiting"
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(
        b.acquire("b", Duration::ZERO)
            .await
            .expect("other")
            .is_some(),
        "another name is another lock"
    );

    drop(held);
    let start = Instant::now();
    let again = b.acquire("a", RELEASED_WITHIN).await.expect("after drop");
    assert!(again.is_some(), "released on drop");
    assert!(start.elapsed() < RELEASED_WITHIN, "{:?}", start.elapsed());

    // A waiter gets the lock as soon as it is let go.
    let waiter = tokio::spawn(async move {
        let start = Instant::now();
        let got = a.acquire("a", Duration::from_secs(5)).await.expect("wait");
        (got.is_some(), start.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(again);
    let (got, waited) = waiter.await.expect("waiter");
    assert!(got);
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn a_live_holder_keeps_its_lock_past_the_lease() {
    let server = RedisServer::start();
    // Renewal runs every third of the lease: 2 s leaves ample slack for a
    // task descheduled on a loaded machine.
    let lease = Duration::from_secs(2);
    let a = locks(&server, "renew").await.with_lease(lease);
    let b = locks(&server, "renew").await.with_lease(lease);
    meta_backends::a_live_holder_keeps_its_lock(Arc::new(a), Arc::new(b), lease).await;
}

#[tokio::test]
async fn a_dead_holders_lock_is_taken_over_after_its_lease() {
    let server = RedisServer::start();
    // A holder that died: its token, with a lease nobody renews.
    let client = ::redis::Client::open(server.url()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    ::redis::cmd("SET")
        .arg("dead:lock:gone")
        .arg("a-dead-process")
        .arg("PX")
        .arg(300)
        .exec_async(&mut con)
        .await
        .expect("set");
    let locks_here = locks(&server, "dead").await;
    assert!(
        locks_here
            .acquire("gone", Duration::ZERO)
            .await
            .expect("try")
            .is_none()
    );
    let start = Instant::now();
    let got = locks_here
        .acquire("gone", Duration::from_secs(5))
        .await
        .expect("wait");
    assert!(got.is_some(), "taken over once the lease ran out");
    assert!(start.elapsed() >= Duration::from_millis(150));
    let token: String = ::redis::cmd("GET")
        .arg("dead:lock:gone")
        .query_async(&mut con)
        .await
        .expect("get");
    assert_ne!(token, "a-dead-process");

    // A holder that lost its lock (here deleted by hand, as if its lease
    // lapsed) does not release the next holder's when it lets go.
    let stale = locks_here
        .acquire("lost", Duration::ZERO)
        .await
        .expect("acquire");
    assert!(stale.is_some());
    ::redis::cmd("DEL")
        .arg("dead:lock:lost")
        .exec_async(&mut con)
        .await
        .expect("del");
    let other = locks(&server, "dead").await;
    let next = other
        .acquire("lost", Duration::ZERO)
        .await
        .expect("acquire");
    assert!(next.is_some());
    drop(stale);
    // Time for the stale guard's release to have run, had it deleted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        locks_here
            .acquire("lost", Duration::ZERO)
            .await
            .expect("try")
            .is_none(),
        "the next holder still has it"
    );
    drop(next);
    assert!(
        locks_here
            .acquire("lost", RELEASED_WITHIN)
            .await
            .expect("try")
            .is_some()
    );
}

/// The renewing task runs while a lock is held through a handle and ends
/// once the handle and its guards are gone (counted as the runtime's live
/// tasks; the store keeps its connection, so only the locks' tasks come
/// and go).
#[tokio::test]
async fn the_renewing_task_ends_with_the_handle_and_its_guards() {
    let server = RedisServer::start();
    let store = store(&server, "ends").await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let locks = store.locks();
    let guard = locks
        .acquire("x", Duration::ZERO)
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!(metrics.num_alive_tasks(), before + 1, "the renewer runs");
    drop(locks);
    assert_eq!(
        metrics.num_alive_tasks(),
        before + 1,
        "a guard alone keeps it running"
    );
    drop(guard);
    let start = Instant::now();
    while metrics.num_alive_tasks() > before {
        assert!(
            start.elapsed() < RELEASED_WITHIN,
            "{} tasks left",
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        store
            .locks()
            .acquire("x", Duration::ZERO)
            .await
            .expect("try")
            .is_some(),
        "and the lock was released"
    );
}

/// Eight contenders on four threads of the runtime, through two handles
/// as two Berth instances would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contending_tasks_are_mutually_excluded() {
    let server = RedisServer::start();
    let handles: [Arc<dyn SharedLock>; 2] = [
        Arc::new(store(&server, "many").await.locks()),
        Arc::new(locks(&server, "many").await),
    ];
    meta_backends::contenders_are_mutually_excluded(handles, 8, 25).await;
}

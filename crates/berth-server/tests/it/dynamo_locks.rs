//! The DynamoDB shared locks against a real DynamoDB-compatible server
//! (moto): exclusion, a live holder's renewal, a dead holder's lease, and
//! mutual exclusion of many contenders through two handles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_server::meta::SharedLock;

use crate::dynamo::{raw_client, store};
use crate::dynamo_server::DynamoServer;
use crate::meta_backends;

/// Far below any lease: a lock free within it was released, not lapsed.
const RELEASED_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_held_lock_excludes_others_until_dropped() {
    let server = DynamoServer::start();
    let a = store(&server, "locks").await.locks();
    let b = store(&server, "locks").await.locks();
    let held = a.acquire("a", Duration::ZERO).await.expect("acquire");
    assert!(held.is_some(), "a free lock is taken at once");
    assert!(b.acquire("a", Duration::ZERO).await.expect("try").is_none());
    assert!(
        a.acquire("a", Duration::ZERO).await.expect("try").is_none(),
        "not reentrant"
    );
    assert!(
        b.acquire("b", Duration::ZERO)
            .await
            .expect("other")
            .is_some()
    );
    drop(held);
    let start = Instant::now();
    assert!(
        b.acquire("a", RELEASED_WITHIN)
            .await
            .expect("after drop")
            .is_some()
    );
    assert!(start.elapsed() < RELEASED_WITHIN);
}

#[tokio::test]
async fn a_live_holder_keeps_its_lock_past_the_lease() {
    let server = DynamoServer::start();
    let lease = Duration::from_secs(2);
    let a = store(&server, "renew").await.locks().with_lease(lease);
    let b = store(&server, "renew").await.locks().with_lease(lease);
    meta_backends::a_live_holder_keeps_its_lock(Arc::new(a), Arc::new(b), lease).await;
}

#[tokio::test]
async fn a_dead_holders_lock_is_taken_over_after_its_lease() {
    let server = DynamoServer::start();
    let here = store(&server, "dead").await.locks();
    // A holder that died: its token, with a lease that ends soon.
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
        + 500;
    raw_client(&server)
        .put_item()
        .table_name("deadBlobTable")
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("#lock".into()),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("gone".into()),
        )
        .item(
            "tok",
            aws_sdk_dynamodb::types::AttributeValue::S("a-dead-process".into()),
        )
        .item(
            "exp",
            aws_sdk_dynamodb::types::AttributeValue::N(end.to_string()),
        )
        .send()
        .await
        .expect("plant");
    assert!(
        here.acquire("gone", Duration::ZERO)
            .await
            .expect("try")
            .is_none()
    );
    let got = here
        .acquire("gone", Duration::from_secs(10))
        .await
        .expect("wait");
    assert!(got.is_some(), "taken over once the lease ran out");
}

/// Six contenders on four threads through two handles, as two instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contending_tasks_are_mutually_excluded() {
    let server = DynamoServer::start();
    let handles: [Arc<dyn SharedLock>; 2] = [
        Arc::new(store(&server, "many").await.locks()),
        Arc::new(store(&server, "many").await.locks()),
    ];
    meta_backends::contenders_are_mutually_excluded(handles, 6, 8).await;
}

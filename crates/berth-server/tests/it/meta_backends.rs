//! What the tests of each networked metadata store (Redis, DynamoDB)
//! share: small builders, and checks that take any [`MetaStore`] or pair of
//! [`SharedLock`] handles: racing writers lose nothing, random changes
//! leave the store answering as the embedded one does, contending lock
//! holders exclude each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use berth_oci::{Digest, RepoName};
use berth_server::meta::{IndexVersion, ManifestMeta, MetaStore, RepoChange, SharedLock};

/// The digest the tests call `name`.
pub fn dg(name: &str) -> Digest {
    Digest::sha256(name.as_bytes())
}

pub fn repo(name: &str) -> RepoName {
    name.parse().expect("name")
}

/// A change that records version `v{n}` and nothing else.
pub fn created(n: u64) -> RepoChange {
    RepoChange {
        version: IndexVersion::new(format!("v{n}")),
        ..Default::default()
    }
}

/// A manifest with the config the tests call `config` and these layers.
pub fn manifest(digest: &str, layers: &[&str]) -> ManifestMeta {
    ManifestMeta {
        digest: dg(digest).to_string(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 10,
        config: Some(dg("config").to_string()),
        layers: layers.iter().map(|l| dg(l).to_string()).collect(),
        ..Default::default()
    }
}

/// Four writers, each applying `per_writer` changes of its own to one
/// repository at once: every count and row must be there at the end.
pub async fn concurrent_applies_lose_nothing(store: Arc<dyn MetaStore>, per_writer: u64) {
    let r = repo("r");
    store.apply(&r, &created(0), true).await.expect("create");
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(async move {
                for i in 0..per_writer {
                    let mut change = created(i);
                    let name = format!("m-{t}-{i}");
                    change
                        .put_manifests
                        .push(manifest(&name, &["shared", &format!("own-{t}-{i}")]));
                    change
                        .set_tags
                        .push((format!("t{t}-{i}"), dg(&name).to_string()));
                    store.apply(&r, &change, false).await.expect("apply");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let all = usize::try_from(4 * per_writer).expect("count");
    assert_eq!(store.manifests(&r).await.expect("ms").len(), all);
    assert_eq!(store.tags(&r).await.expect("tags").len(), all);
    assert_eq!(
        store.blob_refs(&r, &dg("shared")).await.expect("refs"),
        4 * per_writer,
        "every apply counted, none lost to a race"
    );
    assert_eq!(
        store.blob_refs(&r, &dg("config")).await.expect("refs"),
        4 * per_writer
    );
    let stamps = store.repo_stamps().await.expect("stamps");
    assert_eq!(stamps[0].1.revision, 4 * per_writer + 1, "one per change");
}

/// `rounds` changes drawn at random from a few manifests, blobs and tags
/// (removals, overwrites, subjects, index children, full replaces), each
/// applied to `store` and to an embedded store: both must answer alike
/// after each.
pub async fn answers_as_redb_does(store: &dyn MetaStore, rounds: u64) {
    let dir = tempfile::tempdir().expect("tmp");
    let (redb, _) =
        berth_server::meta::RedbMetaStore::open(&dir.path().join("meta.redb")).expect("redb");
    let r = repo("diff/app");
    let names = |prefix: &str, n: u64| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let (digests, blobs, tags) = (names("m", 6), names("b", 5), names("t", 4));
    // A small deterministic generator (xorshift), so a failure replays.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..rounds {
        let mut change = created(round);
        change.replace = next(10) == 0;
        for _ in 0..next(3) {
            change
                .remove_manifests
                .push(dg(&digests[next(6)]).to_string());
        }
        for _ in 0..next(3) {
            let mut m = manifest(&digests[next(6)], &[&blobs[next(5)], &blobs[next(5)]]);
            m.config = Some(dg(&blobs[next(5)]).to_string());
            if next(3) == 0 {
                m.subject = Some(dg(&digests[next(6)]).to_string());
            }
            if next(4) == 0 {
                m.children = vec![dg(&digests[next(6)]).to_string()];
            }
            change.put_manifests.push(m);
        }
        for _ in 0..next(2) {
            change.remove_tags.push(tags[next(4)].clone());
        }
        for _ in 0..next(3) {
            change
                .set_tags
                .push((tags[next(4)].clone(), dg(&digests[next(6)]).to_string()));
        }
        store.apply(&r, &change, false).await.expect("store");
        redb.apply(&r, &change, false).await.expect("redb");

        let context = format!("round {round}: {change:?}");
        assert_eq!(
            store.tags(&r).await.expect("tags"),
            redb.tags(&r).await.expect("tags"),
            "{context}"
        );
        assert_eq!(
            store.manifests(&r).await.expect("ms"),
            redb.manifests(&r).await.expect("ms"),
            "{context}"
        );
        assert_eq!(
            store.version(&r).await.expect("v"),
            redb.version(&r).await.expect("v"),
            "{context}"
        );
        // The same tags are timed (the clocks may differ by a second).
        let timed = |t: std::collections::BTreeMap<String, u64>| t.into_keys().collect::<Vec<_>>();
        assert_eq!(
            timed(store.tag_times(&r).await.expect("times")),
            timed(redb.tag_times(&r).await.expect("times")),
            "{context}"
        );
        for name in blobs.iter().chain(&digests) {
            assert_eq!(
                store.blob_refs(&r, &dg(name)).await.expect("refs"),
                redb.blob_refs(&r, &dg(name)).await.expect("refs"),
                "{name} in {context}"
            );
        }
        for name in &digests {
            assert_eq!(
                store.referrers(&r, &dg(name)).await.expect("referrers"),
                redb.referrers(&r, &dg(name)).await.expect("referrers"),
                "{name} in {context}"
            );
        }
    }
}

/// `tasks` contenders through two handles (as two Berth instances would
/// have), each taking the lock `rounds` times for a read-modify-write that
/// only the lock makes safe: never two holders at once, no write lost.
pub async fn contenders_are_mutually_excluded(
    handles: [Arc<dyn SharedLock>; 2],
    tasks: usize,
    rounds: u64,
) {
    let inside = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let running: Vec<_> = (0..tasks)
        .map(|t| {
            let locks = handles[t % 2].clone();
            let (inside, counter) = (inside.clone(), counter.clone());
            tokio::spawn(async move {
                for _ in 0..rounds {
                    let guard = locks
                        .acquire("counter", Duration::from_secs(60))
                        .await
                        .expect("acquire")
                        .expect("taken within the wait");
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    let n = counter.load(Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    counter.store(n + 1, Ordering::SeqCst);
                    inside.store(false, Ordering::SeqCst);
                    drop(guard);
                }
            })
        })
        .collect();
    for t in running {
        t.await.expect("task");
    }
    assert_eq!(counter.load(Ordering::SeqCst), tasks as u64 * rounds);
}

/// A holder through `a` keeps its lock past twice the `lease` both
/// handles have, while `b` tries and while it waits; once dropped, `b`
/// gets it well within a lease (released, not lapsed).
pub async fn a_live_holder_keeps_its_lock(
    a: Arc<dyn SharedLock>,
    b: Arc<dyn SharedLock>,
    lease: Duration,
) {
    let held = a.acquire("long", Duration::ZERO).await.expect("acquire");
    assert!(held.is_some());
    tokio::time::sleep(lease * 2).await;
    assert!(
        b.acquire("long", Duration::ZERO)
            .await
            .expect("try")
            .is_none(),
        "renewed past its lease"
    );
    assert!(
        b.acquire("long", lease).await.expect("wait").is_none(),
        "and while another waits"
    );
    drop(held);
    assert!(b.acquire("long", lease / 2).await.expect("try").is_some());
}

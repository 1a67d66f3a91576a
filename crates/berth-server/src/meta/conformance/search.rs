//! The part of the conformance suite for what search reads: tag times.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::{MetaStore, RepoChange, unix_now};
use super::{ds, fp, manifest, repo};

/// Waits until the clock has moved past second `t`, so that a time set
/// from now on differs from one set at `t`.
async fn tick_past(t: u64) {
    while unix_now() <= t {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn times(store: &dyn MetaStore, name: &str) -> BTreeMap<String, u64> {
    store.tag_times(&repo(name)).await.expect("tag times")
}

/// Tags are timed when set; a replace keeps the time of a tag still on the
/// same digest; removing a tag, its manifest or its repository drops it.
pub(super) async fn tag_times(store: &dyn MetaStore) {
    let name = "times/app";
    let r = repo(name);
    let (m1, m2) = (
        manifest("t-m1", "t-c", &[], None),
        manifest("t-m2", "t-c", &[], None),
    );
    let start = unix_now();
    let change = RepoChange {
        put_manifests: vec![m1.clone(), m2.clone()],
        set_tags: vec![
            ("a".into(), ds("t-m1")),
            ("b".into(), ds("t-m1")),
            ("c".into(), ds("t-m2")),
        ],
        version: fp(1),
        ..Default::default()
    };
    store.apply(&r, &change, false).await.expect("apply");
    let set = times(store, name).await;
    assert_eq!(set.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    let first = set["a"];
    assert!(
        (start..=unix_now()).contains(&first),
        "{first} is when it was set"
    );
    assert!(
        times(store, "times").await.is_empty(),
        "a prefix repository is separate"
    );

    tick_past(first).await;
    let replace = RepoChange {
        put_manifests: vec![m1.clone(), m2.clone()],
        set_tags: vec![
            ("a".into(), ds("t-m1")),
            ("b".into(), ds("t-m2")),
            ("d".into(), ds("t-m2")),
        ],
        version: fp(2),
        replace: true,
        ..Default::default()
    };
    store.apply(&r, &replace, false).await.expect("replace");
    let now = times(store, name).await;
    assert_eq!(now.keys().collect::<Vec<_>>(), ["a", "b", "d"], "c is gone");
    assert_eq!(now["a"], first, "a re-derive keeps an unmoved tag's time");
    assert!(now["b"] > first, "a moved tag is timed anew");
    assert!(now["d"] > first, "a new tag is timed");

    // Removing a tag, or the manifest it points at, drops its time.
    let remove = RepoChange {
        remove_tags: vec!["d".into()],
        remove_manifests: vec![ds("t-m1")],
        version: fp(3),
        ..Default::default()
    };
    store.apply(&r, &remove, false).await.expect("remove");
    assert_eq!(
        times(store, name).await.keys().collect::<Vec<_>>(),
        ["b"],
        "a went with t-m1, d was removed"
    );
    store.remove_repo(name).await.expect("remove repo");
    assert!(times(store, name).await.is_empty());
}

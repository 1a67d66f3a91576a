//! The part of the conformance suite for what search reads: tag times,
//! the store's generation, every pull statistic of a repository, users'
//! stars and bookmarks, and the repositories' stamps.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::{MetaStore, PullStats, RepoChange, RepoStamp, UserList, unix_now};
use super::{dg, ds, fp, manifest, repo};

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

/// The generation now.
async fn generation(store: &dyn MetaStore) -> u64 {
    store.generation().await.expect("generation")
}

/// Checks that the generation differs from every one `seen` so far, and
/// adds it.
async fn changed(store: &dyn MetaStore, seen: &mut Vec<u64>, what: &str) {
    let now = generation(store).await;
    assert!(!seen.contains(&now), "{what} changes the generation");
    seen.push(now);
}

/// Every kind of write search sees changes the generation; reads and
/// settings do not. A repository's pull statistics come in one read.
pub(super) async fn generation_and_pulls(store: &dyn MetaStore) {
    let name = "gen/app";
    let r = repo(name);
    let mut seen = vec![generation(store).await];
    let change = RepoChange {
        put_manifests: vec![
            manifest("g-m1", "g-c", &[], None),
            manifest("g-m2", "g-c", &[], None),
        ],
        version: fp(1),
        ..Default::default()
    };
    store.apply(&r, &change, false).await.expect("apply");
    changed(store, &mut seen, "apply").await;
    store.manifests(&r).await.expect("read");
    store.set_setting("g", "1").await.expect("setting");
    assert_eq!(
        generation(store).await,
        *seen.last().expect("one"),
        "reads and settings do not"
    );

    assert_eq!(
        store.pull_stats_all(&r).await.expect("stats"),
        BTreeMap::new(),
        "nothing pulled yet"
    );
    store
        .record_pulls(&r, &dg("g-m1"), 2, 10)
        .await
        .expect("pulls");
    changed(store, &mut seen, "record_pulls").await;
    store
        .record_pulls(&r, &dg("g-m2"), 1, 20)
        .await
        .expect("pulls");
    changed(store, &mut seen, "record_pulls again").await;
    assert_eq!(
        store.pull_stats_all(&r).await.expect("stats"),
        BTreeMap::from([
            (
                ds("g-m1"),
                PullStats {
                    last_pulled: Some(10),
                    count: 2
                }
            ),
            (
                ds("g-m2"),
                PullStats {
                    last_pulled: Some(20),
                    count: 1
                }
            ),
        ])
    );
    assert!(
        store
            .pull_stats_all(&repo("gen"))
            .await
            .expect("stats")
            .is_empty(),
        "a prefix repository is separate"
    );

    store.remove_repo(name).await.expect("remove");
    changed(store, &mut seen, "remove_repo").await;
    assert!(store.pull_stats_all(&r).await.expect("stats").is_empty());
}

/// Toggles `name` in `user`'s `list`, returning whether it is in it now.
async fn toggle(store: &dyn MetaStore, user: &str, list: UserList, name: &str) -> bool {
    store
        .toggle_user_repo(user, list, &repo(name))
        .await
        .expect("toggle")
}

async fn listed(store: &dyn MetaStore, user: &str, list: UserList) -> Vec<String> {
    store.user_repos(user, list).await.expect("user repos")
}

/// Toggles add and remove, per user and per list, each changing the
/// generation; a user's list is sorted.
pub(super) async fn stars_and_bookmarks(store: &dyn MetaStore) {
    use UserList::{Bookmarked, Starred};
    assert!(listed(store, "ann", Starred).await.is_empty());
    let mut seen = vec![generation(store).await];
    assert!(toggle(store, "ann", Starred, "st/b").await, "added");
    changed(store, &mut seen, "a star").await;
    assert!(toggle(store, "ann", Starred, "st/a").await);
    assert!(toggle(store, "bob", Starred, "st/b").await);
    assert!(toggle(store, "ann", Bookmarked, "st/c").await);
    changed(store, &mut seen, "a bookmark").await;
    assert_eq!(listed(store, "ann", Starred).await, ["st/a", "st/b"]);
    assert_eq!(listed(store, "ann", Bookmarked).await, ["st/c"]);
    assert_eq!(listed(store, "bob", Starred).await, ["st/b"]);
    assert!(listed(store, "bob", Bookmarked).await.is_empty());
    assert!(
        listed(store, "an", Starred).await.is_empty(),
        "a prefix user is another"
    );

    assert!(!toggle(store, "ann", Starred, "st/b").await, "removed");
    changed(store, &mut seen, "a star taken back").await;
    assert!(!toggle(store, "ann", Bookmarked, "st/c").await);
    assert_eq!(listed(store, "ann", Starred).await, ["st/a"]);
    assert!(listed(store, "ann", Bookmarked).await.is_empty());
    assert_eq!(listed(store, "bob", Starred).await, ["st/b"], "bob's stays");

    // Lists keep a removed repository's name.
    store.remove_repo("st/a").await.expect("remove");
    assert_eq!(listed(store, "ann", Starred).await, ["st/a"]);
    for (user, name) in [("ann", "st/a"), ("bob", "st/b")] {
        assert!(!toggle(store, user, Starred, name).await);
    }
}

/// The stamps of the repositories under `sp/`, checking on the way that
/// every repository has one, in order.
async fn stamps(store: &dyn MetaStore) -> BTreeMap<String, RepoStamp> {
    let all = store.repo_stamps().await.expect("stamps");
    let names: Vec<&String> = all.iter().map(|(n, _)| n).collect();
    let repos = store.repos().await.expect("repos");
    assert_eq!(names, repos.iter().collect::<Vec<_>>(), "every one, sorted");
    all.into_iter()
        .filter(|(n, _)| n.starts_with("sp/"))
        .collect()
}

fn stamp(version: u64, pulls: u64, stars: u64, revision: u64) -> RepoStamp {
    RepoStamp {
        version: fp(version),
        pulls,
        stars,
        revision,
    }
}

/// A repository's stamp follows its version, its pulls, its stars and
/// every change applied to it, and no other repository's.
pub(super) async fn repo_stamps(store: &dyn MetaStore) {
    use UserList::{Bookmarked, Starred};
    let (a, b) = (repo("sp/a"), repo("sp/b"));
    let created = |n| RepoChange {
        put_manifests: vec![manifest("s-m1", "s-c", &[], None)],
        version: fp(n),
        ..Default::default()
    };
    store.apply(&a, &created(1), false).await.expect("a");
    store.apply(&b, &created(1), false).await.expect("b");
    let want = |sa, sb| BTreeMap::from([("sp/a".to_string(), sa), ("sp/b".to_string(), sb)]);
    assert_eq!(
        stamps(store).await,
        want(stamp(1, 0, 0, 1), stamp(1, 0, 0, 1))
    );

    store.apply(&a, &created(2), false).await.expect("a again");
    assert_eq!(
        stamps(store).await,
        want(stamp(2, 0, 0, 2), stamp(1, 0, 0, 1))
    );

    store
        .record_pulls(&a, &dg("s-m1"), 3, 100)
        .await
        .expect("pulls");
    store
        .record_pulls(&a, &dg("s-m1"), 2, 110)
        .await
        .expect("pulls");
    assert_eq!(
        stamps(store).await,
        want(stamp(2, 5, 0, 2), stamp(1, 0, 0, 1))
    );
    // Every pull ever counted: deleting the manifest keeps them.
    let gone = RepoChange {
        remove_manifests: vec![ds("s-m1")],
        version: fp(3),
        ..Default::default()
    };
    store.apply(&a, &gone, false).await.expect("delete");
    assert_eq!(
        stamps(store).await,
        want(stamp(3, 5, 0, 3), stamp(1, 0, 0, 1))
    );
    // A change that keeps the version (a row an extension noted something
    // on) still changes the stamp.
    let noted = RepoChange {
        put_manifests: vec![manifest("s-m2", "s-c", &[], None)],
        version: fp(3),
        ..Default::default()
    };
    store.apply(&a, &noted, false).await.expect("note");
    assert_eq!(
        stamps(store).await,
        want(stamp(3, 5, 0, 4), stamp(1, 0, 0, 1))
    );

    for user in ["ann", "bob"] {
        assert!(
            store
                .toggle_user_repo(user, Starred, &a)
                .await
                .expect("star")
        );
    }
    assert!(
        store
            .toggle_user_repo("ann", Bookmarked, &b)
            .await
            .expect("bookmark")
    );
    assert_eq!(
        stamps(store).await,
        want(stamp(3, 5, 2, 4), stamp(1, 0, 0, 1)),
        "a bookmark counts no star"
    );
    assert!(
        !store
            .toggle_user_repo("bob", Starred, &a)
            .await
            .expect("unstar")
    );
    assert_eq!(
        stamps(store).await,
        want(stamp(3, 5, 1, 4), stamp(1, 0, 0, 1))
    );

    // Removing a repository resets its counts; a new one starts afresh.
    store.remove_repo("sp/a").await.expect("remove");
    assert_eq!(
        stamps(store).await,
        BTreeMap::from([("sp/b".to_string(), stamp(1, 0, 0, 1))])
    );
    store.apply(&a, &created(4), false).await.expect("again");
    assert_eq!(
        stamps(store).await,
        want(stamp(4, 0, 0, 1), stamp(1, 0, 0, 1))
    );
    for name in ["sp/a", "sp/b"] {
        store.remove_repo(name).await.expect("remove");
    }
}

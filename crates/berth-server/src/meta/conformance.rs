//! The conformance suite every [`MetaStore`] backend must pass. A backend's
//! tests call [`run`] on a fresh, empty store.

use super::{IndexVersion, ManifestMeta, MetaStore, PullStats, RepoChange};

fn manifest(digest: &str, config: &str, layers: &[&str], subject: Option<&str>) -> ManifestMeta {
    ManifestMeta {
        digest: digest.into(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 100,
        config: Some(config.into()),
        layers: layers.iter().map(|l| l.to_string()).collect(),
        subject: subject.map(str::to_string),
        artifact_type: subject.map(|_| "application/vnd.example".to_string()),
        pushed_at: 1_700_000_000,
        ..Default::default()
    }
}

fn fp(n: u64) -> IndexVersion {
    IndexVersion::new(format!("v{n}"))
}

/// Runs every check; panics with a message naming the first that fails.
pub fn run(store: &dyn MetaStore) {
    assert_eq!(
        store.repos().expect("repos"),
        Vec::<String>::new(),
        "starts empty"
    );
    assert_eq!(store.version("a").expect("fp"), None);

    // Creating repositories, in and out of order.
    for repo in ["b/x", "a", "a/b"] {
        store
            .apply(
                repo,
                &RepoChange {
                    version: fp(1),
                    ..Default::default()
                },
                true,
            )
            .expect("create");
    }
    assert_eq!(
        store.repos().expect("repos"),
        vec!["a", "a/b", "b/x"],
        "sorted"
    );
    assert_eq!(store.version("a").expect("fp"), Some(fp(1)));

    // Manifests and tags.
    let m1 = manifest("m1", "c1", &["l1", "shared"], None);
    let m2 = manifest("m2", "c2", &["shared"], None);
    let change = RepoChange {
        put_manifests: vec![m1.clone(), m2.clone()],
        set_tags: vec![
            ("v2".into(), "m2".into()),
            ("v1".into(), "m1".into()),
            ("latest".into(), "m2".into()),
        ],
        version: fp(2),
        ..Default::default()
    };
    store.apply("a", &change, false).expect("apply");
    assert_eq!(store.version("a").expect("fp"), Some(fp(2)));
    assert_eq!(
        store.tags("a").expect("tags"),
        vec![
            ("latest".to_string(), "m2".to_string()),
            ("v1".into(), "m1".into()),
            ("v2".into(), "m2".into())
        ]
    );
    assert_eq!(
        store.tags("a/b").expect("tags"),
        vec![],
        "a prefix repository is separate"
    );
    assert_eq!(store.tag("a", "v1").expect("tag"), Some("m1".into()));
    assert_eq!(store.tag("a", "nope").expect("tag"), None);
    assert_eq!(store.manifest("a", "m1").expect("m"), Some(m1.clone()));
    assert_eq!(store.manifest("a/b", "m1").expect("m"), None);
    assert_eq!(store.manifests("a").expect("ms").len(), 2);
    assert_eq!(store.blob_refs("a", "shared").expect("refs"), 2);
    assert_eq!(store.blob_refs("a", "l1").expect("refs"), 1);
    assert_eq!(store.blob_refs("a", "c2").expect("refs"), 1);
    assert_eq!(store.blob_refs("a/b", "shared").expect("refs"), 0);

    // Re-putting a manifest does not count its blobs twice.
    store
        .apply(
            "a",
            &RepoChange {
                put_manifests: vec![m1.clone()],
                version: fp(3),
                ..Default::default()
            },
            false,
        )
        .expect("again");
    assert_eq!(store.blob_refs("a", "l1").expect("refs"), 1);

    // Referrers.
    let r1 = manifest("r1", "empty", &[], Some("m1"));
    let r2 = manifest("r2", "empty", &[], Some("m1"));
    let r3 = manifest("r3", "empty", &[], Some("m2"));
    store
        .apply(
            "a",
            &RepoChange {
                put_manifests: vec![r2.clone(), r1.clone(), r3.clone()],
                version: fp(4),
                ..Default::default()
            },
            false,
        )
        .expect("refs");
    let got: Vec<String> = store
        .referrers("a", "m1")
        .expect("referrers")
        .into_iter()
        .map(|m| m.digest)
        .collect();
    assert_eq!(got, vec!["r1", "r2"]);
    assert_eq!(store.referrers("a", "m9").expect("referrers"), vec![]);
    assert_eq!(store.referrers("a/b", "m1").expect("referrers"), vec![]);

    // Removing a manifest drops its tags, its referrer link and its counts.
    store
        .apply(
            "a",
            &RepoChange {
                remove_manifests: vec!["m2".into(), "r2".into()],
                remove_tags: vec!["v1".into()],
                version: fp(5),
                ..Default::default()
            },
            false,
        )
        .expect("remove");
    assert_eq!(
        store.tags("a").expect("tags"),
        vec![],
        "v1 removed, latest and v2 went with m2"
    );
    assert_eq!(store.blob_refs("a", "shared").expect("refs"), 1);
    assert_eq!(store.blob_refs("a", "c2").expect("refs"), 0);
    let got: Vec<String> = store
        .referrers("a", "m1")
        .expect("referrers")
        .into_iter()
        .map(|m| m.digest)
        .collect();
    assert_eq!(got, vec!["r1"]);

    // Pull statistics survive a full re-derive of the repository.
    assert_eq!(
        store.pull_stats("a", "m1").expect("stats"),
        PullStats::default()
    );
    store.record_pull("a", "m1", 10).expect("pull");
    store.record_pull("a", "m1", 20).expect("pull");
    assert_eq!(
        store.pull_stats("a", "m1").expect("stats"),
        PullStats {
            last_pulled: Some(20),
            count: 2
        }
    );
    store
        .apply(
            "a",
            &RepoChange {
                put_manifests: vec![m1.clone()],
                set_tags: vec![("only".into(), "m1".into())],
                version: fp(6),
                replace: true,
                ..Default::default()
            },
            false,
        )
        .expect("replace");
    assert_eq!(
        store.tags("a").expect("tags"),
        vec![("only".to_string(), "m1".to_string())]
    );
    assert_eq!(
        store.manifests("a").expect("ms").len(),
        1,
        "replace dropped the rest"
    );
    assert_eq!(store.referrers("a", "m1").expect("referrers"), vec![]);
    assert_eq!(store.blob_refs("a", "l1").expect("refs"), 1);
    assert_eq!(store.pull_stats("a", "m1").expect("stats").count, 2);

    // Deleting a manifest forgets its pulls (a re-push starts afresh).
    store
        .apply(
            "a",
            &RepoChange {
                remove_manifests: vec!["m1".into()],
                version: fp(7),
                ..Default::default()
            },
            false,
        )
        .expect("remove");
    assert_eq!(
        store.pull_stats("a", "m1").expect("stats"),
        PullStats::default()
    );

    // Forgetting a repository leaves its neighbours.
    store.remove_repo("a").expect("remove repo");
    assert_eq!(store.repos().expect("repos"), vec!["a/b", "b/x"]);
    assert_eq!(store.manifest("a", "m1").expect("m"), None);
    assert_eq!(store.version("a").expect("fp"), None);
    // Settings.
    assert_eq!(store.setting("roots").expect("setting"), None);
    store.set_setting("roots", "one").expect("set");
    store.set_setting("roots", "two").expect("set");
    assert_eq!(store.setting("roots").expect("setting"), Some("two".into()));
    store.flush().expect("flush");
}

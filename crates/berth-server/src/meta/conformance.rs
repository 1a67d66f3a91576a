//! The conformance suite every [`MetaStore`] backend must pass. A backend's
//! tests call [`run`] on a fresh, empty store, from an async test. What
//! search reads (tag times, generation, stars, stamps…) is checked in
//! `conformance/search.rs`.

mod search;

use berth_oci::{Digest, RepoName, Tag};

use super::{
    HistoryMeta, ImageConfigMeta, IndexVersion, ManifestMeta, MetaStore, PullStats, RepoChange,
};

/// The digest the suite calls `name` (of the name's own bytes).
fn dg(name: &str) -> Digest {
    Digest::sha256(name.as_bytes())
}

/// [`dg`] as the store records it.
fn ds(name: &str) -> String {
    dg(name).to_string()
}

fn repo(name: &str) -> RepoName {
    name.parse().expect("a repository name")
}

fn tag(name: &str) -> Tag {
    name.parse().expect("a tag")
}

/// How many manifests of `repo` the store counts as referencing `blob`.
async fn refs(store: &dyn MetaStore, repo_name: &str, blob: &str) -> u64 {
    store
        .blob_refs(&repo(repo_name), &dg(blob))
        .await
        .expect("blob refs")
}

/// The digests of the manifests of `repo` whose subject is `subject`.
async fn referrers(store: &dyn MetaStore, repo_name: &str, subject: &str) -> Vec<String> {
    store
        .referrers(&repo(repo_name), &dg(subject))
        .await
        .expect("referrers")
        .into_iter()
        .map(|m| m.digest)
        .collect()
}

fn manifest(digest: &str, config: &str, layers: &[&str], subject: Option<&str>) -> ManifestMeta {
    ManifestMeta {
        digest: ds(digest),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 100,
        config: Some(ds(config)),
        layers: layers.iter().map(|l| ds(l)).collect(),
        subject: subject.map(ds),
        artifact_type: subject.map(|_| "application/vnd.example".to_string()),
        pushed_at: 1_700_000_000,
        ..Default::default()
    }
}

fn fp(n: u64) -> IndexVersion {
    IndexVersion::new(format!("v{n}"))
}

/// Runs every check; panics with a message naming the first that fails.
pub async fn run(store: &dyn MetaStore) {
    assert_eq!(
        store.repos().await.expect("repos"),
        Vec::<String>::new(),
        "starts empty"
    );
    assert_eq!(store.version(&repo("a")).await.expect("fp"), None);

    // Creating repositories, in and out of order.
    for name in ["b/x", "a", "a/b"] {
        store
            .apply(
                &repo(name),
                &RepoChange {
                    version: fp(1),
                    ..Default::default()
                },
                true,
            )
            .await
            .expect("create");
    }
    assert_eq!(
        store.repos().await.expect("repos"),
        vec!["a", "a/b", "b/x"],
        "sorted"
    );
    assert_eq!(store.version(&repo("a")).await.expect("fp"), Some(fp(1)));

    // Manifests and tags; what search reads of one (sizes, the image's
    // config) comes back as it went in.
    let mut m1 = manifest("m1", "c1", &["l1", "shared"], None);
    m1.layer_sizes = vec![1 << 40, 7];
    m1.config_size = 321;
    m1.config_media_type = Some("application/vnd.oci.image.config.v1+json".into());
    m1.pushed_by = Some("alice".into());
    m1.image = Some(ImageConfigMeta {
        os: Some("linux".into()),
        arch: Some("arm64".into()),
        variant: Some("v8".into()),
        created: Some("2024-05-01T10:00:00.5+02:00".into()),
        author: Some("Ann \"q\" <ann@example.com>".into()),
        history: vec![
            HistoryMeta {
                created_by: Some("ADD / \u{e9}".into()),
                ..Default::default()
            },
            HistoryMeta {
                comment: Some("nop".into()),
                empty_layer: true,
                ..Default::default()
            },
        ],
        labels: [(
            "org.opencontainers.image.vendor".to_string(),
            "Acme".to_string(),
        )]
        .into(),
    });
    let m2 = manifest("m2", "c2", &["shared"], None);
    let change = RepoChange {
        put_manifests: vec![m1.clone(), m2.clone()],
        set_tags: vec![
            ("v2".to_string(), ds("m2")),
            ("v1".to_string(), ds("m1")),
            ("latest".to_string(), ds("m2")),
        ],
        version: fp(2),
        ..Default::default()
    };
    store
        .apply(&repo("a"), &change, false)
        .await
        .expect("apply");
    assert_eq!(store.version(&repo("a")).await.expect("fp"), Some(fp(2)));
    assert_eq!(
        store.tags(&repo("a")).await.expect("tags"),
        vec![
            ("latest".to_string(), ds("m2")),
            ("v1".to_string(), ds("m1")),
            ("v2".to_string(), ds("m2"))
        ]
    );
    assert_eq!(
        store.tags(&repo("a/b")).await.expect("tags"),
        vec![],
        "a prefix repository is separate"
    );
    assert_eq!(
        store.tag(&repo("a"), &tag("v1")).await.expect("tag"),
        Some(ds("m1"))
    );
    assert_eq!(
        store.tag(&repo("a"), &tag("nope")).await.expect("tag"),
        None
    );
    assert_eq!(
        store.manifest(&repo("a"), &dg("m1")).await.expect("m"),
        Some(m1.clone())
    );
    assert_eq!(
        store.manifest(&repo("a/b"), &dg("m1")).await.expect("m"),
        None
    );
    // What a pull reads of the same row.
    assert_eq!(
        store
            .manifest_head(&repo("a"), &dg("m1"))
            .await
            .expect("head"),
        Some(super::ManifestHead {
            media_type: m1.media_type.clone(),
            size: m1.size,
        })
    );
    assert_eq!(
        store
            .manifest_head(&repo("a/b"), &dg("m1"))
            .await
            .expect("head"),
        None
    );
    assert_eq!(store.manifests(&repo("a")).await.expect("ms").len(), 2);
    assert_eq!(refs(store, "a", "shared").await, 2);
    assert_eq!(refs(store, "a", "l1").await, 1);
    assert_eq!(refs(store, "a", "c2").await, 1);
    assert_eq!(refs(store, "a/b", "shared").await, 0);

    // Re-putting a manifest does not count its blobs twice.
    store
        .apply(
            &repo("a"),
            &RepoChange {
                put_manifests: vec![m1.clone()],
                version: fp(3),
                ..Default::default()
            },
            false,
        )
        .await
        .expect("again");
    assert_eq!(refs(store, "a", "l1").await, 1);

    // Referrers.
    let r1 = manifest("r1", "empty", &[], Some("m1"));
    let r2 = manifest("r2", "empty", &[], Some("m1"));
    let r3 = manifest("r3", "empty", &[], Some("m2"));
    store
        .apply(
            &repo("a"),
            &RepoChange {
                put_manifests: vec![r2.clone(), r1.clone(), r3.clone()],
                version: fp(4),
                ..Default::default()
            },
            false,
        )
        .await
        .expect("refs");
    let got = referrers(store, "a", "m1").await;
    let mut want = vec![ds("r1"), ds("r2")];
    want.sort();
    assert_eq!(got, want, "sorted by digest");
    assert_eq!(referrers(store, "a", "m9").await, Vec::<String>::new());
    assert_eq!(referrers(store, "a/b", "m1").await, Vec::<String>::new());

    // Removing a manifest drops its tags, its referrer link and its counts.
    store
        .apply(
            &repo("a"),
            &RepoChange {
                remove_manifests: vec![ds("m2"), ds("r2")],
                remove_tags: vec!["v1".into()],
                version: fp(5),
                ..Default::default()
            },
            false,
        )
        .await
        .expect("remove");
    assert_eq!(
        store.tags(&repo("a")).await.expect("tags"),
        vec![],
        "v1 removed, latest and v2 went with m2"
    );
    assert_eq!(refs(store, "a", "shared").await, 1);
    assert_eq!(refs(store, "a", "c2").await, 0);
    let got = referrers(store, "a", "m1").await;
    assert_eq!(got, vec![ds("r1")]);

    // Pull statistics survive a full re-derive of the repository.
    assert_eq!(
        store
            .pull_stats(&repo("a"), &dg("m1"))
            .await
            .expect("stats"),
        PullStats::default()
    );
    store
        .record_pulls(&repo("a"), &dg("m1"), 1, 10)
        .await
        .expect("pull");
    store
        .record_pulls(&repo("a"), &dg("m1"), 1, 20)
        .await
        .expect("pull");
    assert_eq!(
        store
            .pull_stats(&repo("a"), &dg("m1"))
            .await
            .expect("stats"),
        PullStats {
            last_pulled: Some(20),
            count: 2
        }
    );
    // Pulls gathered by the registry arrive as one count.
    store
        .record_pulls(&repo("a"), &dg("m1"), 3, 30)
        .await
        .expect("pulls");
    assert_eq!(
        store
            .pull_stats(&repo("a"), &dg("m1"))
            .await
            .expect("stats"),
        PullStats {
            last_pulled: Some(30),
            count: 5
        }
    );
    store
        .apply(
            &repo("a"),
            &RepoChange {
                put_manifests: vec![m1.clone()],
                set_tags: vec![("only".to_string(), ds("m1"))],
                version: fp(6),
                replace: true,
                ..Default::default()
            },
            false,
        )
        .await
        .expect("replace");
    assert_eq!(
        store.tags(&repo("a")).await.expect("tags"),
        vec![("only".to_string(), ds("m1"))]
    );
    assert_eq!(
        store.manifests(&repo("a")).await.expect("ms").len(),
        1,
        "replace dropped the rest"
    );
    assert_eq!(referrers(store, "a", "m1").await, Vec::<String>::new());
    assert_eq!(refs(store, "a", "l1").await, 1);
    assert_eq!(
        store
            .pull_stats(&repo("a"), &dg("m1"))
            .await
            .expect("stats")
            .count,
        5
    );

    // Deleting a manifest forgets its pulls (a re-push starts afresh).
    store
        .apply(
            &repo("a"),
            &RepoChange {
                remove_manifests: vec![ds("m1")],
                version: fp(7),
                ..Default::default()
            },
            false,
        )
        .await
        .expect("remove");
    assert_eq!(
        store
            .pull_stats(&repo("a"), &dg("m1"))
            .await
            .expect("stats"),
        PullStats::default()
    );

    // An index counts its children as it counts layers, and a removed
    // one stops counting them.
    let mut index = manifest("i1", "ci", &[], None);
    index.children = vec![ds("child"), ds("child")];
    for (change, count) in [
        (
            RepoChange {
                put_manifests: vec![index],
                version: fp(8),
                ..Default::default()
            },
            1,
        ),
        (
            RepoChange {
                remove_manifests: vec![ds("i1")],
                version: fp(9),
                ..Default::default()
            },
            0,
        ),
    ] {
        store
            .apply(&repo("a/b"), &change, false)
            .await
            .expect("index");
        assert_eq!(refs(store, "a/b", "child").await, count, "a child");
        assert_eq!(refs(store, "a/b", "ci").await, count, "its config");
    }

    search::tag_times(store).await;
    search::generation_and_pulls(store).await;
    search::stars_and_bookmarks(store).await;
    search::repo_stamps(store).await;

    // Scan reports, by digest, change the generation.
    let image = dg("scanned");
    assert_eq!(store.scan_report(&image).await.expect("report"), None);
    let before = store.generation().await.expect("generation");
    store
        .set_scan_report(&image, Some("{\"findings\":[]}"))
        .await
        .expect("keep");
    assert_eq!(
        store.scan_report(&image).await.expect("report").as_deref(),
        Some("{\"findings\":[]}")
    );
    let kept = store.generation().await.expect("generation");
    assert_ne!(kept, before, "a report changes the generation");
    store.set_scan_report(&image, None).await.expect("forget");
    assert_eq!(store.scan_report(&image).await.expect("report"), None);
    assert_ne!(store.generation().await.expect("generation"), kept);

    // A store in use keeps what was written to it, check after check.
    for _ in 0..2 {
        assert_eq!(
            store.check().await.expect("check"),
            super::StoreCheck::Kept,
            "a store in use kept its data"
        );
    }
    assert!(!store.repos().await.expect("repos").is_empty());

    // Forgetting a repository leaves its neighbours.
    store.remove_repo("a").await.expect("remove repo");
    assert_eq!(store.repos().await.expect("repos"), vec!["a/b", "b/x"]);
    assert_eq!(
        store.manifest(&repo("a"), &dg("m1")).await.expect("m"),
        None
    );
    assert_eq!(store.version(&repo("a")).await.expect("fp"), None);
    // Settings.
    assert_eq!(store.setting("roots").await.expect("setting"), None);
    store.set_setting("roots", "one").await.expect("set");
    store.set_setting("roots", "two").await.expect("set");
    assert_eq!(
        store.setting("roots").await.expect("setting"),
        Some("two".into())
    );
    store.flush().await.expect("flush");
}

use super::*;

fn storage(json: &str) -> StorageConfig {
    serde_json::from_str(json).expect("storage config")
}

fn repo(s: &str) -> RepoName {
    s.parse().expect("name")
}

#[test]
fn the_first_quota_matching_applies_then_the_roots_own() {
    let p = Policies::from_config(&storage(
        r#"{"rootDirectory":"/a","maxRepoBytes":500,
            "subPaths":{"/team":{"rootDirectory":"/b","maxRepoBytes":70},"/other":{"rootDirectory":"/c"}},
            "quotas":[{"repositories":["big/**"],"maxBytes":1000},{"repositories":["**"],"maxBytes":10}]}"#,
    ))
    .expect("policies");
    let q = p.quota(&repo("big/x/y")).expect("quota");
    assert_eq!((q.rule.as_str(), q.max_bytes), ("storage.quotas[0]", 1000));
    assert_eq!(p.quota(&repo("small")).map(|q| q.max_bytes), Some(10));
    let p = Policies::from_config(&storage(
        r#"{"rootDirectory":"/a","maxRepoBytes":500,
            "subPaths":{"/team":{"rootDirectory":"/b","maxRepoBytes":70},"/other":{"rootDirectory":"/c"}},
            "quotas":[{"repositories":["big/*"],"maxBytes":1000}]}"#,
    ))
    .expect("policies");
    // `*` stays within a component.
    assert_eq!(p.quota(&repo("big/x/y")).map(|q| q.max_bytes), Some(500));
    let team = p.quota(&repo("team/app")).expect("sub-path quota");
    assert_eq!(
        (team.rule.as_str(), team.max_bytes),
        ("storage.subPaths./team.maxRepoBytes", 70)
    );
    // A sub-path without its own takes the main root's.
    assert_eq!(p.quota(&repo("other/app")).map(|q| q.max_bytes), Some(500));
    let none = Policies::from_config(&storage(r#"{"rootDirectory":"/a","maxRepoBytes":0}"#))
        .expect("policies");
    assert!(none.quota(&repo("x")).is_none());
    assert!(none.max_repos().is_none());
}

#[test]
fn immutable_patterns_match_whole_tags_in_matching_repositories() {
    let p = Policies::from_config(&storage(
        r#"{"rootDirectory":"/a","immutableTags":[
            {"repositories":["prod/**"],"patterns":["v[0-9]+\\.[0-9]+"]},
            {"repositories":["frozen"]}]}"#,
    ))
    .expect("policies");
    assert_eq!(
        p.immutable_rule(&repo("prod/api"), "v1.2"),
        Some("storage.immutableTags[0]")
    );
    assert!(p.immutable_rule(&repo("prod/api"), "v1.2-rc").is_none());
    assert!(p.immutable_rule(&repo("prod/api"), "xv1.2").is_none());
    assert!(p.immutable_rule(&repo("dev/api"), "v1.2").is_none());
    assert_eq!(
        p.immutable_rule(&repo("frozen"), "anything"),
        Some("storage.immutableTags[1]")
    );
    assert!(p.has_immutable(&repo("prod/x")));
    assert!(!p.has_immutable(&repo("frozenx")));
}

fn meta(digest: &str, size: u64, config: (&str, u64), layers: &[(&str, u64)]) -> ManifestMeta {
    ManifestMeta {
        digest: digest.into(),
        size,
        config: Some(config.0.into()),
        config_size: config.1,
        layers: layers.iter().map(|(d, _)| d.to_string()).collect(),
        layer_sizes: layers.iter().map(|(_, n)| *n).collect(),
        ..Default::default()
    }
}

#[test]
fn usage_counts_each_blob_once_and_a_push_only_what_it_adds() {
    let a = meta("m1", 10, ("c1", 5), &[("l1", 100), ("l2", 200)]);
    let b = meta("m2", 10, ("c2", 5), &[("l1", 100), ("l3", 50)]);
    let usage = referenced([&a]);
    assert_eq!(usage.values().sum::<u64>(), 315);
    // b shares l1: it adds its own manifest, config and l3.
    assert_eq!(push_adds(&b, &usage), 65);
    assert_eq!(push_adds(&a, &usage), 0);
    assert_eq!(referenced([&a, &b]).values().sum::<u64>(), 380);
}

#[test]
fn a_tag_pins_its_manifest_and_an_index_its_children() {
    let p = Policies::from_config(&storage(
        r#"{"rootDirectory":"/a","immutableTags":[{"repositories":["**"],"patterns":["stable"]}]}"#,
    ))
    .expect("policies");
    let children: HashMap<String, Vec<String>> =
        [("idx".to_string(), vec!["amd64".to_string()])].into();
    let r = repo("x");
    let tags = [("stable", "idx"), ("latest", "other")];
    let pinned = pinned_by(&p, &r, tags, &children, "amd64");
    assert_eq!(
        pinned,
        Some(("stable".to_string(), "storage.immutableTags[0]".to_string()))
    );
    assert!(pinned_by(&p, &r, tags, &children, "idx").is_some());
    // A mutable tag pins nothing.
    assert!(pinned_by(&p, &r, tags, &children, "other").is_none());
}

#[test]
fn unreferenced_uploads_count_until_referenced() {
    let u = Unreferenced::default();
    let r = repo("x");
    let d: Digest = format!("sha256:{}", "a".repeat(64))
        .parse()
        .expect("digest");
    u.add(&r, &d, 40);
    assert_eq!(u.bytes(&r, &HashMap::new()), 40);
    let referenced: HashMap<String, u64> = [(d.to_string(), 40)].into();
    // Referenced already: not counted twice.
    assert_eq!(u.bytes(&r, &referenced), 0);
    u.settle(&r, &referenced);
    assert_eq!(u.bytes(&r, &HashMap::new()), 0);
}

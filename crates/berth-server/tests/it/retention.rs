//! Retention policies, applied by GC.

use std::time::Duration;

use berth_oci::Digest;
use berth_server::config::{Config, RetentionConfig};
use serde_json::{Value, json};

use crate::support::*;

fn retention(v: Value) -> RetentionConfig {
    let c = Config::from_value(json!({"storage": {"rootDirectory": "/x", "retention": v}}))
        .expect("config");
    c.storage.retention.expect("retention")
}

#[tokio::test]
async fn tags_no_rule_keeps_are_removed_and_their_images_collected() {
    let s = Server::start().await;
    let mut digests = Vec::new();
    for t in ["a1", "a2", "b1", "b2"] {
        digests.push(
            s.push_image("ret/app", t, &[format!("layer {t}").as_bytes()])
                .await
                .1,
        );
    }
    s.push_image("other/app", "b1", &[b"untouched"]).await;
    // b2 was pulled lately, b1 never.
    assert_eq!(s.get("/v2/ret/app/manifests/b2").await.status(), 200);
    // Pulls are counted off the request: wait (bounded) until this one is.
    let repo: berth_oci::RepoName = "ret/app".parse().expect("name");
    let b2 = &digests[3];
    for _ in 0..500 {
        if s.registry
            .meta()
            .pull_stats(&repo, b2)
            .await
            .expect("stats")
            .count
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let policy = retention(json!({"policies": [{"repositories": ["ret/**"],
        "keepTags": [{"patterns": ["^a"]}, {"pulledWithin": "1h"}]}]}));

    // A dry run only counts.
    let dry = RetentionConfig {
        dry_run: true,
        ..policy.clone()
    };
    let name = "ret/app".parse().expect("name");
    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&dry))
        .await
        .expect("gc");
    assert_eq!(report.tags, 1);
    assert_eq!(s.tags("ret/app").await, json!(["a1", "a2", "b1", "b2"]));

    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&policy))
        .await
        .expect("gc");
    assert_eq!((report.tags, report.manifests), (1, 1), "{report:?}");
    assert_eq!(s.tags("ret/app").await, json!(["a1", "a2", "b2"]));
    assert_eq!(
        s.get(&format!("/v2/ret/app/manifests/{}", digests[2]))
            .await
            .status(),
        404,
        "b1's image collected"
    );
    let other = "other/app".parse().expect("name");
    s.registry
        .gc_repo_with(&other, Duration::ZERO, Some(&policy))
        .await
        .expect("gc");
    assert_eq!(
        s.tags("other/app").await,
        json!(["b1"]),
        "no policy matches: everything kept"
    );
}

#[tokio::test]
async fn delete_untagged_and_delete_referrers() {
    let s = Server::start().await;
    let cfg = s.push_blob("ret/refs", b"{}").await;
    let untagged = image_manifest(
        desc(OCI_CONFIG, &cfg, 2),
        vec![],
        Some(json!({"annotations": {"n": "untagged"}})),
    );
    let untagged_d = Digest::sha256(&untagged);
    assert_eq!(
        s.put_manifest("ret/refs", &untagged_d.to_string(), OCI_MANIFEST, &untagged)
            .await
            .status(),
        201
    );
    let dangling = image_manifest(
        desc("application/vnd.oci.empty.v1+json", &cfg, 2),
        vec![],
        Some(
            json!({"subject": {"mediaType": OCI_MANIFEST, "digest": Digest::sha256(b"gone").to_string(), "size": 1}}),
        ),
    );
    let dangling_d = Digest::sha256(&dangling);
    assert_eq!(
        s.put_manifest("ret/refs", &dangling_d.to_string(), OCI_MANIFEST, &dangling)
            .await
            .status(),
        201
    );
    let name = "ret/refs".parse().expect("name");

    let keep_untagged =
        retention(json!({"policies": [{"repositories": ["**"], "deleteUntagged": false}]}));
    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&keep_untagged))
        .await
        .expect("gc");
    assert_eq!(report.manifests, 0);

    let drop_referrers = retention(
        json!({"delay": "1h", "policies": [{"repositories": ["**"], "deleteReferrers": true}]}),
    );
    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&drop_referrers))
        .await
        .expect("gc");
    assert_eq!(
        report.manifests, 0,
        "retention.delay (1h) protects young manifests"
    );

    let drop_referrers = retention(
        json!({"delay": "0s", "policies": [{"repositories": ["**"], "deleteReferrers": true}]}),
    );
    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&drop_referrers))
        .await
        .expect("gc");
    assert_eq!(
        report.manifests, 2,
        "the untagged image and the referrer of a missing subject"
    );
    assert_eq!(
        s.get(&format!("/v2/ret/refs/manifests/{dangling_d}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn keep_untagged_keeps_the_untagged_manifests_its_rules_name() {
    let s = Server::start().await;
    // Two images pushed by digest only; one of them pulled lately.
    let mut digests = Vec::new();
    for n in ["one", "two"] {
        let (m, d) = s.push_image("ku/app", "tmp", &[n.as_bytes()]).await;
        let r = s
            .put_manifest("ku/app", &d.to_string(), OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), 201);
        digests.push(d);
    }
    let r = s
        .http
        .delete(s.url("/v2/ku/app/manifests/tmp"))
        .send()
        .await
        .expect("untag");
    assert_eq!(r.status(), 202);
    let pulled = &digests[0];
    assert_eq!(
        s.get(&format!("/v2/ku/app/manifests/{pulled}"))
            .await
            .status(),
        200
    );
    let policy = retention(json!({"policies": [{"repositories": ["ku/**"],
        "keepUntagged": {"pulledWithin": "1h"}}]}));
    let name = "ku/app".parse().expect("name");
    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&policy))
        .await
        .expect("gc");
    assert_eq!(report.manifests, 1, "{report:?}");
    assert_eq!(
        s.get(&format!("/v2/ku/app/manifests/{pulled}"))
            .await
            .status(),
        200
    );
    let gone = &digests[1];
    assert_eq!(
        s.get(&format!("/v2/ku/app/manifests/{gone}"))
            .await
            .status(),
        404
    );

    // No criterion: every untagged manifest is kept.
    let keep_all = retention(json!({"policies": [{"repositories": ["**"], "keepUntagged": {}}]}));
    let (m, d) = s.push_image("ku/app", "tmp", &[b"three"]).await;
    s.put_manifest("ku/app", &d.to_string(), OCI_MANIFEST, &m)
        .await;
    s.http
        .delete(s.url("/v2/ku/app/manifests/tmp"))
        .send()
        .await
        .expect("untag");
    let report = s
        .registry
        .gc_repo_with(&name, Duration::ZERO, Some(&keep_all))
        .await
        .expect("gc");
    assert_eq!(report.manifests, 0, "{report:?}");
}

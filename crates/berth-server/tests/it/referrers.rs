//! The referrers API.

use berth_oci::Digest;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn referrers_listed_and_filtered() {
    let s = Server::start().await;
    let (_, subject) = s.push_image("ref", "v1", &[b"base"]).await;
    let empty = s.push_blob("ref", b"{}").await;
    let subj = json!({"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": 10});
    let mut pushed = Vec::new();
    for (artifact, note) in [
        ("application/vnd.example.sbom", "sbom"),
        ("application/vnd.example.sig", "sig"),
    ] {
        let m = image_manifest(
            desc("application/vnd.oci.empty.v1+json", &empty, 2),
            vec![desc("application/vnd.oci.empty.v1+json", &empty, 2)],
            Some(json!({"artifactType": artifact, "subject": subj, "annotations": {"note": note}})),
        );
        let d = Digest::sha256(&m);
        assert_eq!(
            s.put_manifest("ref", &d.to_string(), OCI_MANIFEST, &m)
                .await
                .status(),
            201
        );
        pushed.push((d, m.len(), artifact, note));
    }
    // An artifact without artifactType: its config media type stands in.
    let cfg = s.push_blob("ref", br#"{"kind":"attestation"}"#).await;
    let m = image_manifest(
        desc("application/vnd.example.config", &cfg, 22),
        vec![],
        Some(json!({"subject": subj})),
    );
    let cfg_ref = Digest::sha256(&m);
    assert_eq!(
        s.put_manifest("ref", &cfg_ref.to_string(), OCI_MANIFEST, &m)
            .await
            .status(),
        201
    );

    let r = s.get(&format!("/v2/ref/referrers/{subject}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert!(r.headers().get("oci-filters-applied").is_none());
    let v: Value = r.json().await.expect("j");
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let list = v["manifests"].as_array().expect("manifests");
    assert_eq!(list.len(), 3);
    for (d, size, artifact, note) in &pushed {
        let e = list
            .iter()
            .find(|e| e["digest"] == d.to_string())
            .expect("listed");
        assert_eq!(e["artifactType"], *artifact);
        assert_eq!(e["size"], *size);
        assert_eq!(e["mediaType"], OCI_MANIFEST);
        assert_eq!(e["annotations"]["note"], *note);
    }
    let e = list
        .iter()
        .find(|e| e["digest"] == cfg_ref.to_string())
        .expect("listed");
    assert_eq!(e["artifactType"], "application/vnd.example.config");

    let r = s
        .get(&format!(
            "/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let v: Value = r.json().await.expect("j");
    assert_eq!(v["manifests"].as_array().expect("m").len(), 1);
    assert_eq!(v["manifests"][0]["digest"], pushed[1].0.to_string());

    // Unknown digest, unknown repository: an empty index, not 404.
    for path in [
        format!("/v2/ref/referrers/{}", Digest::sha256(b"none")),
        format!("/v2/norepo/referrers/{subject}"),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.expect("j");
        assert_eq!(v["manifests"], json!([]));
    }
    assert_error(
        s.get("/v2/ref/referrers/sha256:short").await,
        400,
        "DIGEST_INVALID",
    )
    .await;

    // Deleting a referrer removes it from the list.
    let r = s
        .http
        .delete(s.url(&format!("/v2/ref/manifests/{}", pushed[0].0)))
        .send()
        .await
        .expect("del");
    assert_eq!(r.status(), 202);
    let v: Value = s
        .get(&format!("/v2/ref/referrers/{subject}"))
        .await
        .json()
        .await
        .expect("j");
    assert_eq!(v["manifests"].as_array().expect("m").len(), 2);
}

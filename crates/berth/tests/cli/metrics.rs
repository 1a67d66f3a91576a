//! `extensions.metrics`: a scrape after pushes and pulls shows the counts
//! moved as they should, under zot's names and Berth's route templates;
//! `http.accessControl.metrics` decides who may scrape.

use std::collections::HashMap;
use std::path::Path;

use berth_oci::Digest;
use serde_json::{Value, json};

use crate::support::*;

fn start(dir: &Path, http: Value) -> Berth {
    let config = dir.join("metrics.json");
    let mut h = json!({"address": "127.0.0.1", "port": "0"});
    if let (Some(o), Value::Object(extra)) = (h.as_object_mut(), http) {
        o.extend(extra);
    }
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": dir.join("root")}, "http": h,
               "extensions": {"metrics": {"enable": true, "prometheus": {"path": "/metrics"}}}})
        .to_string(),
    )
    .expect("config");
    Berth::start_config(&config)
}

/// `name{labels}` → value, from the OpenMetrics text.
fn scrape(b: &Berth, creds: Option<(&str, &str)>) -> HashMap<String, f64> {
    let mut req = reqwest::blocking::Client::new().get(b.url("/metrics"));
    if let Some((u, p)) = creds {
        req = req.basic_auth(u, Some(p));
    }
    let r = req.send().expect("scrape");
    assert_eq!(r.status(), 200);
    let text = r.text().expect("text");
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

#[test]
fn counts_move_with_pushes_and_pulls() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}));
    let c = reqwest::blocking::Client::new();
    let before = scrape(&b, None);

    // Push a blob and a manifest, pull both, leave an upload open.
    let layer = vec![7u8; 100_000];
    let config = b"{}".to_vec();
    for data in [&layer, &config] {
        let d = Digest::sha256(data);
        let r = c
            .post(b.url(&format!("/v2/team/app/blobs/uploads/?digest={d}")))
            .body(data.clone())
            .send()
            .expect("blob");
        assert_eq!(r.status(), 201);
    }
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256(&config).to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::sha256(&layer).to_string(), "size": layer.len()}]})
    .to_string();
    let r = c
        .put(b.url("/v2/team/app/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .expect("manifest");
    assert_eq!(r.status(), 201);
    assert_eq!(
        c.get(b.url("/v2/team/app/manifests/v1"))
            .send()
            .expect("get")
            .status(),
        200
    );
    assert_eq!(
        c.head(b.url("/v2/team/app/manifests/v1"))
            .send()
            .expect("head")
            .status(),
        200
    );
    let r = c
        .get(b.url(&format!("/v2/team/app/blobs/{}", Digest::sha256(&layer))))
        .send()
        .expect("blob get");
    assert_eq!(r.bytes().expect("body").len(), layer.len());
    assert_eq!(
        c.get(b.url("/v2/team/app/manifests/nope"))
            .send()
            .expect("404")
            .status(),
        404
    );
    let r = c
        .post(b.url("/v2/team/app/blobs/uploads/"))
        .send()
        .expect("open");
    assert_eq!(r.status(), 202);

    let after = scrape(&b, None);
    let moved = |key: &str| get(&after, key) - get(&before, key);
    // zot's names.
    assert_eq!(
        moved(r#"zot_http_requests_total{method="PUT",code="201"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"zot_http_requests_total{method="POST",code="201"}"#),
        2.0
    );
    assert_eq!(
        moved(r#"zot_http_requests_total{method="GET",code="404"}"#),
        1.0
    );
    assert_eq!(
        get(&after, r#"zot_repo_uploads_total{repo="team/app"}"#),
        1.0
    );
    assert_eq!(
        get(&after, r#"zot_repo_downloads_total{repo="team/app"}"#),
        1.0,
        "GET only, not HEAD"
    );
    assert!(
        get(
            &after,
            r#"zot_http_repo_latency_seconds_count{repo="team/app"}"#
        ) >= 7.0
    );
    assert!(
        get(
            &after,
            r#"zot_http_method_latency_seconds_count{method="GET"}"#
        ) >= 3.0
    );
    assert_eq!(
        get(
            &after,
            r#"zot_info{commit="",binaryType="berth",goVersion="",version="0.1.0"}"#
        ),
        1.0
    );
    // Berth's, by route template.
    assert_eq!(
        moved(
            r#"berth_http_requests_total{method="GET",route="/v2/{name}/blobs/{digest}",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(
            r#"berth_http_requests_total{method="HEAD",route="/v2/{name}/manifests/{reference}",status="200"}"#
        ),
        1.0
    );
    assert!(
        after.keys().all(|k| !k.contains("route=\"/v2/team")),
        "routes are templates, never raw paths"
    );
    assert!(moved("berth_http_received_bytes_total") >= (layer.len() + 2) as f64);
    assert!(moved("berth_http_sent_bytes_total") >= layer.len() as f64);
    let root = tmp.path().join("root").display().to_string();
    assert_eq!(
        get(&after, &format!("berth_repositories{{root=\"{root}\"}}")),
        1.0
    );
    assert_eq!(get(&after, "berth_uploads_in_progress"), 1.0);
    assert_eq!(moved("berth_repositories_created_total"), 1.0);
    assert!(get(&after, "process_resident_memory_bytes") > 1e6);
    assert!(get(&after, "process_open_fds") > 0.0);
    // Scrapes are not counted.
    assert_eq!(
        moved(r#"berth_http_requests_total{method="GET",route="/metrics",status="200"}"#),
        0.0
    );
}

#[test]
fn access_control_decides_who_scrapes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = tmp.path().join("htpasswd");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    std::fs::write(
        &htpasswd,
        line("prom", "prom-pw") + &line("alice", "alice-pw") + &line("root", "root-pw"),
    )
    .expect("htpasswd");
    let access = |anonymous: bool| {
        json!({"repositories": {"**": {"defaultPolicy": ["read"]}},
               "adminPolicy": {"users": ["root"], "actions": ["read"]},
               "metrics": {"users": ["prom"], "anonymousPolicy": if anonymous { json!(["read"]) } else { json!([]) }}})
    };
    let b = start(
        tmp.path(),
        json!({"auth": {"htpasswd": {"path": htpasswd}}, "accessControl": access(false)}),
    );
    let status = |creds: Option<(&str, &str)>| {
        let mut req = reqwest::blocking::Client::new().get(b.url("/metrics"));
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        req.send().expect("scrape").status().as_u16()
    };
    assert_eq!(status(Some(("prom", "prom-pw"))), 200);
    assert_eq!(status(Some(("root", "root-pw"))), 200, "admins may");
    assert_eq!(status(Some(("alice", "alice-pw"))), 403);
    assert_eq!(status(Some(("prom", "wrong"))), 401);
    assert_eq!(status(None), 401);

    // anonymousPolicy: [read], edited live.
    let config = tmp.path().join("metrics.json");
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read")).expect("json");
    cfg["http"]["accessControl"] = access(true);
    std::fs::write(&config, cfg.to_string()).expect("write");
    let mut open = false;
    for _ in 0..100 {
        if status(None) == 200 {
            open = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(open, "anonymous scrapes allowed after the edit");
}

//! The server's vulnerability scanning (`extensions.search.cve`) through
//! the real binary: the `berth scan` fixture (a Debian 12 image with dpkg
//! and Python packages, OSV dumps written by the test) pushed with
//! skopeo, scanned on the server (its layers read from storage), and
//! zot's CVE queries answered; zot's clients' own CVE documents; two
//! servers on s3s-fs and Redis sharing their reports; a cut layer.

use std::time::{Duration, Instant};

use berth_oci::Digest;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::scan::{DPKG_STATUS, Fixture, OS_RELEASE, expected, fixture, tar_gz};
use crate::support::{Berth, skopeo_push};

/// A server scanning with the fixture's advisories, with more `storage`
/// keys, its root under `name`.
pub(crate) fn scanning_server(f: &Fixture, name: &str, storage: Value) -> Berth {
    let root = f.root.join(name);
    std::fs::create_dir_all(&root).expect("root");
    let mut storage_obj = json!({ "rootDirectory": root });
    if let (Some(o), Value::Object(extra)) = (storage_obj.as_object_mut(), storage) {
        o.extend(extra);
    }
    let config = f.root.join(format!("{name}.json"));
    std::fs::write(
        &config,
        json!({
            "storage": storage_obj,
            "http": {"address": "127.0.0.1", "port": "0"},
            "extensions": {"search": {"cve": {"updateInterval": "2h", "osv": {"source": f.osv}}}, "ui": {}}
        })
        .to_string(),
    )
    .expect("config");
    Berth::start_config(&config)
}

/// Pushes the fixture's image to `server` as `repo:v1`.
pub(crate) fn push(f: &Fixture, server: &Berth, repo: &str) {
    let out = skopeo_push(
        &f.root,
        &f.layout,
        &format!("{}/{repo}:v1", server.addr),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A GraphQL answer of `server` to `query` (POST).
fn graphql(server: &Berth, query: &str) -> Value {
    Client::new()
        .post(server.url("/v2/_zot/ext/search"))
        .json(&json!({ "query": query }))
        .send()
        .expect("search")
        .json()
        .expect("json")
}

/// Asks `query` until `done` says the answer is the one awaited (the
/// advisories load and the image is scanned meanwhile), for at most 30 s.
pub(crate) fn wait_for(server: &Berth, query: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = graphql(server, query);
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never answered: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn answered(v: &Value) -> bool {
    v["errors"].is_null()
}

/// zot's CVE queries: the image pushed with skopeo is scanned on the
/// server with the same findings as `berth scan`, filtered, counted,
/// paged and listed as zot's clients ask.
#[test]
fn a_server_answers_zot_cve_queries() {
    let f = fixture();
    let server = scanning_server(&f, "data", json!({}));
    push(&f, &server, "scan/app");
    let answer = wait_for(
        &server,
        r#"{ CVEListForImage(image: "scan/app:v1") { Tag CVEList { Id Severity PackageList { Name InstalledVersion FixedVersion } } Summary { Count MaxSeverity HighCount } Page { TotalCount } } }"#,
        answered,
    );
    let result = &answer["data"]["CVEListForImage"];
    let field = |c: &Value, path: &[&str]| {
        path.iter()
            .fold(c, |v, k| &v[*k])
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let found: Vec<(String, String, String, String, String)> = result["CVEList"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            let p = &c["PackageList"][0];
            (
                field(c, &["Id"]),
                field(c, &["Severity"]),
                field(p, &["Name"]),
                field(p, &["InstalledVersion"]),
                field(p, &["FixedVersion"]),
            )
        })
        .collect();
    let want: Vec<_> = expected()
        .into_iter()
        .map(|(id, sev, name, installed, fixed)| (id, sev.to_uppercase(), name, installed, fixed))
        .collect();
    assert_eq!(found, want, "{answer}");
    assert_eq!(result["Tag"], "v1");
    assert_eq!(result["Summary"]["Count"], 4);
    assert_eq!(result["Summary"]["MaxSeverity"], "HIGH");
    assert_eq!(result["Page"]["TotalCount"], 4);

    let first = |q: &str| graphql(&server, q)["data"].to_string();
    let low = first(
        r#"{ CVEListForImage(image: "scan/app:v1", severity: "LOW", requestedPage: {limit: 1, offset: 0}) { CVEList { Id } } }"#,
    );
    assert!(
        low.contains("CVE-2023-5678") && !low.contains("CVE-2024-0727"),
        "{low}"
    );
    let searched = first(
        r#"{ CVEListForImage(image: "scan/app:v1", searchedCVE: "jinja") { CVEList { Id } } }"#,
    );
    assert!(
        searched.contains("CVE-2024-22195") && !searched.contains("CVE-2024-0727"),
        "{searched}"
    );
    let excluded = first(
        r#"{ CVEListForImage(image: "scan/app:v1", excludedCVE: "CVE-2024") { Summary { Count } } }"#,
    );
    assert!(excluded.contains("\"Count\":2"), "{excluded}");
    let affected = first(r#"{ ImageListForCVE(id: "CVE-2024-0727") { Results { Tag } } }"#);
    assert!(affected.contains("\"Tag\":\"v1\""), "{affected}");
    let none = first(r#"{ ImageListForCVE(id: "CVE-1999-0001") { Results { Tag } } }"#);
    assert!(!none.contains("v1"), "{none}");
    let fixed = first(
        r#"{ ImageListWithCVEFixed(id: "CVE-2024-0727", image: "scan/app") { Results { Tag } } }"#,
    );
    assert!(!fixed.contains("v1"), "{fixed}");
    let diff = first(
        r#"{ CVEDiffListForImages(minuend: {Repo: "scan/app", Tag: "v1"}, subtrahend: {Repo: "scan/app", Tag: "v1"}) { Summary { Count } } }"#,
    );
    assert!(diff.contains("\"Count\":0"), "{diff}");
    let summary = graphql(
        &server,
        r#"{ ImageList(repo: "scan/app") { Results { Vulnerabilities { Count HighCount MediumCount LowCount UnknownCount } } } }"#,
    );
    let v = &summary["data"]["ImageList"]["Results"][0]["Vulnerabilities"];
    let counts = [
        "Count",
        "HighCount",
        "MediumCount",
        "LowCount",
        "UnknownCount",
    ]
    .map(|k| v[k].as_i64());
    assert_eq!(
        counts,
        [Some(4), Some(1), Some(1), Some(1), Some(1)],
        "{summary}"
    );
}

/// The 8 CVE documents zot's CLI and UI send (`tests/zot/graphql-queries.json`),
/// each as its client sends it (`GET ?query=`) and as a `POST`, answer
/// with real findings.
#[cfg(feature = "search")]
#[test]
fn zot_clients_cve_documents_answer_with_findings() {
    let f = fixture();
    let server = scanning_server(&f, "data", json!({}));
    push(&f, &server, "scan/app");
    wait_for(
        &server,
        r#"{ CVEListForImage(image: "scan/app:v1") { Tag } }"#,
        answered,
    );
    let docs: Vec<Value> = crate::search_client::documents()
        .into_iter()
        .filter(|d| {
            d["needs"]
                .as_array()
                .is_some_and(|n| n.contains(&json!("cve")))
        })
        .collect();
    assert_eq!(docs.len(), 8);
    for doc in docs {
        let name = doc["name"].as_str().expect("name");
        let query = doc["query"]
            .as_str()
            .expect("query")
            .replace("{{REPO}}", "scan/app")
            .replace("{{TAG}}", "v1")
            .replace("{{CVE}}", "CVE-2024-0727");
        let mut url = reqwest::Url::parse(&server.url("/v2/_zot/ext/search")).expect("url");
        url.query_pairs_mut().append_pair("query", &query);
        let get: Value = Client::new()
            .get(url)
            .send()
            .expect("get")
            .json()
            .expect("json");
        for answer in [get, graphql(&server, &query)] {
            assert!(answered(&answer), "{name}: {answer}");
            let text = answer["data"].to_string();
            let has = |s: &str| text.contains(s);
            match name {
                "zli-image-cve" | "zui-tag-cves-page" | "zui-tag-cves-all" => {
                    for id in [
                        "CVE-2024-0727",
                        "CVE-2024-22195",
                        "CVE-2023-5678",
                        "DSA-5532-1",
                    ] {
                        assert!(has(id), "{name}: {id} in {text}");
                    }
                }
                "zui-tag-cves-filtered" => {
                    assert!(
                        has("CVE-2024-0727") && !has("CVE-2024-22195"),
                        "{name}: {text}"
                    );
                }
                "zli-cve-affected" => assert!(has("\"Tag\":\"v1\""), "{name}: {text}"),
                "zli-cve-fixed" | "zui-cve-fixed-in" => {
                    assert!(!has("\"Tag\":\"v1\""), "{name}: {text}")
                }
                "zli-cve-diff" => assert!(has("\"Count\":0"), "{name}: {text}"),
                other => panic!("an unexpected CVE document {other}"),
            }
        }
    }
}

/// Two servers sharing an S3 bucket (a real `s3s-fs`) and a Redis: one
/// scans the image (its layers read from the bucket), the other shows
/// what it found without scanning again (the report is kept in the
/// shared metadata store, for the same advisories' version).
#[cfg(all(feature = "s3", feature = "redis"))]
#[test]
fn servers_sharing_a_bucket_share_their_scans() {
    use crate::redis_server::RedisServer;
    use crate::s3_server::S3Server;
    let f = fixture();
    let (s3, redis) = (S3Server::start(), RedisServer::start());
    let shared = json!({
        "storageDriver": s3.driver("/scan"),
        "cacheDriver": {"name": "redis", "url": redis.url(), "keyprefix": "scan"},
    });
    let (a, b) = (
        scanning_server(&f, "a", shared.clone()),
        scanning_server(&f, "b", shared),
    );
    push(&f, &a, "shared/app");
    let scanned = wait_for(
        &b,
        r#"{ CVEListForImage(image: "shared/app:v1") { Summary { Count } } }"#,
        answered,
    );
    assert_eq!(
        scanned["data"]["CVEListForImage"]["Summary"]["Count"], 4,
        "{scanned}"
    );
    let shown = wait_for(
        &a,
        r#"{ ImageList(repo: "shared/app") { Results { Vulnerabilities { Count MaxSeverity } } } }"#,
        |v| v["data"]["ImageList"]["Results"][0]["Vulnerabilities"]["Count"] == 4,
    );
    assert_eq!(
        shown["data"]["ImageList"]["Results"][0]["Vulnerabilities"]["MaxSeverity"],
        "HIGH"
    );
}

/// A layer cut short: the scan of that image is an error (logged, and
/// the image never shown clean), not a crash or a stalled queue; another
/// image is still scanned.
#[test]
fn a_broken_layer_fails_only_its_image() {
    let f = fixture();
    let server = scanning_server(&f, "data", json!({}));
    let http = Client::new();
    let upload = |data: &[u8]| {
        let d = Digest::sha256(data);
        let r = http
            .post(server.url(&format!("/v2/broken/app/blobs/uploads/?digest={d}")))
            .body(data.to_vec())
            .send()
            .expect("push");
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        (d, data.len())
    };
    let (gz, _) = tar_gz(&[
        ("etc/os-release", OS_RELEASE),
        ("var/lib/dpkg/status", DPKG_STATUS),
    ]);
    let (cd, cl) = upload(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let (ld, ll) = upload(&gz[..gz.len() / 2]);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cl},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.to_string(), "size": ll}]});
    let r = http
        .put(server.url("/v2/broken/app/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .expect("put");
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    push(&f, &server, "good/app");
    let broken = wait_for(
        &server,
        r#"{ CVEListForImage(image: "broken/app:v1") { Summary { Count } } }"#,
        |v| v["errors"].to_string().contains("could not be scanned"),
    );
    assert!(
        broken["errors"].to_string().contains("broken/app"),
        "{broken}"
    );
    let summary = graphql(
        &server,
        r#"{ ImageList(repo: "broken/app") { Results { Vulnerabilities { Count } } } }"#,
    );
    assert!(
        summary["data"]["ImageList"]["Results"][0]["Vulnerabilities"].is_null(),
        "not shown clean: {summary}"
    );
    let good = wait_for(
        &server,
        r#"{ CVEListForImage(image: "good/app:v1") { Summary { Count } } }"#,
        answered,
    );
    assert_eq!(
        good["data"]["CVEListForImage"]["Summary"]["Count"], 4,
        "{good}"
    );
    // A list over every image answers despite the broken one, which is in
    // neither the affected nor the fixed list.
    let affected = graphql(
        &server,
        r#"{ ImageListForCVE(id: "CVE-2024-0727") { Results { RepoName } } }"#,
    );
    assert!(answered(&affected), "{affected}");
    let text = affected["data"].to_string();
    assert!(
        text.contains("good/app") && !text.contains("broken/app"),
        "{text}"
    );
    let fixed = graphql(
        &server,
        r#"{ ImageListWithCVEFixed(id: "CVE-2024-0727", image: "broken/app") { Results { Tag } } }"#,
    );
    assert!(answered(&fixed), "{fixed}");
    assert!(!fixed["data"].to_string().contains("v1"), "{fixed}");
    let log = server.log.lock().expect("log").join("\n");
    assert!(
        log.contains("scan error"),
        "the broken image's error is logged: {log}"
    );
}

/// The web UI shows an image's vulnerabilities as search has them: each
/// finding with its severity, the highest on the repository's page, and
/// the severity filter keeping only the chosen ones.
#[cfg(feature = "ui")]
#[test]
fn the_web_ui_shows_vulnerabilities_with_a_severity_filter() {
    let f = fixture();
    let server = scanning_server(&f, "ui", json!({}));
    push(&f, &server, "scan/app");
    wait_for(
        &server,
        r#"{ CVEListForImage(image: "scan/app:v1") { Summary { Count } } }"#,
        |v| v["data"]["CVEListForImage"]["Summary"]["Count"] == 4,
    );
    let page = |path: &str| {
        let r = Client::new().get(server.url(path)).send().expect("page");
        assert_eq!(r.status(), 200, "{path}");
        r.text().expect("html")
    };
    let all = page("/ui/image/scan/app:v1");
    let want = expected();
    for (id, ..) in &want {
        assert!(
            all.contains(id.as_str()),
            "{id} missing from the image page"
        );
    }
    assert!(
        all.contains("Vulnerabilities") && all.contains("HIGH"),
        "{all}"
    );
    let low = page("/ui/image/scan/app:v1?severity=low");
    for (id, severity, ..) in &want {
        assert_eq!(
            low.contains(id.as_str()),
            severity.eq_ignore_ascii_case("low"),
            "{id} ({severity}) with the LOW filter"
        );
    }
    let repo = page("/ui/repo/scan/app");
    assert!(
        repo.contains("sev-HIGH"),
        "the highest severity on the repository page: {repo}"
    );
}

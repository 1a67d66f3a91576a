use super::*;

fn err(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("test json");
    Config::from_value(v)
        .expect_err("should be refused")
        .to_string()
}

#[test]
fn minimal_gets_zot_defaults() {
    let c = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/tmp/x"}}))
        .expect("valid");
    assert_eq!(c.http.port.0, 8080);
    assert_eq!(c.http.address, "127.0.0.1");
    assert!(c.storage.dedupe && c.storage.gc && !c.storage.commit);
    assert_eq!(c.storage.gc_delay.0.as_secs(), 3600);
}

#[test]
fn zot_spellings() {
    let c = Config::from_value(serde_json::json!({
        "distSpecVersion":"1.1.1",
        "storage":{"rootDirectory":"/tmp/x","gcDelay":"2h","gcInterval":3600000000000u64,"dedupe":false},
        "http":{"address":"0.0.0.0","port":"5000","compat":["docker2s2"]},
        "log":{"level":"debug"}
    }))
    .expect("valid");
    assert_eq!(c.http.port.0, 5000);
    assert_eq!(c.storage.gc_delay.0.as_secs(), 7200);
    assert_eq!(c.storage.gc_interval.0.as_secs(), 3600);
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            r#"{"storage":{"rootDirectory":"/x","bogus":1}}"#,
            "storage.bogus: unknown key",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"nope":1}"#,
            "nope: unknown key",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"http":{"port":"99999"}}"#,
            "http.port: invalid port",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","gcDelay":"soon"}}"#,
            "storage.gcDelay: invalid duration",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"log":{"level":"loud"}}"#,
            "log.level: unknown variant",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","dedupe":"yes"}}"#,
            "storage.dedupe: invalid type",
        ),
        (r#"{"storage":{}}"#, "rootDirectory"),
        (r#"{}"#, "storage"),
        (
            r#"{"storage":{"rootDirectory":"/x"},"http":{"auth":{"bearer":{"realm":"r","cert":"/c"}}}}"#,
            "http.auth.bearer.service: needed with cert or awsSecretsManager",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"http":{"auth":{"bearer":{"realm":"r"}}}}"#,
            "http.auth.bearer: needs cert or awsSecretsManager",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(got.contains(want), "{json}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "one line: {got:?}");
    }
}

#[test]
fn empty_extensions_object_is_fine() {
    Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"},"extensions":{}}))
        .expect("empty extensions is accepted");
}

#[test]
fn formats_by_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        (
            "c.json",
            r#"{"storage":{"rootDirectory":"/d"},"http":{"port":"5001"}}"#,
        ),
        (
            "c.yaml",
            "storage:\n  rootDirectory: /d\nhttp:\n  port: 5001\n",
        ),
        (
            "c.toml",
            "[storage]\nrootDirectory = \"/d\"\n[http]\nport = \"5001\"\n",
        ),
    ];
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        let c = Config::load(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.http.port.0, 5001, "{name}");
    }
    let p = dir.path().join("c.ini");
    std::fs::write(&p, "x").expect("write");
    assert!(Config::load(&p).is_err());
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "storage:\n  rootDirectory: /d\n  gcc: true\n").expect("write");
    assert_eq!(
        Config::load(&p).expect_err("bad").to_string(),
        "storage.gcc: unknown key"
    );
}

#[test]
fn sub_paths() {
    let c = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/a",
        "subPaths":{"/team":{"rootDirectory":"/b","dedupe":false,"gcDelay":"2h"}}}}))
    .expect("valid");
    let roots = c.storage.roots();
    assert_eq!(roots.len(), 2);
    assert_eq!(roots[1].prefix.as_deref(), Some("team"));
    assert!(!roots[1].dedupe && roots[1].gc);
    assert_eq!(roots[1].gc_delay.as_secs(), 7200);
    // zot's hydrate-blob-on-read example: per root, and a sub-path's
    // redirectBlobURL accepted when it is the main one's.
    let c = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/a",
        "hydrateBlobOnRead": true, "redirectBlobURL": false,
        "subPaths":{"/a":{"rootDirectory":"/za","hydrateBlobOnRead":false,"redirectBlobURL":false},
                    "/b":{"rootDirectory":"/zb","hydrateBlobOnRead":true}}}}))
    .expect("valid");
    assert!(c.storage.hydrate_blob_on_read);
    assert!(!c.storage.sub_paths["/a"].hydrate_blob_on_read);
    assert!(c.storage.sub_paths["/b"].hydrate_blob_on_read);
    // Storage wholly remote needs no rootDirectory (zot's all-remote
    // example); the local files go to the embedded default's directory.
    if cfg!(all(feature = "s3", feature = "redis")) {
        let c = Config::from_value(serde_json::json!({"storage": {
            "storageDriver": {"name": "s3", "bucket": "b", "regionendpoint": "localhost:4566"},
            "cacheDriver": {"name": "redis", "url": "redis://h:6379"}}}))
        .expect("all remote");
        assert_eq!(
            c.storage.root_directory,
            std::path::Path::new(crate::config::DEFAULT_ROOT)
        );
    }
    assert!(err(r#"{"storage":{}}"#).contains("storage.rootDirectory"));
    // A sub-path naming the main root's cache driver, as zot's examples do.
    let shared = r#"{"name":"redis","url":"redis://h:6379"}"#;
    let c = Config::from_value(
        serde_json::from_str(&format!(
            r#"{{"storage":{{"rootDirectory":"/a","cacheDriver":{shared},
                "subPaths":{{"/t":{{"rootDirectory":"/b","cacheDriver":{shared}}}}}}}}}"#
        ))
        .expect("json"),
    );
    assert!(c.is_ok() || !cfg!(feature = "redis"), "{c:?}");
    // Another (zot's dedupe cache of that root, as in zot's config-s3
    // example): accepted, not used.
    Config::from_value(
        serde_json::json!({"storage": {"rootDirectory": "/a", "subPaths": {"/t": {
        "rootDirectory": "/b", "remoteCache": true,
        "cacheDriver": {"name": "dynamodb", "region": "us-east-2", "cacheTablename": "cTable"}}}}}),
    )
    .expect("valid");
    let cases = [
        (
            r#"{"storage":{"rootDirectory":"/a","subPaths":{"team":{"rootDirectory":"/b"}}}}"#,
            "storage.subPaths.team: must be",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","subPaths":{"/a/b":{"rootDirectory":"/b"}}}}"#,
            "storage.subPaths./a/b: must be",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","subPaths":{"/t":{"rootDirectory":"/a"}}}}"#,
            "storage.subPaths./t.rootDirectory: must not be",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","subPaths":{"/t":{"rootDirectory":"/a/teamroot"}}}}"#,
            "storage.subPaths./t.rootDirectory: must not be",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a/b","subPaths":{"/t":{"rootDirectory":"/a/../a"}}}}"#,
            "storage.subPaths./t.rootDirectory: must not be",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","subPaths":{"/t":{"rootDirectory":"/a"},"/u":{"rootDirectory":"/a/u"}}}}"#,
            "rootDirectory: must not be",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","subPaths":{"/t":{}}}}"#,
            "rootDirectory",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","subPaths":{"/t":{"rootDirectory":"/b","redirectBlobURL":true}}}}"#,
            "storage.subPaths./t.redirectBlobURL: one setting for every root",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(got.contains(want), "{json}: got {got:?}, want {want:?}");
    }
}

#[test]
fn extensions() {
    let ok = |v: serde_json::Value| Config::from_value(v).expect("valid");
    let c = ok(serde_json::json!({"storage":{"rootDirectory":"/a"},"extensions":{"scrub":{}}}));
    assert_eq!(
        c.extensions.scrub_interval().map(|d| d.as_secs()),
        Some(24 * 3600)
    );
    let c = ok(
        serde_json::json!({"storage":{"rootDirectory":"/a"},"extensions":{"scrub":{"enable":false}}}),
    );
    assert_eq!(c.extensions.scrub_interval(), None);
    let c = ok(
        serde_json::json!({"storage":{"rootDirectory":"/a"},"extensions":{"scrub":{"interval":"6h"}}}),
    );
    assert_eq!(
        c.extensions.scrub_interval().map(|d| d.as_secs()),
        Some(6 * 3600)
    );
    let cases = [
        (
            r#"{"storage":{"rootDirectory":"/a"},"extensions":{"scrub":{"interval":"1h"}}}"#,
            "extensions.scrub.interval: must be at least 2h",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a"},"extensions":{"search":{"cve":{"updateInterval":"1h"}}}}"#,
            "extensions.search.cve.updateInterval: must be at least 2h",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a"},"extensions":{"ui":{"enable":true}}}"#,
            "extensions.ui: needs extensions.search",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a"},"extensions":{"mgmt":{}}}"#,
            "extensions.mgmt: needs extensions.search",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a"},"extensions":{"bogus":{}}}"#,
            "extensions.bogus: unknown key",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a"},"extensions":{"scrub":{"every":"1d"}}}"#,
            "extensions.scrub.every: unknown key",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(got.contains(want), "{json}: got {got:?}, want {want:?}");
    }
}

#[test]
fn retention_errors_name_the_key() {
    let cases = [
        (
            r#"{"storage":{"rootDirectory":"/a","retention":{"policies":[{"repositories":["**"],"keepTags":[{"patterns":["(unclosed"]}]}]}}}"#,
            "storage.retention.policies[0].keepTags[0].patterns: bad regular expression",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","retention":{"policies":[{"repositories":["a/[z-a]"]}]}}}"#,
            "storage.retention.policies[0].repositories: bad glob",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","retention":{"policies":[{"repositories":[]}]}}}"#,
            "storage.retention.policies[0].repositories: must name",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","retention":{"policies":[{"repositories":["**"],"keepUntagged":{"patterns":["x"]}}]}}}"#,
            "storage.retention.policies[0].keepUntagged.patterns: unknown key",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","retention":{"policies":[{"repositories":["**"],"keepTags":[{"pushedWithin":"soon"}]}]}}}"#,
            "pushedWithin: invalid duration",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","subPaths":{"/t":{"rootDirectory":"/b","retention":{"policies":[{"repositories":[]}]}}}}}"#,
            "storage.subPaths./t.retention.policies[0].repositories",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(got.contains(want), "{json}: got {got:?}, want {want:?}");
    }
}

#[test]
fn quota_and_immutable_tag_errors_name_the_key() {
    let cases = [
        (
            r#"{"storage":{"rootDirectory":"/a","quotas":[{"repositories":[],"maxBytes":1}]}}"#,
            "storage.quotas[0].repositories: must name",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","quotas":[{"repositories":["a"],"maxBytes":0}]}}"#,
            "storage.quotas[0].maxBytes: must be more than 0",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","quotas":[{"repositories":["a"]}]}}"#,
            "storage.quotas[0]: missing field `maxBytes`",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","quotas":[{"repositories":["a"],"maxBytes":"10GB"}]}}"#,
            "storage.quotas[0].maxBytes",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","immutableTags":[{"repositories":["a/[z-a]"]}]}}"#,
            "storage.immutableTags[0].repositories: bad glob",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","immutableTags":[{"repositories":["**"],"patterns":["(v"]}]}}"#,
            "storage.immutableTags[0].patterns: bad regular expression",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","immutableTags":[{"repositories":["**"],"tags":["v1"]}]}}"#,
            "storage.immutableTags[0].tags: unknown",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a","maxRepos":-1}}"#,
            "storage.maxRepos",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a"},"scheduler":{"numWorkers":0}}"#,
            "scheduler.numWorkers: must be at least 1",
        ),
        (
            r#"{"storage":{"rootDirectory":"/a"},"scheduler":{"workers":2}}"#,
            "scheduler.workers: unknown key",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(got.contains(want), "{json}: got {got:?}, want {want:?}");
    }
    // zot's keys, in any case, are taken.
    let c = Config::from_value(serde_json::json!({"storage": {"rootDirectory": "/a",
        "maxrepos": 5, "MaxRepoBytes": 100, "subPaths": {"/t": {"rootDirectory": "/b", "maxRepoBytes": 7}}}}))
    .expect("config");
    assert_eq!(
        (c.storage.max_repos, c.storage.max_repo_bytes),
        (Some(5), Some(100))
    );
    assert_eq!(c.storage.roots()[1].max_repo_bytes, Some(7));
}

#[cfg(not(feature = "s3"))]
#[test]
fn storage_driver_needs_the_s3_feature() {
    let got =
        err(r#"{"storage":{"rootDirectory":"/x","storageDriver":{"name":"s3","bucket":"b"}}}"#);
    assert!(
        got.starts_with("storage.storageDriver: this berth was built without the \"s3\" feature"),
        "{got}"
    );
}

#[cfg(not(feature = "redis"))]
#[test]
fn cache_driver_needs_the_redis_feature() {
    let got = err(
        r#"{"storage":{"rootDirectory":"/x","cacheDriver":{"name":"redis","url":"redis://h"}}}"#,
    );
    assert!(
        got.starts_with("storage.cacheDriver: this berth was built without the \"redis\" feature"),
        "{got}"
    );
}

#[cfg(all(feature = "s3", feature = "redis"))]
#[test]
fn storage_and_cache_drivers() {
    let c = Config::from_value(serde_json::json!({"storage":{
        "rootDirectory":"/tmp/x",
        "redirectBlobURL": true,
        "storageDriver":{"name":"s3","rootdirectory":"/zot","region":"eu-west-1",
            "regionendpoint":"127.0.0.1:9000","bucket":"b","forcepathstyle":true,
            "secure":false,"skipverify":false,"accesskey":"k","secretkey":"s"},
        "cacheDriver":{"name":"redis","url":"redis://127.0.0.1:6379","keyprefix":"zot"}
    }}))
    .expect("valid");
    let d = c.storage.storage_driver.as_ref().expect("driver");
    assert_eq!(
        (d.bucket.as_str(), d.forcepathstyle, d.secure),
        ("b", Some(true), Some(false))
    );
    assert!(c.storage.redirect_blob_url);
    let r = c.storage.cache_driver.as_ref().expect("cache");
    assert_eq!((r.keyprefix.as_str(), r.db), ("zot", 0));
    assert_eq!(r.command_timeout.0, std::time::Duration::from_secs(1));
    let short = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x",
        "cacheDriver":{"name":"redis","addr":["h:1"],"commandTimeout":"250ms"}}}))
    .expect("valid");
    let r = short.storage.cache_driver.as_ref().expect("cache");
    assert_eq!(r.command_timeout.0, std::time::Duration::from_millis(250));
    let s3 = r#""storageDriver":{"name":"s3","bucket":"b"}"#;
    let cases = [
        (
            r#"{"storage":{"rootDirectory":"/x","storageDriver":{"name":"swift","bucket":"b"}}}"#,
            "storage.storageDriver.name: unsupported storage driver \"swift\"",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","storageDriver":{"name":"s3","bucket":""}}}"#,
            "storage.storageDriver.bucket: must not be empty",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","storageDriver":{"name":"s3","bucket":"b","accesskey":"k"}}}"#,
            "storage.storageDriver.secretkey: accesskey and secretkey go together",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","storageDriver":{"name":"s3","bucket":"b","chunksize":5}}}"#,
            "storage.storageDriver.chunksize: not a key of the s3 driver",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","cacheDriver":{"name":"memcached"}}}"#,
            "storage.cacheDriver.name: unsupported cache driver \"memcached\"",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","cacheDriver":{"name":"redis"}}}"#,
            "storage.cacheDriver.url: set url or addr",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","cacheDriver":{"name":"redis","url":"redis://h","commandTimeout":"5s"}}}"#,
            "storage.cacheDriver.commandTimeout: must be above zero and at most 3s",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x","cacheDriver":{"name":"redis","url":"redis://h","commandTimeout":"0s"}}}"#,
            "storage.cacheDriver.commandTimeout: must be above zero",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(got.starts_with(want), "{json}: got {got:?}, want {want:?}");
    }
    let sub = format!(
        r#"{{"storage":{{"rootDirectory":"/x","subPaths":{{"/a":{{"rootDirectory":"/y",{s3}}}}}}}}}"#
    );
    Config::from_value(serde_json::from_str(&sub).expect("json")).expect("a sub-path on s3");
}

#[cfg(all(feature = "gcs", feature = "azure"))]
#[test]
fn gcs_and_azure_drivers() {
    // zot's examples (config-gcs.json, config-azure.json with a key that is
    // base64), keys in any case.
    let c = Config::from_value(serde_json::json!({"storage":{
        "rootDirectory":"/tmp/zot", "dedupe": false,
        "storageDriver":{"name":"gcs","bucket":"zot-storage",
            "credentialsFile":"/path/to/gcs-credentials.json"},
        "subPaths":{"/a":{"rootDirectory":"/tmp/zot1","storageDriver":{
            "name":"azure","rootdirectory":"/zot-a","container":"zot-storage",
            "AccountName":"zot-storage","accountkey":"a2V5","serviceurl":"http://localhost:10000"}}}
    }}))
    .expect("valid");
    let g = c.storage.storage_driver.as_ref().expect("gcs");
    assert_eq!(g.location(), "gs://zot-storage/");
    let a = c.storage.sub_paths["/a"]
        .storage_driver
        .as_ref()
        .expect("azure");
    assert_eq!(a.location(), "azure://zot-storage/zot-storage/zot-a");
    assert_eq!(
        a.azure_credentials(),
        super::AzureCredentialsConfig::SharedKey("a2V5".into())
    );
    let service = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x",
        "storageDriver":{"name":"azure","accountname":"a","container":"c",
            "credentials":{"Type":"client_secret","clientid":"i","tenantid":"t","secret":"s"}}}}))
    .expect("valid");
    assert_eq!(
        service
            .storage
            .storage_driver
            .expect("azure")
            .azure_credentials(),
        super::AzureCredentialsConfig::ClientSecret {
            client_id: "i".into(),
            tenant_id: "t".into(),
            secret: "s".into()
        }
    );
    let at = |driver: &str| {
        format!(r#"{{"storage":{{"rootDirectory":"/x","storageDriver":{driver}}}}}"#)
    };
    let cases = [
        (
            r#"{"name":"azure","bucket":"b","accountname":"a","container":"c"}"#,
            "storage.storageDriver.bucket: not a key of the azure driver",
        ),
        (
            r#"{"name":"gcs","bucket":"b","region":"r"}"#,
            "storage.storageDriver.region: not a key of the gcs driver",
        ),
        (
            r#"{"name":"gcs","bucket":"b","chunksize":262144}"#,
            "storage.storageDriver.chunksize: berth uploads in parts of 5 MiB",
        ),
        (
            r#"{"name":"gcs","bucket":"b","keyfile":"/k","credentials":{"type":"service_account"}}"#,
            "storage.storageDriver.credentials: give one of keyfile, credentialsFile and credentials",
        ),
        (
            r#"{"name":"gcs","bucket":""}"#,
            "storage.storageDriver.bucket: must not be empty",
        ),
        (
            r#"{"name":"azure","accountname":"a"}"#,
            "storage.storageDriver.container: must be set",
        ),
        (
            r#"{"name":"azure","accountname":"a","container":"c","maxretries":3}"#,
            "storage.storageDriver.maxretries: zot key not supported",
        ),
        (
            r#"{"name":"azure","accountname":"a","container":"c","credentials":{"type":"client_secret","clientid":"i"}}"#,
            "storage.storageDriver.credentials.tenantid: must be set for type client_secret",
        ),
        (
            r#"{"name":"azure","accountname":"a","container":"c","credentials":{"type":"shared_key"}}"#,
            "storage.storageDriver.accountkey: credentials of type shared_key need accountkey",
        ),
        (
            r#"{"name":"azure","accountname":"a","container":"c","credentials":{"type":"sas"}}"#,
            "storage.storageDriver.credentials.type: must be shared_key, client_secret or default_credentials",
        ),
    ];
    for (driver, want) in cases {
        let got = err(&at(driver));
        assert!(
            got.starts_with(want),
            "{driver}: got {got:?}, want {want:?}"
        );
    }
}

#[cfg(feature = "trust")]
#[test]
fn trust_section() {
    let c = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"},
        "extensions":{"trust":{"enable":true,"cosign":true,
            "requireSigned":[{"repositories":["prod/**"]}]}}}))
    .expect("valid");
    let t = c.extensions.trust_enabled().expect("on");
    assert_eq!(t.tools(), vec![crate::config::SigningTool::Cosign]);
    assert_eq!(t.require_signed[0].repositories, vec!["prod/**"]);
    let off = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"},
        "extensions":{"trust":{"enable":false}}}))
    .expect("off");
    assert!(off.extensions.trust_enabled().is_none());
    let cases = [
        (
            r#"{"storage":{"rootDirectory":"/x"},"extensions":{"trust":{"enable":true}}}"#,
            "extensions.trust: turn on cosign, notation or both",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"extensions":{"trust":{"cosign":true,"requireSigned":[{"repositories":["a"],"tools":["notation"]}]}}}"#,
            "extensions.trust.requireSigned[0].tools: notation is not turned on",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"extensions":{"trust":{"cosign":true,"requireSigned":[{"repositories":[]}]}}}"#,
            "extensions.trust.requireSigned[0].repositories: name at least one",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"extensions":{"trust":{"cosign":true,"requireSigned":[{"repositories":["a[b"]}]}}}"#,
            "extensions.trust.requireSigned[0].repositories:",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"extensions":{"trust":{"cosign":true,"keys":[]}}}"#,
            "extensions.trust.keys: unknown key",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(got.starts_with(want), "{json}: got {got:?}, want {want:?}");
    }
}

#[cfg(not(feature = "sync"))]
#[test]
fn sync_needs_the_sync_feature() {
    let got = err(
        r#"{"storage":{"rootDirectory":"/x"},"extensions":{"sync":{"registries":[{"urls":["https://h"],"onDemand":true}]}}}"#,
    );
    assert!(
        got.starts_with("extensions.sync: this berth was built without the \"sync\" feature"),
        "{got}"
    );
    Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"},
        "extensions":{"sync":{"enable":false}}}))
    .expect("off is fine");
}

#[cfg(feature = "sync")]
#[test]
fn sync_section() {
    let c = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"},
        "extensions":{"sync":{"registries":[{"urls":["https://registry-1.docker.io"],
            "onDemand":true,"maxRetries":3,"retryDelay":"5m",
            "content":[{"prefix":"**","destination":"/mirror/docker.io"}]}]}}}))
    .expect("zot's example");
    let s = c.extensions.sync_enabled().expect("on");
    assert_eq!(
        s.registries[0].retry_delay,
        Some(std::time::Duration::from_secs(300))
    );
    assert!(
        Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"},
            "extensions":{"sync":{"enable":false,"registries":[{"urls":[]}]}}}))
        .expect("off")
        .extensions
        .sync_enabled()
        .is_none()
    );
    let sync = |registry: &str| {
        format!(
            r#"{{"storage":{{"rootDirectory":"/x"}},"extensions":{{"sync":{{"registries":[{registry}]}}}}}}"#
        )
    };
    let cases = [
        (
            sync(r#"{"urls":["h"],"onDemand":true,"content":[{"prefix":"a"},{"prefix":"b","tags":{"regex":"(x"}}]}"#),
            "extensions.sync.registries[0].content[1].tags.regex: regex parse error",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"content":[{"prefix":"a","tags":{"semver":">=x"}}]}"#),
            "extensions.sync.registries[0].content[0].tags.semver: \">=x\" is no version range",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"content":[{"prefix":"a","platforms":["linux/amd64","plan9"]}]}"#),
            "extensions.sync.registries[0].content[0].platforms: \"plan9\": name os/arch",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"platforms":["linux"],"content":[{"prefix":"a"}]}"#),
            "extensions.sync.registries[0].platforms: \"linux\": name os/arch",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"content":[{"prefix":"a","destination":"/Up"}]}"#),
            "extensions.sync.registries[0].content[0].destination: \"Up\" is not a repository name",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"content":[{"prefix":"a/[b"}]}"#),
            "extensions.sync.registries[0].content[0].prefix: bad glob",
        ),
        (
            sync(r#"{"urls":["h"],"pollInterval":"soon"}"#),
            "extensions.sync.registries[0].pollInterval: invalid duration",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"content":[{"prefix":"a","tags":{"semver":1}}]}"#),
            "extensions.sync.registries[0].content[0].tags.semver: invalid type",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"stream":false}"#),
            "extensions.sync.registries[0].stream: berth always streams on-demand blobs",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"streem":true}"#),
            "extensions.sync.registries[0].streem: unknown key",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"content":[{"prefix":"a","tag":{}}]}"#),
            "extensions.sync.registries[0].content[0].tag: unknown key",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"credentialHelper":"acr"}"#),
            "extensions.sync.registries[0].credentialHelper: \"acr\" is no credential helper",
        ),
        (
            sync(
                r#"{"urls":["h"],"onDemand":true,"credentialHelper":"oauth2","oauth2CredentialHelper":{"tokenURL":"https://t","assertionFile":"/a","signingFile":"/s"}}"#,
            ),
            "extensions.sync.registries[0].oauth2CredentialHelper.signingFile: set assertionFile or signingFile, not both",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"extensions":{"sync":{"credentialsFile":"/nonexistent/creds.json"}}}"#.to_string(),
            "extensions.sync.credentialsFile: cannot read /nonexistent/creds.json",
        ),
        (
            sync(r#"{"urls":["h"],"onDemand":true,"certDir":"/nonexistent/certs"}"#),
            "extensions.sync.registries[0].certDir: cannot read /nonexistent/certs",
        ),
    ];
    for (json, want) in cases {
        let got = err(&json);
        assert!(got.starts_with(want), "{json}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "one line: {got:?}");
    }
}

#[test]
fn connection_limits() {
    let c =
        Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"}})).expect("valid");
    assert_eq!(c.http.read_timeout.0.as_secs(), 30);
    assert_eq!(c.http.write_timeout.0.as_secs(), 60);
    assert_eq!(c.http.idle_timeout.0.as_secs(), 120);
    assert_eq!(c.http.max_connections, None);
    // zot's keys, as Go durations or nanoseconds; zero turns a limit off.
    let c = Config::from_value(serde_json::json!({"storage":{"rootDirectory":"/x"},
        "http":{"readTimeout":"5s","writeTimeout":90000000000u64,"idleTimeout":"0s",
            "maxConnections":500}}))
    .expect("valid");
    assert_eq!(c.http.read_timeout.0.as_secs(), 5);
    assert_eq!(c.http.write_timeout.0.as_secs(), 90);
    assert!(c.http.idle_timeout.0.is_zero());
    assert_eq!(c.http.max_connections.map(|n| n.get()), Some(500));
    let limits = crate::server::ConnLimits::from_config(&c.http);
    assert_eq!(limits.read_timeout, Some(std::time::Duration::from_secs(5)));
    assert_eq!(limits.idle_timeout, None);
    assert_eq!(limits.max_connections, 500);
    // Without a cap in the config, one sized from the open-files limit.
    assert!(crate::server::ConnLimits::default().max_connections >= 16);
    for (json, want) in [
        (
            r#"{"storage":{"rootDirectory":"/x"},"http":{"readTimeout":"soon"}}"#,
            "http.readTimeout: invalid duration",
        ),
        (
            r#"{"storage":{"rootDirectory":"/x"},"http":{"maxConnections":0}}"#,
            "http.maxConnections: invalid value",
        ),
    ] {
        let got = err(json);
        assert!(got.contains(want), "{json}: got {got:?}, want {want:?}");
    }
}

#[test]
fn keys_are_read_in_any_case_as_zot_reads_them() {
    let c = Config::from_value(serde_json::json!({
        "DistSpecVersion": "1.1.1",
        "Storage": {"RootDirectory": "/tmp/x", "GCDelay": "2h", "dedupe": false},
        "HTTP": {"Address": "127.0.0.1", "Port": "9999"},
        "log": {"LEVEL": "debug"},
    }))
    .expect("valid in any case");
    assert_eq!(c.storage.root_directory, std::path::Path::new("/tmp/x"));
    assert_eq!(c.storage.gc_delay.0, std::time::Duration::from_secs(7200));
    assert!(!c.storage.dedupe);
    assert_eq!(c.http.address, "127.0.0.1");
    // zot's own lowercase YAML (`config-example.yaml`'s spelling).
    let lower = Config::from_value(serde_json::json!({
        "distspecversion": "1.1.1",
        "storage": {"rootdirectory": "/tmp/y", "gcdelay": "1h"},
        "http": {"address": "127.0.0.1", "port": "8080"},
    }))
    .expect("lowercase keys");
    assert_eq!(lower.storage.root_directory, std::path::Path::new("/tmp/y"));
}

#[cfg(feature = "sync")]
#[test]
fn nested_keys_in_lists_are_read_in_any_case() {
    let c = Config::from_value(serde_json::json!({
        "storage": {"rootDirectory": "/tmp/x"},
        "extensions": {"Sync": {"Registries": [
            {"URLs": ["https://up.example"], "PollInterval": "6h", "OnDemand": true,
             "Content": [{"Prefix": "a/**", "Destination": "/m"}]}
        ]}},
    }))
    .expect("valid");
    let r = &c.extensions.sync.as_ref().expect("sync").registries[0];
    assert_eq!(
        r.poll_interval,
        Some(std::time::Duration::from_secs(6 * 3600))
    );
    assert!(r.on_demand);
    assert_eq!(r.content[0].destination.as_deref(), Some("/m"));
}

#[test]
fn a_key_unknown_in_every_case_is_still_named_and_a_refused_one_refused() {
    assert!(
        err(r#"{"storage":{"rootDirectory":"/x","RootDirectoryy":"/y"}}"#)
            .contains("storage.RootDirectoryy: unknown key")
    );
    // Both spellings at once: the second is not taken for the first.
    assert!(
        err(r#"{"storage":{"rootDirectory":"/x","rootdirectory":"/y"}}"#).contains("rootdirectory")
    );
    // A key Berth refuses is refused whatever its case.
    let refused =
        err(r#"{"storage":{"rootDirectory":"/x"},"Extensions":{"UserPrefs":{"enable":true}}}"#);
    assert!(refused.contains("extensions.userprefs"), "{refused}");
    assert!(refused.contains("not supported"), "{refused}");
}

#[cfg(feature = "events")]
#[test]
fn event_sink_errors_name_the_key() {
    let sink = |s: &str| {
        format!(
            r#"{{"storage":{{"rootDirectory":"/x"}},"extensions":{{"events":{{"sinks":[{s}]}}}}}}"#
        )
    };
    let cases = [
        (
            sink(r#"{"type":"nats","address":"nats://127.0.0.1:4222"}"#),
            "extensions.events.sinks.0.channel: a nats sink needs the subject",
        ),
        (
            sink(r#"{"type":"nats","address":"nats://h","channel":"c","headers":{"a":"b"}}"#),
            "extensions.events.sinks.0.headers",
        ),
        (
            sink(
                r#"{"type":"nats","address":"nats://h","channel":"c","tls":{"caCertFile":"/ca"}}"#,
            ),
            "extensions.events.sinks.0.tlsconfig.cacertfile: /ca is not a readable file",
        ),
        (
            sink(
                r#"{"type":"nats","address":"nats://h","channel":"c","TLSConfig":{"CertFile":"/etc/hostname"}}"#,
            ),
            "extensions.events.sinks.0.tlsconfig.keyfile: certfile and keyfile go together",
        ),
        (
            sink(r#"{"type":"nats","address":"nats://h","channel":"c","proxy":"http://p:3128"}"#),
            "extensions.events.sinks.0.proxy",
        ),
        (
            sink(
                r#"{"type":"nats","address":"nats://h","channel":"c","credentials":{"file":"/nonexistent.creds"}}"#,
            ),
            "extensions.events.sinks.0.credentials.file",
        ),
        (
            sink(r#"{"type":"http","address":"http://h","credentials":{"file":"/a"}}"#),
            "extensions.events.sinks.0.credentials.file",
        ),
        (
            sink(r#"{"type":"kafka","address":"k:9092"}"#),
            "extensions.events.sinks.0.type",
        ),
    ];
    for (json, want) in cases {
        let got = err(&json);
        assert!(got.contains(want), "{json}: got {got:?}, want {want:?}");
    }
    let ok =
        sink(r#"{"type":"nats","address":"nats://a:4222,nats://b:4222","channel":"registry"}"#);
    Config::from_value(serde_json::from_str(&ok).expect("json")).expect("a nats sink");
}

#[test]
fn zots_linter_is_read_and_its_signature_rule_refused_by_name() {
    let c = Config::from_value(serde_json::json!({"storage": {"rootDirectory": "/x"},
        "extensions": {"lint": {"enable": true, "mandatoryAnnotations": ["a", "b"]}}}))
    .expect("config");
    let lint = c.extensions.lint.expect("lint");
    assert_eq!(lint.mandatory_annotations, ["a", "b"]);
    let refused = err(
        r#"{"storage":{"rootDirectory":"/x"},"extensions":{"lint":{"mandatorySignatures":["prod/**"]}}}"#,
    );
    assert!(
        refused.contains("extensions.lint.mandatorySignatures: zot key not supported"),
        "{refused}"
    );
    assert!(err(r#"{"storage":{"rootDirectory":"/x"},"extensions":{"lint":{"mandatoryAnnotations":[""]}}}"#)
        .contains("extensions.lint.mandatoryAnnotations"));
}

/// `http.auth.bearer`'s `oidc` and `awsSecretsManager`: refused by name
/// when wrong, the CEL expressions compiled at load.
#[test]
fn bearer_oidc_and_secrets_manager_keys() {
    let config = |bearer: &str| {
        format!(r#"{{"storage":{{"rootDirectory":"/x"}},"http":{{"auth":{{"bearer":{bearer}}}}}}}"#)
    };
    let oidc = r#"{"issuer":"https://i.example","audiences":["berth"]}"#;
    let asm = r#"{"region":"us-east-1","secretName":"keys"}"#;
    let cases = [
        (
            format!(r#"{{"realm":"r","service":"s","cert":"/c","awsSecretsManager":{asm}}}"#),
            "http.auth.bearer.awsSecretsManager: contradicts cert",
        ),
        (
            r#"{"realm":"r","service":"s","awsSecretsManager":{"region":"us-east-1"}}"#.into(),
            "missing field `secretName`",
        ),
        (
            r#"{"realm":"r","service":"s","awsSecretsManager":{"region":"r","secretName":"k","refreshInterval":"-1m"}}"#.into(),
            "http.auth.bearer.awsSecretsManager.refreshInterval: invalid duration",
        ),
        (
            r#"{"awsSecretsManager":{"region":"r","secretName":"k"}}"#.into(),
            "http.auth.bearer.realm: needed with cert or awsSecretsManager",
        ),
        (
            r#"{"oidc":[{"issuer":"https://i","audiences":[]}]}"#.into(),
            "http.auth.bearer.oidc[0].audiences: at least one",
        ),
        (
            r#"{"oidc":[{"issuer":"https://i","audiences":["a"," "]}]}"#.into(),
            "http.auth.bearer.oidc[0].audiences: at least one, and none empty",
        ),
        (
            r#"{"oidc":[{"audiences":["a"]}]}"#.into(),
            "http.auth.bearer.oidc[0].issuer: required",
        ),
        (
            format!(r#"{{"oidc":[{oidc},{{"issuer":"https://j","audiences":["a"],"claimMapping":{{"username":"claims.sub +"}}}}]}}"#),
            "http.auth.bearer.oidc[1].claimMapping.username: invalid CEL expression",
        ),
        (
            r#"{"oidc":[{"issuer":"https://j","audiences":["a"],"claimMapping":{"validations":[{"expression":"claims.x ==","message":"m"}]}}]}"#.into(),
            "http.auth.bearer.oidc[0].claimMapping.validations[0].expression: invalid CEL expression",
        ),
        (
            r#"{"oidc":[{"issuer":"https://j","audiences":["a"],"certificateAuthority":"x","certificateAuthorityFile":"/y"}]}"#.into(),
            "http.auth.bearer.oidc[0].certificateAuthorityFile: contradicts certificateAuthority",
        ),
        (
            r#"{"oidc":[{"issuer":"https://j","audiences":["a"],"clientId":"x"}]}"#.into(),
            "http.auth.bearer.oidc[0].clientId: unknown key",
        ),
        (
            format!(r#"{{"oidc":[{oidc}],"upstreamTokenEndpoint":{{"realm":"http://t/token"}}}}"#),
            "http.auth.bearer.upstreamTokenEndpoint.realm: must use https unless allowInsecureHttp",
        ),
        (
            format!(r#"{{"oidc":[{oidc}],"upstreamTokenEndpoint":{{"realm":"/token"}}}}"#),
            "http.auth.bearer.upstreamTokenEndpoint.realm: not an absolute URL",
        ),
        (
            format!(r#"{{"oidc":[{oidc}],"upstreamTokenEndpoint":{{"realm":"ftp://t/token"}}}}"#),
            "http.auth.bearer.upstreamTokenEndpoint.realm: scheme \"ftp\"",
        ),
        (
            format!(r#"{{"oidc":[{oidc}],"upstreamTokenEndpoint":{{"realm":"https://t","x":1}}}}"#),
            "http.auth.bearer.upstreamTokenEndpoint.x: unknown key",
        ),
    ];
    for (bearer, want) in cases {
        let got = err(&config(&bearer));
        assert!(got.contains(want), "{bearer}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "one line: {got:?}");
    }
    // Accepted: an array, a lone object (older zot), keys in any case,
    // oidc beside classic tokens with keys from AWS Secrets Manager.
    let mut accepted = vec![
        format!(r#"{{"oidc":[{oidc}]}}"#),
        format!(r#"{{"oidc":{oidc}}}"#),
        r#"{"OIDC":[{"Issuer":"https://i","AUDIENCES":["a"],"claimmapping":{"Username":"claims.sub","groups":"claims.groups"}}]}"#.into(),
        format!(
            r#"{{"oidc":[{oidc}],"upstreamTokenEndpoint":{{"realm":"https://auth.example.com/token","service":"legacy"}}}}"#
        ),
        format!(
            r#"{{"oidc":[{oidc}],"upstreamTokenEndpoint":{{"realm":"http://127.0.0.1:1/token","allowInsecureHttp":true}}}}"#
        ),
    ];
    // The secret's keys need the feature (the core-only build refuses them).
    if cfg!(feature = "secretsmanager") {
        accepted.push(format!(
            r#"{{"realm":"r","service":"s","awsSecretsManager":{asm},"oidc":[{oidc}]}}"#
        ));
    }
    for bearer in accepted {
        let c = Config::from_value(serde_json::from_str(&config(&bearer)).expect("json"))
            .unwrap_or_else(|e| panic!("{bearer}: {e}"));
        let b = c.http.auth.and_then(|a| a.bearer).expect("bearer");
        assert!(
            !b.oidc.is_empty() || b.aws_secrets_manager.is_some(),
            "{bearer}"
        );
    }
}

/// zot's `config-ui-no-cve` example: `cve.enable: false` is search
/// without scanning.
#[cfg(feature = "search")]
#[test]
fn cve_enable_false_is_no_scanning() {
    let with = |cve: serde_json::Value| {
        Config::from_value(serde_json::json!({"storage": {"rootDirectory": "/a"},
            "extensions": {"search": {"enable": true, "cve": cve}, "ui": {"enable": true}}}))
        .expect("valid")
    };
    assert!(
        with(serde_json::json!({"enable": false}))
            .extensions
            .cve()
            .is_none()
    );
    assert!(
        with(serde_json::json!({"enable": true}))
            .extensions
            .cve()
            .is_some()
    );
    assert!(with(serde_json::json!({})).extensions.cve().is_some());
}

/// zot 1.x's layouts: `version`, repository rules at the top of
/// `accessControl`, `ReadOnly`, an inline LDAP bind user.
#[test]
fn zot_1_layouts_are_read() {
    let c = Config::from_value(serde_json::json!({
        "version": "0.1.0-dev",
        "storage": {"rootDirectory": "/a"},
        "http": {"ReadOnly": true,
                 "auth": {"ldap": {"address": "h", "baseDN": "dc=x", "userAttribute": "uid",
                                   "bindDN": "cn=admin", "bindPassword": "pw"}},
                 "accessControl": {"**": {"anonymousPolicy": ["read"]},
                                   "adminPolicy": {"users": ["root"], "actions": ["read"]}}}
    }))
    .expect("valid");
    assert_eq!(c.dist_spec_version, "0.1.0-dev");
    assert!(c.http.read_only);
    let access = c.http.access_control.expect("access");
    assert!(access.repositories.contains_key("**"));
    let ldap = c.http.auth.and_then(|a| a.ldap).expect("ldap");
    assert_eq!(ldap.bind_dn.as_deref(), Some("cn=admin"));
    for (ldap, want) in [
        (
            serde_json::json!({"address": "h", "baseDN": "d", "userAttribute": "u", "bindDN": "x", "credentialsFile": "/f"}),
            "http.auth.ldap.bindDN: contradicts credentialsFile",
        ),
        (
            serde_json::json!({"address": "h", "baseDN": "d", "userAttribute": "u", "bindPassword": "x"}),
            "http.auth.ldap.bindPassword: needs bindDN",
        ),
    ] {
        let got = Config::from_value(serde_json::json!({"storage": {"rootDirectory": "/a"},
            "http": {"auth": {"ldap": ldap}}}))
        .expect_err("refused")
        .to_string();
        assert!(got.contains(want), "{got}");
    }
}

/// What is read differently from how it was written is noted, once each,
/// for `serve` to log and `verify` to print.
#[test]
fn settings_read_differently_are_noted() {
    let mut value = serde_json::json!({"storage": {"rootDirectory": "/a", "subPaths": {"/t": {
        "rootDirectory": "/b", "remoteCache": true}}}});
    if cfg!(feature = "sync") {
        value["extensions"] = serde_json::json!({"sync": {"registries": [
            {"urls": ["https://docker.io/library"], "onDemand": true}]}});
    }
    // Keys in another case make the file be read twice: still one note each.
    value["Storage"] = value["storage"].take();
    value.as_object_mut().expect("object").remove("storage");
    let c = Config::from_value(value).expect("valid");
    let mut want = vec!["storage.subPaths./t.remoteCache: true"];
    if cfg!(feature = "sync") {
        want.push("registry URL \"https://docker.io/library\" has a path");
    }
    assert_eq!(c.notes.len(), want.len(), "{:?}", c.notes);
    for w in want {
        assert!(c.notes.iter().any(|n| n.contains(w)), "{w}: {:?}", c.notes);
    }
    let plain =
        Config::from_value(serde_json::json!({"storage": {"rootDirectory": "/a"}})).expect("valid");
    assert!(plain.notes.is_empty());
}

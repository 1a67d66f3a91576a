use super::*;

fn parse(v: serde_json::Value) -> SyncConfig {
    serde_json::from_value(v).expect("parses")
}

/// zot's ECR and GCP helper examples write `"credentialsFile": ""`: none.
#[test]
fn an_empty_credentials_file_is_none() {
    let c = parse(
        serde_json::json!({"credentialsFile": "", "downloadDir": " ",
        "registries": [{"urls": ["h"], "onDemand": true}]}),
    );
    assert_eq!(c.credentials_file, None);
    assert_eq!(c.download_dir, None);
    c.check().expect("valid");
}

/// zot keeps only the scheme and host of a registry URL (its own example
/// names `https://docker.io/library`).
#[test]
fn a_registry_url_path_is_dropped_as_zot_drops_it() {
    let c = parse(serde_json::json!({"registries": [{
        "urls": ["https://docker.io/library", "mirror.example:5000/v2/"], "onDemand": true}]}));
    c.check().expect("valid");
    assert_eq!(
        c.registries[0].urls,
        ["https://docker.io", "https://mirror.example:5000"]
    );
}

#[test]
fn zot_keys_and_defaults() {
    let c = parse(serde_json::json!({
        "credentialsFile": "/etc/berth/creds.json",
        "registries": [{
            "urls": ["registry-1.docker.io", "http://mirror:5000"],
            "onDemand": true,
            "content": [{"prefix": "library/**", "destination": "/docker", "stripPrefix": true,
                "tags": {"regex": "^3\\.", "excludeRegex": "-rc", "semver": true}}]
        }, {
            "urls": ["https://ghcr.io"], "pollInterval": "6h", "tlsVerify": false,
            "maxRetries": 3, "retryDelay": "5m", "maxRetryDelay": "20m", "onlySigned": true,
            "syncLegacyCosignTags": false, "manifestCheckInterval": "1h", "syncTimeout": "30m",
            "reqConcurrent": 8, "reqPerSec": 2.5, "disableHTTP2": true, "maxIdleConnsPerHost": 8,
            "preserveDigest": true, "certDir": "/etc/berth/ghcr",
            "content": [{"prefix": "org/app", "tags": {"semver": ">=1.2, <2"}}]
        }]
    }));
    assert!(c.enable);
    let a = &c.registries[0];
    assert_eq!(
        a.urls,
        ["https://registry-1.docker.io", "http://mirror:5000"]
    );
    assert!(a.on_demand && a.tls_verify && a.sync_legacy_cosign_tags);
    assert_eq!((a.poll_interval, a.req_concurrent), (None, 3));
    assert_eq!(a.sync_timeout, Duration::from_secs(3 * 3600));
    let tags = a.content[0].tags.as_ref().expect("tags");
    assert_eq!(tags.semver, Some(SemverFilter::Any));
    assert_eq!(a.content[0].destination.as_deref(), Some("/docker"));
    assert!(a.content[0].strip_prefix);
    let b = &c.registries[1];
    assert_eq!(b.poll_interval, Some(Duration::from_secs(6 * 3600)));
    assert_eq!(b.max_retry_delay, Some(Duration::from_secs(1200)));
    assert_eq!((b.req_concurrent, b.req_per_sec), (8, Some(2.5)));
    assert!(b.disable_http2 && !b.tls_verify && b.only_signed && !b.sync_legacy_cosign_tags);
    assert_eq!(
        b.content[0].tags.as_ref().and_then(|t| t.semver.clone()),
        Some(SemverFilter::Range(">=1.2, <2".into()))
    );
    let off = parse(
        serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true,
        "content": [{"prefix": "a", "tags": {"semver": false}}]}]}),
    );
    assert_eq!(
        off.registries[0].content[0]
            .tags
            .as_ref()
            .and_then(|t| t.semver.clone()),
        None
    );
}

#[test]
fn platforms_are_inherited_unless_a_rule_names_its_own() {
    let c = parse(serde_json::json!({"registries": [{
        "urls": ["h"], "onDemand": true, "platforms": ["linux/amd64"],
        "content": [
            {"prefix": "a/**"},
            {"prefix": "b/**", "platforms": ["linux/arm64"]},
            {"prefix": "c/**", "platforms": []}
        ]}, {"urls": ["h"], "onDemand": true, "platforms": ["linux/amd64"]}]}));
    let rules = &c.registries[0].content;
    assert_eq!(rules[0].platforms, ["linux/amd64"]);
    assert_eq!(rules[1].platforms, ["linux/arm64"]);
    assert!(rules[2].platforms.is_empty());
    // No rules and a registry-wide list: one rule over everything.
    let all = &c.registries[1].content;
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].prefix.as_str(), all[0].platforms.as_slice()),
        ("**", &["linux/amd64".to_string()][..])
    );
}

#[test]
fn checks_name_the_key() {
    let cases = [
        (
            serde_json::json!({"registries": [{"urls": [], "onDemand": true}]}),
            "extensions.sync.registries[0].urls: name at least one",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["ftp://h"], "onDemand": true}]}),
            "extensions.sync.registries[0].urls[0]: \"ftp://h\": must be an http",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["https://u:p@h"], "onDemand": true}]}),
            "extensions.sync.registries[0].urls[0]: \"https://u:p@h\": no credentials",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["https://h/?x=1"], "onDemand": true}]}),
            "extensions.sync.registries[0].urls[0]: \"https://h/?x=1\": a registry URL is a scheme and a host, with no query",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["h"], "pollInterval": "0s"}]}),
            "extensions.sync.registries[0].pollInterval: must be above zero",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "syncTimeout": 0}]}),
            "extensions.sync.registries[0].syncTimeout: must be above zero",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "reqConcurrent": 0}]}),
            "extensions.sync.registries[0].reqConcurrent: must be at least 1",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "reqPerSec": 0}]}),
            "extensions.sync.registries[0].reqPerSec: must be above zero",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "retryDelay": "5m", "maxRetryDelay": "1m"}]}),
            "extensions.sync.registries[0].maxRetryDelay: must be at least retryDelay",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true}, {"urls": ["h"], "onDemand": true, "credentialHelper": "ECR"}]}),
            "extensions.sync.registries[1].credentialHelper: \"ECR\" is no credential helper",
        ),
        (
            serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "oauth2CredentialHelper": {"tokenURL": "https://t"}}]}),
            "extensions.sync.registries[0].oauth2CredentialHelper: applies only with credentialHelper: oauth2",
        ),
    ];
    for (v, want) in cases {
        let got = parse(v.clone()).check().expect_err("refused").to_string();
        assert!(got.starts_with(want), "{v}: got {got:?}, want {want:?}");
    }
    // Off: nothing is checked. An empty helper is zot's "unset".
    parse(serde_json::json!({"enable": false, "registries": [{"urls": []}]}))
        .check()
        .expect("off");
    parse(serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "credentialHelper": ""}]}))
        .check()
        .expect("empty helper");
}

#[test]
fn semver_accepts_bool_string_or_null_only() {
    let bad: Result<TagFilter, _> = serde_json::from_value(serde_json::json!({"semver": 1}));
    let msg = bad.expect_err("a number").to_string();
    assert!(msg.contains("true, false or a version range"), "{msg}");
    let null: TagFilter =
        serde_json::from_value(serde_json::json!({"semver": null})).expect("null");
    assert_eq!(null.semver, None);
}

/// Checks `v` and returns the error, which must start with `want`.
fn refused(v: serde_json::Value, want: &str) {
    let got = parse(v.clone()).check().expect_err("refused").to_string();
    assert!(got.starts_with(want), "{v}: got {got:?}, want {want:?}");
}

#[test]
fn a_registry_neither_on_demand_nor_polled_is_accepted_and_idle() {
    // zot accepts it (its platforms examples hold one): it syncs nothing.
    let c = parse(serde_json::json!({"registries": [
        {"urls": ["h"], "onDemand": false, "tlsVerify": true, "platforms": ["linux/amd64"]}]}));
    c.check().expect("accepted");
    let r = &c.registries[0];
    assert!(!r.on_demand && r.poll_interval.is_none());
}

#[test]
fn streaming_switches_accept_what_berth_does_and_refuse_the_opposite() {
    for key in ["enableStreaming", "enableStream"] {
        parse(serde_json::json!({key: true, "registries": [{"urls": ["h"], "onDemand": true}]}))
            .check()
            .expect("berth streams");
        refused(
            serde_json::json!({key: false}),
            &format!("extensions.sync.{key}: berth always streams on-demand blobs"),
        );
    }
    parse(
        serde_json::json!({"registries": [{"urls": ["https://h"], "onDemand": true,
        "stream": true, "tlsVerify": false, "maxRetries": 2, "retryDelay": "1s"}]}),
    )
    .check()
    .expect("stream: true");
    refused(
        serde_json::json!({"registries": [{"urls": ["h"], "onDemand": true, "stream": false}]}),
        "extensions.sync.registries[0].stream: berth always streams",
    );
    refused(
        serde_json::json!({"registries": [{"urls": ["h"], "pollInterval": "1h", "stream": true}]}),
        "extensions.sync.registries[0].stream: streams on-demand syncs: set onDemand: true",
    );
}

#[test]
fn max_concurrent_streams_must_bound_what_berth_streams() {
    let reg = |cap: serde_json::Value, extra: serde_json::Value| {
        let mut r = serde_json::json!({"urls": ["h"], "onDemand": true, "stream": true,
            "maxConcurrentStreams": cap});
        r.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        r
    };
    let none = serde_json::json!({});
    // zot's example: 32, and Berth streams at most reqConcurrent (3) here.
    parse(serde_json::json!({"registries": [reg(32.into(), none.clone())]}))
        .check()
        .expect("32 >= 3");
    parse(serde_json::json!({"registries": [reg(3.into(), none.clone())]}))
        .check()
        .expect("3 >= 3");
    refused(
        serde_json::json!({"registries": [reg(2.into(), none.clone())]}),
        "extensions.sync.registries[0].maxConcurrentStreams: berth streams up to reqConcurrent blobs at once per URL of a streaming registry, 3 in all here: set at least 3",
    );
    // Every URL of every streaming registry counts; others do not.
    refused(
        serde_json::json!({"registries": [
            reg(8.into(), serde_json::json!({"urls": ["a", "b"], "reqConcurrent": 2})),
            {"urls": ["c"], "onDemand": true, "reqConcurrent": 50},
            reg(8.into(), serde_json::json!({"reqConcurrent": 5}))]}),
        "extensions.sync.registries[0].maxConcurrentStreams: berth streams up to reqConcurrent blobs at once per URL of a streaming registry, 9 in all",
    );
    refused(
        serde_json::json!({"registries": [reg(32.into(), none.clone()), reg(16.into(), none.clone())]}),
        "extensions.sync.registries[1].maxConcurrentStreams: must be the same in every streaming registry (one cap for all, as in zot): registries[0] says 32",
    );
    refused(
        serde_json::json!({"registries": [reg(0.into(), none.clone())]}),
        "extensions.sync.registries[0].maxConcurrentStreams: must be at least 1",
    );
    refused(
        serde_json::json!({"registries": [reg(32.into(), serde_json::json!({"stream": null}))]}),
        "extensions.sync.registries[0].maxConcurrentStreams: applies only with stream: true",
    );
}

#[test]
fn zot_keys_berth_cannot_honour_are_refused_by_name() {
    let one = |extra: serde_json::Value| {
        let mut r = serde_json::json!({"urls": ["h"], "onDemand": true});
        r.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        serde_json::json!({"registries": [r]})
    };
    let at = "extensions.sync.registries[0].";
    let cases = [
        (
            serde_json::json!({"architectures": ["amd64"]}),
            "architectures: zot's older key, replaced by platforms",
        ),
        (
            serde_json::json!({"downloadRate": "100mbps"}),
            "downloadRate: berth does not limit the rate of sync downloads",
        ),
        (
            serde_json::json!({"streamCache": {"enable": true, "cacheDir": "/c", "maxSize": 10}}),
            "streamCache: zot's stream cache (development builds) is not supported",
        ),
        (
            serde_json::json!({"onDemandInBackground": true}),
            "onDemandInBackground: berth answers an on-demand miss with the manifest",
        ),
        (
            serde_json::json!({"syncReferrersRecursive": false}),
            "syncReferrersRecursive: berth always copies the referrers of referrers",
        ),
        (
            serde_json::json!({"content": [{"prefix": "a"}, {"images": {"registry": ["latest"]}}]}),
            "content[1].images: zot's images rules (development builds) are not supported",
        ),
        (
            serde_json::json!({"content": [{"destination": "/d"}]}),
            "content[0].prefix: required",
        ),
    ];
    for (extra, want) in cases {
        refused(one(extra), &format!("{at}{want}"));
    }
    refused(
        serde_json::json!({"asyncManifest": true}),
        "extensions.sync.asyncManifest: zot's asynchronous on-demand answers",
    );
    // What zot reads as unset, or as what Berth does anyway, is accepted.
    let fine = [
        serde_json::json!({"architectures": [], "downloadRate": "", "credentialHelperConfig": {}}),
        serde_json::json!({"streamCache": {"enable": false, "cacheDir": "/c"}}),
        serde_json::json!({"onDemandInBackground": false, "syncReferrersRecursive": true}),
    ];
    for extra in fine {
        parse(one(extra.clone()))
            .check()
            .unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
    parse(serde_json::json!({"asyncManifest": false}))
        .check()
        .expect("off");
}

/// `registries[0]` with `extra` keys.
fn one_with(extra: serde_json::Value) -> serde_json::Value {
    let mut r = serde_json::json!({"urls": ["h"], "onDemand": true});
    r.as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    serde_json::json!({"registries": [r]})
}

#[test]
fn credential_helpers_resolve_with_zot_defaults() {
    let helper = |extra| {
        parse(one_with(extra)).registries[0]
            .credential_helper
            .clone()
    };
    assert_eq!(helper(serde_json::json!({})), None);
    assert_eq!(helper(serde_json::json!({"credentialHelper": ""})), None);
    assert_eq!(
        helper(serde_json::json!({"credentialHelper": "ecr"})),
        Some(CredentialHelper::Ecr)
    );
    assert_eq!(
        helper(serde_json::json!({"credentialHelper": "gcp"})),
        Some(CredentialHelper::Gcp)
    );
    // zot's example, and the development builds' name of the section.
    for key in ["oauth2CredentialHelper", "credentialHelperConfig"] {
        let got = helper(serde_json::json!({"credentialHelper": "oauth2", key: {
            "tokenURL": "https://idp.example.com/oauth2/token",
            "signingFile": "/etc/berth/signing.json",
            "clientID": "zot-sync",
            "scopes": ["repository:pull"],
        }}));
        assert_eq!(
            got,
            Some(CredentialHelper::OAuth2(Box::new(OAuth2Helper {
                token_url: "https://idp.example.com/oauth2/token".into(),
                assertion: Assertion::Signed("/etc/berth/signing.json".into()),
                grant: Grant::ClientCredentials,
                client_id: Some("zot-sync".into()),
                client_secret_file: None,
                scopes: vec!["repository:pull".into()],
                username: "<token>".into(),
            })))
        );
    }
    let exchange = helper(
        serde_json::json!({"credentialHelper": "oauth2", "oauth2CredentialHelper": {
            "tokenURL": "https://sts.example.com/v1/token", "assertionFile": "/a.jwt",
            "grantType": TOKEN_EXCHANGE, "audience": "//sts/pools/p", "username": "robot",
            "clientSecretFile": "/secret",
        }}),
    );
    let Some(CredentialHelper::OAuth2(o)) = exchange else {
        panic!("{exchange:?}")
    };
    assert_eq!(o.assertion, Assertion::File("/a.jwt".into()));
    assert_eq!(o.username, "robot");
    assert_eq!(o.client_secret_file, Some("/secret".into()));
    assert_eq!(
        o.grant,
        Grant::TokenExchange {
            audience: "//sts/pools/p".into(),
            subject_token_type: "urn:ietf:params:oauth:token-type:jwt".into(),
            requested_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
        }
    );
}

#[test]
fn bad_credential_helpers_are_refused_naming_the_key() {
    let at = "extensions.sync.registries[0].";
    let oauth2 = |section: serde_json::Value| serde_json::json!({"credentialHelper": "oauth2", "oauth2CredentialHelper": section});
    let ok = serde_json::json!({"tokenURL": "https://t/token", "assertionFile": "/a.jwt"});
    let with = |more: serde_json::Value| {
        let mut v = ok.clone();
        v.as_object_mut()
            .expect("object")
            .extend(more.as_object().expect("object").clone());
        oauth2(v)
    };
    let cases = [
        (
            serde_json::json!({"credentialHelper": "acr"}),
            "credentialHelper: \"acr\" is no credential helper: \"ecr\", \"gcp\" or \"oauth2\"",
        ),
        (
            serde_json::json!({"credentialHelper": "oauth2"}),
            "oauth2CredentialHelper: required with credentialHelper: oauth2",
        ),
        (
            serde_json::json!({"credentialHelper": "ecr", "oauth2CredentialHelper": ok.clone()}),
            "oauth2CredentialHelper: applies only with credentialHelper: oauth2",
        ),
        (
            serde_json::json!({"credentialHelperConfig": ok.clone()}),
            "credentialHelperConfig: applies only with credentialHelper: oauth2",
        ),
        (
            serde_json::json!({"credentialHelper": "oauth2", "oauth2CredentialHelper": ok.clone(), "credentialHelperConfig": ok.clone()}),
            "credentialHelperConfig: the older name of oauth2CredentialHelper",
        ),
        (
            oauth2(serde_json::json!({"assertionFile": "/a.jwt"})),
            "oauth2CredentialHelper.tokenURL: required",
        ),
        (
            oauth2(serde_json::json!({"tokenURL": " ", "assertionFile": "/a.jwt"})),
            "oauth2CredentialHelper.tokenURL: required",
        ),
        (
            with(serde_json::json!({"tokenURL": "ftp://t/token"})),
            "oauth2CredentialHelper.tokenURL: \"ftp://t/token\": must be an http:// or https:// URL",
        ),
        (
            oauth2(serde_json::json!({"tokenURL": "https://t"})),
            "oauth2CredentialHelper.assertionFile: required (or signingFile)",
        ),
        (
            with(serde_json::json!({"signingFile": "/s.json"})),
            "oauth2CredentialHelper.signingFile: set assertionFile or signingFile, not both",
        ),
        (
            with(serde_json::json!({"grantType": "password"})),
            "oauth2CredentialHelper.grantType: \"password\": must be client_credentials",
        ),
        (
            with(serde_json::json!({"audience": "x"})),
            "oauth2CredentialHelper.audience: applies only with grantType urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        (
            with(serde_json::json!({"grantType": TOKEN_EXCHANGE})),
            "oauth2CredentialHelper.audience: required with grantType",
        ),
        (
            with(
                serde_json::json!({"grantType": TOKEN_EXCHANGE, "audience": "a", "subjectTokenType": "jwt"}),
            ),
            "oauth2CredentialHelper.subjectTokenType: \"jwt\": must be an absolute URI",
        ),
        (
            with(serde_json::json!({"scopes": ["a b"]})),
            "oauth2CredentialHelper.scopes: each scope is one word",
        ),
        (
            with(serde_json::json!({"clientSecret": "inline"})),
            "oauth2CredentialHelper.clientSecret: unknown field `clientSecret`",
        ),
        (
            with(serde_json::json!({"scopes": "repository:pull"})),
            "oauth2CredentialHelper.scopes: invalid type",
        ),
    ];
    for (extra, want) in cases {
        refused(one_with(extra), &format!("{at}{want}"));
    }
}

#[cfg(feature = "sync")]
#[test]
fn the_files_of_a_credential_helper_are_read_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let at = "extensions.sync.registries[0].oauth2CredentialHelper.";
    for (key, section) in [
        (
            "assertionFile",
            serde_json::json!({"assertionFile": missing}),
        ),
        ("signingFile", serde_json::json!({"signingFile": missing})),
    ] {
        let mut section = section;
        section["tokenURL"] = "https://t/token".into();
        refused(
            one_with(
                serde_json::json!({"credentialHelper": "oauth2", "oauth2CredentialHelper": section}),
            ),
            &format!("{at}{key}: cannot read {}", missing.display()),
        );
    }
    let assertion = dir.path().join("a.jwt");
    std::fs::write(&assertion, "eyJ.x.y").expect("write");
    let config = |secret: &std::path::Path| {
        one_with(
            serde_json::json!({"credentialHelper": "oauth2", "oauth2CredentialHelper": {
                "tokenURL": "https://t/token", "assertionFile": assertion, "clientSecretFile": secret,
            }}),
        )
    };
    refused(
        config(&missing),
        &format!("{at}clientSecretFile: cannot read {}", missing.display()),
    );
    parse(config(&assertion)).check().expect("readable files");
}

#[cfg(not(feature = "ecr"))]
#[test]
fn the_ecr_helper_needs_its_feature() {
    refused(
        one_with(serde_json::json!({"credentialHelper": "ecr"})),
        "extensions.sync.registries[0].credentialHelper: this berth was built without the \"ecr\" feature",
    );
}

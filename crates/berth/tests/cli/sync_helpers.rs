//! zot's sync credential helpers, each giving a mirror the login of an
//! upstream Berth (htpasswd): `ecr` against moto's ECR (its
//! `GetAuthorizationToken` token decodes to `AWS:<account>-auth-token`),
//! on demand and periodically, and refused cleanly when the upstream
//! does not take the token; `gcp` against a small stand-in for Google's
//! token endpoint and metadata server (`fake_http`: no Google service is
//! reachable from the tests), with a service account key and with the
//! metadata server. The `oauth2` helper's tests are in `sync_oauth2`.

use std::path::Path;
use std::process::Stdio;

use base64::Engine;
use serde_json::{Value, json};

use crate::fake_http::FakeHttp;
use crate::images::{block_on, push_image};
use crate::support::{Berth, berth};
use crate::sync::{client_of, digest_at, log_of, wait_for};
use crate::upstream::{BerthUpstream, Upstream, UpstreamOptions};

/// The variables of the credential helpers' sources: none reaches the
/// mirror from the test's own environment.
const HELPER_ENV: [&str; 8] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GCE_METADATA_HOST",
    "CLOUDSDK_CONFIG",
];

/// Starts a Berth whose `extensions.sync` is `sync`, its root under
/// `dir`, with `env` (and `HOME` under `dir`, so no gcloud file of the
/// machine's is found).
pub fn start_mirror_env(dir: &Path, sync: Value, env: &[(&str, String)]) -> Berth {
    let config = dir.join("mirror.json");
    std::fs::write(
        &config,
        json!({
            "storage": {"rootDirectory": dir.join("mirror")},
            "http": {"address": "127.0.0.1", "port": "0"},
            "log": {"level": "info"},
            "extensions": {"sync": sync},
        })
        .to_string(),
    )
    .expect("write config");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut cmd = berth();
    cmd.arg("serve")
        .arg(&config)
        .env("NO_COLOR", "1")
        .env("HOME", &home)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for k in HELPER_ENV {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    Berth::attach(cmd.spawn().expect("spawn berth"))
}

/// One registry of `urls`, with `extra` keys.
fn registry(url: &str, extra: Value) -> Value {
    let mut r = json!({"urls": [url]});
    if let (Some(o), Value::Object(more)) = (r.as_object_mut(), extra) {
        o.extend(more);
    }
    r
}

#[cfg(feature = "ecr")]
/// What moto's ECR answers `GetAuthorizationToken` with, decoded:
/// (user, password).
fn ecr_login(moto: &str) -> (String, String) {
    let r = reqwest::blocking::Client::new()
        .post(moto)
        .header(
            "x-amz-target",
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
        )
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("{}")
        .send()
        .expect("moto");
    let body: Value = r.json().expect("json");
    let token = body["authorizationData"][0]["authorizationToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"));
    let text = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("base64");
    let text = String::from_utf8(text).expect("utf8");
    let (user, password) = text.split_once(':').expect("user:password");
    (user.to_string(), password.to_string())
}

#[cfg(feature = "ecr")]
fn aws_env(moto: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", moto.into()),
    ]
}

#[cfg(feature = "ecr")]
#[test]
fn ecr_logins_pull_on_demand_and_periodically_in_place_of_the_credentials_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = crate::dynamo_server::DynamoServer::start();
    let (user, password) = ecr_login(&moto.endpoint());
    assert_eq!(user, "AWS");
    let up = BerthUpstream::start(UpstreamOptions::new().user(&user, &password));
    let c = up.client(Some(&format!("{user}:{password}")));
    let asked = block_on(push_image(&c, "app", "v1", &[b"ecr layer"]));
    let polled = block_on(push_image(&c, "polled/tool", "1.0", &[b"polled layer"]));
    // The file's login for the same host is wrong: the helper's is used.
    let creds = dir.path().join("creds.json");
    let file = json!({ up.host(): {"username": "AWS", "password": "stale"} });
    std::fs::write(&creds, file.to_string()).expect("creds");
    let mirror = start_mirror_env(
        dir.path(),
        json!({"credentialsFile": creds, "registries": [
            registry(&up.url(), json!({"credentialHelper": "ecr", "onDemand": true, "content": [{"prefix": "app"}]})),
            registry(&up.url(), json!({"credentialHelper": "ecr", "pollInterval": "1h", "content": [{"prefix": "polled/**"}]})),
        ]}),
        &aws_env(&moto.endpoint()),
    );
    let local = client_of(&mirror);
    assert_eq!(
        digest_at(&local, "app", "v1"),
        Some(asked.digest.to_string()),
        "{}",
        log_of(&mirror)
    );
    let got = wait_for(&mirror, "polled/tool synced", || {
        digest_at(&local, "polled/tool", "1.0")
    });
    assert_eq!(got, polled.digest.to_string());
    assert!(
        log_of(&mirror).contains("ecr credential helper: a login for"),
        "{}",
        log_of(&mirror)
    );
}

#[cfg(feature = "ecr")]
#[test]
fn an_ecr_login_the_upstream_refuses_fails_the_pull_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = crate::dynamo_server::DynamoServer::start();
    let up = BerthUpstream::start(UpstreamOptions::new().user("AWS", "another-password"));
    block_on(push_image(
        &up.client(Some("AWS:another-password")),
        "app",
        "v1",
        &[b"x"],
    ));
    let mirror = start_mirror_env(
        dir.path(),
        json!({"registries": [registry(&up.url(), json!({"credentialHelper": "ecr", "onDemand": true}))]}),
        &aws_env(&moto.endpoint()),
    );
    let local = client_of(&mirror);
    let err = block_on(local.get_manifest_raw("app", "v1")).expect_err("refused upstream");
    assert_eq!(
        err.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{err}"
    );
    assert!(err.to_string().contains("upstream registry"), "{err}");
    // Still serving, and asked again: the same clean answer.
    block_on(local.ping()).expect("the mirror is up");
    let again = block_on(local.get_manifest_raw("app", "v1")).expect_err("refused upstream");
    assert_eq!(again.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    // The log says why: the upstream refused the helper's login.
    let log = log_of(&mirror);
    assert!(
        log.contains("ecr credential helper: a login for") && log.contains("401 Unauthorized"),
        "{log}"
    );
}

/// A stand-in for Google's token endpoint (`POST /token`, the jwt-bearer
/// grant) and metadata server (`GET /computeMetadata/...`, with
/// `Metadata-Flavor: Google`), both giving `token`.
fn fake_google(token: &'static str) -> FakeHttp {
    FakeHttp::start(move |req| {
        let ok = (
            200,
            "application/json",
            json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).to_string(),
        );
        let jwt_bearer = req
            .form()
            .iter()
            .any(|(k, v)| k == "grant_type" && v == "urn:ietf:params:oauth:grant-type:jwt-bearer");
        match (req.method.as_str(), req.target.split('?').next()) {
            ("POST", Some("/token")) if jwt_bearer => ok,
            ("GET", Some("/computeMetadata/v1/instance/service-accounts/default/token"))
                if req.header("metadata-flavor") == Some("Google") =>
            {
                ok
            }
            _ => (
                400,
                "application/json",
                r#"{"error":"invalid_request"}"#.into(),
            ),
        }
    })
}

#[test]
fn gcp_logins_from_a_service_account_key_and_from_the_metadata_server() {
    const TOKEN: &str = "ya29.test-access-token";
    let dir = tempfile::tempdir().expect("tempdir");
    let google = fake_google(TOKEN);
    let up = BerthUpstream::start(UpstreamOptions::new().user("oauth2accesstoken", TOKEN));
    let pushed = block_on(push_image(
        &up.client(Some(&format!("oauth2accesstoken:{TOKEN}"))),
        "proj/app",
        "v1",
        &[b"gcp layer"],
    ));
    let sync = json!({"registries": [registry(&up.url(), json!({"credentialHelper": "gcp", "onDemand": true}))]});
    // A service account key whose token_uri is the stand-in.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("key");
    let key_file = dir.path().join("sa.json");
    let token_uri = format!("{}/token", google.url());
    std::fs::write(
        &key_file,
        json!({"type": "service_account", "project_id": "p", "private_key_id": "k1",
            "private_key": pair.serialize_pem(), "client_email": "sync@p.iam.gserviceaccount.com",
            "token_uri": token_uri})
        .to_string(),
    )
    .expect("key file");
    let by_key = dir.path().join("by-key");
    std::fs::create_dir_all(&by_key).expect("dir");
    let mirror = start_mirror_env(
        &by_key,
        sync.clone(),
        &[(
            "GOOGLE_APPLICATION_CREDENTIALS",
            key_file.display().to_string(),
        )],
    );
    assert_eq!(
        digest_at(&client_of(&mirror), "proj/app", "v1"),
        Some(pushed.digest.to_string()),
        "{}",
        log_of(&mirror)
    );
    // The assertion the stand-in got: signed by the key, for its endpoint.
    let exchange = google
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a token request");
    let form = exchange.form();
    let assertion = &form
        .iter()
        .find(|(k, _)| k == "assertion")
        .expect("assertion")
        .1;
    let public = jsonwebtoken::DecodingKey::from_rsa_pem(pair.public_key_pem().as_bytes())
        .expect("public key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[&token_uri]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &public, &v)
        .expect("a valid assertion")
        .claims;
    assert_eq!(claims["iss"], "sync@p.iam.gserviceaccount.com");
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );

    // No key file: the metadata server.
    let by_metadata = dir.path().join("by-metadata");
    std::fs::create_dir_all(&by_metadata).expect("dir");
    let mirror = start_mirror_env(
        &by_metadata,
        sync,
        &[("GCE_METADATA_HOST", google.addr.clone())],
    );
    assert_eq!(
        digest_at(&client_of(&mirror), "proj/app", "v1"),
        Some(pushed.digest.to_string()),
        "{}",
        log_of(&mirror)
    );
    assert!(
        google
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.target.starts_with("/computeMetadata/")),
        "{:?}",
        google.requests()
    );
}

#[test]
fn a_gcp_key_file_of_another_kind_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("external.json");
    std::fs::write(
        &file,
        json!({"type": "external_account", "audience": "//iam"}).to_string(),
    )
    .expect("write");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": dir.path().join("root")},
            "extensions": {"sync": {"registries": [registry("https://europe-docker.pkg.dev", json!({"credentialHelper": "gcp", "onDemand": true}))]}}})
        .to_string(),
    )
    .expect("config");
    let out = berth()
        .arg("verify")
        .arg(&config)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &file)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("extensions.sync.registries[0].credentialHelper: ")
            && err.contains("credentials of type \"external_account\" are not supported"),
        "{err}"
    );
}

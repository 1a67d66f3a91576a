//! The whole server built by the library ([`Server::build`]) from a config
//! with authentication, the audit log and metrics, driven in-process over
//! 127.0.0.1:0; and every route of the route table authorized by the one
//! function that decides it.

use std::path::Path;

use berth_server::api::routes::{Access, Kind, ROUTES};
use berth_server::config::Config;
use berth_server::server::{ServeOptions, Server};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A library-built server running on 127.0.0.1:0.
struct Running {
    base: String,
    http: Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), berth_server::server::ServeError>>,
}

impl Running {
    async fn start(config: &Config) -> Self {
        let server = Server::build(config, ServeOptions::default())
            .await
            .expect("build");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            http: Client::new(),
            stop,
            task,
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        user: Option<(&str, &str)>,
    ) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match user {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("served");
    }
}

/// An htpasswd file with `alice:wonderland` and `bob:builder`.
pub(crate) fn htpasswd(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("htpasswd");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    std::fs::write(&path, line("alice", "wonderland") + &line("bob", "builder")).expect("write");
    path
}

pub(crate) fn config(dir: &Path, http: Value, extra: Value) -> Config {
    let mut c = json!({
        "storage": {"rootDirectory": dir.join("root")},
        "http": http,
    });
    if let (Some(o), Value::Object(more)) = (c.as_object_mut(), extra) {
        o.extend(more);
    }
    Config::from_value(c).expect("config")
}

/// A config with htpasswd users, `log.audit` (its file returned) and the
/// metrics at `/metrics`.
#[cfg(feature = "metrics")]
fn audited_config(dir: &Path) -> (Config, std::path::PathBuf) {
    let audit = dir.join("audit.log");
    let c = config(
        dir,
        json!({"address": "127.0.0.1", "port": 0,
               "auth": {"htpasswd": {"path": htpasswd(dir)}}}),
        json!({"log": {"audit": audit},
               "extensions": {"metrics": {"enable": true, "prometheus": {"path": "/metrics"}}}}),
    );
    (c, audit)
}

/// The audit log's entry of alice's `POST`, answered `status`.
#[cfg(feature = "metrics")]
fn alices_post(audit: &Path, status: u16) -> Value {
    let lines = std::fs::read_to_string(audit).expect("audit log");
    let entry: Value = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .find(|e| e["action"] == "POST")
        .expect("the POST is audited");
    assert_eq!(entry["subject"], "alice");
    assert_eq!(entry["status"], status);
    entry
}

/// The scrape counts one upload `POST` answered `status`.
#[cfg(feature = "metrics")]
fn assert_counts_one_upload_post(text: &str, status: u16) {
    let line = format!(
        r#"berth_http_requests_total{{method="POST",route="/v2/{{name}}/blobs/uploads/",status="{status}"}} 1"#
    );
    assert!(text.contains(&line), "{text}");
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn library_built_server_has_auth_audit_and_metrics() {
    use berth_oci::Digest;
    const ALICE: Option<(&str, &str)> = Some(("alice", "wonderland"));
    let tmp = tempfile::tempdir().expect("tmp");
    let (c, audit) = audited_config(tmp.path());
    let s = Running::start(&c).await;

    let r = s
        .request(Method::GET, "/v2/", None)
        .send()
        .await
        .expect("ping");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"berth\"")
    );
    let r = s
        .request(Method::GET, "/v2/", ALICE)
        .send()
        .await
        .expect("ping");
    assert_eq!(r.status(), StatusCode::OK);
    let wrong = s.request(Method::GET, "/v2/", Some(("alice", "x"))).send();
    assert_eq!(
        wrong.await.expect("ping").status(),
        StatusCode::UNAUTHORIZED
    );

    // A mutation is audited with its subject.
    let data = b"audited";
    let d = Digest::sha256(data);
    let r = s
        .request(
            Method::POST,
            &format!("/v2/lib/app/blobs/uploads/?digest={d}"),
            ALICE,
        )
        .body(data.to_vec())
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry = alices_post(&audit, 201);
    assert_eq!(
        entry["object"],
        format!("/v2/lib/app/blobs/uploads/?digest={d}")
    );

    // The metrics count it, and are no more open than the API.
    let r = s
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .request(Method::GET, "/metrics", ALICE)
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    assert_counts_one_upload_post(&r.text().await.expect("text"), 201);
    s.stop().await;
}

/// The path of a route with sample parameters.
fn sample(template: &str) -> String {
    template
        .replace("{name}", "some/app")
        .replace("{reference}", "v1")
        .replace("{digest}", &format!("sha256:{}", "0".repeat(64)))
        .replace("{uuid}", "00000000-0000-4000-8000-000000000000")
        .replace("{*rest}", "index.html")
        .replace("{file}", "app.css")
        .replace("{*page}", "repos")
}

/// Every route of the table, called by an anonymous caller and by a user
/// whom the access rules give nothing, is refused unless its row says it
/// is open: authorization covers the whole table.
#[tokio::test]
async fn every_route_is_authorized_by_the_table() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Anonymous callers get past authentication (one repository is open to
    // them), so each route's own access decides.
    let c = config(
        tmp.path(),
        json!({"address": "127.0.0.1", "port": 0,
               "auth": {"htpasswd": {"path": htpasswd(tmp.path())}, "apikey": true},
               "accessControl": {
                   "repositories": {"open/**": {"anonymousPolicy": ["read"]}},
                   "metrics": {"users": []}}}),
        {
            let mut extensions = serde_json::Map::new();
            if cfg!(feature = "metrics") {
                extensions.insert("metrics".into(), json!({"enable": true}));
            }
            if cfg!(feature = "search") {
                extensions.insert("search".into(), json!({"enable": true}));
            }
            if cfg!(feature = "ui") {
                extensions.insert("ui".into(), json!({"enable": true}));
            }
            if cfg!(feature = "trust") {
                extensions.insert(
                    "trust".into(),
                    json!({"enable": true, "cosign": true, "notation": true}),
                );
            }
            json!({ "extensions": extensions })
        },
    );
    let s = Running::start(&c).await;
    let mut checked = 0;
    for r in ROUTES {
        let docs = matches!(r.kind, Kind::ApiDoc | Kind::SwaggerUi);
        let search = matches!(r.kind, Kind::Search | Kind::Mgmt | Kind::UserPrefs);
        let trust = matches!(r.kind, Kind::Cosign | Kind::Notation);
        let ui = matches!(
            r.kind,
            Kind::UserPrefs | Kind::UiHome | Kind::UiAsset | Kind::Ui
        );
        if (docs && !cfg!(feature = "openapi"))
            || (ui && !cfg!(feature = "ui"))
            || (r.kind == Kind::Metrics && !cfg!(feature = "metrics"))
            || (search && !cfg!(feature = "search"))
            || (trust && !cfg!(feature = "trust"))
        {
            continue;
        }
        let path = sample(r.template);
        // HEAD is served as GET where the table has no HEAD row, and must
        // be judged the same.
        let head = r.method == "GET"
            && !ROUTES
                .iter()
                .any(|o| o.method == "HEAD" && o.template == r.template);
        let methods = if head {
            vec![r.method, "HEAD"]
        } else {
            vec![r.method]
        };
        for (who, user, method) in methods.into_iter().flat_map(|m| {
            [("anonymous", None), ("bob", Some(("bob", "builder")))]
                .map(|(who, user)| (who, user, m.parse::<Method>().expect("method")))
        }) {
            let status = s
                .request(method.clone(), &path, user)
                .send()
                .await
                .expect("request")
                .status();
            let open = match r.access {
                // Search is filtered to what the caller may read.
                Access::Public | Access::Authenticated | Access::Search => true,
                // Pages show each caller what it may read, never refuse.
                Access::Page => true,
                // Stars and bookmarks are a named caller's.
                Access::User => user.is_some(),
                // Filtered to what the caller may read.
                Access::Catalog => true,
                // The ping challenges anonymous callers only.
                Access::Login => user.is_some(),
                // bob logged in with a password: he manages his own keys.
                Access::ApiKeys => user.is_some(),
                // bob is no admin (the rules name none).
                Access::Repo(_) | Access::Push | Access::Metrics | Access::Admin => false,
            };
            let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
            assert_eq!(
                !refused, open,
                "{who}: {} {path}: {status} ({:?})",
                r.method, r.access
            );
            if refused {
                let want = if user.is_none() {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(status, want, "{who}: {method} {path}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 2 * 22, "{checked} calls");
    s.stop().await;
}

/// A part that cannot start is named by its config key, chosen where it
/// failed.
#[tokio::test]
async fn build_errors_name_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let http = json!({"address": "127.0.0.1", "port": 0});
    let cases = [
        (
            json!({"storage": {"rootDirectory": tmp.path().join("root"),
                               "subPaths": {"/team": {"rootDirectory": file}}}}),
            "storage.subPaths./team.rootDirectory",
        ),
        (
            json!({"storage": {"rootDirectory": file}}),
            "storage.rootDirectory",
        ),
        (
            json!({"storage": {"rootDirectory": tmp.path().join("root2")},
                   "log": {"audit": tmp.path()}}),
            "log.audit",
        ),
    ];
    for (c, key) in cases {
        let mut c = c;
        c["http"] = http.clone();
        let config = Config::from_value(c).expect("config");
        let err = match Server::build(&config, ServeOptions::default()).await {
            Ok(_) => panic!("{key}: built"),
            Err(e) => e,
        };
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().starts_with(&format!("{key}: ")), "{err}");
    }
    // The offline scrub opens roots the same way, and names them too.
    let config = Config::from_value(json!({
        "storage": {"rootDirectory": tmp.path().join("missing")},
        "http": http,
    }))
    .expect("config");
    let err = berth_server::server::scrub_offline(&config)
        .await
        .expect_err("no root");
    assert_eq!(err.key(), Some("storage.rootDirectory"), "{err}");
}

/// The library-built server's router, driven with `oneshot` (no socket):
/// authentication, the audit log and the metrics all answer in-process.
#[cfg(feature = "metrics")]
#[tokio::test]
async fn the_router_answers_in_process() {
    use tower::ServiceExt;

    let tmp = tempfile::tempdir().expect("tmp");
    let (c, audit) = audited_config(tmp.path());
    let server = Server::build(&c, ServeOptions::default())
        .await
        .expect("build");
    let alice = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "alice:wonderland"
        )
    );
    let call = |method: &str, path: &str, auth: Option<&str>| {
        let mut req = http::Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        server
            .router()
            .oneshot(req.body(axum::body::Body::empty()).expect("request"))
    };
    assert_eq!(call("GET", "/v2/", None).await.expect("call").status(), 401);
    assert_eq!(
        call("GET", "/v2/", Some(&alice))
            .await
            .expect("call")
            .status(),
        200
    );
    assert_eq!(
        call("GET", "/livez", None).await.expect("call").status(),
        200
    );

    // A mutation, audited with its subject.
    let r = call("POST", "/v2/lib/app/blobs/uploads/", Some(&alice))
        .await
        .expect("call");
    assert_eq!(r.status(), 202);
    alices_post(&audit, 202);

    // The metrics count it, behind the same authentication.
    assert_eq!(
        call("GET", "/metrics", None).await.expect("call").status(),
        401
    );
    let r = call("GET", "/metrics", Some(&alice)).await.expect("call");
    assert_eq!(r.status(), 200);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_counts_one_upload_post(&String::from_utf8_lossy(&body), 202);
}

/// A mount without `from` (automatic content discovery, the conformance
/// suite's optional check) mounts a blob the store knows from a
/// repository the caller may read, and never from one it may not: then
/// it is a plain upload session (202), as the spec asks.
#[tokio::test]
async fn a_mount_without_from_takes_only_what_the_caller_may_read() {
    use berth_oci::Digest;
    let tmp = tempfile::tempdir().expect("tmp");
    let c = config(
        tmp.path(),
        json!({"address": "127.0.0.1", "port": 0,
               "auth": {"htpasswd": {"path": htpasswd(tmp.path())}},
               "accessControl": {"repositories": {
                   "shared/**": {"policies": [{"users": ["alice", "bob"], "actions": ["read", "create"]}]},
                   "secret/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]}]},
                   "bob/**": {"policies": [{"users": ["bob"], "actions": ["read", "create"]}]}}}}),
        json!({}),
    );
    let s = Running::start(&c).await;
    const ALICE: Option<(&str, &str)> = Some(("alice", "wonderland"));
    const BOB: Option<(&str, &str)> = Some(("bob", "builder"));
    let push = |repo: &str, data: &'static [u8]| {
        let d = Digest::sha256(data);
        s.request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            ALICE,
        )
        .body(data)
        .send()
    };
    let open = Digest::sha256(b"a layer anyone here may read");
    let hidden = Digest::sha256(b"a layer only alice may read");
    assert_eq!(
        push("shared/base", b"a layer anyone here may read")
            .await
            .expect("push")
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        push("secret/base", b"a layer only alice may read")
            .await
            .expect("push")
            .status(),
        StatusCode::CREATED
    );

    let mount = |digest: &Digest| {
        s.request(
            Method::POST,
            &format!("/v2/bob/app/blobs/uploads/?mount={digest}"),
            BOB,
        )
        .send()
    };
    let r = mount(&open).await.expect("mount");
    assert_eq!(r.status(), StatusCode::CREATED, "found where bob may read");
    assert_eq!(
        r.headers()["location"].to_str().expect("location"),
        format!("/v2/bob/app/blobs/{open}")
    );
    let r = mount(&hidden).await.expect("mount");
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "never from where bob may not read"
    );
    let r = s
        .request(Method::HEAD, &format!("/v2/bob/app/blobs/{hidden}"), BOB)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = mount(&Digest::sha256(b"nowhere")).await.expect("mount");
    assert_eq!(r.status(), StatusCode::ACCEPTED, "a blob nobody holds");
    s.stop().await;
}

/// `hydrateBlobOnRead`: a blob another repository of the root holds is
/// read through one the caller may read, linked in for a caller who may
/// push (so the push that follows may use it), and never through a
/// repository the caller may not read; without the setting blobs stay
/// repository-local.
#[tokio::test]
async fn hydrate_blob_on_read_serves_what_the_caller_may_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let start = |hydrate: bool, root: &str| {
        let mut c = config(
            tmp.path(),
            json!({"address": "127.0.0.1", "port": 0,
                   "auth": {"htpasswd": {"path": htpasswd(tmp.path())}},
                   "accessControl": {"repositories": {
                       "base/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]},
                                                {"users": ["bob"], "actions": ["read"]}]},
                       "team/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]},
                                                {"users": ["bob"], "actions": ["read"]}]},
                       "secret/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]}]}}}}),
            json!({}),
        );
        c.storage.root_directory = tmp.path().join(root);
        c.storage.hydrate_blob_on_read = hydrate;
        c
    };
    let alice = Some(("alice", "wonderland"));
    let bob = Some(("bob", "builder"));
    for hydrate in [true, false] {
        let s = Running::start(&start(hydrate, if hydrate { "on" } else { "off" })).await;
        let push = |repo: &str, data: &'static [u8]| {
            let digest = berth_oci::Digest::sha256(data);
            s.request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
                alice,
            )
            .body(data)
            .send()
        };
        let shared: &[u8] = b"{}";
        let secret: &[u8] = b"only alice";
        assert_eq!(push("base/img", shared).await.expect("push").status(), 201);
        assert_eq!(push("secret/x", secret).await.expect("push").status(), 201);
        let head = |repo: &str, data: &[u8], user| {
            let digest = berth_oci::Digest::sha256(data);
            s.request(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"), user)
                .send()
        };
        let found = |r: reqwest::Response| r.status();
        // bob may read base/img: read through it, nothing linked (he may
        // not push to team/other).
        let want = if hydrate {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(
            found(head("team/other", shared, bob).await.expect("head")),
            want
        );
        // Never through a repository the caller may not read.
        assert_eq!(
            found(head("team/other", secret, bob).await.expect("head")),
            StatusCode::NOT_FOUND
        );
        let r = s
            .request(
                Method::GET,
                &format!("/v2/team/other/blobs/{}", berth_oci::Digest::sha256(shared)),
                bob,
            )
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), want);
        if hydrate {
            assert_eq!(&r.bytes().await.expect("body")[..], shared);
        }
        // alice may push to team/app: the blob is linked in, and a
        // manifest naming it is accepted without an upload.
        assert_eq!(
            found(head("team/app", shared, alice).await.expect("head")),
            want
        );
        let d = berth_oci::Digest::sha256(shared);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d.to_string(), "size": 2},
            "layers": [],
        });
        let r = s
            .request(Method::PUT, "/v2/team/app/manifests/v1", alice)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.to_string())
            .send()
            .await
            .expect("put");
        let want_put = if hydrate {
            StatusCode::CREATED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(
            r.status(),
            want_put,
            "{}",
            r.text().await.unwrap_or_default()
        );
        s.stop().await;
    }
}

/// zot 1.x's `http.ReadOnly`: pulls go on, every write is refused.
#[tokio::test]
async fn a_read_only_registry_refuses_every_write() {
    let tmp = tempfile::tempdir().expect("tmp");
    let c = config(
        tmp.path(),
        json!({"address": "127.0.0.1", "port": 0, "ReadOnly": true}),
        json!({}),
    );
    let s = Running::start(&c).await;
    assert_eq!(
        s.request(Method::GET, "/v2/", None)
            .send()
            .await
            .expect("ping")
            .status(),
        StatusCode::OK
    );
    for (method, path) in [
        (Method::POST, "/v2/app/blobs/uploads/"),
        (Method::PUT, "/v2/app/manifests/v1"),
        (Method::DELETE, "/v2/app/manifests/v1"),
        (
            Method::DELETE,
            &*format!("/v2/app/blobs/sha256:{}", "0".repeat(64)),
        ),
    ] {
        let r = s
            .request(method.clone(), path, None)
            .send()
            .await
            .expect("write");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["errors"][0]["code"], "DENIED");
    }
    assert_eq!(
        s.request(Method::GET, "/v2/app/tags/list", None)
            .send()
            .await
            .expect("tags")
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

/// `hydrateBlobOnRead` on a read-only registry: a blob another
/// repository holds is read through it, but never linked in (no
/// repository appears, nothing is written).
#[tokio::test]
async fn a_read_only_registry_hydrates_without_writing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let http = json!({"address": "127.0.0.1", "port": 0});
    let s = Running::start(&config(tmp.path(), http.clone(), json!({}))).await;
    let data: &[u8] = b"shared layer";
    let digest = berth_oci::Digest::sha256(data);
    let r = s
        .request(
            Method::POST,
            &format!("/v2/base/blobs/uploads/?digest={digest}"),
            None,
        )
        .body(data)
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), StatusCode::CREATED);
    s.stop().await;

    let mut read_only = http;
    read_only["ReadOnly"] = json!(true);
    let mut c = config(tmp.path(), read_only, json!({}));
    c.storage.hydrate_blob_on_read = true;
    let s = Running::start(&c).await;
    let r = s
        .request(Method::GET, &format!("/v2/other/blobs/{digest}"), None)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.expect("body")[..], data);
    assert!(
        !tmp.path().join("root/other").exists(),
        "a read-only registry wrote a repository"
    );
    s.stop().await;
}

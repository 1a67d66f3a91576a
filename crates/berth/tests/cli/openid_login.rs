//! OpenID Connect login and browser sessions over HTTP (issue 16): the
//! whole login through a real OpenID provider (panva's oidc-provider, its
//! development login and consent pages driven as a browser would submit
//! them), then what a session may and may not do; and every refusal, with
//! a small test issuer (`oidc_issuer.rs`) standing in for a provider that
//! misbehaves (an ID token for another audience, signed with an unknown
//! key, expired, with another nonce), which no real provider can be made
//! to do. The same login in a real browser is in the browser tests.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::oidc_issuer::{Issuer, SigningKey, now};
use crate::support::{Berth, free_port, htpasswd_file, push_empty_image_as, workspace};

const UI: &str = "x-zot-api-client";

/// A client that follows no redirect (each hop is checked).
fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `name=value` of each `Set-Cookie`, by name (the last wins), and
/// the whole header lines.
fn set_cookies(r: &Response) -> (BTreeMap<String, String>, Vec<String>) {
    let lines: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    let map = lines
        .iter()
        .filter_map(|l| l.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (map, lines)
}

/// `url` with the query `pairs`, encoded.
fn with_query(url: impl AsRef<str>, pairs: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(url.as_ref(), pairs)
        .expect("url")
        .to_string()
}

fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in {}", r.status()))
        .to_str()
        .expect("ascii")
        .to_string()
}

/// A real OpenID provider with login pages: `tests/oidc-provider/login.mjs`.
pub(crate) struct LoginProvider {
    child: Child,
    pub(crate) url: String,
}

impl LoginProvider {
    pub(crate) fn start(redirect_uri: &str) -> Self {
        let dir = workspace().join("tests/oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the README's test command installs oidc-provider (npm ci)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let mut child = Command::new("node")
            .arg(dir.join("login.mjs"))
            .arg(port.to_string())
            .arg(redirect_uri)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node");
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(u) = l.strip_prefix("listening on ") {
                        break u.to_string();
                    }
                }
                _ => panic!("the OpenID provider did not start"),
            }
        };
        // It prints notices later: its output is read to the end, or its
        // next write would fail on a closed pipe and end it.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, url }
    }

    /// Logs `user` in at the provider from its authorization URL, as a
    /// browser submits the login and consent forms; answers the URL the
    /// provider sends the browser back to (Berth's callback).
    fn log_in(&self, authorize: &str, user: &str) -> String {
        let c = client();
        let mut jar: BTreeMap<String, String> = BTreeMap::new();
        let cookie = |jar: &BTreeMap<String, String>| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let absolute = |u: &str| match u.starts_with('/') {
            true => format!("{}{u}", self.url),
            false => u.to_string(),
        };
        let mut next = authorize.to_string();
        let mut form: Option<(String, Vec<(&str, String)>)> = None;
        for _ in 0..20 {
            let r = match form.take() {
                Some((action, fields)) => c
                    .post(absolute(&action))
                    .header("cookie", cookie(&jar))
                    .form(&fields)
                    .send(),
                None => c.get(&next).header("cookie", cookie(&jar)).send(),
            }
            .expect("provider");
            let (set, _) = set_cookies(&r);
            jar.extend(set);
            if r.status().is_redirection() {
                let to = absolute(&location(&r));
                if !to.starts_with(&self.url) {
                    return to;
                }
                next = to;
                continue;
            }
            let html = r.text().expect("page");
            let action = html
                .split("action=\"")
                .nth(1)
                .and_then(|a| a.split('"').next())
                .unwrap_or_else(|| panic!("no form on the provider's page:\n{html}"))
                .to_string();
            let fields = if html.contains("name=\"login\"") {
                vec![
                    ("prompt", "login".to_string()),
                    ("login", user.to_string()),
                    ("password", "any".to_string()),
                ]
            } else {
                vec![("prompt", "consent".to_string())]
            };
            form = Some((action, fields));
        }
        panic!("the provider never sent the browser back");
    }
}

impl Drop for LoginProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a login at Berth: the provider's authorization URL and the
/// login cookie (`berth_login=…`).
fn start_login(b: &Berth, callback_ui: &str) -> (String, String) {
    let r = client()
        .get(with_query(
            b.url("/zot/auth/login"),
            &[("provider", "oidc"), ("callback_ui", callback_ui)],
        ))
        .send()
        .expect("login");
    assert_eq!(r.status(), 302, "{:?}", r.text());
    let (cookies, lines) = set_cookies(&r);
    let line = lines
        .iter()
        .find(|l| l.starts_with("berth_login="))
        .expect("login cookie");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Lax"),
        "{line}"
    );
    let login = format!("berth_login={}", cookies["berth_login"]);
    (location(&r), login)
}

/// `session=…; user=…` from a callback's answer.
fn session_of(r: &Response) -> String {
    let (cookies, lines) = set_cookies(r);
    let session = lines
        .iter()
        .find(|l| l.starts_with("session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/"),
        "{session}"
    );
    format!("session={}", cookies["session"])
}

fn oidc_config(issuer: &str, port: u16, extra: Value) -> Value {
    let mut provider = json!({
        "name": "Corporate SSO",
        "issuer": issuer,
        "clientid": "berth",
        "clientsecret": "berth-secret",
        "scopes": ["openid", "email", "profile", "groups"],
        "claimMapping": {"username": "preferred_username"},
    });
    if let (Some(p), Value::Object(extra)) = (provider.as_object_mut(), extra) {
        p.extend(extra);
    }
    json!({"port": port, "externalUrl": format!("http://127.0.0.1:{port}"),
           "auth": {"openid": {"providers": {"oidc": provider},
                               "callbackAllowOrigins": ["http://ui.example.test:3000"]}}})
}

#[test]
fn login_through_a_real_provider_gives_a_session_with_its_groups() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let provider = LoginProvider::start(&format!("http://127.0.0.1:{port}/zot/auth/callback/oidc"));
    let mut http = oidc_config(&provider.url, port, json!({}));
    http["auth"]["htpasswd"] = json!({"path": htpasswd_file(tmp.path(), &[("admin", "pw")])});
    http["accessControl"] = json!({
        "repositories": {
            "dev/**": {"policies": [{"groups": ["dev"], "actions": ["read"]}]},
            "ops/**": {"policies": [{"groups": ["ops"], "actions": ["read"]}]},
        },
        "adminPolicy": {"users": ["admin"], "actions": ["read", "create", "update", "delete"]},
    });
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
               "http": http, "extensions": {"search": {}}})
        .to_string(),
    )
    .expect("config");
    let b = Berth::start_config(&config);
    push_empty_image_as(&b, "dev/app", "v1", Some(("admin", "pw")));
    push_empty_image_as(&b, "ops/app", "v1", Some(("admin", "pw")));

    // zot's management route offers the provider by its name.
    let mgmt: Value = client()
        .get(b.url("/v2/_zot/ext/mgmt"))
        .send()
        .expect("mgmt")
        .json()
        .expect("json");
    assert_eq!(
        mgmt["http"]["auth"]["openid"]["providers"]["oidc"]["name"],
        "Corporate SSO"
    );
    assert_eq!(mgmt["http"]["auth"]["apikey"], true);

    let (authorize, login_cookie) = start_login(&b, "/home");
    for p in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "client_id=berth",
    ] {
        assert!(authorize.contains(p), "{p} missing from {authorize}");
    }
    let callback = provider.log_in(&authorize, "alice");
    assert!(
        callback.starts_with(&b.url("/zot/auth/callback/oidc?")),
        "{callback}"
    );
    let c = client();
    let r = c
        .get(&callback)
        .header("cookie", &login_cookie)
        .send()
        .expect("callback");
    assert_eq!(r.status(), 302, "{:?}", r.text());
    assert_eq!(location(&r), "/home");
    let (cookies, _) = set_cookies(&r);
    assert_eq!(cookies.get("user").map(String::as_str), Some("alice"));
    let session = session_of(&r);

    // The session is alice, with the provider's groups: dev, not ops.
    let get = |path: &str, cookie: &str| {
        c.get(b.url(path))
            .header("cookie", cookie)
            .header(UI, "zot-ui")
            .send()
            .expect("get")
            .status()
    };
    assert_eq!(get("/v2/dev/app/tags/list", &session), 200);
    assert_eq!(get("/v2/ops/app/tags/list", &session), 403);
    // Without zot's UI header the cookie authenticates nothing.
    let r = c
        .get(b.url("/v2/dev/app/tags/list"))
        .header("cookie", &session)
        .send()
        .expect("get");
    assert_eq!(r.status(), 401);

    // The same callback again: its state is spent.
    let r = c
        .get(&callback)
        .header("cookie", &login_cookie)
        .send()
        .expect("replay");
    assert_eq!(r.status(), 401);
    assert!(
        !set_cookies(&r).0.contains_key("session"),
        "a replay starts no session"
    );

    // A session makes API keys (on whenever OpenID is); the key keeps the
    // user's groups and works with any client.
    let r = c
        .post(b.url("/zot/auth/apikey"))
        .header("cookie", &session)
        .header(UI, "zot-ui")
        .header("origin", b.url(""))
        .json(&json!({"label": "ci"}))
        .send()
        .expect("key");
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let key = r.json::<Value>().expect("json")["apiKey"]
        .as_str()
        .expect("key")
        .to_string();
    let with_key = |path: &str| {
        c.get(b.url(path))
            .basic_auth("alice", Some(&key))
            .send()
            .expect("get")
            .status()
    };
    assert_eq!(with_key("/v2/dev/app/tags/list"), 200);
    assert_eq!(with_key("/v2/ops/app/tags/list"), 403);
    // A change from another site's page is refused.
    let r = c
        .post(b.url("/zot/auth/apikey"))
        .header("cookie", &session)
        .header(UI, "zot-ui")
        .header("origin", "https://evil.example.test")
        .json(&json!({"label": "forged"}))
        .send()
        .expect("forged");
    assert_eq!(r.status(), 403);

    // Logging out ends the session and points to the provider's logout.
    let r = c
        .post(b.url("/zot/auth/logout"))
        .header("cookie", &session)
        .header(UI, "zot-ui")
        .send()
        .expect("logout");
    assert_eq!(r.status(), 200);
    let (cleared, _) = set_cookies(&r);
    assert_eq!(cleared.get("session").map(String::as_str), Some(""));
    let body: Value = r.json().expect("json");
    let end = body["endSessionUrl"].as_str().expect("endSessionUrl");
    assert!(
        end.starts_with(&format!("{}/session/end?", provider.url)),
        "{end}"
    );
    assert!(
        end.contains("client_id=berth") && end.contains("post_logout_redirect_uri="),
        "{end}"
    );
    assert_eq!(
        get("/v2/dev/app/tags/list", &session),
        401,
        "the session ended"
    );

    // bob: ops, not dev.
    let (authorize, login_cookie) = start_login(&b, "/");
    let r = c
        .get(provider.log_in(&authorize, "bob"))
        .header("cookie", &login_cookie)
        .send()
        .expect("callback");
    assert_eq!(r.status(), 302);
    let bob = session_of(&r);
    assert_eq!(get("/v2/ops/app/tags/list", &bob), 200);
    assert_eq!(get("/v2/dev/app/tags/list", &bob), 403);
}

/// The test issuer's key, and a Berth whose `oidc` provider is it.
fn misbehaving_provider(tmp: &std::path::Path) -> (Issuer, Berth) {
    let issuer = Issuer::start(
        vec![SigningKey::new("k1", jsonwebtoken::Algorithm::RS256)],
        &["RS256"],
    );
    let port = free_port();
    let mut http = oidc_config(
        &issuer.url,
        port,
        json!({"claimMapping": {"username": "email"}}),
    );
    http["auth"]["failDelay"] = json!(0);
    let b = Berth::start_full(&tmp.join("root"), json!({}), http, &[]);
    (issuer, b)
}

/// The query parameter `name` of `url`.
fn param(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

#[test]
fn bad_logins_are_refused_logged_and_grant_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (issuer, b) = misbehaving_provider(tmp.path());
    let c = client();
    let key = issuer.key("k1");
    let stranger = SigningKey::new("k1", jsonwebtoken::Algorithm::RS256);
    let good = |nonce: &str| {
        issuer.claims(
            "u1",
            json!("berth"),
            json!({"nonce": nonce, "email": "eve@example.test"}),
        )
    };
    // Each case: how the ID token is made from the login's nonce.
    type Make<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let cases: Vec<(&str, Make)> = vec![
        (
            "another audience",
            Box::new(|n| {
                let mut c = good(n);
                c["aud"] = json!("other");
                key.sign(&c)
            }),
        ),
        ("an unknown key", Box::new(|n| stranger.sign(&good(n)))),
        (
            "expired",
            Box::new(|n| {
                let mut c = good(n);
                c["exp"] = json!(now() - 60);
                key.sign(&c)
            }),
        ),
        (
            "another nonce",
            Box::new(|_| key.sign(&good("not-the-nonce"))),
        ),
        (
            "another issuer",
            Box::new(|n| {
                let mut c = good(n);
                c["iss"] = json!("https://elsewhere.example.test");
                key.sign(&c)
            }),
        ),
        (
            "no user name",
            Box::new(|n| {
                let mut c = good(n);
                c.as_object_mut().expect("obj").remove("email");
                key.sign(&c)
            }),
        ),
    ];
    for (what, make) in &cases {
        let (authorize, login_cookie) = start_login(&b, "/");
        let (state, nonce) = (param(&authorize, "state"), param(&authorize, "nonce"));
        issuer.answer_tokens(&make(&nonce));
        let r = c
            .get(with_query(
                b.url("/zot/auth/callback/oidc"),
                &[("code", "c0de"), ("state", &state)],
            ))
            .header("cookie", &login_cookie)
            .send()
            .expect("callback");
        assert_eq!(r.status(), 401, "{what}: {:?}", r.text());
        assert!(
            set_cookies(&r)
                .0
                .get("session")
                .is_none_or(String::is_empty),
            "{what}: a session"
        );
    }

    // Starting logins and failing them wrote nothing on the server.
    let logins = || {
        std::fs::read_dir(tmp.path().join("root/_sessions"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("login_"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(
        logins(),
        0,
        "a login in progress is kept in its cookie only"
    );

    // A good token logs in; the cookie it gives is the only one that works.
    let (authorize, login_cookie) = start_login(&b, "http://ui.example.test:3000/home");
    let (state, nonce) = (param(&authorize, "state"), param(&authorize, "nonce"));
    issuer.answer_tokens(&key.sign(&good(&nonce)));
    // A state this browser did not start (no login cookie): refused (and
    // left for the browser that did).
    let r = c
        .get(with_query(
            b.url("/zot/auth/callback/oidc"),
            &[("code", "c0de"), ("state", &state)],
        ))
        .send()
        .expect("callback");
    assert_eq!(r.status(), 401);
    let r = c
        .get(with_query(
            b.url("/zot/auth/callback/oidc"),
            &[("code", "c0de"), ("state", &state)],
        ))
        .header("cookie", &login_cookie)
        .send()
        .expect("callback");
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "http://ui.example.test:3000/home",
        "an allowed origin"
    );
    let session = session_of(&r);
    assert_eq!(logins(), 1, "the state is written down as spent");
    // The same callback again, though the provider would answer again:
    // its state is spent.
    let r = c
        .get(with_query(
            b.url("/zot/auth/callback/oidc"),
            &[("code", "c0de"), ("state", &state)],
        ))
        .header("cookie", &login_cookie)
        .send()
        .expect("replay");
    assert_eq!(r.status(), 401);
    let ping = |cookie: &str| {
        c.get(b.url("/v2/"))
            .header("cookie", cookie)
            .header(UI, "zot-ui")
            .send()
            .expect("ping")
    };
    assert_eq!(ping(&session).status(), 200);
    // A forged or altered cookie: refused, and cleared.
    let value = session.trim_start_matches("session=");
    let mut altered = value.as_bytes().to_vec();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    for forged in [
        format!("session={}", String::from_utf8(altered).expect("utf8")),
        "session=made-up".to_string(),
        format!("session={}", value.split_at(value.len() / 2).0),
    ] {
        let r = ping(&forged);
        assert_eq!(r.status(), 401, "{forged}");
        assert_eq!(
            set_cookies(&r).0.get("session").map(String::as_str),
            Some(""),
            "cleared"
        );
    }

    // callback_ui: never an open redirect.
    for bad in [
        "https://evil.example.test/",
        "//evil.example.test/x",
        "/\\evil.example.test",
        "javascript:alert(1)",
        "http://ui.example.test:3001/",
    ] {
        let r = c
            .get(with_query(
                b.url("/zot/auth/login"),
                &[("provider", "oidc"), ("callback_ui", bad)],
            ))
            .send()
            .expect("login");
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none(), "{bad}");
    }
    // An unknown provider.
    let r = c
        .get(with_query(
            b.url("/zot/auth/login"),
            &[("provider", "github")],
        ))
        .send()
        .expect("login");
    assert_eq!(r.status(), 400);

    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = b.log.lock().expect("log").join("\n");
    for expect in [
        "openid login refused",
        "session cookie refused",
        "callback_ui",
    ] {
        assert!(log.contains(expect), "{expect} not logged:\n{log}");
    }
}

#[test]
fn zot_ui_password_logins_get_a_session_that_survives_a_restart_with_the_same_keys() {
    let tmp = tempfile::tempdir().expect("tmp");
    let keys = tmp.path().join("keys.json");
    std::fs::write(
        &keys,
        json!({"hashKey": "0123456789abcdef0123456789abcdef"}).to_string(),
    )
    .expect("keys");
    let root = tmp.path().join("root");
    let http = |keys: &std::path::Path| {
        json!({"auth": {"htpasswd": {"path": htpasswd_file(tmp.path(), &[("ann", "pw")])},
                        "sessionKeysFile": keys, "failDelay": 0}})
    };
    let b = Berth::start_full(&root, json!({}), http(&keys), &[]);
    let c = client();
    // zot's web UI logs in with Basic and its header: a session starts.
    let r = c
        .get(b.url("/v2/"))
        .basic_auth("ann", Some("pw"))
        .header(UI, "zot-ui")
        .send()
        .expect("login");
    assert_eq!(r.status(), 200);
    let session = session_of(&r);
    // Without the header, no session.
    let r = c
        .get(b.url("/v2/"))
        .basic_auth("ann", Some("pw"))
        .send()
        .expect("plain");
    assert!(set_cookies(&r).0.is_empty());
    let ping = |b: &Berth| {
        c.get(b.url("/v2/"))
            .header("cookie", &session)
            .header(UI, "zot-ui")
            .send()
            .expect("ping")
            .status()
    };
    assert_eq!(ping(&b), 200);
    // Sessions are files under the main root, named by no cookie.
    let files: Vec<String> = std::fs::read_dir(root.join("_sessions"))
        .expect("_sessions")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(!files[0].contains(session.trim_start_matches("session=")));
    b.terminate();

    let b = Berth::start_full(&root, json!({}), http(&keys), &[]);
    assert_eq!(ping(&b), 200, "the same keys: the session lives on");
    b.terminate();

    // Rotated keys: every cookie is refused.
    std::fs::write(
        &keys,
        json!({"hashKey": "fedcba9876543210fedcba9876543210"}).to_string(),
    )
    .expect("keys");
    let b = Berth::start_full(&root, json!({}), http(&keys), &[]);
    assert_eq!(ping(&b), 401, "rotated keys void the session");
    // Without TLS a session cookie is not `Secure`, unless `secureSession`
    // says a proxy in front speaks HTTPS.
    let login = |b: &Berth| {
        let r = c
            .get(b.url("/v2/"))
            .basic_auth("ann", Some("pw"))
            .header(UI, "zot-ui")
            .send()
            .expect("login");
        set_cookies(&r)
            .1
            .into_iter()
            .find(|l| l.starts_with("session="))
            .expect("session cookie")
    };
    assert!(!login(&b).contains("Secure"));
    b.terminate();
    let mut secure = http(&keys);
    secure["auth"]["secureSession"] = json!(true);
    let b = Berth::start_full(&root, json!({}), secure, &[]);
    assert!(login(&b).contains("Secure"));
}

#[cfg(all(feature = "s3", feature = "redis"))]
#[test]
fn instances_sharing_a_redis_session_driver_share_sessions_and_logouts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let redis = crate::redis_server::RedisServer::start();
    let htpasswd = htpasswd_file(tmp.path(), &[("ann", "pw")]);
    // zot's example: the sessions in Redis, no sessionKeysFile (the
    // cookie key is made once and kept there).
    let http = json!({"auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0,
                               "sessionDriver": {"name": "redis", "url": redis.url(), "keyprefix": "zotsession"}}});
    let a = Berth::start_full(&tmp.path().join("a"), json!({}), http.clone(), &[]);
    let b = Berth::start_full(&tmp.path().join("b"), json!({}), http, &[]);
    let c = client();
    let r = c
        .get(a.url("/v2/"))
        .basic_auth("ann", Some("pw"))
        .header(UI, "zot-ui")
        .send()
        .expect("login");
    let session = session_of(&r);
    let ping = |at: &Berth| {
        c.get(at.url("/v2/"))
            .header("cookie", &session)
            .header(UI, "zot-ui")
            .send()
            .expect("ping")
            .status()
    };
    assert_eq!(ping(&a), 200);
    assert_eq!(ping(&b), 200, "the other instance knows the session");
    assert!(!tmp.path().join("a/_sessions").exists(), "nothing on disk");
    let r = c
        .post(b.url("/zot/auth/logout"))
        .header("cookie", &session)
        .header(UI, "zot-ui")
        .send()
        .expect("logout");
    assert_eq!(r.status(), 200);
    assert_eq!(ping(&a), 401, "a logout at one instance ends it at all");
}

/// GitHub's login (plain OAuth2 and its API), against a stand-in for
/// GitHub Enterprise's endpoints: no GitHub can run here.
#[test]
fn github_login_names_the_primary_email_and_groups_orgs_and_teams() {
    use crate::fake_http::FakeHttp;
    let github = FakeHttp::start(|req| {
        let authorized = req.header("authorization") == Some("Bearer gho_token");
        match (
            req.method.as_str(),
            req.target.split('?').next().unwrap_or(""),
        ) {
            ("POST", "/login/oauth/access_token") => {
                let form = req.form();
                let has =
                    |k: &str, v: &str| form.iter().any(|(a, b)| a == k && (v.is_empty() || b == v));
                if has("code", "good-code") && has("code_verifier", "") {
                    (200, "application/json", json!({"access_token": "gho_token", "token_type": "bearer", "scope": "read:org,user:email"}).to_string())
                } else {
                    (
                        400,
                        "application/json",
                        json!({"error": "bad_verification_code"}).to_string(),
                    )
                }
            }
            ("GET", "/api/v3/user/emails") if authorized => (
                200,
                "application/json",
                json!([
                    {"email": "old@example.test", "primary": false, "verified": true},
                    {"email": "gh@example.test", "primary": true, "verified": true},
                ])
                .to_string(),
            ),
            ("GET", "/api/v3/user/orgs") if authorized => (
                200,
                "application/json",
                json!([{"login": "acme"}]).to_string(),
            ),
            ("GET", "/api/v3/user/teams") if authorized => (
                200,
                "application/json",
                json!([{"slug": "devs", "organization": {"login": "acme"}}]).to_string(),
            ),
            _ => (401, "application/json", "{}".to_string()),
        }
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let creds = tmp.path().join("github.json");
    std::fs::write(
        &creds,
        json!({"clientid": "gh-client", "clientsecret": "gh-secret"}).to_string(),
    )
    .expect("creds");
    let port = free_port();
    let http = json!({"port": port, "externalUrl": format!("http://127.0.0.1:{port}"),
        "auth": {"failDelay": 0, "openid": {"providers": {"github": {
            "credentialsFile": creds, "keypath": "", "scopes": ["read:org", "user:email"],
            "authurl": format!("{}/login/oauth/authorize", github.url()),
            "tokenurl": format!("{}/login/oauth/access_token", github.url())}}}},
        "accessControl": {"repositories": {"acme/**": {"policies": [{"groups": ["acme/devs"], "actions": ["read"]}]}}}});
    let b = Berth::start_full(&tmp.path().join("root"), json!({}), http, &[]);
    let c = client();
    let login = |code: &str| {
        let r = c
            .get(with_query(
                b.url("/zot/auth/login"),
                &[("provider", "github"), ("callback_ui", "/")],
            ))
            .send()
            .expect("login");
        assert_eq!(r.status(), 302);
        let to = location(&r);
        assert!(
            to.starts_with(&format!("{}/login/oauth/authorize?", github.url())),
            "{to}"
        );
        assert!(
            to.contains("client_id=gh-client") && to.contains("code_challenge="),
            "{to}"
        );
        let login_cookie = format!("berth_login={}", set_cookies(&r).0["berth_login"]);
        c.get(with_query(
            b.url("/zot/auth/callback/github"),
            &[("code", code), ("state", &param(&to, "state"))],
        ))
        .header("cookie", login_cookie)
        .send()
        .expect("callback")
    };
    let r = login("bad-code");
    assert_eq!(r.status(), 401);
    let r = login("good-code");
    assert_eq!(r.status(), 302);
    assert_eq!(
        set_cookies(&r).0.get("user").map(String::as_str),
        Some("gh@example.test")
    );
    let session = session_of(&r);
    let get = |path: &str| {
        c.get(b.url(path))
            .header("cookie", &session)
            .header(UI, "zot-ui")
            .send()
            .expect("get")
            .status()
    };
    assert_eq!(
        get("/v2/acme/app/tags/list"),
        404,
        "read allowed (nothing there)"
    );
    assert_eq!(get("/v2/other/app/tags/list"), 403);
    // A session of GitHub has no end-session endpoint to go to.
    let r = c
        .post(b.url("/zot/auth/logout"))
        .header("cookie", &session)
        .header(UI, "zot-ui")
        .send()
        .expect("logout");
    assert_eq!(r.json::<Value>().expect("json"), json!({}));
}

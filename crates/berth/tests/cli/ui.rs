//! The web UI over real HTTP (`extensions.ui`): anonymous browsing of an
//! open registry, the same access rules as pulls on every page, forms
//! refused without their session's token or from another site, the first
//! page's weight, and text from images escaped.

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::search::{search_and_ui, start};
use crate::support::*;

/// Pushes an image of an empty config and no layer with `annotations`
/// on its manifest as `repo:tag`, with Basic `creds` when given.
pub fn push_annotated(
    b: &Berth,
    repo: &str,
    tag: &str,
    annotations: Value,
    creds: Option<(&str, &str)>,
) {
    let c = Client::new();
    let with = |r: reqwest::blocking::RequestBuilder| match creds {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    };
    let config = b"{}".to_vec();
    let cd = berth_oci::Digest::sha256(&config);
    let r = with(c.post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={cd}"))))
        .body(config)
        .send()
        .expect("blob");
    assert_eq!(r.status(), 201);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": 2},
        "layers": [], "annotations": annotations});
    let r = with(c.put(b.url(&format!("/v2/{repo}/manifests/{tag}"))))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .expect("manifest");
    assert_eq!(r.status(), 201, "push {repo}:{tag}");
}

/// `GET path` (with Basic `creds`): status and body.
fn page(c: &Client, b: &Berth, path: &str, creds: Option<(&str, &str)>) -> (u16, String) {
    let mut r = c.get(b.url(path));
    if let Some((u, p)) = creds {
        r = r.basic_auth(u, Some(p));
    }
    let r = r.send().expect("get");
    let status = r.status().as_u16();
    (status, r.text().expect("body"))
}

/// The `href`/`src` of the page's stylesheet and script.
fn asset_paths(html: &str) -> Vec<String> {
    html.split("/ui/assets/")
        .skip(1)
        .map(|rest| format!("/ui/assets/{}", rest.split('"').next().expect("quote")))
        .collect()
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[test]
fn anonymous_browsing_of_an_open_registry() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    push_annotated(
        &b,
        "team/alpha",
        "v1",
        json!({"org.opencontainers.image.description": "the alpha app"}),
        None,
    );
    push_annotated(&b, "team/alpha", "v2", json!({}), None);
    push_annotated(&b, "beta", "latest", json!({}), None);
    let c = client();

    let home = c.get(b.url("/")).send().expect("home");
    assert_eq!(home.status(), 200);
    assert!(header(&home, "content-type").starts_with("text/html"));
    assert_eq!(header(&home, "cache-control"), "no-store");
    assert!(header(&home, "content-security-policy").contains("default-src 'none'"));
    let html = home.text().expect("html");
    for want in [
        "team/alpha",
        "beta",
        "the alpha app",
        "Recently updated",
        "Most downloaded",
    ] {
        assert!(html.contains(want), "home lacks {want}:\n{html}");
    }
    // Anonymous on an open registry: no login offered, no stars.
    assert!(!html.contains("Log in"), "{html}");
    assert!(!html.contains("Starred"), "{html}");

    // The first page's weight, everything it loads included.
    let mut total = html.len();
    let assets = asset_paths(&html);
    assert_eq!(assets.len(), 2, "{assets:?}");
    for a in &assets {
        let r = c.get(b.url(a)).send().expect("asset");
        assert_eq!(r.status(), 200, "{a}");
        assert!(header(&r, "cache-control").contains("immutable"), "{a}");
        total += r.bytes().expect("bytes").len();
    }
    assert!(total < 100_000, "the first page weighs {total} bytes");
    assert_eq!(
        c.get(b.url("/ui/assets/app-000.css"))
            .send()
            .expect("asset")
            .status(),
        404
    );

    let (s, list) = page(&c, &b, "/ui/repos", None);
    assert_eq!(s, 200);
    assert!(
        list.contains("team/alpha") && list.contains("beta"),
        "{list}"
    );
    let (_, found) = page(&c, &b, "/ui/repos?q=alpha", None);
    assert!(
        found.contains("/ui/repo/team/alpha") && !found.contains("/ui/repo/beta"),
        "{found}"
    );
    let (_, sorted) = page(&c, &b, "/ui/repos?sort=name-desc", None);
    let (a, z) = (
        sorted.find("/ui/repo/team/alpha"),
        sorted.find("/ui/repo/beta"),
    );
    assert!(
        a.is_some() && z.is_some() && a < z,
        "Z–A puts team/alpha before beta"
    );
    let suggest: Value = c
        .get(b.url("/ui/repos?suggest=1&q=alp"))
        .send()
        .expect("suggest")
        .json()
        .expect("json");
    assert_eq!(suggest, json!(["team/alpha"]));

    let (s, repo) = page(&c, &b, "/ui/repo/team/alpha", None);
    assert_eq!(s, 200, "{repo}");
    assert!(
        repo.contains(&format!("docker pull {}/team/alpha:", b.addr)),
        "{repo}"
    );
    assert!(
        repo.contains("/ui/image/team/alpha:v1") && repo.contains("/ui/image/team/alpha:v2"),
        "{repo}"
    );
    let (s, image) = page(&c, &b, "/ui/image/team/alpha:v1", None);
    assert_eq!(s, 200, "{image}");
    assert!(
        image.contains(&format!("docker pull {}/team/alpha:v1", b.addr)),
        "{image}"
    );
    assert!(
        image.contains("the alpha app") && image.contains("Platforms"),
        "{image}"
    );

    assert_eq!(page(&c, &b, "/ui/repo/nothing/here", None).0, 404);
    assert_eq!(page(&c, &b, "/ui/image/team/alpha:v9", None).0, 404);
    assert_eq!(page(&c, &b, "/ui/no-such-page", None).0, 404);
    // The API is untouched beside it.
    assert_eq!(page(&c, &b, "/v2/", None).0, 200);
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default()
}

/// A registry where `secret/**` is alice's alone and the rest open to
/// everyone: bob and anonymous callers never see `secret/app`.
fn guarded(tmp: &std::path::Path) -> Berth {
    let htpasswd = htpasswd_file(tmp, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    start(
        tmp,
        json!({"auth": {"htpasswd": {"path": htpasswd}, "apikey": true},
               "accessControl": {"repositories": {
                   "secret/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]}]},
                   "**": {"anonymousPolicy": ["read"],
                          "policies": [{"users": ["alice", "bob"], "actions": ["read", "create"]}]}}}}),
        search_and_ui(),
    )
}

#[test]
fn a_denied_repository_is_on_no_page() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = guarded(tmp.path());
    let alice = Some(("alice", "alice-pw"));
    push_annotated(&b, "secret/app", "v1", json!({}), alice);
    push_annotated(&b, "public/app", "v1", json!({}), alice);
    let c = client();
    for (who, creds) in [("anonymous", None), ("bob", Some(("bob", "bob-pw")))] {
        for path in [
            "/",
            "/ui/repos",
            "/ui/repos?q=secret",
            "/ui/repos?q=app&sort=name",
        ] {
            let (s, html) = page(&c, &b, path, creds);
            assert_eq!(s, 200, "{who} {path}");
            assert!(
                html.contains("public/app") || path.contains("secret"),
                "{who} {path}: {html}"
            );
            assert!(
                !html.contains("secret/app"),
                "{who} sees secret/app on {path}"
            );
        }
        let suggest = page(&c, &b, "/ui/repos?suggest=1&q=secret", creds).1;
        assert_eq!(suggest, "[]", "{who}");
        // The same page as for a repository that is not there (but for
        // the path, which the login link carries back).
        for (path, absent) in [
            ("/ui/repo/secret/app", "/ui/repo/nothere/app"),
            ("/ui/image/secret/app:v1", "/ui/image/nothere/app:v1"),
        ] {
            let (s, html) = page(&c, &b, path, creds);
            assert_eq!(s, 404, "{who} {path}");
            let (_, other) = page(&c, &b, absent, creds);
            assert_eq!(
                html.replace("secret", "X"),
                other.replace("nothere", "X"),
                "{who} {path}"
            );
        }
        // Nor can it be starred (the same page as a repository not there).
        let mut r = c
            .post(b.url("/ui/prefs"))
            .form(&[("repo", "secret/app"), ("action", "star")]);
        if let Some((u, p)) = creds {
            r = r.basic_auth(u, Some(p));
        }
        let s = r.send().expect("post").status().as_u16();
        assert!(s == 404 || (creds.is_none() && s == 303), "{who}: {s}");
    }
    // alice sees it everywhere.
    let alice_home = page(&c, &b, "/", alice).1;
    assert!(alice_home.contains("secret/app"), "{alice_home}");
    assert_eq!(page(&c, &b, "/ui/repo/secret/app", alice).0, 200);
    assert_eq!(page(&c, &b, "/ui/image/secret/app:v1", alice).0, 200);
    // Bad credentials on a page are an anonymous caller, not a challenge.
    let (s, html) = page(&c, &b, "/", Some(("bob", "wrong")));
    assert_eq!(s, 200);
    assert!(
        html.contains("Log in") && !html.contains("secret/app"),
        "{html}"
    );
    // A page that needs a user sends an anonymous one to the login page.
    let r = c.get(b.url("/ui/apikeys")).send().expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, "location"), "/ui/login?next=/ui/apikeys");
}

#[test]
fn forms_from_another_site_or_without_the_token_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = guarded(tmp.path());
    push_annotated(
        &b,
        "public/app",
        "v1",
        json!({}),
        Some(("alice", "alice-pw")),
    );
    let c = client();
    let star = |origin: Option<&str>| {
        let mut r = c
            .post(b.url("/ui/prefs"))
            .basic_auth("bob", Some("bob-pw"))
            .form(&[("repo", "public/app"), ("action", "star")]);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().expect("post").status().as_u16()
    };
    assert_eq!(star(Some("https://evil.example")), 403);
    assert_eq!(star(Some(&format!("http://{}", b.addr))), 303);
    // Logged in with the form, the session's token is needed.
    let Some(cookies) = login(&c, &b, "bob", "bob-pw") else {
        panic!("the login form gave no session cookie (sessions are main's: merge them)");
    };
    let html = page_with(&c, &b, "/ui/repo/public/app", &cookies).1;
    let csrf = field(&html, "csrf").expect("a csrf field");
    assert!(!csrf.is_empty());
    let post = |token: &str| {
        c.post(b.url("/ui/prefs"))
            .header("cookie", &cookies)
            .form(&[
                ("repo", "public/app"),
                ("action", "bookmark"),
                ("csrf", token),
            ])
            .send()
            .expect("post")
            .status()
            .as_u16()
    };
    assert_eq!(post("forged"), 403);
    assert_eq!(post(""), 403);
    assert_eq!(post(&csrf), 303);
    let home = page_with(&c, &b, "/", &cookies).1;
    assert!(
        home.contains("Bookmarked") && home.contains("public/app"),
        "{home}"
    );
}

/// Logs in through the form; the `Cookie` header to send after.
pub fn login(c: &Client, b: &Berth, user: &str, password: &str) -> Option<String> {
    let r = c
        .post(b.url("/ui/login"))
        .form(&[("username", user), ("password", password), ("next", "/")])
        .send()
        .expect("login");
    if r.status() != 303 {
        return None;
    }
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_string)
        .collect();
    (!cookies.is_empty()).then(|| cookies.join("; "))
}

fn page_with(c: &Client, b: &Berth, path: &str, cookies: &str) -> (u16, String) {
    let r = c
        .get(b.url(path))
        .header("cookie", cookies)
        .send()
        .expect("get");
    (r.status().as_u16(), r.text().expect("body"))
}

/// The value of the first hidden field `name` of a page.
fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    rest.split('"').next().map(str::to_string)
}

#[test]
fn text_from_images_is_escaped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    let hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>\"' &";
    push_annotated(
        &b,
        "app",
        "v1",
        json!({"org.opencontainers.image.description": hostile,
               "org.opencontainers.image.title": hostile,
               "org.opencontainers.image.vendor": "\"><svg onload=alert(1)>"}),
        None,
    );
    let c = client();
    for path in ["/", "/ui/repos", "/ui/repo/app", "/ui/image/app:v1"] {
        let (s, html) = page(&c, &b, path, None);
        assert_eq!(s, 200, "{path}");
        assert!(
            html.contains("&lt;script&gt;alert"),
            "{path}: not shown escaped:\n{html}"
        );
        for raw in ["<script>alert", "<img src=x", "<svg onload"] {
            assert!(!html.contains(raw), "{path}: {raw} unescaped");
        }
    }
    // What a visitor types is escaped too.
    let (_, html) = page(
        &c,
        &b,
        "/ui/repos?q=%3Cscript%3Ealert(2)%3C/script%3E",
        None,
    );
    assert!(
        !html.contains("<script>alert(2)") && html.contains("&lt;script&gt;alert(2)"),
        "{html}"
    );
}

#[test]
fn the_ui_is_off_without_extensions_ui() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), json!({"search": {"enable": true}}));
    let c = client();
    assert_eq!(page(&c, &b, "/", None).0, 404);
    assert_eq!(page(&c, &b, "/ui/repos", None).0, 404);
}

/// An image's page shows how its config runs it (command, environment,
/// ports, labels) and the whole config, escaped.
#[test]
fn the_image_page_shows_the_config_escaped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    let c = Client::new();
    let config = json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/serve", "--port", "80"], "WorkingDir": "/srv",
                   "Env": ["PATH=/usr/bin", "GREETING=<script>alert(1)</script>"],
                   "ExposedPorts": {"80/tcp": {}}, "Labels": {"org.example.team": "payments"}},
        "rootfs": {"type": "layers", "diff_ids": []}})
    .to_string();
    let cd = berth_oci::Digest::sha256(config.as_bytes());
    let r = c
        .post(b.url(&format!("/v2/shop/api/blobs/uploads/?digest={cd}")))
        .body(config.clone())
        .send()
        .expect("blob");
    assert_eq!(r.status(), 201);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": []});
    let r = c
        .put(b.url("/v2/shop/api/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .expect("manifest");
    assert_eq!(r.status(), 201);
    let (s, image) = page(&c, &b, "/ui/image/shop/api:v1", None);
    assert_eq!(s, 200, "{image}");
    for want in [
        "/bin/serve --port 80",
        "/srv",
        "80/tcp",
        "org.example.team",
        "payments",
        "GREETING=&lt;script&gt;alert(1)&lt;/script&gt;",
    ] {
        assert!(image.contains(want), "{want} missing:\n{image}");
    }
    assert!(!image.contains("<script>alert"), "unescaped:\n{image}");
}

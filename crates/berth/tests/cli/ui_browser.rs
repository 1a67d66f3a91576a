//! The web UI in a real browser: Debian's headless Chromium driven by
//! playwright-core (`tests/browser/flows.mjs`, npm, pinned; installed by
//! the README's test command). Each test starts Berth, pushes images and
//! runs flows; screenshots go to `target/browser-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::search::{search_and_ui, start};
use crate::support::*;
use crate::ui::push_annotated;

/// Where the flows' screenshots go.
fn artifacts() -> PathBuf {
    workspace().join("target/browser-artifacts")
}

/// Runs `flow` against `b` with `args`; answers its JSON result.
fn flow(b: &Berth, flow: &str, args: &[&str]) -> Value {
    let dir = workspace().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules: the README's test command installs playwright-core (npm ci)",
        dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is required (the README's test command installs it)"
    );
    let out = Command::new("node")
        .arg(dir.join("flows.mjs"))
        .arg(flow)
        .arg(b.url(""))
        .arg(artifacts())
        .args(args)
        .output()
        .expect("node is required (the README's test command installs nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow {flow} failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("flow {flow}: no JSON result ({e}): {stdout}"))
}

/// Pushes a two-platform image with layers (an index) as `repo:v1`.
fn push_layers(tmp: &Path, b: &Berth, repo: &str, creds: Option<&str>) {
    let layout = tmp.join(format!("layout-{}", repo.replace('/', "-")));
    write_layout(&layout, "v1", &["amd64", "arm64"]);
    let out = skopeo_push(tmp, &layout, &format!("{}/{repo}:v1", b.addr), creds);
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn browser_anonymous_browsing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    push_layers(tmp.path(), &b, "team/web", None);
    push_annotated(
        &b,
        "team/api",
        "v1",
        json!({"org.opencontainers.image.description": "the API"}),
        None,
    );
    let r = flow(&b, "browse", &["team/web", "v1"]);
    assert_eq!(r["widths"], json!([390, 1440]), "{r}");
}

/// `skopeo inspect` of `image` with `creds`: whether it was let through.
fn skopeo_reads(b: &Berth, image: &str, creds: &str) -> bool {
    Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds", creds])
        .arg(format!("docker://{}/{image}", b.addr))
        .output()
        .expect("skopeo is required (the README's test command installs it)")
        .status
        .success()
}

#[test]
fn browser_login_search_star_api_keys_logout_and_denial() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = htpasswd_file(tmp.path(), &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let b = start(
        tmp.path(),
        json!({"auth": {"htpasswd": {"path": htpasswd}, "apikey": true},
               "accessControl": {"repositories": {
                   "secret/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]}]},
                   "**": {"policies": [{"users": ["alice", "bob"], "actions": ["read", "create"]}]}}}}),
        search_and_ui(),
    );
    push_layers(tmp.path(), &b, "shop/web", Some("alice:alice-pw"));
    push_annotated(
        &b,
        "secret/app",
        "v1",
        json!({}),
        Some(("alice", "alice-pw")),
    );

    flow(&b, "login", &["bob", "bob-pw"]);
    flow(&b, "search-star", &["bob", "bob-pw", "shop/web", "v1"]);

    let made = flow(&b, "apikey-create", &["bob", "bob-pw", "ci"]);
    let key = made["key"].as_str().expect("key").to_string();
    let creds = format!("bob:{key}");
    assert!(
        skopeo_reads(&b, "shop/web:v1", &creds),
        "the new key does not pull"
    );
    flow(&b, "apikey-revoke", &["bob", "bob-pw", "ci"]);
    assert!(
        !skopeo_reads(&b, "shop/web:v1", &creds),
        "a revoked key still pulls"
    );

    flow(&b, "logout", &["bob", "bob-pw"]);
    flow(&b, "denied", &["bob", "bob-pw", "secret/app", "shop/web"]);
}

/// The whole OpenID login in the browser, through a real provider's own
/// pages (oidc-provider), its groups judged by the access rules; the API
/// key the session makes works with skopeo as the same user.
#[cfg(feature = "openid")]
#[test]
fn browser_openid_login_groups_and_an_api_key() {
    use crate::openid_login::LoginProvider;
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let provider = LoginProvider::start(&format!("http://127.0.0.1:{port}/zot/auth/callback/oidc"));
    let htpasswd = htpasswd_file(tmp.path(), &[("admin", "admin-pw")]);
    let b = start(
        tmp.path(),
        json!({"port": port, "externalUrl": format!("http://127.0.0.1:{port}"),
               "auth": {"htpasswd": {"path": htpasswd},
                        "openid": {"providers": {"oidc": {
                            "name": "Corporate SSO", "issuer": provider.url,
                            "clientid": "berth", "clientsecret": "berth-secret",
                            "scopes": ["openid", "profile", "email", "groups"],
                            "claimMapping": {"username": "preferred_username"}}}}},
               "accessControl": {"repositories": {
                   "dev/**": {"policies": [{"groups": ["dev"], "actions": ["read"]}]},
                   "ops/**": {"policies": [{"groups": ["ops"], "actions": ["read"]}]}},
                   "adminPolicy": {"users": ["admin"], "actions": ["read", "create", "update", "delete"]}}}),
        search_and_ui(),
    );
    push_annotated(&b, "dev/app", "v1", json!({}), Some(("admin", "admin-pw")));
    push_annotated(&b, "ops/tool", "v1", json!({}), Some(("admin", "admin-pw")));
    let r = flow(
        &b,
        "openid",
        &["Corporate SSO", "alice", "dev/app", "ops/tool"],
    );
    let key = r["key"].as_str().expect("key");
    let creds = format!("alice:{key}");
    assert!(
        skopeo_reads(&b, "dev/app:v1", &creds),
        "the SSO user's key does not pull what their groups may"
    );
    assert!(
        !skopeo_reads(&b, "ops/tool:v1", &creds),
        "the SSO user's key pulls what their groups may not"
    );
}

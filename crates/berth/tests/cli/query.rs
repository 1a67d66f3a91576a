//! The query commands (`berth remote`, `images`, `image`, `repos`,
//! `search`, `referrers`, `status`, `cve`) against a real Berth with
//! search, htpasswd and access rules: profiles and logins kept where a
//! user's would be, every output format parsed and checked against what
//! was pushed, and each failure one line with a non-zero exit.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::search::{alice_and_bob, search_and_ui, start};
use crate::search_data::DataSet;
use crate::support::*;

/// `berth ARGS` with its own home, config directory and auth file.
fn run(home: &Path, args: &[&str]) -> Output {
    berth()
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .output()
        .expect("berth runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_of(home: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(&run(home, &all))).expect("JSON output")
}

/// One line on standard error, and exit 1.
fn refused(out: &Output, says: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(says), "{err}");
}

/// `repo:tag` of each image in a JSON list.
fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["repoName"].as_str().unwrap_or(""),
                i["tag"].as_str().unwrap_or("")
            )
        })
        .collect();
    n.sort();
    n
}

#[test]
fn the_query_commands_answer_from_the_search_api() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), alice_and_bob(tmp.path()), search_and_ui());
    let ds = DataSet::push(tmp.path(), &b.addr, Some("bob:builder"));
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("run")).expect("home");

    // No registry named yet.
    refused(&run(&home, &["images"]), "no registry");
    // A profile, the default as the first; credentials from `berth login`.
    ok(&run(&home, &["remote", "add", "local", &b.addr]));
    let remotes = json_of(&home, &["remote", "list"]);
    assert_eq!(remotes["default"], "local");
    assert_eq!(remotes["remotes"]["local"]["url"], b.addr.as_str());
    let profiles = std::fs::read_to_string(home.join("config/berth/remotes.json")).expect("file");
    assert!(
        !profiles.contains("builder"),
        "no credentials in the profiles"
    );
    refused(&run(&home, &["images"]), "401");
    let mut login = berth()
        .args(["login", "-u", "bob", "--password-stdin", &b.addr])
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("login");
    std::io::Write::write_all(&mut login.stdin.take().expect("stdin"), b"builder\n")
        .expect("password");
    assert!(login.wait().expect("login").success());

    // Every image bob may read, as pushed.
    let all = json_of(&home, &["images"]);
    let mut want: Vec<String> = ds
        .images
        .iter()
        .map(|i| format!("{}:{}", i.repo, i.tag))
        .collect();
    want.sort();
    assert_eq!(names(&all), want);
    let app1 = ds.app1();
    let listed = all
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["repoName"] == "app" && i["tag"] == "1.0")
        .expect("app:1.0");
    assert_eq!(listed["digest"], app1.digest.as_str());
    assert_eq!(listed["size"], app1.size());
    assert_eq!(
        listed["manifests"][0]["configDigest"],
        app1.manifests[0].config.digest.as_str()
    );
    assert_eq!(
        listed["manifests"][0]["platform"]["os"],
        app1.manifests[0].os
    );
    // alice reads `app*` only; -u wins over the auth file.
    let alice = json_of(&home, &["images", "-u", "alice:wonderland"]);
    assert!(
        names(&alice).iter().all(|n| n.starts_with("app")),
        "{alice}"
    );
    refused(&run(&home, &["images", "-u", "alice:wrong"]), "401");

    // One repository, one image, by digest, derived and base.
    assert_eq!(
        names(&json_of(&home, &["images", "app"])),
        ["app:1.0", "app:2.0"]
    );
    let one = json_of(&home, &["image", "app:1.0"]);
    assert_eq!(names(&one), ["app:1.0"]);
    let by_layer = json_of(
        &home,
        &["image", "--digest", &app1.manifests[0].layers[0].digest],
    );
    assert!(
        names(&by_layer).contains(&"app:1.0".to_string()),
        "{by_layer}"
    );
    assert_eq!(
        names(&json_of(&home, &["image", "derived", "base:1.0"])),
        ["app:1.0", "app:2.0"]
    );
    assert_eq!(
        names(&json_of(&home, &["image", "base", "app:2.0"])),
        ["base:1.0"]
    );
    refused(&run(&home, &["image", "app"]), "REPOSITORY:TAG");
    refused(&run(&home, &["image", "app:9.9"]), "no such image");

    // Repositories, as YAML too.
    let repos = ok(&run(&home, &["repos", "-o", "yaml"]));
    let repos: Value = serde_saphyr::from_str(&repos).expect("YAML output");
    let mut repo_names: Vec<&str> = repos
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    repo_names.sort();
    assert_eq!(repo_names, ds.repo_names());
    // Search: a repository by name, an image by name:tag.
    let found = json_of(&home, &["search", "app"]);
    assert!(
        found["repos"]
            .as_array()
            .expect("repos")
            .iter()
            .any(|r| r["name"] == "app"),
        "{found}"
    );
    let found = json_of(&home, &["search", "app:2.0"]);
    assert!(
        names(&found["images"]).contains(&"app:2.0".to_string()),
        "{found}"
    );
    // The referrers of the signed image.
    let signed = ds
        .images
        .iter()
        .find(|i| !i.referrers.is_empty())
        .expect("a signed image");
    let refs = json_of(
        &home,
        &["referrers", &format!("{}@{}", signed.repo, signed.digest)],
    );
    let digests: Vec<&str> = refs
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["digest"].as_str())
        .collect();
    for r in &signed.referrers {
        assert!(digests.contains(&r.digest.as_str()), "{refs}");
    }

    // Status: reachable, logged in, search on.
    let status = json_of(&home, &["status"]);
    assert_eq!(status["loggedIn"], true);
    assert_eq!(status["search"], true);
    assert!(status["distSpecVersion"].is_string(), "{status}");
    let status = json_of(&home, &["status", "-u", "nobody:x"]);
    assert_eq!(status["loggedIn"], false);

    // The text table: a header and a row per platform.
    let text = ok(&run(&home, &["images", "app"]));
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("REPOSITORY") && h.contains("OS/ARCH")),
        "{text}"
    );
    assert!(
        text.contains("linux/amd64") && text.contains(&app1.digest[7..15]),
        "{text}"
    );

    // --url without a profile, and profiles removed.
    assert_eq!(
        names(&json_of(
            &home,
            &[
                "images",
                "app",
                "--url",
                &format!("http://{}", b.addr),
                "-u",
                "bob:builder"
            ]
        ))
        .len(),
        2
    );
    ok(&run(&home, &["remote", "remove", "local"]));
    refused(&run(&home, &["images"]), "no registry");
    refused(
        &run(&home, &["remote", "set-default", "gone"]),
        "no remote named",
    );
}

#[test]
fn a_registry_without_search_is_said_plainly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), json!({}));
    let home = tmp.path().join("home");
    let out = run(&home, &["images", "--url", &b.addr]);
    refused(&out, "404");
    let status = json_of(&home, &["status", "--url", &b.addr]);
    assert_eq!(status["search"], false);
    assert_eq!(status["loggedIn"], true);
}

/// `berth cve`: an image scanned on the server (the `berth scan` fixture,
/// its OSV advisories written by the test), its findings listed and
/// filtered, the images a finding affects, where it is fixed, and a diff.
#[cfg(feature = "scan")]
#[test]
fn the_cve_commands_answer_from_the_servers_scans() {
    use crate::scan::{expected, fixture};
    use crate::scan_server::{push, scanning_server, wait_for};

    let f = fixture();
    let server = scanning_server(&f, "data", json!({}));
    push(&f, &server, "scan/app");
    push(&f, &server, "scan/copy");
    // Once the advisories are loaded and the image scanned.
    wait_for(
        &server,
        r#"{ CVEListForImage(image: "scan/app:v1") { Summary { Count } } }"#,
        |v| v["data"]["CVEListForImage"]["Summary"]["Count"].as_i64() == Some(4),
    );
    let home = f.root.join("home");
    let url = server.addr.as_str();
    let list = json_of(&home, &["cve", "list", "scan/app:v1", "--url", url]);
    let mut ids: Vec<&str> = list["cveList"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    ids.sort();
    let mut want: Vec<String> = expected().into_iter().map(|(id, ..)| id).collect();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(list["summary"]["maxSeverity"], "HIGH");
    let high = json_of(
        &home,
        &[
            "cve",
            "list",
            "scan/app:v1",
            "--severity",
            "high",
            "--url",
            url,
        ],
    );
    let severities: Vec<&str> = high["cveList"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["severity"].as_str())
        .collect();
    assert_eq!(severities, ["HIGH"]);
    let one = json_of(
        &home,
        &[
            "cve",
            "list",
            "scan/app:v1",
            "--cve-id",
            "CVE-2024-0727",
            "--url",
            url,
        ],
    );
    assert_eq!(one["cveList"][0]["id"], "CVE-2024-0727");
    assert_eq!(one["cveList"].as_array().map(Vec::len), Some(1));
    let text = ok(&run(&home, &["cve", "list", "scan/app:v1", "--url", url]));
    assert!(
        text.starts_with("ID") && text.contains("CVE-2024-0727"),
        "{text}"
    );

    let affected = json_of(&home, &["cve", "affected", "CVE-2024-0727", "--url", url]);
    assert_eq!(names(&affected), ["scan/app:v1", "scan/copy:v1"]);
    let in_repo = json_of(
        &home,
        &[
            "cve",
            "affected",
            "CVE-2024-0727",
            "--repo",
            "scan/copy",
            "--url",
            url,
        ],
    );
    assert_eq!(names(&in_repo), ["scan/copy:v1"]);
    let fixed = json_of(
        &home,
        &["cve", "fixed", "CVE-2024-0727", "scan/app", "--url", url],
    );
    assert_eq!(names(&fixed), Vec::<String>::new());
    let diff = json_of(
        &home,
        &["cve", "diff", "scan/app:v1", "scan/copy:v1", "--url", url],
    );
    assert_eq!(diff["cveList"].as_array().map(Vec::len), Some(0), "{diff}");
    assert_eq!(diff["minuend"]["repo"], "scan/app");
}

/// Over HTTPS with a private CA (`--cert-dir`, as skopeo's), and from a
/// profile naming an `https://` URL.
#[test]
fn queries_over_tls_with_a_private_ca() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    crate::tls::make_pki(&pki, "query");
    let p = |f: &str| pki.join(f).display().to_string();
    let b = start(
        tmp.path(),
        json!({"tls": {"cert": p("server.crt"), "key": p("server.key")}}),
        search_and_ui(),
    );
    let certs = tmp.path().join("certs.d");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(pki.join("ca.crt"), certs.join("ca.crt")).expect("copy");
    let certs = certs.display().to_string();
    let home = tmp.path().join("home");
    // Without the CA: refused, one line.
    refused(
        &run(&home, &["status", "--url", &format!("https://{}", b.addr)]),
        "berth:",
    );
    let status = json_of(&home, &["status", "--url", &b.addr, "--cert-dir", &certs]);
    assert_eq!(status["url"], format!("https://{}", b.addr));
    assert_eq!(status["search"], true);
    ok(&run(
        &home,
        &["remote", "add", "secure", &format!("https://{}", b.addr)],
    ));
    let images = json_of(&home, &["images", "--cert-dir", &certs]);
    assert_eq!(images, json!([]));
    // --tls-verify=false accepts the certificate without the CA.
    let images = json_of(&home, &["images", "--tls-verify", "false"]);
    assert_eq!(images, json!([]));
}

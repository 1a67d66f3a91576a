//! zot's search extension as zot's own clients use it: the 30 GraphQL
//! documents zli and zui send, each sent the way its client sends it and
//! again as a POST, against images skopeo pushed (`search_data`); the
//! answers must have every path the client reads and zot's values
//! (`search_expect`). `search_queries` asks what the documents do not
//! (other digests, sorts, pages, filters, downloads); `search_ui` what the
//! web UI needs besides (discover, mgmt, stars and bookmarks), what each
//! user may see, and what bad queries get.

use std::path::Path;

use serde_json::{Value, json};

use crate::search_client::*;
use crate::search_data::*;
use crate::search_expect::{self as expect, Failures, Prefs};
use crate::support::*;

/// The extensions a zot config turns on for the web UI: search, and the
/// UI (which brings user preferences).
pub fn search_and_ui() -> Value {
    json!({"search": {"enable": true}, "ui": {"enable": true}})
}

/// Starts `berth serve` on a zot config with storage under `dir`, more
/// `http` keys and `extensions`.
pub fn start(dir: &Path, http: Value, extensions: Value) -> Berth {
    let mut h = json!({"address": "127.0.0.1", "port": "0"});
    if let (Some(o), Value::Object(extra)) = (h.as_object_mut(), http) {
        o.extend(extra);
    }
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": dir.join("root")}, "http": h,
            "extensions": extensions})
        .to_string(),
    )
    .expect("write config");
    Berth::start_config(&config)
}

/// htpasswd with alice and bob; alice reads `app*` only, bob does
/// everything (he pushes the data set).
pub fn alice_and_bob(dir: &Path) -> Value {
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    let htpasswd = dir.join("htpasswd");
    std::fs::write(
        &htpasswd,
        line("alice", "wonderland") + &line("bob", "builder"),
    )
    .expect("htpasswd");
    let all = json!(["read", "create", "update", "delete"]);
    json!({
        "auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0},
        "accessControl": {"repositories": {
            "app*": {"policies": [
                {"users": ["alice"], "actions": ["read"]},
                {"users": ["bob"], "actions": all}]},
            "**": {"policies": [{"users": ["bob"], "actions": all}]}
        }}
    })
}

/// A document's query with its placeholders filled.
pub fn fill(query: &str, repo: &str, tag: &str, digest: &str) -> String {
    query
        .replace("{{REPO}}", repo)
        .replace("{{TAG}}", tag)
        .replace("{{DIGEST}}", digest)
        .replace("{{CVE}}", "CVE-2023-0001")
}

/// The named document.
pub fn document(name: &str) -> Value {
    documents()
        .into_iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no document {name}"))
}

pub fn expect_paths(doc: &Value) -> Vec<&str> {
    doc["expect"]
        .as_array()
        .expect("expect")
        .iter()
        .map(|p| p.as_str().expect("path"))
        .collect()
}

/// Everything the 30 documents ask, on a registry with no authentication
/// (zli still sends empty Basic credentials), with `REPO:TAG` = `app:1.0`.
#[test]
fn zot_clients_documents_get_zots_answers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    let ds = DataSet::push(tmp.path(), &b.addr, None);
    let search = Search::new(&b, None);
    let mut f = Failures::default();
    for doc in documents() {
        let name = doc["name"].as_str().expect("name");
        let native = if doc["source"] == "zli" {
            Via::Zli
        } else {
            Via::Zui
        };
        let query = fill(
            doc["query"].as_str().expect("query"),
            "app",
            "1.0",
            &ds.app1().digest,
        );
        let needs_cve = doc["needs"]
            .as_array()
            .is_some_and(|n| n.contains(&json!("cve")));
        for via in [native, Via::Post] {
            let at = format!("{name} via {via:?}");
            let a = search.send(via, &query);
            if a.status != 200 {
                f.add(&at, format!("status {}: {}", a.status, a.text));
                continue;
            }
            if needs_cve {
                // No scanner: zot answers 200 with this error.
                if !a.errors().iter().any(|m| m == "cve search is disabled") {
                    f.add(
                        &at,
                        format!("no 'cve search is disabled' error: {}", a.text),
                    );
                }
                continue;
            }
            if !a.errors().is_empty() {
                f.add(&at, format!("errors: {:?}", a.errors()));
            }
            for failure in check_paths(&a.body, &expect_paths(&doc)) {
                f.add(&at, failure);
            }
            values(&mut f, &at, name, &a.body["data"], &ds, &doc);
        }
    }
    f.check("zot's client documents");
}

/// The values each document must answer for the pushed data set.
fn values(f: &mut Failures, at: &str, name: &str, data: &Value, ds: &DataSet, doc: &Value) {
    let none = |_: &str| Prefs::default();
    let all_repos = ds.repo_names();
    match name {
        "zli-schema-check" => schema(f, at, data, doc),
        "zli-image-list" => {
            // By repository, then tag.
            let mut all: Vec<String> = ds.images.iter().map(Image::name).collect();
            all.sort();
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            expect::image_list(f, at, &data["ImageList"]["Results"], ds, &all);
        }
        "zli-image-name" => {
            // The signature tags are not images.
            expect::image_list(
                f,
                at,
                &data["ImageList"]["Results"],
                ds,
                &["app:1.0", "app:2.0"],
            );
        }
        "zli-image-digest" | "zli-image-digest-fallback" => {
            expect::image_list(
                f,
                at,
                &data["ImageListForDigest"]["Results"],
                ds,
                &["app:1.0"],
            );
        }
        "zli-image-derived" => {
            expect::image_list(f, at, &data["DerivedImageList"]["Results"], ds, &[]);
        }
        "zli-image-base" => {
            expect::image_list(f, at, &data["BaseImageList"]["Results"], ds, &["base:1.0"]);
        }
        "zli-search-subject" => {
            expect::referrers(
                f,
                at,
                &data["Referrers"],
                std::slice::from_ref(&ds.notation),
            );
        }
        "zli-search-repo" => {
            let g = &data["GlobalSearch"];
            // "app" is the exact name, so it ranks before "myapp".
            expect::repo_list(f, at, &g["Repos"], ds, &["app", "myapp"], true, &none);
            no_items(f, at, &g["Images"], "Images");
        }
        "zli-search-image" => {
            let g = &data["GlobalSearch"];
            expect::image_list(f, at, &g["Images"], ds, &["app:1.0"]);
            no_items(f, at, &g["Repos"], "Repos");
        }
        "zui-home-popular" => {
            let g = &data["GlobalSearch"];
            expect::page(f, at, &g["Page"], 4, 3);
            let got = expect::repo_names(&g["Repos"]);
            let mut distinct = got.clone();
            distinct.sort();
            distinct.dedup();
            if got.len() != 3
                || distinct.len() != 3
                || got.iter().any(|n| !all_repos.contains(&n.as_str()))
            {
                f.add(at, format!("repositories {got:?}: want 3 of {all_repos:?}"));
            }
            for (i, r) in g["Repos"].as_array().into_iter().flatten().enumerate() {
                let name = r["Name"].as_str().unwrap_or("?");
                if all_repos.contains(&name) {
                    expect::repo(
                        f,
                        &format!("{at}[{i}]"),
                        r,
                        &ds.repo(name),
                        Prefs::default(),
                    );
                }
            }
        }
        "zui-home-recent" => {
            let g = &data["GlobalSearch"];
            expect::page(f, at, &g["Page"], 4, 2);
            expect::repo_list(f, at, &g["Repos"], ds, &["app", "myapp"], true, &none);
        }
        "zui-home-bookmarks" | "zui-home-stars" => {
            // Nobody has starred or bookmarked anything.
            let g = &data["GlobalSearch"];
            expect::page(f, at, &g["Page"], 0, 0);
            no_items(f, at, &g["Repos"], "Repos");
        }
        "zui-explore" => {
            let g = &data["GlobalSearch"];
            expect::page(f, at, &g["Page"], 4, 4);
            expect::repo_list(f, at, &g["Repos"], ds, &all_repos, false, &none);
        }
        "zui-explore-filtered" => {
            // Signed means the newest image is signed: app:2.0 is not.
            let g = &data["GlobalSearch"];
            expect::page(f, at, &g["Page"], 1, 1);
            expect::repo_list(f, at, &g["Repos"], ds, &["myapp"], true, &none);
        }
        "zui-header-repo-search" => {
            let g = &data["GlobalSearch"];
            expect::page(f, at, &g["Page"], 2, 2);
            expect::repo_list(f, at, &g["Repos"], ds, &["app", "myapp"], true, &none);
        }
        "zui-header-image-search" => {
            expect::image_list(
                f,
                at,
                &data["GlobalSearch"]["Images"],
                ds,
                &["app:1.0", "app:2.0"],
            );
        }
        "zui-repo-details" => {
            let info = &data["ExpandedRepoInfo"];
            // Newest first.
            let tags: Vec<&str> = info["Images"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["Tag"].as_str().unwrap_or("?"))
                .collect();
            if tags != ["2.0", "1.0"] {
                f.add(at, format!("Images tags {tags:?}, want [\"2.0\", \"1.0\"]"));
            }
            for (i, img) in info["Images"].as_array().into_iter().flatten().enumerate() {
                if let Some(tag) = img["Tag"].as_str().filter(|t| ["1.0", "2.0"].contains(t)) {
                    expect::image(f, &format!("{at}.Images[{i}]"), img, ds.image("app", tag));
                }
            }
            expect::repo(
                f,
                &format!("{at}.Summary"),
                &info["Summary"],
                &ds.repo("app"),
                Prefs::default(),
            );
        }
        "zui-tag-details" => expect::image(f, at, &data["Image"], ds.app1()),
        "zui-tag-depends-on" => {
            let l = &data["BaseImageList"];
            expect::page(f, at, &l["Page"], 1, 1);
            expect::image_list(f, at, &l["Results"], ds, &["base:1.0"]);
        }
        "zui-tag-dependents" => {
            let l = &data["DerivedImageList"];
            expect::page(f, at, &l["Page"], 0, 0);
            expect::image_list(f, at, &l["Results"], ds, &[]);
        }
        other => f.add(at, format!("no value checks for document {other}")),
    }
}

/// A list that must be empty, null or absent.
fn no_items(f: &mut Failures, at: &str, v: &Value, what: &str) {
    if !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)) {
        f.add(at, format!("{what} should be empty: {v}"));
    }
}

/// zli's check before every command: each query it needs has exactly the
/// arguments it passes, in order, and its result type is known.
fn schema(f: &mut Failures, at: &str, data: &Value, doc: &Value) {
    let fields = data["__schema"]["queryType"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let types: Vec<&str> = data["__schema"]["types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for req in doc["schema_requirements"].as_array().expect("requirements") {
        let query = req["query"].as_str().expect("query");
        let Some(field) = fields.iter().find(|q| q["name"] == query) else {
            f.add(at, format!("no query {query}"));
            continue;
        };
        let args: Vec<&Value> = field["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| &a["name"])
            .collect();
        let want: Vec<&Value> = req["args"].as_array().expect("args").iter().collect();
        if args != want {
            f.add(
                at,
                format!("{query} has arguments {args:?}, zli needs {want:?}"),
            );
        }
        if !types.contains(&req["returns"].as_str().expect("returns")) {
            f.add(at, format!("type {} is unknown", req["returns"]));
        }
    }
}

//! What the web UI needs of the search extension besides its queries
//! (discover, mgmt, stars and bookmarks), what each user may see, and what
//! a query that cannot run gets.

use serde_json::{Value, json};

use crate::search::*;
use crate::search_client::*;
use crate::search_data::*;
use crate::search_expect::{self as expect, Failures};
use crate::support::*;

/// Discover lists the `_zot` extension and the endpoints that are on.
#[test]
fn discover_lists_the_zot_endpoints_that_are_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let client = reqwest::blocking::Client::new();
    let discover = |b: &Berth| -> Value {
        // As zli asks it: empty Basic credentials on an open registry.
        let r = client
            .get(b.url("/v2/_oci/ext/discover"))
            .header("Authorization", "Basic Og==")
            .send()
            .expect("discover");
        assert_eq!(r.status(), 200);
        r.json().expect("json")
    };
    let endpoints = |v: &Value| -> Vec<String> {
        let exts = v["extensions"].as_array().expect("extensions");
        assert_eq!(exts.len(), 1, "{v}");
        let zot = &exts[0];
        assert_eq!(zot["name"], "_zot", "{v}");
        assert!(zot["url"].as_str().is_some_and(|u| !u.is_empty()), "{v}");
        assert!(zot["description"].is_string(), "{v}");
        zot["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .map(|e| e.as_str().expect("endpoint").to_string())
            .collect()
    };

    let dir = tmp.path().join("ui");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let b = start(&dir, json!({}), search_and_ui());
    let got = endpoints(&discover(&b));
    for want in [
        "/v2/_zot/ext/search",
        "/v2/_zot/ext/userprefs",
        "/v2/_zot/ext/mgmt",
    ] {
        assert!(got.iter().any(|e| e == want), "{want} not in {got:?}");
    }
    drop(b);

    // Search without the UI: no user preferences.
    let dir = tmp.path().join("search");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let b = start(&dir, json!({}), json!({"search": {"enable": true}}));
    let got = endpoints(&discover(&b));
    assert!(got.iter().any(|e| e == "/v2/_zot/ext/search"), "{got:?}");
    assert!(got.iter().any(|e| e == "/v2/_zot/ext/mgmt"), "{got:?}");
    assert!(
        !got.iter().any(|e| e == "/v2/_zot/ext/userprefs"),
        "{got:?}"
    );
    let r = client
        .put(b.url("/v2/_zot/ext/userprefs?action=toggleStar&repo=app"))
        .send()
        .expect("put");
    assert_eq!(r.status(), 404);
    drop(b);

    // No extension: an empty list, and no routes.
    let dir = tmp.path().join("none");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let b = start(&dir, json!({}), json!({}));
    assert_eq!(discover(&b), json!({"extensions": []}));
    for path in [
        "/v2/_zot/ext/search?query=%7BImageList(repo:%22%22)%7BResults%7BTag%7D%7D%7D",
        "/v2/_zot/ext/mgmt?resource=config",
    ] {
        let r = client.get(b.url(path)).send().expect("get");
        assert_eq!(r.status(), 404, "{path}");
    }
}

/// `GET /v2/_zot/ext/mgmt` (as zui asks it, and with `?resource=config`)
/// tells anyone, before login, which logins are on: zot's stripped config,
/// `http.auth` naming each method and leaking no path.
#[test]
fn mgmt_tells_the_ui_which_logins_are_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let client = reqwest::blocking::Client::new();
    let mgmt = |b: &Berth| -> Vec<(Value, String)> {
        ["/v2/_zot/ext/mgmt", "/v2/_zot/ext/mgmt?resource=config"]
            .iter()
            .map(|path| {
                let r = client.get(b.url(path)).send().expect("mgmt");
                assert_eq!(r.status(), 200, "anonymous {path}");
                let text = r.text().expect("body");
                let v: Value = serde_json::from_str(&text).expect("json");
                assert!(
                    v["distSpecVersion"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("1.1")),
                    "{v}"
                );
                for key in ["binaryType", "commit", "releaseTag"] {
                    assert!(v[key].is_string(), "{key} in {v}");
                }
                assert!(v["http"].is_object(), "{v}");
                (v, text)
            })
            .collect()
    };

    // No authentication: no methods.
    let dir = tmp.path().join("open");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let b = start(&dir, json!({}), search_and_ui());
    for (v, _) in mgmt(&b) {
        let auth = &v["http"]["auth"];
        assert!(
            auth.is_null() || auth == &json!({}),
            "no login method is on: {v}"
        );
    }
    drop(b);

    // htpasswd and API keys: `{"htpasswd": {}, "apikey": true}`.
    let dir = tmp.path().join("htpasswd");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let htpasswd = dir.join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("wonderland", 4).expect("bcrypt")),
    )
    .expect("htpasswd");
    let b = start(
        &dir,
        json!({"auth": {"htpasswd": {"path": htpasswd}, "apikey": true}}),
        search_and_ui(),
    );
    for (v, text) in mgmt(&b) {
        assert_eq!(
            v["http"]["auth"],
            json!({"htpasswd": {}, "apikey": true}),
            "{v}"
        );
        assert!(!text.contains("htpasswd\":{\"path"), "{text}");
        assert!(!text.contains(&*htpasswd.to_string_lossy()), "{text}");
    }
    drop(b);

    // Bearer tokens: the realm and service a client needs, not the cert.
    let dir = tmp.path().join("bearer");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let signer = crate::token_server::Signer::new(&dir, "issuer");
    let realm = "https://auth.example.test/token";
    let b = start(
        &dir,
        json!({"auth": {"bearer": {"realm": realm, "service": "berth-test",
            "cert": signer.cert}}}),
        search_and_ui(),
    );
    for (v, text) in mgmt(&b) {
        assert_eq!(
            v["http"]["auth"],
            json!({"bearer": {"realm": realm, "service": "berth-test"}}),
            "{v}"
        );
        assert!(!text.contains(&*signer.cert.to_string_lossy()), "{text}");
    }
}

/// With htpasswd and access control, each user's search shows only the
/// repositories they may read: lists, counts, lookups by digest, base
/// images; an anonymous caller is refused.
#[test]
fn users_see_only_the_repositories_they_may_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), alice_and_bob(tmp.path()), search_and_ui());
    let ds = DataSet::push(tmp.path(), &b.addr, Some("bob:builder"));
    let alice = Search::new(&b, Some(("alice", "wonderland")));
    let bob = Search::new(&b, Some(("bob", "builder")));
    let anonymous = Search::new(&b, None);
    let list = "{ImageList(repo: \"\") {Page {TotalCount ItemCount} Results {RepoName Tag}}}";
    for via in [Via::Zli, Via::Zui, Via::Post] {
        assert_eq!(
            anonymous.send(via, list).status,
            401,
            "anonymous via {via:?}"
        );
    }

    // What alice may not see, by name and by digest.
    let hidden: Vec<String> = ds
        .images
        .iter()
        .filter(|i| i.repo != "app")
        .flat_map(|i| {
            let mut d = vec![i.digest.clone(), format!("\"{}\"", i.repo)];
            d.extend(i.manifests.iter().map(|m| m.digest.clone()));
            d
        })
        .collect();
    let mut f = Failures::default();
    let base_layer = &ds.image("base", "1.0").manifests[0].layers[0].digest;
    for (q, path, total, want) in [
        ("{GlobalSearch(query: \"\") {Page {TotalCount ItemCount} Repos {Name}}}".to_string(),
            "GlobalSearch.Repos", 1, vec!["app"]),
        ("{GlobalSearch(query: \"a\") {Page {TotalCount ItemCount} Repos {Name}}}".to_string(),
            "GlobalSearch.Repos", 1, vec!["app"]),
        ("{RepoListWithNewestImage {Page {TotalCount ItemCount} Results {Name NewestImage {Tag}}}}"
            .to_string(), "RepoListWithNewestImage.Results", 1, vec!["app"]),
        (list.to_string(), "ImageList.Results", 2, vec!["app:1.0", "app:2.0"]),
        ("{ImageList(repo: \"base\") {Page {TotalCount ItemCount} Results {RepoName Tag}}}"
            .to_string(), "ImageList.Results", 0, vec![]),
        (format!("{{ImageListForDigest(id: \"{base_layer}\") {{Page {{TotalCount ItemCount}} \
            Results {{RepoName Tag}}}}}}"), "ImageListForDigest.Results", 2,
            vec!["app:1.0", "app:2.0"]),
        ("{BaseImageList(image: \"app:1.0\") {Page {TotalCount ItemCount} Results {RepoName Tag}}}"
            .to_string(), "BaseImageList.Results", 0, vec![]),
        ("{GlobalSearch(query: \":1.0\") {Page {TotalCount ItemCount} Images {RepoName Tag}}}"
            .to_string(), "GlobalSearch.Images", 1, vec!["app:1.0"]),
        ("{GlobalSearch(query: \"base:\") {Page {TotalCount ItemCount} Images {RepoName Tag}}}"
            .to_string(), "GlobalSearch.Images", 0, vec![]),
    ] {
        let a = alice.send(Via::Post, &q);
        let at = format!("alice: {q}");
        if a.status != 200 || !a.errors().is_empty() {
            f.add(&at, format!("{} {}", a.status, a.text));
            continue;
        }
        let (field, list) = path.split_once('.').expect("path");
        let l = &a.body["data"][field];
        expect::page(&mut f, &at, &l["Page"], total, want.len() as u64);
        let got = if list == "Repos" || path.starts_with("RepoList") {
            expect::repo_names(&l[list])
        } else {
            expect::names(&l[list])
        };
        if got != want {
            f.add(&at, format!("{got:?}, want {want:?}"));
        }
        for h in &hidden {
            if a.text.contains(h.as_str()) {
                f.add(&at, format!("shows {h}: {}", a.text));
            }
        }
    }
    // Asking for a hidden repository by name reveals nothing of it.
    for q in [
        "{Image(image: \"base:1.0\") {RepoName Tag Digest}}",
        "{ExpandedRepoInfo(repo: \"base\") {Images {Tag Digest} Summary {Name Size}}}",
        "{ExpandedRepoInfo(repo: \"multi\") {Images {Tag Digest} Summary {Name Size}}}",
    ] {
        let a = alice.send(Via::Zui, q);
        if a.status >= 500 {
            f.add(q, format!("{} {}", a.status, a.text));
        }
        for h in &hidden {
            if a.text.contains(h.as_str()) {
                f.add(q, format!("alice is shown {h}: {}", a.text));
            }
        }
    }
    // bob reads everything.
    let r = bob.data("{GlobalSearch(query: \"\") {Page {TotalCount ItemCount} Repos {Name}}}");
    expect::page(&mut f, "bob", &r["GlobalSearch"]["Page"], 4, 4);
    let r = bob.data(list);
    expect::page(&mut f, "bob", &r["ImageList"]["Page"], 5, 5);
    f.check("per-user search");
}

/// Stars and bookmarks: `PUT /v2/_zot/ext/userprefs` toggles them for the
/// caller only; the star count is everyone's; the UI's home-page lists
/// follow. Refusals: anonymous 401, a repository the caller cannot read
/// 403, a repository that does not exist 404, anything malformed 400.
#[test]
fn stars_and_bookmarks_toggle_for_each_user() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), alice_and_bob(tmp.path()), search_and_ui());
    DataSet::push(tmp.path(), &b.addr, Some("bob:builder"));
    let alice = Search::new(&b, Some(("alice", "wonderland")));
    let bob = Search::new(&b, Some(("bob", "builder")));
    let anonymous = Search::new(&b, None);

    assert_eq!(anonymous.userprefs("action=toggleStar&repo=app"), 401);
    assert_eq!(alice.userprefs("action=toggleStar&repo=base"), 403);
    assert_eq!(alice.userprefs("action=toggleBookmark&repo=multi"), 403);
    assert_eq!(alice.userprefs("action=frobnicate&repo=app"), 400);
    assert_eq!(alice.userprefs("repo=app"), 400);
    assert_eq!(alice.userprefs("action=toggleStar"), 400);
    assert_eq!(bob.userprefs("action=toggleStar&repo=nosuch"), 404);

    // (starred, bookmarked, star count) of app as `who` sees it, by every
    // query that shows it.
    let state = |who: &Search| -> (bool, bool, u64) {
        let r = who.data(
            "{GlobalSearch(query: \"app\") {Repos {Name IsStarred IsBookmarked StarCount}} \
             ExpandedRepoInfo(repo: \"app\") {Summary {Name IsStarred IsBookmarked StarCount}}}",
        );
        let g = &r["GlobalSearch"]["Repos"][0];
        let e = &r["ExpandedRepoInfo"]["Summary"];
        assert_eq!(g["Name"], "app", "{r}");
        for k in ["IsStarred", "IsBookmarked", "StarCount"] {
            assert_eq!(
                g[k], e[k],
                "GlobalSearch and ExpandedRepoInfo agree on {k}: {r}"
            );
        }
        (
            g["IsStarred"].as_bool().expect("IsStarred"),
            g["IsBookmarked"].as_bool().expect("IsBookmarked"),
            g["StarCount"].as_u64().expect("StarCount"),
        )
    };
    let listed = |who: &Search, q: &str| -> Vec<String> {
        let r = who.data(&format!(
            "{{{q}(requestedPage: {{sortBy: ALPHABETIC_ASC}}) {{Page {{TotalCount ItemCount}} \
             Results {{Name}}}}}}"
        ));
        let names = expect::repo_names(&r[q]["Results"]);
        assert_eq!(
            r[q]["Page"]["TotalCount"].as_u64(),
            Some(names.len() as u64),
            "{r}"
        );
        names
    };
    // The UI's home page, as zui asks it.
    let home = |who: &Search, doc: &str| -> Vec<String> {
        let doc = document(doc);
        let a = who.send(Via::Zui, doc["query"].as_str().expect("query"));
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(a.errors().is_empty(), "{}", a.text);
        assert_eq!(
            check_paths(&a.body, &expect_paths(&doc)),
            Vec::<String>::new()
        );
        let g = &a.body["data"]["GlobalSearch"];
        let names = expect::repo_names(&g["Repos"]);
        let mut f = Failures::default();
        expect::page(
            &mut f,
            "home",
            &g["Page"],
            names.len() as u64,
            names.len() as u64,
        );
        f.check("home page");
        names
    };

    assert_eq!(state(&alice), (false, false, 0));
    assert_eq!(alice.userprefs("action=toggleStar&repo=app"), 200);
    assert_eq!(state(&alice), (true, false, 1));
    assert_eq!(state(&bob), (false, false, 1), "a star is the caller's own");
    assert_eq!(listed(&alice, "StarredRepos"), ["app"]);
    assert_eq!(listed(&bob, "StarredRepos"), Vec::<String>::new());
    assert_eq!(home(&alice, "zui-home-stars"), ["app"]);
    assert_eq!(home(&bob, "zui-home-stars"), Vec::<String>::new());
    assert_eq!(bob.userprefs("action=toggleStar&repo=app"), 200);
    assert_eq!(state(&bob), (true, false, 2));
    assert_eq!(alice.userprefs("action=toggleStar&repo=app"), 200);
    assert_eq!(state(&alice), (false, false, 1), "toggled off");
    assert_eq!(listed(&alice, "StarredRepos"), Vec::<String>::new());
    assert_eq!(listed(&bob, "StarredRepos"), ["app"]);

    assert_eq!(alice.userprefs("action=toggleBookmark&repo=app"), 200);
    assert_eq!(state(&alice), (false, true, 1));
    assert!(!state(&bob).1, "a bookmark is the caller's own");
    assert_eq!(listed(&alice, "BookmarkedRepos"), ["app"]);
    assert_eq!(listed(&bob, "BookmarkedRepos"), Vec::<String>::new());
    assert_eq!(home(&alice, "zui-home-bookmarks"), ["app"]);
    let r = alice.data(
        "{GlobalSearch(query: \"\", filter: {IsBookmarked: true}) {Page {TotalCount ItemCount} \
         Repos {Name IsBookmarked}}}",
    );
    assert_eq!(
        r["GlobalSearch"],
        json!({"Page": {"TotalCount": 1, "ItemCount": 1},
            "Repos": [{"Name": "app", "IsBookmarked": true}]})
    );
    // bob bookmarks what alice cannot see: her lists do not change.
    assert_eq!(bob.userprefs("action=toggleBookmark&repo=base"), 200);
    assert_eq!(listed(&bob, "BookmarkedRepos"), ["base"]);
    assert_eq!(listed(&alice, "BookmarkedRepos"), ["app"]);
    assert_eq!(alice.userprefs("action=toggleBookmark&repo=app"), 200);
    assert_eq!(state(&alice), (false, false, 1));
    assert_eq!(listed(&alice, "BookmarkedRepos"), Vec::<String>::new());
    assert_eq!(home(&alice, "zui-home-bookmarks"), Vec::<String>::new());
}

/// Queries that cannot run get GraphQL errors, never a 5xx: a document
/// that does not parse or validate 422 (as zot's gqlgen answers), one
/// whose resolver fails 200 with `errors` and no data for it, a body that
/// is not JSON 400.
#[test]
fn bad_queries_get_graphql_errors_not_server_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    let search = Search::new(&b, None);
    let mut f = Failures::default();
    for (q, status) in [
        ("{ImageList(repo: \"\"", 422),
        ("{ImageList(repo: \"\") {Results {Nope}}}", 422),
        ("{Nope}", 422),
        ("{ImageList {Results {Tag}}}", 422),
        ("{Image(image: \"nosuch:1\") {RepoName Tag}}", 200),
        ("{Image(image: \"nosuch\") {RepoName Tag}}", 200),
        ("{ExpandedRepoInfo(repo: \"nosuch\") {Summary {Name}}}", 200),
        (
            "{DerivedImageList(image: \"nosuch:1\") {Results {RepoName}}}",
            200,
        ),
        (
            "{BaseImageList(image: \"nosuch\") {Results {RepoName}}}",
            200,
        ),
        (
            "{GlobalSearch(query: \"\", requestedPage: {limit: -1}) {Repos {Name}}}",
            200,
        ),
        (
            "{Referrers(repo: \"nosuch\", digest: \"not-a-digest\") {Digest}}",
            200,
        ),
    ] {
        for via in [Via::Zli, Via::Zui, Via::Post] {
            let a = search.send(via, q);
            let at = format!("{q} via {via:?}");
            if a.status != status {
                f.add(
                    &at,
                    format!("status {}, want {status}: {}", a.status, a.text),
                );
            }
            if a.errors().is_empty() {
                f.add(&at, format!("no GraphQL errors: {}", a.text));
            }
            // Nothing is made up for what failed.
            let data = &a.body["data"];
            let empty = data.is_null()
                || data
                    .as_object()
                    .is_some_and(|o| o.values().all(Value::is_null));
            if !empty {
                f.add(&at, format!("data for a failed query: {data}"));
            }
        }
    }
    let r = reqwest::blocking::Client::new()
        .post(b.url("/v2/_zot/ext/search"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .expect("post");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().expect("a GraphQL error body");
    assert!(
        body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    f.check("bad queries");
}

/// An answer is never reused across a change of the access rules: the
/// same document, asked again after the config file gives alice more (and
/// then less again), answers by the rules in force.
#[test]
fn answers_follow_the_access_rules_as_they_reload() {
    let tmp = tempfile::tempdir().expect("tmp");
    let http = alice_and_bob(tmp.path());
    let b = start(tmp.path(), http.clone(), search_and_ui());
    let _ds = DataSet::push(tmp.path(), &b.addr, Some("bob:builder"));
    let alice = Search::new(&b, Some(("alice", "wonderland")));
    let list = "{ImageList(repo: \"\") {Page {TotalCount} Results {RepoName Tag}}}";
    let total = || alice.data(list)["ImageList"]["Page"]["TotalCount"].clone();
    let narrow = total();
    assert_eq!(narrow, json!(2), "alice reads app* only");
    let rewrite = |http: &Value| {
        let root = tmp.path().join("root");
        let config = json!({"storage": {"rootDirectory": root},
            "http": {"address": "127.0.0.1", "port": "0"}, "extensions": search_and_ui()});
        let mut config = config;
        if let (Some(h), Some(extra)) = (config["http"].as_object_mut(), http.as_object()) {
            h.extend(extra.clone());
        }
        std::fs::write(tmp.path().join("config.json"), config.to_string()).expect("config");
    };
    let wait_for = |want: &Value| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if total() == *want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never {want}: {}",
                total()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let mut wider = http.clone();
    wider["accessControl"]["repositories"]["**"]["policies"]
        .as_array_mut()
        .expect("policies")
        .push(json!({"users": ["alice"], "actions": ["read"]}));
    rewrite(&wider);
    let everything =
        Search::new(&b, Some(("bob", "builder"))).data(list)["ImageList"]["Page"]["TotalCount"]
            .clone();
    assert_ne!(everything, narrow);
    wait_for(&everything);
    rewrite(&http);
    wait_for(&narrow);
}

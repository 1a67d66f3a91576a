//! Search queries the client documents do not make: lookups by config and
//! layer digest, derived and base images from the other end, each image on
//! its own, ranking, pages, sorts, filters, and download counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::search::*;
use crate::search_client::*;
use crate::search_data::*;
use crate::search_expect::{self as expect, Failures, Prefs};

/// Values the documents do not reach: lookups by config and layer digest,
/// derived and base images the other way round, a multi-platform image,
/// history, signatures and referrers by type.
#[test]
fn search_describes_the_pushed_images_as_zot_does() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    let ds = DataSet::push(tmp.path(), &b.addr, None);
    let search = Search::new(&b, None);
    let mut f = Failures::default();
    let (app1, app2) = (ds.app1(), ds.image("app", "2.0"));
    let (base, multi) = (ds.image("base", "1.0"), ds.image("multi", "latest"));

    let fields = "RepoName Tag Digest MediaType Size LastUpdated IsSigned \
        SignatureInfo {Tool IsTrusted Author} Description Title Vendor Source Licenses \
        Documentation Referrers {MediaType ArtifactType Size Digest Annotations {Key Value}} \
        Manifests {Digest ConfigDigest Size LastUpdated IsSigned Platform {Os Arch} \
        ArtifactType Layers {Size Digest} History {Layer {Size Digest} \
        HistoryDescription {CreatedBy EmptyLayer}}}";
    let by_digest = |id: &str| {
        search.data(&format!(
            "{{ImageListForDigest(id: \"{id}\", requestedPage: {{sortBy: ALPHABETIC_ASC}}) \
             {{Page {{TotalCount ItemCount}} Results {{{fields}}}}}}}"
        ))["ImageListForDigest"]
            .clone()
    };
    // By a manifest's, a config's and a layer's digest.
    for (what, id, want) in [
        ("app:2.0's manifest", app2.digest.clone(), vec!["app:2.0"]),
        (
            "app:2.0's config",
            app2.manifests[0].config.digest.clone(),
            vec!["app:2.0"],
        ),
        (
            "base's first layer",
            base.manifests[0].layers[0].digest.clone(),
            vec!["app:1.0", "app:2.0", "base:1.0"],
        ),
        (
            "app:1.0's own layer",
            app1.manifests[0].layers[2].digest.clone(),
            vec!["app:1.0"],
        ),
        ("multi's index", multi.digest.clone(), vec!["multi:latest"]),
    ] {
        let r = by_digest(&id);
        let at = format!("ImageListForDigest({what})");
        expect::page(
            &mut f,
            &at,
            &r["Page"],
            want.len() as u64,
            want.len() as u64,
        );
        expect::image_list(&mut f, &at, &r["Results"], &ds, &want);
    }
    // One platform's manifest finds its index, showing that manifest.
    let arm = &multi.manifests[1];
    let r = search.data(&format!(
        "{{ImageListForDigest(id: \"{}\") {{Results {{RepoName Tag Manifests {{Digest}}}}}}}}",
        arm.digest
    ));
    let results = &r["ImageListForDigest"]["Results"];
    if expect::names(results) != ["multi:latest"]
        || results[0]["Manifests"] != json!([{"Digest": arm.digest}])
    {
        f.add("ImageListForDigest(arm64 manifest)", format!("{results}"));
    }

    // Derived and base images, from the other end.
    for (q, image, want) in [
        ("DerivedImageList", "base:1.0", vec!["app:1.0", "app:2.0"]),
        ("BaseImageList", "app:2.0", vec!["base:1.0"]),
        ("BaseImageList", "base:1.0", vec![]),
        ("DerivedImageList", "multi:latest", vec![]),
    ] {
        let r = search.data(&format!(
            "{{{q}(image: \"{image}\", requestedPage: {{sortBy: ALPHABETIC_ASC}}) \
             {{Page {{TotalCount ItemCount}} Results {{{fields}}}}}}}"
        ));
        let at = format!("{q}({image})");
        expect::page(
            &mut f,
            &at,
            &r[q]["Page"],
            want.len() as u64,
            want.len() as u64,
        );
        expect::image_list(&mut f, &at, &r[q]["Results"], &ds, &want);
    }
    // zli's own document for `zli image derived base:1.0`.
    let doc = document("zli-image-derived");
    let q = fill(doc["query"].as_str().expect("q"), "base", "1.0", "");
    let a = search.send(Via::Zli, &q);
    for failure in check_paths(&a.body, &expect_paths(&doc)) {
        f.add("zli image derived base:1.0", failure);
    }
    expect::image_list(
        &mut f,
        "zli image derived base:1.0",
        &a.body["data"]["DerivedImageList"]["Results"],
        &ds,
        &["app:1.0", "app:2.0"],
    );

    // Each image on its own: labels (base), a multi-platform index dated
    // by history (multi), a cosign-only signature (myapp).
    for img in &ds.images {
        let r = search.data(&format!(
            "{{Image(image: \"{}\") {{{fields}}}}}",
            img.name()
        ));
        expect::image(&mut f, "Image", &r["Image"], img);
    }

    // The repositories, newest first by default, with their newest image.
    let r = search.data(
        "{RepoListWithNewestImage {Page {TotalCount ItemCount} Results {Name LastUpdated Size \
         Platforms {Os Arch} Vendors IsStarred IsBookmarked StarCount NewestImage {RepoName Tag \
         Digest Size LastUpdated IsSigned Description Vendor}}}}",
    );
    let l = &r["RepoListWithNewestImage"];
    expect::page(&mut f, "RepoListWithNewestImage", &l["Page"], 4, 4);
    expect::repo_list(
        &mut f,
        "RepoListWithNewestImage",
        &l["Results"],
        &ds,
        &["app", "myapp", "multi", "base"],
        true,
        &|_| Prefs::default(),
    );

    // Referrers by artifact type; an unsigned image has none; signatures
    // stay out of the image lists.
    for (q, want) in [
        (
            format!(
                "{{Referrers(repo: \"app\", digest: \"{}\", type: [\"{NOTATION}\"]) \
                 {{MediaType ArtifactType Size Digest Annotations {{Key Value}}}}}}",
                app1.digest
            ),
            vec![ds.notation.clone()],
        ),
        (
            format!(
                "{{Referrers(repo: \"app\", digest: \"{}\", type: [\"application/spdx+json\"]) \
                 {{Digest}}}}",
                app1.digest
            ),
            vec![],
        ),
        (
            format!(
                "{{Referrers(repo: \"app\", digest: \"{}\") {{Digest}}}}",
                app2.digest
            ),
            vec![],
        ),
    ] {
        let r = search.data(&q);
        expect::referrers(&mut f, &q, &r["Referrers"], &want);
    }
    let r = search.data("{ExpandedRepoInfo(repo: \"myapp\") {Images {Tag}}}");
    if r["ExpandedRepoInfo"]["Images"] != json!([{"Tag": "1.0"}]) {
        f.add(
            "ExpandedRepoInfo(myapp)",
            format!("{r}: the signature is not an image"),
        );
    }
    // The signatures' tags are there all the same.
    for (repo, tag) in [("app", &ds.cosign_tags[0]), ("myapp", &ds.cosign_tags[1])] {
        let tags: Value = reqwest::blocking::get(b.url(&format!("/v2/{repo}/tags/list")))
            .expect("tags")
            .json()
            .expect("json");
        if !tags["tags"]
            .as_array()
            .is_some_and(|t| t.contains(&json!(tag)))
        {
            f.add("tags/list", format!("{repo} has no tag {tag}: {tags}"));
        }
    }
    f.check("image values");
}

/// GlobalSearch: the exact name ranks first, pages count what matched,
/// each sort orders, and the filters filter.
#[test]
fn global_search_ranks_pages_sorts_and_filters() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    let ds = DataSet::push(tmp.path(), &b.addr, None);
    let search = Search::new(&b, None);
    let mut f = Failures::default();
    let none = |_: &str| Prefs::default();
    let repos = |args: &str| {
        search.data(&format!(
            "{{GlobalSearch({args}) {{Page {{TotalCount ItemCount}} Repos {{Name Size \
             LastUpdated Platforms {{Os Arch}} NewestImage {{RepoName Tag IsSigned}}}}}}}}"
        ))["GlobalSearch"]
            .clone()
    };
    for (args, total, want, ordered) in [
        ("query: \"app\"", 2, vec!["app", "myapp"], true),
        (
            "query: \"app\", requestedPage: {limit: 1}",
            2,
            vec!["app"],
            true,
        ),
        (
            "query: \"app\", requestedPage: {limit: 1, offset: 1}",
            2,
            vec!["myapp"],
            true,
        ),
        (
            "query: \"\"",
            4,
            vec!["app", "base", "multi", "myapp"],
            false,
        ),
        (
            "query: \"\", requestedPage: {sortBy: ALPHABETIC_ASC}",
            4,
            vec!["app", "base", "multi", "myapp"],
            true,
        ),
        (
            "query: \"\", requestedPage: {sortBy: ALPHABETIC_DSC}",
            4,
            vec!["myapp", "multi", "base", "app"],
            true,
        ),
        (
            "query: \"\", requestedPage: {sortBy: UPDATE_TIME}",
            4,
            vec!["app", "myapp", "multi", "base"],
            true,
        ),
        (
            "query: \"\", requestedPage: {limit: 2, offset: 1, sortBy: ALPHABETIC_ASC}",
            4,
            vec!["base", "multi"],
            true,
        ),
        (
            "query: \"\", requestedPage: {limit: 2, offset: 3, sortBy: ALPHABETIC_ASC}",
            4,
            vec!["myapp"],
            true,
        ),
        (
            "query: \"\", requestedPage: {limit: 2, offset: 10}",
            4,
            vec![],
            true,
        ),
        ("query: \"nosuch\"", 0, vec![], true),
        (
            "query: \"\", filter: {Arch: [\"arm64\"]}",
            1,
            vec!["multi"],
            true,
        ),
        (
            "query: \"\", filter: {Os: [\"linux\"], Arch: [\"amd64\"]}",
            4,
            vec!["app", "base", "multi", "myapp"],
            false,
        ),
        ("query: \"\", filter: {Os: [\"windows\"]}", 0, vec![], true),
        // Signed means the newest image is: myapp:1.0 is, app:2.0 is not.
        (
            "query: \"\", filter: {HasToBeSigned: true}",
            1,
            vec!["myapp"],
            true,
        ),
    ] {
        let g = repos(args);
        let at = format!("GlobalSearch({args})");
        expect::page(&mut f, &at, &g["Page"], total, want.len() as u64);
        expect::repo_list(&mut f, &at, &g["Repos"], &ds, &want, ordered, &none);
    }

    // `repo:tag` searches the tags of one repository by prefix, `:tag`
    // every repository's tags, a digest every image that holds it.
    let images = |args: &str| {
        search.data(&format!(
            "{{GlobalSearch({args}) {{Page {{TotalCount ItemCount}} Images {{RepoName Tag \
             Digest Size IsSigned Manifests {{Digest Platform {{Os Arch}}}}}}}}}}"
        ))["GlobalSearch"]
            .clone()
    };
    let app1 = ds.app1().digest.clone();
    for (args, want) in [
        ("query: \"app:1\"".to_string(), vec!["app:1.0"]),
        ("query: \"app:\"".to_string(), vec!["app:1.0", "app:2.0"]),
        ("query: \"app:9\"".to_string(), vec![]),
        (
            "query: \":1.0\"".to_string(),
            vec!["app:1.0", "base:1.0", "myapp:1.0"],
        ),
        (format!("query: \"{app1}\""), vec!["app:1.0"]),
        (
            "query: \"app:\", filter: {HasToBeSigned: true}".to_string(),
            vec!["app:1.0"],
        ),
        (
            "query: \"multi:\", filter: {Arch: [\"arm64\"]}".to_string(),
            vec!["multi:latest"],
        ),
        (
            "query: \"base:\", filter: {Arch: [\"arm64\"]}".to_string(),
            vec![],
        ),
    ] {
        let g = images(&args);
        let at = format!("GlobalSearch({args})");
        expect::page(
            &mut f,
            &at,
            &g["Page"],
            want.len() as u64,
            want.len() as u64,
        );
        if want != ["multi:latest"] {
            expect::image_list(&mut f, &at, &g["Images"], &ds, &want);
        } else if expect::names(&g["Images"]) != want {
            f.add(&at, format!("{}", g["Images"]));
        }
    }

    // ImageList sorts and pages images by repository, then tag.
    for (page, total, want) in [
        (
            "{sortBy: ALPHABETIC_DSC}",
            5,
            vec![
                "myapp:1.0",
                "multi:latest",
                "base:1.0",
                "app:2.0",
                "app:1.0",
            ],
        ),
        (
            "{limit: 2, offset: 1, sortBy: ALPHABETIC_ASC}",
            5,
            vec!["app:2.0", "base:1.0"],
        ),
    ] {
        let r = search.data(&format!(
            "{{ImageList(repo: \"\", requestedPage: {page}) {{Page {{TotalCount ItemCount}} \
             Results {{RepoName Tag Digest Size}}}}}}"
        ));
        let at = format!("ImageList({page})");
        expect::page(
            &mut f,
            &at,
            &r["ImageList"]["Page"],
            total,
            want.len() as u64,
        );
        expect::image_list(&mut f, &at, &r["ImageList"]["Results"], &ds, &want);
    }
    f.check("GlobalSearch");
}

/// Manifest pulls become download counts (written in batches, so polled)
/// and order the DOWNLOADS sort, the UI home page's "popular" list.
#[test]
fn pulls_are_counted_as_downloads_and_sort_by_them() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(tmp.path(), json!({}), search_and_ui());
    DataSet::push(tmp.path(), &b.addr, None);
    let search = Search::new(&b, None);
    let counts = || {
        let r = search.data("{GlobalSearch(query: \"\") {Repos {Name DownloadCount}}}");
        let mut repos: BTreeMap<String, u64> = BTreeMap::new();
        for r in r["GlobalSearch"]["Repos"].as_array().expect("repos") {
            repos.insert(
                r["Name"].as_str().expect("name").to_string(),
                r["DownloadCount"].as_u64().expect("count"),
            );
        }
        let l = search.data("{ImageList(repo: \"\") {Results {RepoName Tag DownloadCount}}}");
        let mut images: BTreeMap<String, u64> = BTreeMap::new();
        for i in l["ImageList"]["Results"].as_array().expect("results") {
            images.insert(
                format!(
                    "{}:{}",
                    i["RepoName"].as_str().expect("r"),
                    i["Tag"].as_str().expect("t")
                ),
                i["DownloadCount"].as_u64().expect("count"),
            );
        }
        (repos, images)
    };
    let (repos_before, images_before) = counts();
    assert_eq!(repos_before.len(), 4, "{repos_before:?}");

    let client = reqwest::blocking::Client::new();
    let pulls = [
        ("multi", "latest", 3u64),
        ("base", "1.0", 2),
        ("app", "1.0", 1),
    ];
    for (repo, tag, n) in pulls {
        for _ in 0..n {
            let r = client
                .get(b.url(&format!("/v2/{repo}/manifests/{tag}")))
                .header("Accept", format!("{MANIFEST}, {INDEX}"))
                .send()
                .expect("pull");
            assert_eq!(r.status(), 200, "pull {repo}:{tag}");
            r.bytes().expect("body");
        }
    }
    let mut want_repos = repos_before.clone();
    let mut want_images = images_before.clone();
    for (repo, tag, n) in pulls {
        *want_repos.get_mut(repo).expect("repo") += n;
        *want_images
            .get_mut(&format!("{repo}:{tag}"))
            .expect("image") += n;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = counts();
        if got == (want_repos.clone(), want_images.clone()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "download counts {got:?}, want {want_repos:?} {want_images:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Most downloaded first: repositories, the home page's "popular" three,
    // images.
    let r = search.data(
        "{GlobalSearch(query: \"\", requestedPage: {sortBy: DOWNLOADS}) \
         {Repos {Name DownloadCount}}}",
    );
    let order = expect::repo_names(&r["GlobalSearch"]["Repos"]);
    assert_eq!(order.len(), 4, "{r}");
    descending(&order, &want_repos, &format!("{r}"));
    for repo in r["GlobalSearch"]["Repos"].as_array().expect("repos") {
        let name = repo["Name"].as_str().expect("name");
        assert_eq!(
            repo["DownloadCount"].as_u64(),
            Some(want_repos[name]),
            "{r}"
        );
    }
    let doc = document("zui-home-popular");
    let a = search.send(Via::Zui, doc["query"].as_str().expect("query"));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        check_paths(&a.body, &expect_paths(&doc)),
        Vec::<String>::new()
    );
    let popular = expect::repo_names(&a.body["data"]["GlobalSearch"]["Repos"]);
    assert_eq!(popular.len(), 3, "{}", a.text);
    let least_shown = popular.iter().map(|n| want_repos[n]).min().expect("three");
    for (name, count) in &want_repos {
        assert!(
            popular.contains(name) || *count <= least_shown,
            "{name} ({count} downloads) is not among {popular:?}"
        );
    }
    let r = search.data(
        "{ImageList(repo: \"\", requestedPage: {sortBy: DOWNLOADS}) {Results {RepoName Tag}}}",
    );
    descending(
        &expect::names(&r["ImageList"]["Results"]),
        &want_images,
        &format!("{r}"),
    );
    // A multi-platform image counts its index's pulls.
    let r = search.data("{Image(image: \"multi:latest\") {DownloadCount}}");
    assert_eq!(
        r["Image"]["DownloadCount"],
        json!(want_images["multi:latest"])
    );
}

/// Requires `names` to be every key of `counts`, by count, highest first.
fn descending(names: &[String], counts: &BTreeMap<String, u64>, answer: &str) {
    let mut all: Vec<&String> = names.iter().collect();
    all.sort();
    all.dedup();
    assert_eq!(all, counts.keys().collect::<Vec<_>>(), "{answer}");
    let got: Vec<u64> = names.iter().map(|n| counts[n]).collect();
    assert!(
        got.windows(2).all(|w| w[0] >= w[1]),
        "not by downloads {names:?} {got:?}: {answer}"
    );
}

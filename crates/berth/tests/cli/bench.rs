//! `berth bench` against Berth servers on port 0: a short run of several
//! tests gives complete, error-free reports in every format, and a
//! comparison gives the A/B table. (Speed is reported, never asserted.)

use serde_json::Value;

use crate::support::*;

const QUICK: &str = "^(Get Catalog|Push Monolith 1KB|Push Chunk Streamed 1MB|Pull 1KB|Pull 1MB|Push Manifest|Pull Manifest|List Tags|Pull 75% and Push 25% Mixed 1MB)$";

#[test]
fn a_short_bench_reports_every_test_complete() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let list = berth().args(["bench", "x", "-l"]).output().expect("list");
    let names = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(names.lines().any(|l| l == "Push Monolith 100MB"), "{names}");

    let out = berth()
        .args([
            "bench",
            &b.url(""),
            "-c",
            "2",
            "-n",
            "6",
            "-t",
            QUICK,
            "-o",
            "json",
        ])
        .output()
        .expect("bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = report.as_array().expect("array");
    assert_eq!(rows.len(), 9, "{report}");
    for r in rows {
        assert_eq!(r["completed"], 6, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert_eq!(r["statuses"]["2xx"], 6, "{r}");
        assert!(
            r["requests_per_sec"].as_f64().is_some_and(|v| v > 0.0),
            "{r}"
        );
        let lat = &r["latency_ms"];
        assert!(
            lat["min"].as_f64() <= lat["p50"].as_f64()
                && lat["p50"].as_f64() <= lat["max"].as_f64(),
            "{r}"
        );
        let name = r["test"].as_str().expect("name");
        if name.starts_with("Pull 1") {
            assert!(
                r["ttfb_ms"]["layer"]["p50"]
                    .as_f64()
                    .is_some_and(|v| v > 0.0),
                "{r}"
            );
        }
    }
    // Cleanup removed what the tests pushed, apart from the catalog's
    // repositories and the set-up config blobs: no tags are left.
    let tags: Value = reqwest::blocking::get(b.url("/v2/berth-bench/tags/list"))
        .expect("tags")
        .json()
        .expect("json");
    assert_eq!(tags["tags"], Value::Array(vec![]), "{tags}");

    // zb's ci-cd file.
    let out = berth()
        .args([
            "bench",
            &b.url(""),
            "-n",
            "2",
            "-t",
            "^Pull 1KB$",
            "-o",
            "ci-cd",
            "-d",
        ])
        .arg(tmp.path())
        .output()
        .expect("bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ci: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("ci-cd.json")).expect("ci-cd"))
            .expect("json");
    assert_eq!(ci[0]["name"], "Pull 1KB");
    assert_eq!(ci[0]["unit"], "requests per sec");
    assert!(ci[0]["value"].as_f64().is_some_and(|v| v > 0.0));
}

#[test]
fn compare_alternates_two_registries_and_gives_ratios() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = Berth::start(&tmp.path().join("a"));
    let b = Berth::start(&tmp.path().join("b"));
    let out = berth()
        .args([
            "bench",
            &a.url(""),
            "--compare",
            &b.url(""),
            "--rounds",
            "2",
        ])
        .args(["-c", "2", "-n", "4", "-t", "^(Pull 1KB|Push Monolith 1KB)$"])
        .output()
        .expect("bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("A = {}", a.url(""))), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("Pull 1KB ") && !l.contains('('))
        .expect("ratio row");
    let ratio: f64 = row
        .split_whitespace()
        .nth(4)
        .expect("A/B")
        .parse()
        .expect("number");
    assert!(ratio > 0.0, "{row}");

    // A registry that is not there is a one-line error.
    let out = berth()
        .args(["bench", "http://127.0.0.1:9", "-n", "1", "-t", "Pull 1KB"])
        .output()
        .expect("bench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("berth bench: http://127.0.0.1:9: not a working registry"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // A PATCH size out of range is refused by name.
    let out = berth()
        .args(["bench", "http://127.0.0.1:9", "--chunk-mib", "0"])
        .output()
        .expect("bench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--chunk-mib"), "{err}");
}

/// The search workloads fill a (small) data set and query it without a
/// failure; against a registry without search they are skipped, named.
#[cfg(feature = "search")]
#[test]
fn search_workloads_fill_their_data_set_and_query_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let config = tmp.path().join("search.json");
    std::fs::write(
        &config,
        serde_json::json!({"storage": {"rootDirectory": root},
            "http": {"address": "127.0.0.1", "port": "0"},
            "extensions": {"search": {}}})
        .to_string(),
    )
    .expect("config");
    let b = Berth::start_config(&config);
    let run = |url: &str| {
        berth()
            .args([
                "bench",
                url,
                "-c",
                "2",
                "-n",
                "4",
                "-t",
                "^Search",
                "--search-repos",
                "25",
                "--search-tags",
                "3",
                "--search-big-tags",
                "40",
                "-o",
                "json",
            ])
            .output()
            .expect("bench")
    };
    let out = run(&b.url(""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = report.as_array().expect("array");
    assert_eq!(rows.len(), 4, "{report}");
    for r in rows {
        assert_eq!(r["completed"], 4, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
    }
    // The data set is there for a query of its own: 25 repositories, and
    // the large one with its 40 tags.
    let client = reqwest::blocking::Client::new();
    let total = |query: &str| -> Value {
        client
            .post(b.url("/v2/_zot/ext/search"))
            .json(&serde_json::json!({ "query": query }))
            .send()
            .expect("search")
            .json()
            .expect("json")
    };
    let repos = total("{RepoListWithNewestImage(requestedPage:{limit:1}){Page{TotalCount}}}");
    assert_eq!(
        repos["data"]["RepoListWithNewestImage"]["Page"]["TotalCount"], 26,
        "{repos}"
    );
    let big = total(
        "{ImageList(repo:\"berth-bench-search-big\", requestedPage:{limit:1}){Page{TotalCount}}}",
    );
    assert_eq!(big["data"]["ImageList"]["Page"]["TotalCount"], 40, "{big}");

    let plain = Berth::start(&tmp.path().join("plain"));
    let out = run(&plain.url(""));
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report.as_array().map(Vec::len), Some(0), "{report}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not list the search extension"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

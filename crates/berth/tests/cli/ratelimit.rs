//! `http.ratelimit`: over the limit the answer is 429 `TOOMANYREQUESTS`
//! with `Retry-After`; per-method limits apply to their method only; the
//! health checks are never limited; the limit refills.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[test]
fn requests_over_the_rate_get_429_with_retry_after() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"ratelimit": {"rate": 50, "methods": [{"method": "get", "rate": 2}]}}),
        &[],
    );
    let c = reqwest::blocking::Client::new();
    // Ten GETs at once against a limit of 2/s: some pass, the rest are
    // refused with the error body and a Retry-After.
    let mut limited = 0;
    for _ in 0..10 {
        let r = c.get(b.url("/v2/")).send().expect("get");
        match r.status().as_u16() {
            200 => {}
            429 => {
                limited += 1;
                let retry: u64 = r.headers()["retry-after"]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("seconds");
                assert!((1..=2).contains(&retry), "{retry}");
                let body: serde_json::Value = r.json().expect("json");
                assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert!(limited >= 7, "{limited} of 10 limited");
    // Other methods have only the overall limit; health checks none.
    let r = c
        .post(b.url("/v2/app/blobs/uploads/"))
        .send()
        .expect("post");
    assert_eq!(r.status(), 202);
    for _ in 0..5 {
        assert_eq!(c.get(b.url("/livez")).send().expect("livez").status(), 200);
    }
    // The limit refills.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.get(b.url("/v2/")).send().expect("get").status(), 200);
}

#[test]
fn bad_rates_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (http, want) in [
        (
            json!({"ratelimit": {"rate": 0}}),
            "http.ratelimit.rate: must be above zero",
        ),
        (
            json!({"ratelimit": {"methods": [{"method": "GET", "rate": 0}]}}),
            "http.ratelimit.methods.0.rate: must be above zero",
        ),
        (
            json!({"ratelimit": {"methods": [{"method": "G E T", "rate": 1}]}}),
            "http.ratelimit.methods.0.method:",
        ),
    ] {
        let cfg = tmp.path().join("rl.json");
        std::fs::write(
            &cfg,
            json!({"storage": {"rootDirectory": tmp.path().join("root")}, "http": http})
                .to_string(),
        )
        .expect("write");
        let out = berth().arg("verify").arg(&cfg).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
}

//! The bench's reports: readable text, JSON, zb's `ci-cd.json`, and the
//! A/B table of a comparison.

use std::fmt::Write;

use serde_json::json;

use super::stats::{Percentiles, Summary, ratio};

fn ms(p: &Percentiles) -> String {
    format!(
        "min {:.2}  p50 {:.2}  p75 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms",
        p.min, p.p50, p.p75, p.p90, p.p99, p.max
    )
}

/// One test's figures for each registry, readable.
pub(crate) fn text(row: &[Summary]) -> String {
    let mut out = String::new();
    for s in row {
        let _ = writeln!(out, "{} ({})", s.test, s.registry);
        let _ = writeln!(
            out,
            "  time {:.2} s   completed {}   failed {}   {:.1} req/s   {:.1} MB/s",
            s.seconds, s.completed, s.failed, s.requests_per_sec, s.mb_per_sec
        );
        let c = &s.statuses;
        let _ = writeln!(
            out,
            "  status 2xx {}  3xx {}  4xx {}  5xx {}  errors {}",
            c.s2xx, c.s3xx, c.s4xx, c.s5xx, c.errors
        );
        let _ = writeln!(out, "  latency {}", ms(&s.latency_ms));
        if let Some(t) = &s.ttfb_ms {
            for (name, p) in [
                ("manifest HEAD", &t.manifest_head),
                ("manifest GET", &t.manifest_get),
                ("config", &t.config),
                ("layer", &t.layer),
            ] {
                let _ = writeln!(out, "  ttfb {name:13} {}", ms(p));
            }
        }
    }
    out.push('\n');
    out
}

/// Every figure, as JSON.
pub(crate) fn json(all: &[Vec<Summary>]) -> String {
    let flat: Vec<&Summary> = all.iter().flatten().collect();
    serde_json::to_string_pretty(&flat).unwrap_or_else(|_| "[]".into())
}

/// zb's `ci-cd.json`: requests per second of each test (of the first
/// registry).
pub(crate) fn ci_cd(all: &[Vec<Summary>]) -> String {
    let entries: Vec<serde_json::Value> = all
        .iter()
        .filter_map(|row| row.first())
        .map(|s| json!({"name": s.test, "unit": "requests per sec", "value": s.requests_per_sec}))
        .collect();
    serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into())
}

/// The A/B table: requests/s of each, their ratio, and the ratio of p50
/// latencies (below 1: A answers faster).
pub(crate) fn comparison(all: &[Vec<Summary>]) -> String {
    let mut out = String::new();
    let Some((a, b)) = all
        .first()
        .and_then(|r| Some((r.first()?.registry.clone(), r.get(1)?.registry.clone())))
    else {
        return out;
    };
    let _ = writeln!(out, "A = {a}\nB = {b}");
    let _ = writeln!(
        out,
        "{:<52} {:>10} {:>10} {:>8} {:>10}",
        "test", "A req/s", "B req/s", "A/B", "p50 A/B"
    );
    for row in all {
        let (Some(x), Some(y)) = (row.first(), row.get(1)) else {
            continue;
        };
        let fmt = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        let _ = writeln!(
            out,
            "{:<52} {:>10.1} {:>10.1} {:>8} {:>10}",
            x.test,
            x.requests_per_sec,
            y.requests_per_sec,
            fmt(ratio(x.requests_per_sec, y.requests_per_sec)),
            fmt(ratio(x.latency_ms.p50, y.latency_ms.p50)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::stats::{Outcome, Sample};
    use super::*;

    fn summary(registry: &str, n: usize, ms: u64) -> Summary {
        let samples: Vec<Sample> = (0..n)
            .map(|_| Sample {
                latency: Duration::from_millis(ms),
                outcome: Outcome::Status(201),
                bytes: 1000,
                pull: None,
            })
            .collect();
        Summary::of(
            "Push Monolith 1KB",
            registry,
            &samples,
            Duration::from_secs(1),
        )
    }

    #[test]
    fn formats() {
        let all = vec![vec![summary("http://a", 30, 2), summary("http://b", 10, 4)]];
        let cmp = comparison(&all);
        assert!(cmp.contains("A = http://a"), "{cmp}");
        let line = cmp.lines().last().expect("row");
        assert!(line.contains(" 30.0 ") && line.contains(" 10.0 "), "{line}");
        assert!(line.contains("3.00") && line.contains("0.50"), "{line}");
        let ci: serde_json::Value = serde_json::from_str(&ci_cd(&all)).expect("json");
        assert_eq!(
            ci,
            json!([{"name": "Push Monolith 1KB", "unit": "requests per sec", "value": 30.0}])
        );
        let j: serde_json::Value = serde_json::from_str(&json(&all)).expect("json");
        assert_eq!(j[1]["registry"], "http://b");
        assert_eq!(j[0]["statuses"]["2xx"], 30);
        assert_eq!(j[0]["latency_ms"]["p99"], 2.0);
        let t = text(&all[0]);
        assert!(
            t.contains("completed 30") && t.contains("status 2xx 30"),
            "{t}"
        );
    }
}

//! Figures of one test run: counts by status class, latency percentiles,
//! throughput, and for pulls the time to first byte of each step.

use std::time::Duration;

use serde::Serialize;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An HTTP status (the last one of the operation).
    Status(u16),
    /// No answer: connection refused, reset, timed out.
    Error,
}

/// Times to first byte of the steps of a pull.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PullTimes {
    pub(crate) manifest_head: Duration,
    pub(crate) manifest_get: Duration,
    pub(crate) config: Duration,
    pub(crate) layer: Duration,
}

/// One request (one operation: a push of an image counts once).
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) latency: Duration,
    pub(crate) outcome: Outcome,
    /// Payload bytes moved.
    pub(crate) bytes: u64,
    pub(crate) pull: Option<PullTimes>,
}

impl Sample {
    pub(crate) fn ok(&self) -> bool {
        matches!(self.outcome, Outcome::Status(s) if (200..300).contains(&s))
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) min: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    pub(crate) max: f64,
}

/// The `p`th percentile (nearest rank) of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Percentiles {
    /// Of durations, in milliseconds.
    pub(crate) fn of(values: impl IntoIterator<Item = Duration>) -> Self {
        let mut ms: Vec<f64> = values
            .into_iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        Self {
            min: ms.first().copied().unwrap_or(0.0),
            p50: percentile(&ms, 50.0),
            p75: percentile(&ms, 75.0),
            p90: percentile(&ms, 90.0),
            p99: percentile(&ms, 99.0),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Answers by status class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Classes {
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    pub(crate) errors: u64,
}

/// Times to first byte of pull steps, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct PullTtfb {
    pub(crate) manifest_head: Percentiles,
    pub(crate) manifest_get: Percentiles,
    pub(crate) config: Percentiles,
    pub(crate) layer: Percentiles,
}

/// The figures of a test against one registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Summary {
    pub(crate) test: String,
    pub(crate) registry: String,
    pub(crate) seconds: f64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) requests_per_sec: f64,
    pub(crate) mb_per_sec: f64,
    pub(crate) statuses: Classes,
    pub(crate) latency_ms: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ttfb_ms: Option<PullTtfb>,
}

impl Summary {
    /// Of `samples` that took `wall` in all.
    pub(crate) fn of(test: &str, registry: &str, samples: &[Sample], wall: Duration) -> Self {
        let mut statuses = Classes::default();
        for s in samples {
            match s.outcome {
                Outcome::Status(200..=299) => statuses.s2xx += 1,
                Outcome::Status(300..=399) => statuses.s3xx += 1,
                Outcome::Status(400..=499) => statuses.s4xx += 1,
                Outcome::Status(_) => statuses.s5xx += 1,
                Outcome::Error => statuses.errors += 1,
            }
        }
        let completed = samples.iter().filter(|s| s.ok()).count() as u64;
        let secs = wall.as_secs_f64().max(f64::MIN_POSITIVE);
        let bytes: u64 = samples.iter().filter(|s| s.ok()).map(|s| s.bytes).sum();
        let pulls: Vec<PullTimes> = samples
            .iter()
            .filter(|s| s.ok())
            .filter_map(|s| s.pull)
            .collect();
        let ttfb = (!pulls.is_empty()).then(|| PullTtfb {
            manifest_head: Percentiles::of(pulls.iter().map(|p| p.manifest_head)),
            manifest_get: Percentiles::of(pulls.iter().map(|p| p.manifest_get)),
            config: Percentiles::of(pulls.iter().map(|p| p.config)),
            layer: Percentiles::of(pulls.iter().map(|p| p.layer)),
        });
        Self {
            test: test.to_string(),
            registry: registry.to_string(),
            seconds: wall.as_secs_f64(),
            completed,
            failed: samples.len() as u64 - completed,
            requests_per_sec: completed as f64 / secs,
            mb_per_sec: bytes as f64 / 1e6 / secs,
            statuses,
            latency_ms: Percentiles::of(samples.iter().filter(|s| s.ok()).map(|s| s.latency)),
            ttfb_ms: ttfb,
        }
    }
}

/// A/B of a figure, or `None` when B is zero.
pub(crate) fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64, status: u16) -> Sample {
        Sample {
            latency: Duration::from_millis(ms),
            outcome: Outcome::Status(status),
            bytes: 1_000_000,
            pull: None,
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        let p = Percentiles::of([3, 1, 2, 4].map(Duration::from_millis));
        assert_eq!((p.min, p.p50, p.p75, p.max), (1.0, 2.0, 3.0, 4.0));
    }

    #[test]
    fn summaries_count_classes_and_throughput() {
        let samples = vec![
            sample(10, 201),
            sample(20, 201),
            sample(30, 404),
            sample(40, 500),
            Sample {
                latency: Duration::from_millis(5),
                outcome: Outcome::Error,
                bytes: 0,
                pull: None,
            },
        ];
        let s = Summary::of("t", "r", &samples, Duration::from_secs(2));
        assert_eq!(s.completed, 2);
        assert_eq!(s.failed, 3);
        assert_eq!(
            s.statuses,
            Classes {
                s2xx: 2,
                s3xx: 0,
                s4xx: 1,
                s5xx: 1,
                errors: 1
            }
        );
        assert_eq!(s.requests_per_sec, 1.0);
        assert_eq!(s.mb_per_sec, 1.0, "only successful bytes count");
        assert_eq!(s.latency_ms.max, 20.0, "latency of successes only");
        assert!(s.ttfb_ms.is_none());
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
    }
}

//! Config value types that accept zot's spellings: ports as strings or
//! numbers, durations as Go duration strings ("1h30m") or nanoseconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A TCP port, written as `"8080"` (zot) or `8080`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortValue(pub u16);

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let n = match &v {
            serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        };
        match n {
            Some(n) if n <= u64::from(u16::MAX) => Ok(PortValue(n as u16)),
            _ => Err(serde::de::Error::custom(format!(
                "invalid port {v}: expected a number from 0 to 65535"
            ))),
        }
    }
}

/// A duration, written as a Go duration string (`"1h"`, `"90m"`,
/// `"1h30m0s"`, `"500ms"`) or an integer number of nanoseconds (how zot's
/// JSON encodes `time.Duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let parsed = match &v {
            serde_json::Value::String(s) => parse_go_duration(s),
            serde_json::Value::Number(n) => n.as_u64().map(Duration::from_nanos),
            _ => None,
        };
        parsed.map(DurationValue).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {v}: expected e.g. \"1h\", \"30m\", \"1h30m\" or \"500ms\""
            ))
        })
    }
}

/// Parses a non-negative Go duration: a sequence of decimal numbers, each
/// with a unit among `ns us µs ms s m h`.
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s);
        assert_eq!(d("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("2h0m0s"), Some(Duration::from_secs(7200)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        for bad in ["", "h", "1", "1x", "-1h", "1h-", "abc", "1..2s"] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
    }
}

/// zot's `gcTimeWindow`: `"HH:MM - HH:MM"` (or with dots, `"01.00 -
/// 08.00"`; spaces optional), in the server's local time zone as in zot
/// (UTC in a container without one), the end excluded; a window may cross
/// midnight (`"23:30 - 02:15"`). Empty: any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Minutes after midnight.
    pub start: u32,
    pub end: u32,
}

impl TimeWindow {
    /// Whether `minute` (after midnight) falls inside the window.
    pub fn contains(&self, minute: u32) -> bool {
        if *self == Self::ALWAYS {
            true
        } else if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Minutes from `minute` until the window opens (0 inside it).
    pub fn minutes_until_open(&self, minute: u32) -> u32 {
        if self.contains(minute) {
            0
        } else {
            (self.start + 24 * 60 - minute) % (24 * 60)
        }
    }

    /// Any time of day.
    pub const ALWAYS: Self = Self { start: 0, end: 0 };

    fn parse(s: &str) -> Option<Self> {
        if s.trim().is_empty() {
            return Some(Self::ALWAYS);
        }
        let clock = |t: &str| {
            let (h, m) = t.trim().split_once([':', '.'])?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
        };
        let (a, b) = s.split_once('-')?;
        let (start, end) = (clock(a)?, clock(b)?);
        (start != end).then_some(Self { start, end })
    }
}

impl<'de> Deserialize<'de> for TimeWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid time window {s:?}: expected \"HH:MM - HH:MM\" (a different start and end, e.g. \"01:00 - 05:00\")"
            ))
        })
    }
}

#[cfg(test)]
mod window_tests {
    use super::TimeWindow;

    #[test]
    fn windows_parse_as_zot_writes_them_and_may_cross_midnight() {
        let w = TimeWindow::parse("01.00 - 08.00").expect("dots");
        assert!(w.contains(60) && w.contains(7 * 60 + 59));
        assert!(!w.contains(59) && !w.contains(8 * 60));
        assert_eq!(w.minutes_until_open(0), 60);
        assert_eq!(w.minutes_until_open(9 * 60), 16 * 60);
        assert!(TimeWindow::parse("").expect("empty").contains(12 * 60));
        let night = TimeWindow::parse("23:30-02:15").expect("colons");
        assert!(night.contains(23 * 60 + 30) && night.contains(60));
        assert!(!night.contains(2 * 60 + 15) && !night.contains(12 * 60));
        for bad in [
            "24.00 - 08.00",
            "10.60 - 12.00",
            "10.00 12.00",
            "08.00 - 08.00",
            "bad - 08.00",
            "1:00 - 2:00",
        ] {
            assert!(TimeWindow::parse(bad).is_none(), "{bad}");
        }
    }
}

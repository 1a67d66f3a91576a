//! The two range headers of the API: `Content-Range` on upload chunks and
//! `Range` on blob reads.

use crate::ParseError;

/// Parses a chunk's `Content-Range`: `<start>-<end>` (inclusive), also
/// accepting the `bytes ` / `bytes=` prefixes and a `/<total>` suffix that
/// clients send in the wild.
pub fn parse_content_range(s: &str) -> Result<(u64, u64), ParseError> {
    let bad = || ParseError::new("Content-Range", format!("{s:?} is not <start>-<end>"));
    let s = s.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split_once('/').map_or(s, |(r, _)| r);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = parse_u64(a).ok_or_else(bad)?;
    let end = parse_u64(b).ok_or_else(bad)?;
    // `end - start + 1` must fit in a u64.
    if end < start || end == u64::MAX {
        return Err(bad());
    }
    Ok((start, end))
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What a `Range` request header asks of a blob of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable single range: serve the whole blob (RFC 9110 lets a server
    /// ignore a header it does not support, e.g. several ranges).
    Full,
    /// Serve bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// A well-formed range that lies outside the blob: answer 416.
    Unsatisfiable,
}

/// Interprets a `Range` header against a blob of `len` bytes.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Unsatisfiable;
    };
    match (parse_u64(a), parse_u64(b)) {
        (Some(start), Some(end)) if start <= end => {
            if start >= len {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
        (Some(start), None) if b.is_empty() => {
            if start >= len {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start,
                    end: len - 1,
                }
            }
        }
        (None, Some(suffix)) if a.is_empty() => {
            if suffix == 0 || len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start: len.saturating_sub(suffix),
                    end: len - 1,
                }
            }
        }
        _ => RangeRequest::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn content_range_table() {
        assert_eq!(parse_content_range("0-99"), Ok((0, 99)));
        assert_eq!(parse_content_range("bytes 5-9/100"), Ok((5, 9)));
        assert_eq!(parse_content_range("bytes=5-9"), Ok((5, 9)));
        for bad in [
            "",
            "-",
            "5",
            "9-5",
            "a-b",
            "-5",
            "5-",
            "1-2-3",
            "+1-2",
            "99999999999999999999-1",
        ] {
            assert!(parse_content_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn range_table() {
        assert_eq!(parse_range("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(
            parse_range("bytes=90-200", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-1000", 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=x", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
    }

    proptest::proptest! {
        #[test]
        fn never_panic(s in ".*", len in 0u64..1000) {
            let _ = parse_content_range(&s);
            if let Partial { start, end } = parse_range(&s, len) {
                proptest::prop_assert!(start <= end && end < len);
            }
        }
    }
}

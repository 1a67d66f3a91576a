//! An advisory's severity, from what OSV records carry: CVSS vectors
//! (scored with the `cvss` crate), else the words databases use.

use std::str::FromStr;

use cvss::Cvss;

use crate::Severity;

/// The severity of a list of OSV `severity` entries' CVSS vectors: a v3.x
/// one first (the version NVD and zot's own scanner band, so findings
/// agree with theirs), else v4, else v2; `None` when none scores.
pub(super) fn from_vectors<'a>(
    entries: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Option<Severity> {
    let scored = |kind: &str| {
        entries
            .clone()
            .filter(|(k, _)| *k == kind)
            .find_map(|(_, vector)| score(vector))
    };
    if let Some(s) = scored("CVSS_V3") {
        return Some(Severity::from_score(s));
    }
    if let Some(s) = scored("CVSS_V4") {
        return Some(Severity::from_score(s));
    }
    // CVSS v2 has no critical band: 7.0 and up is high.
    scored("CVSS_V2").map(|s| match Severity::from_score(s) {
        Severity::Critical => Severity::High,
        other => other,
    })
}

/// A CVSS vector's base score, when it parses and scores.
fn score(vector: &str) -> Option<f64> {
    let vector = vector.trim().trim_start_matches('(').trim_end_matches(')');
    let cvss = Cvss::from_str(vector).ok()?;
    let score = cvss.score();
    (score.is_finite() && score > 0.0).then_some(score)
}

/// The severity a database's word names: GHSA's `LOW`/`MODERATE`/`HIGH`/
/// `CRITICAL`, Ubuntu's priorities (`negligible` … `critical`), Debian's
/// urgencies (`unimportant`, `low`, `medium`, `high`), Red Hat's
/// `important`; `None` for another word (`not yet assigned`, `unknown`).
pub(super) fn from_word(word: &str) -> Option<Severity> {
    Some(
        match word
            .trim()
            .trim_end_matches('*')
            .to_ascii_lowercase()
            .as_str()
        {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "unimportant" | "minor" => Severity::Low,
            _ => return None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_score_and_band() {
        let v31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
        let v40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N";
        let v2 = "AV:N/AC:L/Au:N/C:C/I:C/A:C";
        assert_eq!(score(v31), Some(9.8));
        assert_eq!(
            from_vectors([("CVSS_V3", v31)].into_iter()),
            Some(Severity::Critical)
        );
        assert_eq!(score(v40), Some(6.9));
        assert_eq!(
            from_vectors([("CVSS_V4", v40)].into_iter()),
            Some(Severity::Medium)
        );
        // v3 is preferred to v4, v4 to v2.
        let both = [("CVSS_V4", v40), ("CVSS_V3", v31)];
        assert_eq!(from_vectors(both.into_iter()), Some(Severity::Critical));
        let old = [("CVSS_V2", v2), ("CVSS_V4", v40)];
        assert_eq!(from_vectors(old.into_iter()), Some(Severity::Medium));
        // A v2 10.0 is high: v2 has no critical band.
        assert_eq!(score(v2), Some(10.0));
        assert_eq!(
            from_vectors([("CVSS_V2", v2)].into_iter()),
            Some(Severity::High)
        );
        assert_eq!(
            from_vectors([("CVSS_V2", "(AV:N/AC:M/Au:N/C:P/I:N/A:N)")].into_iter()),
            Some(Severity::Medium)
        );
        // Broken vectors are skipped, not fatal.
        let broken = [
            ("CVSS_V3", "CVSS:3.1/AV:N"),
            ("CVSS_V3", "garbage"),
            ("CVSS_V4", "CVSS:4.0/AV:N"),
        ];
        assert_eq!(from_vectors(broken.into_iter()), None);
        assert_eq!(from_vectors([("Ubuntu", "high")].into_iter()), None);
    }

    #[test]
    fn database_words() {
        let table = [
            ("MODERATE", Some(Severity::Medium)),
            ("CRITICAL", Some(Severity::Critical)),
            ("negligible", Some(Severity::Low)),
            ("unimportant", Some(Severity::Low)),
            ("medium", Some(Severity::Medium)),
            ("low**", Some(Severity::Low)),
            ("Important", Some(Severity::High)),
            ("not yet assigned", None),
            ("", None),
        ];
        for (word, want) in table {
            assert_eq!(from_word(word), want, "{word}");
        }
    }
}

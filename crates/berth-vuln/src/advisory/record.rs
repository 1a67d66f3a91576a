//! One OSV JSON record to an [`Advisory`]: lean serde structs of only the
//! fields scanning needs (every other field is skipped unread), then the
//! compact form.

use serde::{Deserialize, Deserializer};

use super::normalize_name;
use super::severity::{from_vectors, from_word};
use super::{Advisory, AdvisoryError, AffectedPackage, DETAILS_LIMIT, Event, Range, RangeKind};
use crate::Severity;
use crate::matching::in_range;
use crate::version::Scheme;

/// The longest summary made from the details' first line, in bytes.
const SUMMARY_FROM_DETAILS_LIMIT: usize = 200;

/// An absent or `null` field as its default (some databases write
/// `"aliases": null`).
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct RawRecord {
    id: String,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    aliases: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    upstream: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    severity: Vec<RawSeverity>,
    #[serde(default, deserialize_with = "nullable")]
    affected: Vec<RawAffected>,
    #[serde(default, deserialize_with = "nullable")]
    references: Vec<RawReference>,
    #[serde(default)]
    database_specific: Option<RawSpecific>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default, deserialize_with = "nullable")]
    severity: Vec<RawSeverity>,
    #[serde(default, deserialize_with = "nullable")]
    ranges: Vec<RawRange>,
    #[serde(default, deserialize_with = "nullable")]
    versions: Vec<String>,
    #[serde(default)]
    ecosystem_specific: Option<RawSpecific>,
    #[serde(default)]
    database_specific: Option<RawSpecific>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

#[derive(Deserialize)]
struct RawReference {
    #[serde(default)]
    url: Option<String>,
}

/// The severity words of a `database_specific` or `ecosystem_specific`
/// block (GHSA's `severity`, Debian's `urgency`); anything else in the
/// block is skipped.
#[derive(Deserialize)]
struct RawSpecific {
    #[serde(default)]
    severity: Option<serde_json::Value>,
    #[serde(default)]
    urgency: Option<serde_json::Value>,
}

impl RawSpecific {
    fn word(&self) -> Option<Severity> {
        [&self.severity, &self.urgency]
            .into_iter()
            .filter_map(|v| v.as_ref()?.as_str())
            .find_map(from_word)
    }
}

fn vectors(list: &[RawSeverity]) -> impl Iterator<Item = (&str, &str)> + Clone {
    list.iter().map(|s| (s.kind.as_str(), s.score.as_str()))
}

/// Reads one OSV record. A withdrawn advisory is
/// [`AdvisoryError::Withdrawn`], so the caller can skip it.
pub fn parse_record(json: &[u8]) -> Result<Advisory, AdvisoryError> {
    let raw: RawRecord = serde_json::from_slice(json)?;
    if raw
        .withdrawn
        .as_deref()
        .is_some_and(|w| !w.trim().is_empty())
    {
        return Err(AdvisoryError::Withdrawn { id: raw.id });
    }
    let cve = cve_id(&raw);

    // Severity, in the order of preference: the record's CVSS, a
    // package's, the record's words, a package's words.
    let record_cvss = from_vectors(vectors(&raw.severity));
    let record_word = raw
        .database_specific
        .as_ref()
        .and_then(RawSpecific::word)
        .or_else(|| worst_word(&raw.severity));
    let package_cvss = |a: &RawAffected| from_vectors(vectors(&a.severity));
    let package_word = |a: &RawAffected| {
        [&a.ecosystem_specific, &a.database_specific]
            .into_iter()
            .filter_map(|s| s.as_ref()?.word())
            .min()
            .or_else(|| worst_word(&a.severity))
    };
    let severity = record_cvss
        .or_else(|| raw.affected.iter().filter_map(package_cvss).min())
        .or(record_word)
        .or_else(|| raw.affected.iter().filter_map(package_word).min())
        .unwrap_or(Severity::Unknown);

    let affected = raw
        .affected
        .iter()
        .filter_map(|a| {
            let package = a.package.as_ref()?;
            let severity = record_cvss
                .or_else(|| package_cvss(a))
                .or(record_word)
                .or_else(|| package_word(a))
                .unwrap_or(Severity::Unknown);
            affected_package(package, a, severity)
        })
        .collect();

    let details = raw.details.unwrap_or_default();
    let summary = match raw.summary.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => cap(
            details.trim().lines().next().unwrap_or_default(),
            SUMMARY_FROM_DETAILS_LIMIT,
        ),
    };
    Ok(Advisory {
        id: raw.id,
        cve,
        summary,
        details: cap(&details, DETAILS_LIMIT),
        reference: raw.references.into_iter().find_map(|r| r.url),
        severity,
        affected,
    })
}

/// The worst of Ubuntu's priorities in a `severity` list.
fn worst_word(list: &[RawSeverity]) -> Option<Severity> {
    list.iter()
        .filter(|s| s.kind == "Ubuntu")
        .filter_map(|s| from_word(&s.score))
        .min()
}

/// The CVE the record is about: its id, else its first CVE alias, else
/// its only upstream CVE (Ubuntu's and Debian's CVE records), else its id.
fn cve_id(raw: &RawRecord) -> String {
    let is_cve = |s: &&String| s.starts_with("CVE-");
    if raw.id.starts_with("CVE-") {
        return raw.id.clone();
    }
    if let Some(alias) = raw.aliases.iter().find(is_cve) {
        return alias.clone();
    }
    let mut upstream = raw.upstream.iter().filter(is_cve);
    match (upstream.next(), upstream.next()) {
        (Some(only), None) => only.clone(),
        _ => raw.id.clone(),
    }
}

/// `s` cut to at most `limit` bytes at a character boundary, marked with
/// `…` when cut.
fn cap(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let ellipsis = '…';
    let mut end = limit.saturating_sub(ellipsis.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_owned();
    out.push(ellipsis);
    out
}

fn affected_package(
    package: &RawPackage,
    raw: &RawAffected,
    severity: Severity,
) -> Option<AffectedPackage> {
    let ranges: Vec<Range> = raw
        .ranges
        .iter()
        .filter_map(|r| {
            let kind = match r.kind.as_str() {
                "SEMVER" => RangeKind::Semver,
                "ECOSYSTEM" => RangeKind::Ecosystem,
                // GIT ranges need the repository's commit graph.
                _ => return None,
            };
            let events: Vec<Event> = r
                .events
                .iter()
                .flat_map(|e| {
                    // One kind per event, says the schema; keep all if not.
                    [
                        e.introduced.clone().map(Event::Introduced),
                        e.fixed.clone().map(Event::Fixed),
                        e.last_affected.clone().map(Event::LastAffected),
                        e.limit.clone().map(Event::Limit),
                    ]
                })
                .flatten()
                .collect();
            events
                .iter()
                .any(|e| matches!(e, Event::Introduced(_)))
                .then_some(Range { kind, events })
        })
        .collect();
    // Listed versions the ranges already cover need not be kept (OSV
    // expands ranges into such lists, hundreds of versions long).
    let scheme = Scheme::for_ecosystem(&package.ecosystem);
    let mut versions: Vec<String> = raw
        .versions
        .iter()
        .filter(|v| {
            !ranges
                .iter()
                .any(|r| in_range(r, scheme, v.as_str()).is_some())
        })
        .cloned()
        .collect();
    versions.dedup();
    if ranges.is_empty() && versions.is_empty() {
        return None;
    }
    Some(AffectedPackage {
        ecosystem: package.ecosystem.clone(),
        name: normalize_name(&package.ecosystem, &package.name).into_owned(),
        severity,
        ranges,
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_at_a_character_boundary() {
        assert_eq!(cap("short", 10), "short");
        let long = "é".repeat(10);
        let capped = cap(&long, 8);
        assert!(capped.len() <= 8, "{capped}");
        assert_eq!(capped, "éé…");
    }

    #[test]
    fn cve_from_id_alias_or_single_upstream() {
        let record = |json: &str| parse_record(json.as_bytes()).map(|a| a.cve);
        assert_eq!(
            record(r#"{"id":"CVE-2024-1"}"#).ok().as_deref(),
            Some("CVE-2024-1")
        );
        assert_eq!(
            record(r#"{"id":"GHSA-x","aliases":["PYSEC-1","CVE-2024-2"]}"#)
                .ok()
                .as_deref(),
            Some("CVE-2024-2")
        );
        assert_eq!(
            record(r#"{"id":"UBUNTU-CVE-2024-3","upstream":["CVE-2024-3"]}"#)
                .ok()
                .as_deref(),
            Some("CVE-2024-3")
        );
        assert_eq!(
            record(r#"{"id":"DSA-1-1","upstream":["CVE-2024-4","CVE-2024-5"]}"#)
                .ok()
                .as_deref(),
            Some("DSA-1-1")
        );
        assert_eq!(
            record(r#"{"id":"GO-2024-1","aliases":null}"#)
                .ok()
                .as_deref(),
            Some("GO-2024-1")
        );
    }
}

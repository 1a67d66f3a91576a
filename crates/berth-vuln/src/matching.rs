//! Which advisories affect which installed packages, by OSV's evaluation
//! rules, and the findings a scan reports.
//!
//! A package is affected when an advisory's entry for its ecosystem (or
//! the release-less one) and name lists its version, or a range holds it:
//! the range's events sorted in its order (`SEMVER` precedence, or the
//! ecosystem's for `ECOSYSTEM`), the version is affected after an
//! `introduced` at or below it (`0`: the first version) until a `fixed` at
//! or below it or a `last_affected` below it; with `limit` events, only
//! below one of them (`*`: no limit). A range the order cannot read (an
//! ecosystem without an order here, an event's version not of the
//! ecosystem) is not evaluated; an installed version the order cannot
//! read only matches listed versions exactly.

use std::cmp::Ordering;
use std::collections::HashSet;

use crate::advisory::{
    Advisory, Event, Range, RangeKind, advisory_ecosystems, ecosystem_matches, normalize_name,
};
use crate::version::{Scheme, compare_semver};
use crate::{Finding, Package, Severity};

/// How an advisory affects a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// The lowest version that fixes it, where the advisory names one.
    pub fixed_version: Option<String>,
    /// The worst severity of the advisory's entries that affect it.
    pub severity: Severity,
}

/// Whether `version` is in `range` (`scheme` ordering `ECOSYSTEM`
/// ranges): `Some` with the `fixed` event that ends its stretch of the
/// range, if any; `None` when it is not in the range or the range cannot
/// be evaluated.
pub(crate) fn in_range<'r>(
    range: &'r Range,
    scheme: Option<Scheme>,
    version: &str,
) -> Option<Option<&'r str>> {
    let cmp = |a: &str, b: &str| match range.kind {
        RangeKind::Semver => compare_semver(a, b),
        RangeKind::Ecosystem => scheme?.compare(a, b),
    };
    cmp(version, version)?;
    let is_zero = |e: &Event| matches!(e, Event::Introduced(v) if v == "0");
    let mut events: Vec<&Event> = Vec::with_capacity(range.events.len());
    let mut limits = false;
    let mut below_a_limit = false;
    for event in &range.events {
        if let Event::Limit(limit) = event {
            limits = true;
            below_a_limit |= limit.contains('*') || cmp(version, limit) == Some(Ordering::Less);
            continue;
        }
        if !is_zero(event) {
            cmp(event.version(), event.version())?;
        }
        events.push(event);
    }
    if limits && !below_a_limit {
        return None;
    }
    let rank = |e: &Event| match e {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) | Event::Limit(_) => 2,
    };
    events.sort_by(|a, b| {
        let by_version = match (is_zero(a), is_zero(b)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => cmp(a.version(), b.version()).unwrap_or(Ordering::Equal),
        };
        by_version.then_with(|| rank(a).cmp(&rank(b)))
    });
    let at_or_above = |v: &str| cmp(version, v).is_some_and(Ordering::is_ge);
    let mut affected = false;
    let mut fixed = None;
    for event in events {
        match event {
            Event::Introduced(v) if v == "0" || at_or_above(v) => {
                affected = true;
                fixed = None;
            }
            Event::Fixed(v) if at_or_above(v) => affected = false,
            Event::Fixed(v) if affected && fixed.is_none() => fixed = Some(v.as_str()),
            Event::LastAffected(v) if cmp(version, v) == Some(Ordering::Greater) => {
                affected = false
            }
            _ => {}
        }
    }
    affected.then_some(fixed)
}

/// Whether `advisory` affects `package` (its [`Package::advisory_name`]
/// in its ecosystem, at its version), and the version that fixes it.
pub fn affects(advisory: &Advisory, package: &Package) -> Option<Affected> {
    let name = normalize_name(&package.ecosystem, package.advisory_name());
    let scheme = Scheme::for_ecosystem(&package.ecosystem);
    let installed = package.version.as_str();
    let mut severity = None;
    let mut fixed: Option<&str> = None;
    for entry in &advisory.affected {
        if entry.name != name || !ecosystem_matches(&package.ecosystem, &entry.ecosystem) {
            continue;
        }
        let mut hit = entry.versions.iter().any(|v| {
            v == installed || scheme.and_then(|s| s.compare(v, installed)) == Some(Ordering::Equal)
        });
        for range in &entry.ranges {
            if let Some(fix) = in_range(range, scheme, installed) {
                hit = true;
                fixed = lowest(scheme, fixed, fix);
            }
        }
        if hit {
            severity = Some(severity.map_or(entry.severity, |s: Severity| s.min(entry.severity)));
        }
    }
    Some(Affected {
        fixed_version: fixed.map(str::to_owned),
        severity: severity?,
    })
}

/// The lower of two fixed versions (either, where one is missing or the
/// two do not compare).
fn lowest<'a>(scheme: Option<Scheme>, a: Option<&'a str>, b: Option<&'a str>) -> Option<&'a str> {
    match (a, b) {
        (Some(x), Some(y)) => {
            let order = scheme
                .and_then(|s| s.compare(x, y))
                .or_else(|| compare_semver(x, y));
            Some(if order == Some(Ordering::Greater) {
                y
            } else {
                x
            })
        }
        (x, y) => x.or(y),
    }
}

/// The findings of `packages`: one per advisory affecting a package, the
/// advisories of each of its ecosystem's keys ([`advisory_ecosystems`],
/// [`normalize_name`] of [`Package::advisory_name`]) fetched by `lookup`.
/// Advisories of one package sharing a CVE make one finding: the worst
/// severity's (the lower advisory id on a tie), with the lowest fixed
/// version of them all. Sorted by severity, worst first, then CVE id.
pub fn findings(
    packages: &[Package],
    lookup: impl Fn(&str, &str) -> Vec<Advisory>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for package in packages {
        let name = normalize_name(&package.ecosystem, package.advisory_name());
        let scheme = Scheme::for_ecosystem(&package.ecosystem);
        let mut seen = HashSet::new();
        let mut mine: Vec<Finding> = Vec::new();
        for ecosystem in advisory_ecosystems(&package.ecosystem) {
            for advisory in lookup(&ecosystem, &name) {
                if !seen.insert(advisory.id.clone()) {
                    continue;
                }
                let Some(hit) = affects(&advisory, package) else {
                    continue;
                };
                let finding = Finding {
                    id: advisory.cve,
                    advisory: advisory.id,
                    title: advisory.summary,
                    description: advisory.details,
                    reference: advisory.reference,
                    severity: hit.severity,
                    package: package.clone(),
                    fixed_version: hit.fixed_version,
                };
                match mine.iter_mut().find(|f| f.id == finding.id) {
                    Some(kept) => merge(kept, finding, scheme),
                    None => mine.push(finding),
                }
            }
        }
        out.append(&mut mine);
    }
    out.sort_by(|a, b| {
        (a.severity, &a.id, &a.package.name, &a.package.location).cmp(&(
            b.severity,
            &b.id,
            &b.package.name,
            &b.package.location,
        ))
    });
    out
}

/// Two findings of one package and CVE as one.
fn merge(kept: &mut Finding, other: Finding, scheme: Option<Scheme>) {
    let fixed = lowest(
        scheme,
        kept.fixed_version.as_deref(),
        other.fixed_version.as_deref(),
    )
    .map(str::to_owned);
    if (other.severity, &other.advisory) < (kept.severity, &kept.advisory) {
        *kept = other;
    }
    kept.fixed_version = fixed;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
        Range {
            kind,
            events: events
                .iter()
                .map(|(k, v)| {
                    let v = (*v).to_owned();
                    match *k {
                        "introduced" => Event::Introduced(v),
                        "fixed" => Event::Fixed(v),
                        "last_affected" => Event::LastAffected(v),
                        _ => Event::Limit(v),
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn osv_schema_examples() {
        let semver = Some(Scheme::Semver);
        // Every version affected.
        let all = range(RangeKind::Semver, &[("introduced", "0")]);
        assert_eq!(in_range(&all, semver, "0.0.1"), Some(None));
        assert_eq!(in_range(&all, semver, "99.0.0"), Some(None));
        // Everything before 1.0.2.
        let before = range(
            RangeKind::Semver,
            &[("introduced", "0"), ("fixed", "1.0.2")],
        );
        assert_eq!(in_range(&before, semver, "1.0.1"), Some(Some("1.0.2")));
        assert_eq!(in_range(&before, semver, "1.0.2"), None);
        // [1.0.0, 1.0.2) and [3.0.0, 3.2.5), events out of order.
        let two = range(
            RangeKind::Semver,
            &[
                ("fixed", "3.2.5"),
                ("introduced", "1.0.0"),
                ("introduced", "3.0.0"),
                ("fixed", "1.0.2"),
            ],
        );
        let table = [
            ("0.9.0", None),
            ("1.0.0", Some(Some("1.0.2"))),
            ("1.0.1", Some(Some("1.0.2"))),
            ("1.0.2", None),
            ("2.9.9", None),
            ("3.0.0", Some(Some("3.2.5"))),
            ("3.2.4", Some(Some("3.2.5"))),
            ("3.2.5", None),
            ("4.0.0", None),
        ];
        for (v, want) in table {
            assert_eq!(in_range(&two, semver, v), want, "{v}");
        }
        // last_affected is inclusive and names no fix.
        let last = range(
            RangeKind::Ecosystem,
            &[("introduced", "0"), ("last_affected", "2.1.214")],
        );
        let maven = Some(Scheme::Maven);
        assert_eq!(in_range(&last, maven, "2.1.214"), Some(None));
        assert_eq!(in_range(&last, maven, "2.1.215"), None);
        // Limits bound the range; `*` is no bound.
        let limited = range(
            RangeKind::Semver,
            &[("introduced", "1.0.0"), ("limit", "2.0.0")],
        );
        assert_eq!(in_range(&limited, semver, "1.5.0"), Some(None));
        assert_eq!(in_range(&limited, semver, "2.0.0"), None);
        let star = range(
            RangeKind::Semver,
            &[("introduced", "1.0.0"), ("limit", "*")],
        );
        assert_eq!(in_range(&star, semver, "9.0.0"), Some(None));
    }

    #[test]
    fn unreadable_ranges_and_versions_do_not_match() {
        let eco = range(
            RangeKind::Ecosystem,
            &[("introduced", "0"), ("fixed", "1.0")],
        );
        assert_eq!(
            in_range(&eco, None, "0.5"),
            None,
            "no order for the ecosystem"
        );
        assert_eq!(
            in_range(&eco, Some(Scheme::Semver), "0.5.0"),
            Some(Some("1.0")),
            "1.0 padded"
        );
        let bad_event = range(
            RangeKind::Ecosystem,
            &[("introduced", "0"), ("fixed", "not a version!")],
        );
        assert_eq!(in_range(&bad_event, Some(Scheme::Dpkg), "1.0-1"), None);
        let dpkg = range(
            RangeKind::Ecosystem,
            &[("introduced", "0"), ("fixed", "1.0-2")],
        );
        assert_eq!(in_range(&dpkg, Some(Scheme::Dpkg), "garbage version"), None);
        assert_eq!(
            in_range(&dpkg, Some(Scheme::Dpkg), "1.0-1"),
            Some(Some("1.0-2"))
        );
    }

    #[test]
    fn introduced_and_fixed_at_one_version_is_empty() {
        let empty = range(
            RangeKind::Semver,
            &[("fixed", "1.0.0"), ("introduced", "1.0.0")],
        );
        assert_eq!(in_range(&empty, None, "1.0.0"), None);
    }
}

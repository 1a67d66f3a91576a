//! Version order per ecosystem, as OSV's `ECOSYSTEM` ranges need it, and
//! SemVer precedence for its `SEMVER` ranges.
//!
//! [`compare`] dispatches on the ecosystem's name (the part before the
//! first `:`, so `Debian:12` orders as Debian does) and answers `None`
//! when either version is not one of that ecosystem's, or the ecosystem
//! has no order here — never a panic, whatever the strings.
//!
//! Crates where good, maintained ones exist: `debversion` (dpkg),
//! `pep440_rs` (PyPI), `semver` (SemVer, npm, crates.io, Go). Written
//! here, each file saying why: rpm, apk, Maven, RubyGems, NuGet.

mod apk;
mod dpkg;
mod maven;
mod nuget;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;

/// A version order of some ecosystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// dpkg's order: Debian, Ubuntu.
    Dpkg,
    /// rpm's `epoch:version-release` order: Red Hat, Rocky Linux,
    /// AlmaLinux, SUSE, openSUSE, Photon OS, Mageia, openEuler.
    Rpm,
    /// apk's order: Alpine, Wolfi, Chainguard, Alpaquita, MinimOS.
    Apk,
    /// PEP 440: PyPI.
    Pep440,
    /// SemVer 2.0 precedence (a leading `v` or `=` allowed, missing
    /// minor or patch read as 0): npm, crates.io, Go, Hex, Pub, SwiftURL,
    /// Bitnami, and every OSV `SEMVER` range.
    Semver,
    /// Maven's `ComparableVersion`.
    Maven,
    /// RubyGems' `Gem::Version`.
    RubyGems,
    /// NuGet's `NuGetVersion`.
    NuGet,
}

impl Scheme {
    /// The order of an OSV ecosystem (`Debian:12`, `PyPI`, …); `None` for
    /// an ecosystem without one here (Packagist, Hackage, GIT, …).
    pub fn for_ecosystem(ecosystem: &str) -> Option<Self> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        Some(match base {
            "Debian" | "Ubuntu" => Self::Dpkg,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "SUSE" | "openSUSE" | "Photon OS"
            | "Mageia" | "openEuler" => Self::Rpm,
            "Alpine"
            | "Wolfi"
            | "Chainguard"
            | "Alpaquita"
            | "BellSoft Hardened Containers"
            | "MinimOS" => Self::Apk,
            "PyPI" => Self::Pep440,
            "npm" | "crates.io" | "Go" | "Hex" | "Pub" | "SwiftURL" | "Bitnami" => Self::Semver,
            "Maven" => Self::Maven,
            "RubyGems" => Self::RubyGems,
            "NuGet" => Self::NuGet,
            _ => return None,
        })
    }

    /// `a` against `b` in this order; `None` when either is not a version
    /// of it (an empty string never is).
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        if a.trim().is_empty() || b.trim().is_empty() {
            return None;
        }
        match self {
            Self::Dpkg => dpkg::compare(a, b),
            Self::Rpm => rpm::compare(a, b),
            Self::Apk => apk::compare(a, b),
            Self::Pep440 => pep440::compare(a, b),
            Self::Semver => semver::compare(a, b),
            Self::Maven => maven::compare(a, b),
            Self::RubyGems => rubygems::compare(a, b),
            Self::NuGet => nuget::compare(a, b),
        }
    }

    /// Whether `v` is a version of this order.
    pub fn is_valid(self, v: &str) -> bool {
        self.compare(v, v).is_some()
    }
}

/// `a` against `b` in the order of the OSV ecosystem `ecosystem`; `None`
/// when the ecosystem has no order here or either string is not one of
/// its versions.
pub fn compare(ecosystem: &str, a: &str, b: &str) -> Option<Ordering> {
    Scheme::for_ecosystem(ecosystem)?.compare(a, b)
}

/// SemVer 2.0 precedence, as OSV's `SEMVER` ranges use it (build metadata
/// ignored; a leading `v`, as Go writes versions, allowed).
pub fn compare_semver(a: &str, b: &str) -> Option<Ordering> {
    Scheme::Semver.compare(a, b)
}

/// Two runs of ASCII digits by value, however long (leading zeros do not
/// count).
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether `s` is a non-empty run of ASCII digits.
pub(crate) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks that `compare` orders `ascending` as listed, both ways, every
/// pair (the table tests of each scheme).
#[cfg(test)]
fn assert_ascending(compare: impl Fn(&str, &str) -> Option<Ordering>, ascending: &[&str]) {
    for (i, low) in ascending.iter().enumerate() {
        for high in &ascending[i + 1..] {
            assert_eq!(compare(low, high), Some(Ordering::Less), "{low} < {high}");
            assert_eq!(
                compare(high, low),
                Some(Ordering::Greater),
                "{high} > {low}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_on_the_ecosystem_before_the_first_colon() {
        assert_eq!(Scheme::for_ecosystem("Debian:12"), Some(Scheme::Dpkg));
        assert_eq!(
            Scheme::for_ecosystem("Ubuntu:Pro:18.04:LTS"),
            Some(Scheme::Dpkg)
        );
        assert_eq!(Scheme::for_ecosystem("Alpine:v3.19"), Some(Scheme::Apk));
        assert_eq!(Scheme::for_ecosystem("Rocky Linux:9"), Some(Scheme::Rpm));
        assert_eq!(
            Scheme::for_ecosystem("Red Hat:rhel_aus:8.4::appstream"),
            Some(Scheme::Rpm)
        );
        assert_eq!(
            Scheme::for_ecosystem("Maven:https://maven.google.com"),
            Some(Scheme::Maven)
        );
        assert_eq!(Scheme::for_ecosystem("Go"), Some(Scheme::Semver));
        assert_eq!(Scheme::for_ecosystem("Packagist"), None);
        assert_eq!(
            Scheme::for_ecosystem("debian"),
            None,
            "ecosystem names are case-sensitive"
        );
        assert_eq!(compare("Hackage", "1", "2"), None);
        assert_eq!(compare("Debian:12", "1.0-1", "1.0-2"), Some(Ordering::Less));
        assert_eq!(compare("Debian:12", "", "1.0"), None);
        assert_eq!(compare_semver("v1.2.3", "1.2.4"), Some(Ordering::Less));
    }

    #[test]
    fn digit_runs_compare_by_value() {
        assert_eq!(cmp_digits("10", "9"), Ordering::Greater);
        assert_eq!(cmp_digits("007", "7"), Ordering::Equal);
        assert_eq!(cmp_digits("0", ""), Ordering::Equal);
        assert_eq!(
            cmp_digits(
                "100000000000000000000000000001",
                "100000000000000000000000000000"
            ),
            Ordering::Greater
        );
    }
}

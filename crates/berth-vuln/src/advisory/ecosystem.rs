//! Which advisories apply to which packages: ecosystems with releases,
//! and package names as each ecosystem spells them.
//!
//! A distribution package's ecosystem names its release (`Debian:12`,
//! `Alpine:v3.19`, `Ubuntu:22.04:LTS`); advisories name the same release,
//! or none (then they apply to every release). Ubuntu's releases are
//! matched without the `:LTS` mark and take Ubuntu Pro's advisories too
//! (`Ubuntu:Pro:18.04:LTS`: fixes released to ESM); Alpine's with or
//! without the `v`; Debian's by the major number (`12.5` is `12`).

use std::borrow::Cow;

/// The ecosystem's name without its release: the part before the first
/// `:`.
fn base(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// A distribution release, spelled one way for comparing: Ubuntu's
/// without `Pro:` and `:LTS`, Alpine's without `v`, Debian's major
/// number. `None` when the ecosystem names no release.
fn release(ecosystem: &str) -> Option<Cow<'_, str>> {
    let (base, rest) = ecosystem.split_once(':')?;
    Some(match base {
        "Ubuntu" => {
            let rest = rest.strip_prefix("Pro:").unwrap_or(rest);
            Cow::Borrowed(rest.strip_suffix(":LTS").unwrap_or(rest))
        }
        "Alpine" => Cow::Borrowed(rest.strip_prefix('v').unwrap_or(rest)),
        "Debian" => Cow::Borrowed(rest.split('.').next().unwrap_or(rest)),
        _ => Cow::Borrowed(rest),
    })
}

/// Whether advisories of `advisory_ecosystem` apply to packages of
/// `package_ecosystem`: the same ecosystem and release, or an advisory
/// without a release.
pub fn ecosystem_matches(package_ecosystem: &str, advisory_ecosystem: &str) -> bool {
    if package_ecosystem == advisory_ecosystem {
        return true;
    }
    if base(package_ecosystem) != base(advisory_ecosystem) {
        return false;
    }
    match (release(package_ecosystem), release(advisory_ecosystem)) {
        (_, None) => true,
        (Some(p), Some(a)) => p == a,
        (None, Some(_)) => false,
    }
}

/// The advisory ecosystems, spelled as OSV writes them, whose advisories
/// apply to a package of `package_ecosystem` (the keys to look up): the
/// package's own first, then the other spellings of its release, then
/// the release-less one.
pub fn advisory_ecosystems(package_ecosystem: &str) -> Vec<String> {
    let base = base(package_ecosystem);
    let mut out = vec![package_ecosystem.to_owned()];
    if let Some(release) = release(package_ecosystem) {
        match base {
            "Ubuntu" => {
                for prefix in ["", "Pro:"] {
                    for suffix in [":LTS", ""] {
                        out.push(format!("Ubuntu:{prefix}{release}{suffix}"));
                    }
                }
            }
            "Alpine" => out.push(format!("Alpine:v{release}")),
            "Debian" => out.push(format!("Debian:{release}")),
            _ => {}
        }
        out.push(base.to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out
}

/// A package name as advisories of `ecosystem` spell it: PyPI's
/// normalized (PEP 503: lower case, runs of `-`, `_`, `.` as one `-`),
/// NuGet's and Packagist's in lower case (their registries ignore case);
/// every other one as it is (npm, Go, Maven's `group:artifact`, RubyGems
/// and the distributions are case-sensitive).
pub fn normalize_name<'a>(ecosystem: &str, name: &'a str) -> Cow<'a, str> {
    match base(ecosystem) {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut in_separator = false;
            for c in name.trim().chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !in_separator {
                        out.push('-');
                    }
                    in_separator = true;
                } else {
                    in_separator = false;
                    out.extend(c.to_lowercase());
                }
            }
            Cow::Owned(out)
        }
        "NuGet" | "Packagist" => Cow::Owned(name.to_lowercase()),
        _ => Cow::Borrowed(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_match_their_own_and_release_less_advisories() {
        let yes = [
            ("Debian:12", "Debian:12"),
            ("Debian:12", "Debian"),
            ("Debian:12.5", "Debian:12"),
            ("Alpine:v3.19", "Alpine:v3.19"),
            ("Alpine:3.19", "Alpine:v3.19"),
            ("Alpine:v3.19", "Alpine"),
            ("Ubuntu:22.04:LTS", "Ubuntu:22.04:LTS"),
            ("Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS"),
            ("Ubuntu:22.04", "Ubuntu:22.04:LTS"),
            ("Ubuntu:23.10", "Ubuntu"),
            ("Rocky Linux:9", "Rocky Linux"),
            ("PyPI", "PyPI"),
        ];
        for (p, a) in yes {
            assert!(ecosystem_matches(p, a), "{p} takes {a}");
        }
        let no = [
            ("Debian:12", "Debian:11"),
            ("Debian", "Debian:12"),
            ("Alpine:v3.19", "Alpine:v3.18"),
            ("Ubuntu:22.04:LTS", "Ubuntu:20.04:LTS"),
            ("Ubuntu:22.04:LTS", "Debian:12"),
            ("PyPI", "npm"),
            ("Go", "go"),
        ];
        for (p, a) in no {
            assert!(!ecosystem_matches(p, a), "{p} does not take {a}");
        }
    }

    #[test]
    fn lookup_keys_per_package_ecosystem() {
        assert_eq!(advisory_ecosystems("Debian:12"), ["Debian:12", "Debian"]);
        assert_eq!(
            advisory_ecosystems("Alpine:v3.19"),
            ["Alpine:v3.19", "Alpine"]
        );
        assert_eq!(
            advisory_ecosystems("Alpine:3.19"),
            ["Alpine:3.19", "Alpine:v3.19", "Alpine"]
        );
        assert_eq!(
            advisory_ecosystems("Ubuntu:22.04:LTS"),
            [
                "Ubuntu:22.04:LTS",
                "Ubuntu:22.04",
                "Ubuntu:Pro:22.04:LTS",
                "Ubuntu:Pro:22.04",
                "Ubuntu"
            ]
        );
        assert_eq!(advisory_ecosystems("PyPI"), ["PyPI"]);
        assert_eq!(advisory_ecosystems("Maven"), ["Maven"]);
        // Every key matches the package's ecosystem.
        for p in [
            "Debian:12",
            "Alpine:3.19",
            "Ubuntu:22.04:LTS",
            "Rocky Linux:9",
        ] {
            for a in advisory_ecosystems(p) {
                assert!(ecosystem_matches(p, &a), "{p} {a}");
            }
        }
    }

    #[test]
    fn names_as_each_ecosystem_spells_them() {
        let table = [
            ("PyPI", "Django", "django"),
            ("PyPI", "zope.interface", "zope-interface"),
            ("PyPI", "Foo__Bar-._baz", "foo-bar-baz"),
            ("PyPI", "typing_extensions", "typing-extensions"),
            ("NuGet", "Newtonsoft.Json", "newtonsoft.json"),
            ("npm", "@Scope/Pkg", "@Scope/Pkg"),
            (
                "Go",
                "github.com/BurntSushi/toml",
                "github.com/BurntSushi/toml",
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "org.apache.logging.log4j:log4j-core",
            ),
            ("Debian:12", "openssl", "openssl"),
        ];
        for (eco, name, want) in table {
            assert_eq!(normalize_name(eco, name), want, "{eco} {name}");
        }
    }
}

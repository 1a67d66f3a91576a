//! The distribution, from `etc/os-release` (or `usr/lib/os-release`),
//! and the OSV ecosystem its packages are named in.
//!
//! OSV's spellings (the ecosystem list of the OSV schema):
//! - Debian: `Debian:<major>` (`Debian:12`);
//! - Ubuntu: `Ubuntu:<release>`, with a mandatory `:LTS` suffix for LTS
//!   releases (`Ubuntu:22.04:LTS`, `Ubuntu:23.10`); Ubuntu Pro's
//!   `Ubuntu:Pro:…` records are not the image's own;
//! - Alpine: `Alpine:v<major>.<minor>` (`Alpine:v3.19`);
//! - Rocky Linux: `Rocky Linux:<major>`; AlmaLinux: `AlmaLinux:<major>`;
//! - Red Hat: `Red Hat:<CPE>`, the CPE of a product stream without its
//!   `cpe:/[oa]:redhat:` prefix (`Red Hat:enterprise_linux:9::appstream`).
//!   An image says its release but not the streams its packages came
//!   from, so RHEL's packages get `Red Hat:enterprise_linux:<major>`, to
//!   be matched as a prefix of the advisories' ecosystems.
//!
//! Other distributions have no mapping here: their packages are listed
//! under `<ID>:<VERSION_ID>`, which no advisory names, with a note.

use serde::{Deserialize, Serialize};

/// What `os-release` says of the distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`: `debian`, `ubuntu`, `alpine`, `rocky`, `almalinux`, `rhel`…
    pub id: String,
    /// `VERSION_ID`: `12`, `22.04`, `3.19.1`, `9.3`; absent on rolling
    /// releases (Debian testing, Alpine edge sometimes).
    pub version_id: Option<String>,
    /// `PRETTY_NAME`: `Ubuntu 22.04.4 LTS`.
    pub pretty_name: Option<String>,
}

/// Which package manager's database a package came from: the ecosystem
/// of its distribution must be of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Dpkg,
    Apk,
    Rpm,
}

impl Family {
    /// The ecosystem, without a release, used when the image does not
    /// say which distribution it is.
    fn bare(self) -> &'static str {
        match self {
            Self::Dpkg => "Debian",
            Self::Apk => "Alpine",
            Self::Rpm => "Red Hat",
        }
    }
}

impl OsRelease {
    /// Parses an `os-release` file (shell-style `KEY=value` lines, values
    /// optionally quoted); `None` without an `ID`.
    pub fn parse(text: &str) -> Option<Self> {
        let (mut id, mut version_id, mut pretty_name) = (None, None, None);
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            let slot = match key.trim() {
                "ID" => &mut id,
                "VERSION_ID" => &mut version_id,
                "PRETTY_NAME" => &mut pretty_name,
                _ => continue,
            };
            *slot = Some(value).filter(|v| !v.is_empty());
        }
        Some(Self {
            id: id?.to_ascii_lowercase(),
            version_id,
            pretty_name,
        })
    }

    /// The OSV ecosystem of the distribution's packages, if OSV has one
    /// and the release is known.
    pub fn ecosystem(&self) -> Option<String> {
        let version = self.version_id.as_deref()?;
        let mut parts = version.split(['.', '_', '-']);
        let major = parts.next().filter(|m| is_number(m))?;
        Some(match self.id.as_str() {
            "debian" => format!("Debian:{major}"),
            "ubuntu" => {
                let minor = parts.next().filter(|m| is_number(m))?;
                let lts = match &self.pretty_name {
                    Some(pretty) => pretty.split_whitespace().any(|w| w == "LTS"),
                    // Canonical's rule: the April release of even years.
                    None => minor == "04" && major.parse::<u32>().is_ok_and(|y| y % 2 == 0),
                };
                let suffix = if lts { ":LTS" } else { "" };
                format!("Ubuntu:{major}.{minor}{suffix}")
            }
            "alpine" => {
                let minor = parts.next().filter(|m| is_number(m))?;
                format!("Alpine:v{major}.{minor}")
            }
            "rocky" => format!("Rocky Linux:{major}"),
            "almalinux" => format!("AlmaLinux:{major}"),
            "rhel" => format!("Red Hat:enterprise_linux:{major}"),
            _ => return None,
        })
    }

    fn family(&self) -> Option<Family> {
        match self.id.as_str() {
            "debian" | "ubuntu" => Some(Family::Dpkg),
            "alpine" => Some(Family::Apk),
            "rocky" | "almalinux" | "rhel" => Some(Family::Rpm),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match &self.version_id {
            Some(v) => format!("{} {v}", self.id),
            None => format!("{} without VERSION_ID", self.id),
        }
    }
}

/// The ecosystem for the packages of a `family` database at `location`,
/// and a note when the distribution does not give one OSV knows.
pub(super) fn ecosystem_for(
    os: Option<&OsRelease>,
    family: Family,
    location: &str,
) -> (String, Option<String>) {
    let Some(os) = os else {
        let bare = family.bare();
        return (
            bare.to_owned(),
            Some(format!(
                "no os-release: the packages of {location} are listed under `{bare}`, without a release"
            )),
        );
    };
    match (os.ecosystem(), os.family()) {
        (Some(ecosystem), Some(f)) if f == family => (ecosystem, None),
        (_, Some(f)) if f != family => {
            let bare = family.bare();
            (
                bare.to_owned(),
                Some(format!(
                    "{location} is not {}'s package database: its packages are listed under `{bare}`, without a release",
                    os.id
                )),
            )
        }
        _ => {
            let fallback = match &os.version_id {
                Some(v) => format!("{}:{v}", os.id),
                None => os.id.clone(),
            };
            (
                fallback.clone(),
                Some(format!(
                    "{} has no OSV ecosystem here: the packages of {location} are listed under `{fallback}`, which no advisory names",
                    os.describe()
                )),
            )
        }
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A shell-quoted value: `"…"` with backslash escapes, `'…'`, or bare.
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.extend(chars.next());
            } else {
                out.push(c);
            }
        }
        out
    } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.to_owned()
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version: Option<&str>, pretty: Option<&str>) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: version.map(Into::into),
            pretty_name: pretty.map(Into::into),
        }
    }

    #[test]
    fn parses_quoted_values() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME='Debian'\n\
                    VERSION_ID=\"12\"\nID=debian\n# comment\nBAD LINE\nHOME_URL=\"a\\\"b\"\n";
        assert_eq!(
            OsRelease::parse(text),
            Some(os(
                "debian",
                Some("12"),
                Some("Debian GNU/Linux 12 (bookworm)")
            ))
        );
        assert_eq!(OsRelease::parse("NAME=x\n"), None);
    }

    #[test]
    fn osv_ecosystems() {
        let table = [
            (os("debian", Some("12"), None), Some("Debian:12")),
            (os("debian", Some("11.9"), None), Some("Debian:11")),
            (
                os("debian", None, Some("Debian GNU/Linux trixie/sid")),
                None,
            ),
            (
                os("ubuntu", Some("22.04"), Some("Ubuntu 22.04.4 LTS")),
                Some("Ubuntu:22.04:LTS"),
            ),
            (
                os("ubuntu", Some("23.10"), Some("Ubuntu 23.10")),
                Some("Ubuntu:23.10"),
            ),
            (os("ubuntu", Some("24.04"), None), Some("Ubuntu:24.04:LTS")),
            (os("ubuntu", Some("21.04"), None), Some("Ubuntu:21.04")),
            (os("alpine", Some("3.19.1"), None), Some("Alpine:v3.19")),
            (
                os("alpine", Some("3.20_alpha20240329"), None),
                Some("Alpine:v3.20"),
            ),
            (os("rocky", Some("9.3"), None), Some("Rocky Linux:9")),
            (os("almalinux", Some("8.9"), None), Some("AlmaLinux:8")),
            (
                os("rhel", Some("9.4"), None),
                Some("Red Hat:enterprise_linux:9"),
            ),
            (os("fedora", Some("39"), None), None),
        ];
        for (os, want) in table {
            assert_eq!(os.ecosystem().as_deref(), want, "{os:?}");
        }
    }

    #[test]
    fn ecosystems_for_databases_with_notes_when_unknown() {
        let deb = os("debian", Some("12"), None);
        assert_eq!(
            ecosystem_for(Some(&deb), Family::Dpkg, "s"),
            ("Debian:12".into(), None)
        );
        let (eco, note) = ecosystem_for(Some(&deb), Family::Apk, "lib/apk/db/installed");
        assert_eq!(eco, "Alpine");
        assert!(note.is_some_and(|n| n.contains("not debian's")));
        let (eco, note) = ecosystem_for(None, Family::Dpkg, "var/lib/dpkg/status");
        assert_eq!(eco, "Debian");
        assert!(note.is_some_and(|n| n.contains("no os-release")));
        let fedora = os("fedora", Some("39"), None);
        let (eco, note) = ecosystem_for(Some(&fedora), Family::Rpm, "x");
        assert_eq!(eco, "fedora:39");
        assert!(note.is_some_and(|n| n.contains("fedora 39 has no OSV ecosystem")));
    }
}

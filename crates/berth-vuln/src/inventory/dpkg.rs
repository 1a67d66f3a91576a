//! dpkg's database: `var/lib/dpkg/status`, and the one file per package
//! of distroless images under `var/lib/dpkg/status.d/`.
//!
//! Only installed packages count (`Status: <want> ok installed`; the
//! files of `status.d` have no `Status` and are all installed). Debian's
//! and Ubuntu's OSV records name source packages, with the source
//! package's versions: a binary package built from a source of another
//! version says so as `Source: <name> (<version>)` (binNMUs,
//! `gcc-defaults`' `cpp` at `4:12.2.0-3` from source version `1.203`),
//! and then the package's `version` is that source version, the one the
//! advisories compare, as osv-scanner does. `Package` has no field for
//! both, so the binary's own version is not kept in that case.

use super::fields::paragraphs;
use super::tree::Found;
use crate::Package;

/// Where distroless images keep one status file per package.
pub(super) const STATUS_D: &str = "var/lib/dpkg/status.d/";

/// The installed packages of a status file at `location`.
pub(super) fn parse(bytes: &[u8], location: &str, ecosystem: &str) -> Found {
    let mut found = Found::default();
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Found::note(format!(
            "dpkg database {location} is not UTF-8 text: not read"
        ));
    };
    let in_status_d = location.starts_with(STATUS_D);
    let mut paragraphs_seen = 0;
    for p in paragraphs(text) {
        paragraphs_seen += 1;
        let installed = match p.get("Status") {
            Some(status) => status.split_whitespace().nth(2) == Some("installed"),
            None => in_status_d,
        };
        if !installed {
            continue;
        }
        let (Some(name), Some(version)) = (p.get("Package"), p.get("Version")) else {
            continue;
        };
        let (source, source_version) = match p.get("Source") {
            Some(source) => match source.split_once(' ') {
                Some((name, rest)) => {
                    let v = rest
                        .trim()
                        .trim_start_matches('(')
                        .trim_end_matches(')')
                        .trim();
                    (Some(name), Some(v).filter(|v| !v.is_empty()))
                }
                None => (Some(source), None),
            },
            None => (None, None),
        };
        found.packages.push(Package {
            ecosystem: ecosystem.to_owned(),
            name: name.to_owned(),
            version: source_version.unwrap_or(version).to_owned(),
            source: source.filter(|s| *s != name).map(str::to_owned),
            location: location.to_owned(),
        });
    }
    if found.packages.is_empty() && paragraphs_seen > 0 && !text.contains("Package:") {
        found.notes.push(format!(
            "dpkg database {location} names no package: not a status file"
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_packages_with_their_sources() {
        let status = "Package: libssl3\nStatus: install ok installed\nSource: openssl\n\
                      Version: 3.0.11-1~deb12u2\n\n\
                      Package: cpp\nStatus: hold ok installed\nSource: gcc-defaults (1.203)\n\
                      Version: 4:12.2.0-3\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                      Package: half\nStatus: install ok half-configured\nVersion: 1\n";
        let found = parse(status.as_bytes(), "var/lib/dpkg/status", "Debian:12");
        let got: Vec<_> = found
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.source.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("libssl3", "3.0.11-1~deb12u2", Some("openssl")),
                ("cpp", "1.203", Some("gcc-defaults"))
            ]
        );
        assert!(found.notes.is_empty());
    }

    #[test]
    fn status_d_files_have_no_status_and_garbage_is_noted() {
        let found = parse(
            b"Package: base-files\nVersion: 12.4\n",
            "var/lib/dpkg/status.d/base",
            "D",
        );
        assert_eq!(found.packages.len(), 1);
        assert_eq!(found.packages[0].source, None);
        let found = parse(b"Package: x\nVersion: 1\n", "var/lib/dpkg/status", "D");
        assert!(
            found.packages.is_empty(),
            "no Status in the main file: not installed"
        );
        let garbage = parse(b"\x00\x01garbage: yes\n", "var/lib/dpkg/status", "D");
        assert!(garbage.packages.is_empty());
        assert_eq!(garbage.notes.len(), 1);
        let binary = parse(&[0xff, 0xfe, 0x00], "var/lib/dpkg/status", "D");
        assert!(binary.notes[0].contains("not UTF-8"));
    }
}

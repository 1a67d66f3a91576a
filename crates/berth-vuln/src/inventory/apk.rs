//! apk's database, `lib/apk/db/installed`: a paragraph per installed
//! package, one `X:value` line per field (`P` name, `V` version, `o`
//! origin, the source package Alpine's advisories name).

use super::tree::Found;
use crate::Package;

/// The packages of the database at `location`.
pub(super) fn parse(bytes: &[u8], location: &str, ecosystem: &str) -> Found {
    let mut found = Found::default();
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Found::note(format!(
            "apk database {location} is not UTF-8 text: not read"
        ));
    };
    let mut lines_seen = 0;
    let (mut name, mut version, mut origin) = (None, None, None);
    // A blank line after each paragraph, and one more at the end.
    for line in text.lines().chain([""]) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            if let (Some(name), Some(version)) = (name.take(), version.take()) {
                let origin: Option<&str> = origin.take();
                found.packages.push(Package {
                    ecosystem: ecosystem.to_owned(),
                    name: String::from(name),
                    version: String::from(version),
                    source: origin.filter(|o| *o != name).map(str::to_owned),
                    location: location.to_owned(),
                });
            }
            (name, version, origin) = (None, None, None);
            continue;
        }
        lines_seen += 1;
        match line.split_once(':') {
            Some(("P", v)) if !v.is_empty() => name = Some(v),
            Some(("V", v)) if !v.is_empty() => version = Some(v),
            Some(("o", v)) if !v.is_empty() => origin = Some(v),
            _ => {}
        }
    }
    if found.packages.is_empty() && lines_seen > 0 {
        found.notes.push(format!(
            "apk database {location} names no package: not an installed db"
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_with_origins() {
        let db = "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\n\
                  P:musl\nV:1.2.4_git20230717-r4\no:musl\n\nP:broken\n";
        let found = parse(db.as_bytes(), "lib/apk/db/installed", "Alpine:v3.19");
        let got: Vec<_> = found
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.source.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("libcrypto3", "3.1.4-r5", Some("openssl")),
                ("musl", "1.2.4_git20230717-r4", None)
            ]
        );
        assert!(found.notes.is_empty());
        let garbage = parse(
            b"hello world\nthis is not apk\n",
            "lib/apk/db/installed",
            "A",
        );
        assert!(garbage.packages.is_empty());
        assert_eq!(garbage.notes.len(), 1);
    }
}

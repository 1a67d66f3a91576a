//! Python distributions: `*.dist-info/METADATA` (wheels, pip) and
//! `*.egg-info/PKG-INFO` or a lone `*.egg-info` file (setuptools), in
//! `site-packages` or Debian's `dist-packages`. Their `Name` and
//! `Version` headers name a PyPI package; the name is normalized as
//! PEP 503 says and OSV's PyPI records write it (lower case, runs of
//! `-`, `_` and `.` as one `-`).

use super::fields::headers;
use super::tree::Found;
use crate::Package;

/// Whether `path` is a distribution's metadata file.
pub(super) fn is_metadata(path: &str) -> bool {
    let in_packages = |p: &str| p.contains("site-packages/") || p.contains("dist-packages/");
    if let Some(dir) = path.strip_suffix("/METADATA") {
        return dir.ends_with(".dist-info") && in_packages(dir);
    }
    if let Some(dir) = path.strip_suffix("/PKG-INFO") {
        return dir.ends_with(".egg-info");
    }
    path.ends_with(".egg-info") && in_packages(path)
}

/// The package a metadata file at `location` names.
pub(super) fn parse(bytes: &[u8], location: &str) -> Found {
    let text = String::from_utf8_lossy(bytes);
    let headers = headers(&text);
    match (headers.get("Name"), headers.get("Version")) {
        (Some(name), Some(version)) => Found {
            packages: vec![Package {
                ecosystem: "PyPI".into(),
                name: normalize(name),
                version: version.to_owned(),
                source: None,
                location: location.to_owned(),
            }],
            notes: Vec::new(),
        },
        _ => Found::note(format!(
            "Python metadata {location} has no Name and Version"
        )),
    }
}

/// PEP 503's normalized name.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_paths() {
        for yes in [
            "usr/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA",
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
            "opt/app/src/mypkg.egg-info/PKG-INFO",
        ] {
            assert!(is_metadata(yes), "{yes}");
        }
        for no in [
            "tmp/x.dist-info/METADATA",
            "a/site-packages/x/METADATA",
            "a/b.egg-info/SOURCES.txt",
        ] {
            assert!(!is_metadata(no), "{no}");
        }
    }

    #[test]
    fn names_are_normalized_and_bodies_ignored() {
        let text = "Metadata-Version: 2.1\nName: Zope.Interface__X\nVersion: 6.1\n\nName: body\n";
        let found = parse(text.as_bytes(), "m");
        assert_eq!(found.packages[0].name, "zope-interface-x");
        assert_eq!(found.packages[0].version, "6.1");
        assert_eq!(parse(b"garbage", "m").notes.len(), 1);
    }
}

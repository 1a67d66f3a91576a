//! npm packages: the `package.json` at the top of each package directory
//! under a `node_modules` (`node_modules/<name>/package.json` or
//! `node_modules/@scope/<name>/package.json`, at any depth of nesting).
//! Files deeper in a package (`lib/package.json`, often only
//! `{"type": "module"}`) are not packages; a `package.json` without both
//! `name` and `version` is skipped, as npm itself would not install it.

use serde::Deserialize;

use super::tree::Found;
use crate::Package;

/// Whether `path` is the manifest of an installed package.
pub(super) fn is_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some((parent, name)) = dir.rsplit_once('/') else {
        return false;
    };
    if name.is_empty() || name.starts_with(['.', '@']) {
        return false;
    }
    let parent = match parent.rsplit_once('/') {
        Some((grand, scope)) if scope.starts_with('@') => grand,
        _ if parent.starts_with('@') => return false,
        _ => parent,
    };
    parent == "node_modules" || parent.ends_with("/node_modules")
}

#[derive(Deserialize)]
struct Manifest {
    name: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

/// The package a manifest at `location` names, if it names one.
pub(super) fn parse(bytes: &[u8], location: &str) -> Found {
    let manifest: Manifest = match serde_json::from_slice(bytes) {
        Ok(m) => m,
        Err(e) => return Found::note(format!("npm manifest {location} is not JSON: {e}")),
    };
    let text = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let (Some(name), Some(version)) = (text(manifest.name), text(manifest.version)) else {
        return Found::default();
    };
    Found {
        packages: vec![Package {
            ecosystem: "npm".into(),
            name,
            version,
            source: None,
            location: location.to_owned(),
        }],
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths() {
        for yes in [
            "app/node_modules/express/package.json",
            "node_modules/@babel/core/package.json",
            "app/node_modules/a/node_modules/@s/b/package.json",
        ] {
            assert!(is_manifest(yes), "{yes}");
        }
        for no in [
            "app/package.json",
            "app/node_modules/express/lib/package.json",
            "app/node_modules/@babel/package.json",
            "app/node_modules/.bin/package.json",
        ] {
            assert!(!is_manifest(no), "{no}");
        }
    }

    #[test]
    fn needs_name_and_version() {
        assert_eq!(
            parse(br#"{"name":"a","version":"1.0.0"}"#, "l")
                .packages
                .len(),
            1
        );
        let partial = parse(br#"{"type":"module","version":"1"}"#, "l");
        assert!(partial.packages.is_empty() && partial.notes.is_empty());
        assert_eq!(parse(b"{nope", "l").notes.len(), 1);
        assert!(
            parse(br#"{"name":1,"version":"1"}"#, "l")
                .packages
                .is_empty()
        );
    }
}

//! PHP's Composer: `vendor/composer/installed.json`, what `composer
//! install` put in the vendor directory. Composer 1 writes an array of
//! packages, Composer 2 an object whose `packages` holds them; each has
//! a `name` (`vendor/package`) and a `version` as Composer writes it
//! (`v6.4.3`, `3.0.1`), kept as is.

use serde::Deserialize;

use super::tree::Found;
use crate::Package;

/// Whether `path` is Composer's record of installed packages.
pub(super) fn is_installed_json(path: &str) -> bool {
    path == "vendor/composer/installed.json" || path.ends_with("/vendor/composer/installed.json")
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Installed {
    V2 { packages: Vec<Entry> },
    V1(Vec<Entry>),
}

#[derive(Deserialize)]
struct Entry {
    name: Option<String>,
    version: Option<String>,
}

/// The packages of an `installed.json` at `location`.
pub(super) fn parse(bytes: &[u8], location: &str) -> Found {
    let entries = match serde_json::from_slice::<Installed>(bytes) {
        Ok(Installed::V2 { packages } | Installed::V1(packages)) => packages,
        Err(_) => {
            return Found::note(format!(
                "Composer's {location} is neither Composer 1's nor 2's shape"
            ));
        }
    };
    let packages = entries
        .into_iter()
        .filter_map(|e| {
            Some((
                e.name.filter(|n| !n.is_empty())?,
                e.version.filter(|v| !v.is_empty())?,
            ))
        })
        .map(|(name, version)| Package {
            ecosystem: "Packagist".into(),
            name,
            version,
            source: None,
            location: location.to_owned(),
        })
        .collect();
    Found {
        packages,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let v1 =
            br#"[{"name":"monolog/monolog","version":"2.9.1","version_normalized":"2.9.1.0"}]"#;
        let v2 = br#"{"packages":[{"name":"symfony/console","version":"v6.4.3"},{"name":"x"}],"dev":true}"#;
        assert_eq!(parse(v1, "l").packages[0].name, "monolog/monolog");
        let found = parse(v2, "l");
        assert_eq!(found.packages.len(), 1);
        assert_eq!(found.packages[0].version, "v6.4.3");
        assert_eq!(parse(b"{\"packages\": 3}", "l").notes.len(), 1);
    }
}

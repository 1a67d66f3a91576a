//! An installed package, named as OSV advisories name it.

use serde::{Deserialize, Serialize};

/// A package an image installs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    /// The OSV ecosystem, with the distribution's release where OSV
    /// names one: `Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04:LTS`,
    /// `PyPI`, `npm`, `Maven`, `Go`, `crates.io`, `RubyGems`, `Packagist`…
    pub ecosystem: String,
    /// The package's name in that ecosystem (for Maven `group:artifact`,
    /// for Go the module path).
    pub name: String,
    /// The installed version, as the package database writes it.
    pub version: String,
    /// The source package, where the ecosystem's advisories name source
    /// packages (Debian, Ubuntu) or the binary comes from one (rpm), when
    /// it differs from `name`.
    pub source: Option<String>,
    /// Where in the image it was found (a file path, without a leading
    /// `/`), for reports: zot's `PackagePath`.
    pub location: String,
}

impl Package {
    /// The name advisories of the package's ecosystem use: the source
    /// package where there is one, else the name.
    pub fn advisory_name(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisories_name_the_source_package_where_there_is_one() {
        let mut p = Package {
            ecosystem: "Debian:12".into(),
            name: "libssl3".into(),
            version: "3.0.11-1~deb12u2".into(),
            source: Some("openssl".into()),
            location: "var/lib/dpkg/status".into(),
        };
        assert_eq!(p.advisory_name(), "openssl");
        p.source = None;
        assert_eq!(p.advisory_name(), "libssl3");
    }
}

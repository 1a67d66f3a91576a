//! Which files matter, by path: the table from a path in the image to
//! the parser that reads it. Paths are relative, without a leading `/`
//! or `./`, as [`normalize`] makes them.

use super::{composer, dpkg, java, npm, python, rpm, ruby};

/// What a file that matters is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    OsRelease,
    Dpkg,
    Apk,
    RpmSqlite,
    /// A database in a format not read; the note's words for it.
    Unsupported(&'static str),
    Python,
    Npm,
    Java,
    Gem,
    Composer,
}

impl Kind {
    /// Kept whole and parsed once the last layer is read, rather than
    /// reduced at once (os-release decides the others' ecosystem).
    pub(super) fn is_database(self) -> bool {
        matches!(
            self,
            Self::OsRelease | Self::Dpkg | Self::Apk | Self::RpmSqlite
        )
    }
}

/// The paths of os-release, in the order they are looked at.
pub(super) const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// What the file at `path` is, if it matters.
pub(super) fn classify(path: &str) -> Option<Kind> {
    if OS_RELEASE.contains(&path) {
        return Some(Kind::OsRelease);
    }
    if path == "var/lib/dpkg/status" {
        return Some(Kind::Dpkg);
    }
    if let Some(name) = path.strip_prefix(dpkg::STATUS_D) {
        let is_status =
            !name.contains('/') && !name.ends_with(".md5sums") && !name.starts_with('.');
        return is_status.then_some(Kind::Dpkg);
    }
    if path == "lib/apk/db/installed" {
        return Some(Kind::Apk);
    }
    if rpm::SQLITE_PATHS.contains(&path) {
        return Some(Kind::RpmSqlite);
    }
    if let Some(what) = rpm::unsupported(path) {
        return Some(Kind::Unsupported(what));
    }
    if python::is_metadata(path) {
        return Some(Kind::Python);
    }
    if npm::is_manifest(path) {
        return Some(Kind::Npm);
    }
    if ruby::is_gemspec(path) {
        return Some(Kind::Gem);
    }
    if composer::is_installed_json(path) {
        return Some(Kind::Composer);
    }
    if java::is_archive(path) {
        return Some(Kind::Java);
    }
    None
}

/// A tar entry's path made relative and clean (`./a//b/` → `a/b`);
/// `None` for the root and for paths that climb out with `..`.
pub(super) fn normalize(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_matter() {
        let table = [
            ("etc/os-release", Some(Kind::OsRelease)),
            ("var/lib/dpkg/status", Some(Kind::Dpkg)),
            ("var/lib/dpkg/status.d/libc6", Some(Kind::Dpkg)),
            ("var/lib/dpkg/status.d/libc6.md5sums", None),
            ("var/lib/dpkg/status-old", None),
            ("lib/apk/db/installed", Some(Kind::Apk)),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite", Some(Kind::RpmSqlite)),
            (
                "var/lib/rpm/Packages",
                Some(Kind::Unsupported("rpm BerkeleyDB database")),
            ),
            (
                "usr/lib/python3/site-packages/a-1.dist-info/METADATA",
                Some(Kind::Python),
            ),
            ("srv/node_modules/a/package.json", Some(Kind::Npm)),
            (
                "usr/lib/ruby/gems/3.2.0/specifications/rake-13.0.6.gemspec",
                Some(Kind::Gem),
            ),
            ("srv/vendor/composer/installed.json", Some(Kind::Composer)),
            ("opt/app.war", Some(Kind::Java)),
            ("usr/bin/ls", None),
        ];
        for (path, want) in table {
            assert_eq!(classify(path), want, "{path}");
        }
    }

    #[test]
    fn normalized_paths() {
        assert_eq!(
            normalize(b"./etc//os-release").as_deref(),
            Some("etc/os-release")
        );
        assert_eq!(normalize(b"/usr/bin/").as_deref(), Some("usr/bin"));
        assert_eq!(normalize(b"./"), None);
        assert_eq!(normalize(b"a/../../etc/passwd"), None);
    }
}

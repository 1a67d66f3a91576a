//! RubyGems: the installed specifications, `specifications/*.gemspec`
//! under a gem home. RubyGems writes them with a first line
//! `# stub: <name> <version> <platform> <paths>` and `s.name = "…"`,
//! `s.version = "…"` assignments; those name the gem. Failing that, the
//! file name `<name>-<version>[-<platform>].gemspec` does (a gem's name
//! may hold `-`, its version starts with a digit).

use super::tree::Found;
use crate::Package;

/// Whether `path` is an installed gem's specification.
pub(super) fn is_gemspec(path: &str) -> bool {
    path.ends_with(".gemspec") && path.rsplit('/').nth(1) == Some("specifications")
}

/// The gem a specification at `location` names.
pub(super) fn parse(bytes: &[u8], location: &str) -> Found {
    let text = String::from_utf8_lossy(bytes);
    let file = location.rsplit('/').next().unwrap_or(location);
    let named = from_contents(&text).or_else(|| from_file_name(file));
    match named {
        Some((name, version)) => Found {
            packages: vec![Package {
                ecosystem: "RubyGems".into(),
                name,
                version,
                source: None,
                location: location.to_owned(),
            }],
            notes: Vec::new(),
        },
        None => Found::note(format!("gem specification {location} names no gem")),
    }
}

fn from_contents(text: &str) -> Option<(String, String)> {
    if let Some(stub) = text.lines().next().and_then(|l| l.strip_prefix("# stub: ")) {
        let mut words = stub.split_whitespace();
        if let (Some(name), Some(version)) = (words.next(), words.next()) {
            return Some((name.to_owned(), version.to_owned()));
        }
    }
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        let Some((lhs, rhs)) = line.split_once('=') else {
            continue;
        };
        let slot = match lhs.trim() {
            "s.name" | "spec.name" => &mut name,
            "s.version" | "spec.version" => &mut version,
            _ => continue,
        };
        // `"rake".freeze`, `"13.0.6"`, `Gem::Version.new("1.0")`.
        let mut quoted = rhs.split('"');
        if let Some(value) = quoted.nth(1).filter(|v| !v.is_empty()) {
            slot.get_or_insert_with(|| value.to_owned());
        }
    }
    Some((name?, version?))
}

fn from_file_name(file: &str) -> Option<(String, String)> {
    let stem = file.strip_suffix(".gemspec")?;
    let at = stem
        .match_indices('-')
        .map(|(i, _)| i)
        .find(|&i| stem[i + 1..].starts_with(|c: char| c.is_ascii_digit()))?;
    let version = stem[at + 1..].split('-').next()?;
    Some((stem[..at].to_owned(), version.to_owned())).filter(|(n, _)| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_contents_then_file_names() {
        let stub = "# stub: rake 13.0.6 ruby lib\nGem::Specification.new do |s|\n";
        assert_eq!(from_contents(stub), Some(("rake".into(), "13.0.6".into())));
        let plain = "Gem::Specification.new do |s|\n  s.name = \"aws-sdk-s3\".freeze\n  s.version = \"1.142.0\"\n";
        assert_eq!(
            from_contents(plain),
            Some(("aws-sdk-s3".into(), "1.142.0".into()))
        );
        assert_eq!(
            from_file_name("nokogiri-1.15.4-x86_64-linux.gemspec"),
            Some(("nokogiri".into(), "1.15.4".into()))
        );
        assert_eq!(
            from_file_name("net-http2-0.1.gemspec"),
            Some(("net-http2".into(), "0.1".into()))
        );
        assert_eq!(from_file_name("nover.gemspec"), None);
        assert!(is_gemspec(
            "usr/local/bundle/specifications/rake-13.0.6.gemspec"
        ));
        assert!(!is_gemspec("app/rake.gemspec"));
    }
}

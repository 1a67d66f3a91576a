//! The content rules of one upstream registry, compiled: which upstream
//! repositories sync, under which local names, and which of their tags
//! and platforms. Pure: no I/O.
//!
//! zot's semantics, reproduced:
//! - `prefix` is a glob matched against the whole upstream name (so a
//!   literal prefix names one repository): `*`, `?` and `[…]` stay within a
//!   path component, `**` as a whole component spans any number of them
//!   (none included: `a/**` matches `a`), `{x,y}` are alternatives.
//!   Leading and trailing `/` are ignored.
//! - The first rule whose prefix matches an upstream name applies.
//! - `destination` is a local namespace put in front of the name;
//!   `stripPrefix` drops the prefix's literal leading components first:
//!   prefix `/a/b/**`, destination `/local`: `a/b/x` is `local/x` when
//!   stripped, `local/a/b/x` when not.
//! - On demand it runs backwards: the first rule whose local pattern (the
//!   destination, then the prefix, or only its glob part when stripped)
//!   matches the name a client asked for gives the upstream name.
//! - `tags`: `regex` must match (anywhere in the tag), `excludeRegex` must
//!   not, and with `semver` the tag must read as a version.
//!
//! Where zot's string handling misbehaves, Berth stays with whole path
//! components: the part `stripPrefix` drops is the components before the
//! first glob character (zot trims `/` and `*` off the prefix and cuts that
//! string off the name, so prefix `repo*` turned `repository` into
//! `sitory`, which on-demand sync could not map back).

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

use crate::config::{ContentRule, SemverFilter};

/// A rule that cannot be compiled: which one, which of its keys, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content[{rule}].{field}: {message}")]
pub struct ContentError {
    /// The rule's index in `content`.
    pub rule: usize,
    /// The key under the rule, e.g. `tags.regex`.
    pub field: &'static str,
    pub message: String,
}

/// The compiled `content` of one registry.
#[derive(Debug)]
pub struct ContentRules {
    rules: Vec<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    /// The prefix glob, over upstream names.
    upstream: RepoGlob,
    /// The glob over local names: destination, then the prefix (or its
    /// glob part when stripped).
    local: RepoGlob,
    /// The prefix's components before the first glob character: what
    /// `stripPrefix` drops.
    literal: String,
    /// The whole prefix when it has no glob character at all.
    exact: Option<String>,
    /// Without its slashes; empty for none.
    destination: String,
    strip: bool,
    regex: Option<Regex>,
    exclude: Option<Regex>,
    semver: Option<SemverCheck>,
    /// `None` is zot's `""`: index entries without a platform.
    platforms: Vec<Option<Platform>>,
}

#[derive(Debug)]
enum SemverCheck {
    Any,
    Range(semver::VersionReq),
}

/// A glob over repository names, with zot's (doublestar's) reading of a
/// trailing `/**`, which also matches the name before it.
#[derive(Debug)]
struct RepoGlob {
    whole: GlobMatcher,
    stem: Option<GlobMatcher>,
}

impl RepoGlob {
    fn new(pattern: &str) -> Result<Self, globset::Error> {
        let build = |p: &str| {
            GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .empty_alternates(true)
                .build()
                .map(|g| g.compile_matcher())
        };
        let stem = match pattern.strip_suffix("/**") {
            Some(stem) if !stem.is_empty() && !stem.ends_with('\\') => Some(build(stem)?),
            _ => None,
        };
        Ok(Self {
            whole: build(pattern)?,
            stem,
        })
    }

    fn is_match(&self, name: &str) -> bool {
        self.whole.is_match(name) || self.stem.as_ref().is_some_and(|s| s.is_match(name))
    }
}

/// Whether `c` starts a glob (an unescaped one, the caller checks).
fn is_meta(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | '{')
}

/// Splits a prefix (without outer slashes) where doublestar's
/// `SplitPattern` does: the components before the first glob character,
/// unescaped, and the rest. `None` when it has no glob character.
fn split_literal(prefix: &str) -> Option<(String, &str)> {
    let mut last_slash = None;
    let mut chars = prefix.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if c == '/' {
            last_slash = Some(i);
        } else if is_meta(c) {
            return Some(match last_slash {
                Some(s) => (unescape(&prefix[..s]), &prefix[s + 1..]),
                None => (String::new(), prefix),
            });
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `a/b` from `a` and `b`, leaving out empty parts.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// `name` without the leading components `base` (whole components only).
fn strip_components<'a>(name: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(name);
    }
    let rest = name.strip_prefix(base)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

fn valid_repo(name: &str) -> bool {
    name.parse::<berth_oci::RepoName>().is_ok()
}

impl ContentRules {
    /// Compiles a registry's rules; the error names the rule and key.
    pub fn new(rules: &[ContentRule]) -> Result<Self, ContentError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile(i, r))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules: compiled })
    }

    /// How many rules (0: every repository, under its own name).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Periodic sync: whether upstream repository `remote` falls under a
    /// rule, and as which local name (the first matching rule wins; with no
    /// rules, every repository under its own name, as rule 0). `None` too
    /// when the local name would not be a valid repository name.
    pub fn local_for(&self, remote: &str) -> Option<(usize, String)> {
        let remote = remote.trim_matches('/');
        if self.rules.is_empty() {
            return valid_repo(remote).then(|| (0, remote.to_string()));
        }
        let (i, rule) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.upstream.is_match(remote))?;
        let name = if rule.strip {
            strip_components(remote, &rule.literal)?
        } else {
            remote
        };
        let local = join(&rule.destination, name);
        valid_repo(&local).then_some((i, local))
    }

    /// On-demand sync: a client asked for local repository `local`: which
    /// rule, and which upstream name (the first rule whose local pattern
    /// matches decides; with no rules, the same name, as rule 0).
    pub fn remote_for(&self, local: &str) -> Option<(usize, String)> {
        let local = local.trim_matches('/');
        if self.rules.is_empty() {
            return valid_repo(local).then(|| (0, local.to_string()));
        }
        let (i, rule) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.local.is_match(local))?;
        let rest = strip_components(local, &rule.destination)?;
        let remote = if rule.strip {
            join(&rule.literal, rest)
        } else {
            rest.to_string()
        };
        (valid_repo(&remote) && rule.upstream.is_match(&remote)).then_some((i, remote))
    }

    /// Whether rule `rule` takes tag `tag`: `regex`, then `excludeRegex`,
    /// then `semver`. A rule index out of range (the implicit rule 0 of an
    /// empty list) takes every tag.
    pub fn tag_allowed(&self, rule: usize, tag: &str) -> bool {
        let Some(r) = self.rules.get(rule) else {
            return true;
        };
        if r.regex.as_ref().is_some_and(|re| !re.is_match(tag)) {
            return false;
        }
        if r.exclude.as_ref().is_some_and(|re| re.is_match(tag)) {
            return false;
        }
        match &r.semver {
            None => true,
            Some(SemverCheck::Any) => TagVersion::parse(tag).is_some(),
            Some(SemverCheck::Range(req)) => TagVersion::parse(tag)
                .and_then(|v| v.to_semver())
                .is_some_and(|v| req.matches(&v)),
        }
    }

    /// Whether rule `rule` copies an index entry of this platform (`os`
    /// empty: an entry without a platform, taken only with a `""` entry).
    /// No list: every platform. An entry without a variant takes every
    /// variant (`linux/arm64`); one with a variant only that one
    /// (`linux/arm/v7`). Aliases are read as regclient does (`x86_64`,
    /// `aarch64`, `armhf`…).
    pub fn platform_allowed(
        &self,
        rule: usize,
        os: &str,
        arch: &str,
        variant: Option<&str>,
    ) -> bool {
        let Some(r) = self.rules.get(rule) else {
            return true;
        };
        if r.platforms.is_empty() {
            return true;
        }
        if os.is_empty() {
            return r.platforms.iter().any(Option::is_none);
        }
        let target = Platform::of_image(os, arch, variant);
        r.platforms.iter().flatten().any(|p| p.allows(&target))
    }

    /// Whether rule `rule` names platforms at all.
    pub fn has_platform_filter(&self, rule: usize) -> bool {
        self.rules
            .get(rule)
            .is_some_and(|r| !r.platforms.is_empty())
    }

    /// The repositories to sync without reading the upstream catalog, when
    /// every rule's prefix is a literal name: `Some(list)`, in rule order;
    /// else (or with no rules) `None`.
    pub fn literal_repos(&self) -> Option<Vec<String>> {
        if self.rules.is_empty() {
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        for r in &self.rules {
            let name = r.exact.clone()?;
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Some(out)
    }
}

fn compile(i: usize, rule: &ContentRule) -> Result<Compiled, ContentError> {
    let err = |field: &'static str, message: String| ContentError {
        rule: i,
        field,
        message,
    };
    let prefix = rule.prefix.trim_matches('/');
    if prefix.is_empty() {
        return Err(err(
            "prefix",
            "name a repository or a glob (\"**\" for every repository)".into(),
        ));
    }
    let upstream = RepoGlob::new(prefix).map_err(|e| err("prefix", format!("bad glob: {e}")))?;
    let split = split_literal(prefix);
    let literal = match &split {
        Some((lit, _)) => lit.clone(),
        None => unescape(prefix),
    };
    let exact = (split.is_none() && !prefix.contains('\\')).then(|| prefix.to_string());
    let destination = rule
        .destination
        .as_deref()
        .unwrap_or("")
        .trim_matches('/')
        .to_string();
    if !destination.is_empty() {
        destination.parse::<berth_oci::RepoName>().map_err(|e| {
            err(
                "destination",
                format!("{destination:?} is not a repository name: {}", e.reason),
            )
        })?;
    }
    // Destinations are repository names: no glob characters to escape.
    let local_pattern = if rule.strip_prefix {
        let rest = split.as_ref().map(|(_, rest)| *rest).unwrap_or("");
        join(&destination, rest)
    } else {
        join(&destination, prefix)
    };
    if local_pattern.is_empty() {
        return Err(err(
            "stripPrefix",
            "with a prefix that is one repository and no destination, it would have no local name: set destination".into(),
        ));
    }
    let local =
        RepoGlob::new(&local_pattern).map_err(|e| err("prefix", format!("bad glob: {e}")))?;
    let tags = rule.tags.clone().unwrap_or_default();
    let regex = match tags.regex.as_deref() {
        None => None,
        Some("") => {
            return Err(err(
                "tags.regex",
                "an empty regex matches no tag in zot: leave it out to take every tag".into(),
            ));
        }
        Some(re) => Some(Regex::new(re).map_err(|e| err("tags.regex", one_line(&e.to_string())))?),
    };
    let exclude = match tags.exclude_regex.as_deref() {
        None | Some("") => None,
        Some(re) => {
            Some(Regex::new(re).map_err(|e| err("tags.excludeRegex", one_line(&e.to_string())))?)
        }
    };
    let semver = match &tags.semver {
        None => None,
        Some(SemverFilter::Any) => Some(SemverCheck::Any),
        Some(SemverFilter::Range(r)) => Some(SemverCheck::Range(
            semver::VersionReq::parse(r)
                .map_err(|e| err("tags.semver", format!("{r:?} is no version range: {e}")))?,
        )),
    };
    let platforms = rule
        .platforms
        .iter()
        .map(|p| Platform::parse(p).map_err(|m| err("platforms", m)))
        .collect::<Result<_, _>>()?;
    Ok(Compiled {
        upstream,
        local,
        literal,
        exact,
        destination,
        strip: rule.strip_prefix,
        regex,
        exclude,
        semver,
        platforms,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A tag read as zot's semver library (Masterminds/semver v1) reads it:
/// `v?N(.N)?(.N)?(-pre)?(+build)?`, identifiers of `[0-9A-Za-z-]` joined
/// by dots, numbers that fit an `i64` (leading zeros allowed).
struct TagVersion<'a> {
    numbers: [u64; 3],
    pre: &'a str,
    build: &'a str,
}

impl<'a> TagVersion<'a> {
    fn parse(tag: &'a str) -> Option<Self> {
        let s = tag.strip_prefix('v').unwrap_or(tag);
        let (s, build) = match s.split_once('+') {
            Some((s, b)) => (s, Some(b)),
            None => (s, None),
        };
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let idents_ok = |x: &str| {
            x.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        };
        if pre.is_some_and(|p| !idents_ok(p)) || build.is_some_and(|b| !idents_ok(b)) {
            return None;
        }
        let mut numbers = [0u64; 3];
        let mut parts = core.split('.');
        for (n, slot) in numbers.iter_mut().enumerate() {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    *slot = p.parse::<i64>().ok()? as u64;
                }
                None if n > 0 => break,
                _ => return None,
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            numbers,
            pre: pre.unwrap_or(""),
            build: build.unwrap_or(""),
        })
    }

    /// As a `semver::Version` (a prerelease the semver crate refuses, such
    /// as a numeric identifier with a leading zero, gives `None`).
    fn to_semver(&self) -> Option<semver::Version> {
        let [major, minor, patch] = self.numbers;
        Some(semver::Version {
            major,
            minor,
            patch,
            pre: semver::Prerelease::new(self.pre).ok()?,
            build: semver::BuildMetadata::new(self.build).ok()?,
        })
    }
}

/// A platform, normalised as regclient does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Platform {
    os: String,
    arch: String,
    variant: Option<String>,
}

/// Architectures that may be named alone (regclient's list).
const KNOWN_ARCHES: &[&str] = &[
    "386", "amd64", "i386", "x86_64", "x86-64", "arm", "armhf", "armel", "arm64", "aarch64",
    "mips", "mips64", "mips64le", "ppc", "ppc64", "ppc64le", "loong64", "riscv", "riscv64", "s390",
    "s390x", "sparc", "sparc64", "wasm",
];

/// Checks one entry of a `platforms` list: `""` (index entries without a
/// platform), `os/arch`, `os/arch/variant`, or a known
/// architecture alone (read as `linux/<arch>`, zot's reading on a Linux
/// host). Components are letters, digits, `_` and `-`, case-insensitive.
pub fn check_platform(entry: &str) -> Result<(), String> {
    Platform::parse(entry).map(|_| ())
}

impl Platform {
    fn parse(entry: &str) -> Result<Option<Platform>, String> {
        if entry.is_empty() {
            return Ok(None);
        }
        let parts: Vec<String> = entry.split('/').map(str::to_ascii_lowercase).collect();
        if let Some(bad) = parts.iter().find(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Err(format!("{entry:?}: {bad:?} is no platform component"));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] if KNOWN_ARCHES.contains(&arch.as_str()) => ("linux", arch.as_str(), None),
            [_] => {
                return Err(format!(
                    "{entry:?}: name os/arch, e.g. linux/amd64 (an architecture alone means linux)"
                ));
            }
            [os, arch] => (os.as_str(), arch.as_str(), None),
            [os, arch, variant] => (os.as_str(), arch.as_str(), Some(variant.as_str())),
            _ => return Err(format!("{entry:?}: os/arch/variant at most")),
        };
        Ok(Some(Self::normalised(os, arch, variant, false)))
    }

    /// An image's platform, normalised (an `arm` image without a variant
    /// is `v7`, as regclient reads it).
    fn of_image(os: &str, arch: &str, variant: Option<&str>) -> Self {
        Self::normalised(
            &os.to_ascii_lowercase(),
            &arch.to_ascii_lowercase(),
            variant
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            true,
        )
    }

    fn normalised(os: &str, arch: &str, variant: Option<&str>, default_arm: bool) -> Self {
        let os = if os == "macos" { "darwin" } else { os };
        let (arch, variant) = match (arch, variant) {
            ("i386", _) => ("386", None),
            ("x86_64" | "x86-64" | "amd64", Some("v1")) => ("amd64", None),
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
            ("aarch64" | "arm64", Some("8" | "v8")) => ("arm64", None),
            ("aarch64" | "arm64", v) => ("arm64", v),
            ("armhf", _) => ("arm", Some("v7")),
            ("armel", _) => ("arm", Some("v6")),
            ("arm", None) if default_arm => ("arm", Some("v7")),
            ("arm", Some(v @ ("5" | "6" | "7" | "8"))) => {
                return Self {
                    os: os.into(),
                    arch: "arm".into(),
                    variant: Some(format!("v{v}")),
                };
            }
            (a, v) => (a, v),
        };
        Self {
            os: os.into(),
            arch: arch.into(),
            variant: variant.map(str::to_string),
        }
    }

    /// Whether this list entry takes an image of platform `image`.
    fn allows(&self, image: &Platform) -> bool {
        self.os == image.os
            && self.arch == image.arch
            && self
                .variant
                .as_ref()
                .is_none_or(|v| image.variant.as_ref() == Some(v))
    }
}

#[cfg(test)]
mod tests;

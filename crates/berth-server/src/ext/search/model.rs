//! What search shows of a repository, built from the metadata store alone.
//!
//! A [`RepoData`] is derived from one repository's rows (tags, manifests
//! with the details read from their configs at push time, tag times, pull
//! statistics) and never from storage. It holds what lists, sorts, filters
//! and ranks need; what only one image's page asks for (its layers'
//! history) is read from the store when asked.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use berth_oci::RepoName;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::meta::{ManifestMeta, MetaResult, MetaStore, PullStats, RepoStamp};

/// Where cosign keeps a signature in the tag scheme: `sha256-<hex>.sig`.
const COSIGN_TAG_SUFFIX: &str = ".sig";
/// The artifact type of a cosign signature pushed as an OCI 1.1 referrer.
pub(crate) const COSIGN_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The artifact type of a sigstore bundle (cosign's newer format).
pub(crate) const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The artifact type of a notation signature.
pub(crate) const NOTATION_ARTIFACT: &str = "application/vnd.cncf.notary.signature";

/// An operating system and architecture (the architecture carries the
/// variant, `arm/v7`, as zot shows it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Platform {
    pub os: Arc<str>,
    pub arch: Arc<str>,
}

impl Platform {
    /// `os/architecture[/variant]` as `(os, architecture[/variant])`.
    fn parse(s: &str) -> Option<(&str, &str)> {
        let (os, arch) = s.split_once('/')?;
        Some((os, arch))
    }

    fn of(m: &ManifestMeta, strings: &Interner) -> Option<Self> {
        if let Some((os, arch)) = m.platform.as_deref().and_then(Self::parse) {
            return Some(Self {
                os: strings.get(os),
                arch: strings.get(arch),
            });
        }
        let img = m.image.as_ref()?;
        let (os, arch) = (img.os.as_deref()?, img.arch.as_deref()?);
        let arch = match img.variant.as_deref() {
            Some(v) if !v.is_empty() => strings.get(&format!("{arch}/{v}")),
            _ => strings.get(arch),
        };
        Some(Self {
            os: strings.get(os),
            arch,
        })
    }
}

/// A signature found for a manifest, with the trust extension's verdict
/// (untrusted, with no author, where it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signature {
    /// `cosign` or `notation`.
    pub tool: &'static str,
    pub author: String,
    pub trusted: bool,
}

/// A manifest whose `subject` is another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Referrer {
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub size: u64,
    pub digest: String,
    pub annotations: Vec<(String, String)>,
}

/// The descriptive fields zot shows, from OCI annotations with the
/// label-schema and config-label fallbacks zot applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Described {
    pub title: String,
    pub description: String,
    pub vendor: String,
    pub source: String,
    pub licenses: String,
    pub documentation: String,
    pub authors: String,
    /// `org.label-schema.labels`.
    pub labels: String,
}

impl Described {
    /// The first non-empty value among `sources`, each read as OCI key
    /// then label-schema key.
    fn from_sources(sources: &[&BTreeMap<String, String>]) -> Self {
        let pick = |oci: &str, legacy: Option<&str>| -> String {
            for s in sources {
                for key in std::iter::once(oci).chain(legacy) {
                    if let Some(v) = s.get(key).filter(|v| !v.is_empty()) {
                        return v.clone();
                    }
                }
            }
            String::new()
        };
        let oci = |k: &str| format!("org.opencontainers.image.{k}");
        Self {
            title: pick(&oci("title"), Some("org.label-schema.name")),
            description: pick(&oci("description"), Some("org.label-schema.description")),
            vendor: pick(&oci("vendor"), Some("org.label-schema.vendor")),
            source: pick(&oci("source"), Some("org.label-schema.vcs-url")),
            licenses: pick(&oci("licenses"), Some("org.label-schema.license")),
            documentation: pick(&oci("documentation"), Some("org.label-schema.usage")),
            authors: pick(&oci("authors"), None),
            labels: pick("org.label-schema.labels", None),
        }
    }
}

/// One manifest of an image (the image itself, or one of an index's).
#[derive(Debug, Clone)]
pub(crate) struct ManifestData {
    pub digest: Arc<str>,
    pub config: Option<Arc<str>>,
    pub artifact_type: Option<Arc<str>>,
    /// Manifest, config and layers, in bytes.
    pub size: u64,
    pub platform: Option<Platform>,
    /// Digest and size of each layer, in order.
    pub layers: Vec<(Arc<str>, u64)>,
    /// Seconds since the epoch: the config's `created` or its newest
    /// history entry.
    pub last_updated: Option<i64>,
    pub downloads: u64,
    pub signatures: Vec<Signature>,
    pub referrers: Vec<Referrer>,
}

/// A tagged image: what `ImageSummary` shows.
#[derive(Debug, Clone)]
pub(crate) struct ImageData {
    pub repo: Arc<str>,
    pub tag: String,
    pub digest: Arc<str>,
    pub media_type: Arc<str>,
    pub artifact_type: Option<Arc<str>>,
    pub manifests: Vec<ManifestData>,
    /// The manifest (or index), its configs and layers, in bytes.
    pub size: u64,
    /// The newest of its manifests' build times, else its push time.
    pub last_updated: i64,
    /// Shared by images described alike (most are not described at all).
    pub described: Arc<Described>,
    pub downloads: u64,
    pub last_pull: Option<u64>,
    pub pushed_at: u64,
    pub tagged_at: Option<u64>,
    pub signatures: Vec<Signature>,
    pub referrers: Vec<Referrer>,
}

impl ImageData {
    pub(crate) fn is_signed(&self) -> bool {
        !self.signatures.is_empty()
    }

    /// The platforms of its manifests.
    pub(crate) fn platforms(&self) -> impl Iterator<Item = &Platform> {
        self.manifests.iter().filter_map(|m| m.platform.as_ref())
    }
}

/// A repository: what `RepoSummary` shows, and its images.
#[derive(Debug, Clone)]
pub(crate) struct RepoData {
    pub name: Arc<str>,
    /// The name, parsed once (access checks take it as a `RepoName`).
    pub repo: RepoName,
    /// What the store said of the repository when this was built: a
    /// different stamp means it must be built again.
    pub stamp: RepoStamp,
    /// Tagged images, by tag (signature tags are not images).
    pub images: Vec<Arc<ImageData>>,
    /// Every distinct blob of its images (manifests, configs, layers).
    pub size: u64,
    /// Every distinct blob of all its manifests, tagged or not: what
    /// counts against a quota.
    pub used: u64,
    pub last_updated: i64,
    pub platforms: Vec<Platform>,
    pub vendors: Vec<String>,
    /// The image with the newest `last_updated`.
    pub newest: Option<Arc<ImageData>>,
    /// Pulls of its tagged images.
    pub downloads: u64,
    /// Referrers by the digest they refer to.
    pub referrers: HashMap<String, Vec<Referrer>>,
}

impl RepoData {
    pub(crate) fn stars(&self) -> u64 {
        self.stamp.stars
    }
}

/// Shares equal strings and descriptions within one repository's model:
/// its tags' images mostly have the same layers, config, media types and
/// platforms, and the same (often empty) description, so each is kept
/// once. What keeps the index small in memory.
#[derive(Default)]
pub(crate) struct Interner {
    strings: RefCell<HashSet<Arc<str>>>,
    described: RefCell<HashSet<Arc<Described>>>,
}

impl Interner {
    pub(crate) fn get(&self, s: &str) -> Arc<str> {
        let mut set = self.strings.borrow_mut();
        if let Some(a) = set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        set.insert(a.clone());
        a
    }

    fn opt(&self, s: Option<&str>) -> Option<Arc<str>> {
        s.map(|s| self.get(s))
    }

    fn described(&self, d: Described) -> Arc<Described> {
        let mut set = self.described.borrow_mut();
        if let Some(a) = set.get(&d) {
            return a.clone();
        }
        let a = Arc::new(d);
        set.insert(a.clone());
        a
    }
}

/// Seconds since the epoch of an RFC 3339 time.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// An RFC 3339 time (UTC) of seconds since the epoch.
pub(crate) fn format_time(secs: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// The newest of a config's `created` and its history entries' times.
fn built_at(m: &ManifestMeta) -> Option<i64> {
    let img = m.image.as_ref()?;
    img.created
        .as_deref()
        .and_then(parse_time)
        .into_iter()
        .chain(
            img.history
                .iter()
                .filter_map(|h| h.created.as_deref().and_then(parse_time)),
        )
        .max()
}

/// The digest a cosign tag-scheme tag signs (`sha256-<hex>.sig`).
fn cosign_tag_subject(tag: &str) -> Option<String> {
    let hex = tag
        .strip_prefix("sha256-")?
        .strip_suffix(COSIGN_TAG_SUFFIX)?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

/// Signatures found for each digest: cosign's tag scheme, and cosign and
/// notation referrers; each with the verdicts the trust extension kept on
/// the signature's row (one per signature it holds), or untrusted and
/// without an author until it did.
fn signatures_of(
    tags: &[(String, String)],
    metas: &HashMap<String, ManifestMeta>,
) -> HashMap<String, Vec<Signature>> {
    let mut out: HashMap<String, Vec<Signature>> = HashMap::new();
    let verdicts = |tool: &'static str, row: Option<&ManifestMeta>| -> Vec<Signature> {
        match row.and_then(|m| m.trust.as_ref()) {
            Some(record) if !record.verdicts.is_empty() => record
                .verdicts
                .iter()
                .map(|v| Signature {
                    tool: if v.tool == "notation" {
                        "notation"
                    } else {
                        "cosign"
                    },
                    author: v.author.clone(),
                    trusted: v.trusted,
                })
                .collect(),
            _ => vec![Signature {
                tool,
                author: String::new(),
                trusted: false,
            }],
        }
    };
    for (tag, digest) in tags {
        if let Some(subject) = cosign_tag_subject(tag) {
            out.entry(subject)
                .or_default()
                .extend(verdicts("cosign", metas.get(digest)));
        }
    }
    for m in metas.values() {
        let Some(subject) = &m.subject else { continue };
        let tool = match m.artifact_type.as_deref() {
            Some(COSIGN_ARTIFACT | SIGSTORE_BUNDLE) => "cosign",
            Some(NOTATION_ARTIFACT) => "notation",
            _ => continue,
        };
        out.entry(subject.clone())
            .or_default()
            .extend(verdicts(tool, Some(m)));
    }
    // The same order whatever order the rows came in.
    for list in out.values_mut() {
        list.sort_by(|a, b| (a.tool, !a.trusted, &a.author).cmp(&(b.tool, !b.trusted, &b.author)));
    }
    out
}

fn referrer_of(m: &ManifestMeta) -> Referrer {
    Referrer {
        media_type: m.media_type.clone(),
        artifact_type: m.artifact_type.clone(),
        size: m.size,
        digest: m.digest.clone(),
        annotations: m
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Everything read from the store to build one repository.
struct Rows {
    tags: Vec<(String, String)>,
    metas: HashMap<String, ManifestMeta>,
    times: BTreeMap<String, u64>,
    pulls: BTreeMap<String, PullStats>,
}

/// Builds what search shows of `name` from the store (`None`: the name
/// is no valid repository name, which the store may still hold).
pub(crate) async fn build_repo(
    meta: &dyn MetaStore,
    name: &str,
    stamp: RepoStamp,
) -> MetaResult<Option<RepoData>> {
    let Ok(repo) = name.parse::<RepoName>() else {
        return Ok(None);
    };
    let rows = Rows {
        tags: meta.tags(&repo).await?,
        metas: meta
            .manifests(&repo)
            .await?
            .into_iter()
            .map(|m| (m.digest.clone(), m))
            .collect(),
        times: meta.tag_times(&repo).await?,
        pulls: meta.pull_stats_all(&repo).await?,
    };
    Ok(Some(assemble(repo, stamp, &rows)))
}

fn assemble(repo: RepoName, stamp: RepoStamp, rows: &Rows) -> RepoData {
    let name: Arc<str> = Arc::from(repo.as_str());
    let signatures = signatures_of(&rows.tags, &rows.metas);
    let mut referrers: HashMap<String, Vec<Referrer>> = HashMap::new();
    for m in rows.metas.values() {
        if let Some(s) = &m.subject {
            referrers.entry(s.clone()).or_default().push(referrer_of(m));
        }
    }
    for list in referrers.values_mut() {
        list.sort_by(|a, b| a.digest.cmp(&b.digest));
    }
    let ctx = ImageContext {
        rows,
        signatures: &signatures,
        referrers: &referrers,
        strings: Interner::default(),
    };
    let images: Vec<Arc<ImageData>> = rows
        .tags
        .iter()
        .filter(|(tag, _)| cosign_tag_subject(tag).is_none())
        .filter_map(|(tag, digest)| ctx.image(&name, tag, digest))
        .map(Arc::new)
        .collect();
    let mut blobs: HashMap<&str, u64> = HashMap::new();
    for img in &images {
        ctx.count_blobs(&img.digest, &mut blobs);
    }
    let platforms: BTreeSet<Platform> =
        images.iter().flat_map(|i| i.platforms().cloned()).collect();
    let vendors: BTreeSet<String> = images
        .iter()
        .map(|i| i.described.vendor.clone())
        .filter(|v| !v.is_empty())
        .collect();
    let newest = images
        .iter()
        .max_by(|a, b| {
            a.last_updated
                .cmp(&b.last_updated)
                .then_with(|| b.tag.cmp(&a.tag))
        })
        .cloned();
    RepoData {
        stamp,
        size: blobs.values().sum(),
        used: crate::registry::referenced(rows.metas.values())
            .values()
            .sum(),
        last_updated: newest.as_ref().map_or(0, |n| n.last_updated),
        platforms: platforms.into_iter().collect(),
        vendors: vendors.into_iter().collect(),
        downloads: images.iter().map(|i| i.downloads).sum(),
        newest,
        images,
        referrers,
        name,
        repo,
    }
}

/// What building one image of a repository reads.
struct ImageContext<'a> {
    rows: &'a Rows,
    signatures: &'a HashMap<String, Vec<Signature>>,
    referrers: &'a HashMap<String, Vec<Referrer>>,
    strings: Interner,
}

impl ImageContext<'_> {
    fn downloads(&self, digest: &str) -> PullStats {
        self.rows.pulls.get(digest).copied().unwrap_or_default()
    }

    fn manifest(&self, m: &ManifestMeta) -> ManifestData {
        let s = &self.strings;
        let layers: Vec<(Arc<str>, u64)> = m
            .layers
            .iter()
            .enumerate()
            .map(|(i, d)| (s.get(d), m.layer_sizes.get(i).copied().unwrap_or(0)))
            .collect();
        ManifestData {
            digest: s.get(&m.digest),
            config: s.opt(m.config.as_deref()),
            artifact_type: s.opt(m.artifact_type.as_deref()),
            size: m.size + m.config_size + layers.iter().map(|(_, s)| s).sum::<u64>(),
            platform: Platform::of(m, s),
            layers,
            last_updated: built_at(m),
            downloads: self.downloads(&m.digest).count,
            signatures: self.signatures.get(&m.digest).cloned().unwrap_or_default(),
            referrers: self.referrers.get(&m.digest).cloned().unwrap_or_default(),
        }
    }

    fn image(&self, repo: &Arc<str>, tag: &str, digest: &str) -> Option<ImageData> {
        let top = self.rows.metas.get(digest)?;
        let children: Vec<&ManifestMeta> = top
            .children
            .iter()
            .filter_map(|c| self.rows.metas.get(c))
            .collect();
        let manifests: Vec<ManifestData> = if top.children.is_empty() {
            vec![self.manifest(top)]
        } else {
            children.iter().map(|c| self.manifest(c)).collect()
        };
        // An index's size is its images' (zot's), without its own bytes.
        let size = manifests.iter().map(|m| m.size).sum();
        // Annotations first (the index's, then its manifests'), then the
        // configs' labels, as zot reads them.
        let mut sources: Vec<&BTreeMap<String, String>> = vec![&top.annotations];
        sources.extend(children.iter().map(|c| &c.annotations));
        let labels = std::iter::once(top).chain(children.iter().copied());
        sources.extend(labels.filter_map(|m| m.image.as_ref().map(|i| &i.labels)));
        let stats = self.downloads(digest);
        let s = &self.strings;
        Some(ImageData {
            repo: repo.clone(),
            tag: tag.to_string(),
            digest: s.get(digest),
            media_type: s.get(&top.media_type),
            artifact_type: s.opt(top.artifact_type.as_deref()),
            size,
            last_updated: manifests
                .iter()
                .filter_map(|m| m.last_updated)
                .max()
                .unwrap_or(top.pushed_at as i64),
            described: s.described(Described::from_sources(&sources)),
            downloads: stats.count,
            last_pull: stats.last_pulled,
            pushed_at: top.pushed_at,
            tagged_at: self.rows.times.get(tag).copied(),
            signatures: self.signatures.get(digest).cloned().unwrap_or_default(),
            referrers: self.referrers.get(digest).cloned().unwrap_or_default(),
            manifests,
        })
    }

    /// Adds the blobs of `digest` (and its children) to `blobs`, each once.
    fn count_blobs<'b>(&'b self, digest: &'b str, blobs: &mut HashMap<&'b str, u64>) {
        let Some(m) = self.rows.metas.get(digest) else {
            return;
        };
        blobs.insert(&m.digest, m.size);
        if let Some(c) = &m.config {
            blobs.insert(c, m.config_size);
        }
        for (i, l) in m.layers.iter().enumerate() {
            blobs.insert(l, m.layer_sizes.get(i).copied().unwrap_or(0));
        }
        for c in &m.children {
            self.count_blobs(c, blobs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_carry_the_variant_in_the_architecture() {
        assert_eq!(Platform::parse("linux/arm/v7"), Some(("linux", "arm/v7")));
        assert!(Platform::parse("linux").is_none());
    }

    #[test]
    fn equal_strings_are_kept_once() {
        let strings = Interner::default();
        let (a, b) = (strings.get("sha256:abc"), strings.get("sha256:abc"));
        assert!(Arc::ptr_eq(&a, &b));
        let (x, y) = (
            strings.described(Described::default()),
            strings.described(Described::default()),
        );
        assert!(Arc::ptr_eq(&x, &y));
    }

    #[test]
    fn cosign_tags_name_the_digest_they_sign() {
        let hex = "a".repeat(64);
        assert_eq!(
            cosign_tag_subject(&format!("sha256-{hex}.sig")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(cosign_tag_subject("sha256-abc.sig"), None);
        assert_eq!(cosign_tag_subject("v1.0"), None);
    }

    #[test]
    fn annotations_win_over_labels_and_legacy_keys_fill_in() {
        let ann = BTreeMap::from([(
            "org.opencontainers.image.vendor".to_string(),
            "Acme".to_string(),
        )]);
        let labels = BTreeMap::from([
            (
                "org.opencontainers.image.vendor".to_string(),
                "Other".to_string(),
            ),
            (
                "org.label-schema.description".to_string(),
                "from a label".to_string(),
            ),
        ]);
        let d = Described::from_sources(&[&ann, &labels]);
        assert_eq!(d.vendor, "Acme");
        assert_eq!(d.description, "from a label");
        assert_eq!(d.title, "");
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        let t = parse_time("2024-01-02T03:04:05Z").expect("time");
        assert_eq!(format_time(t).as_deref(), Some("2024-01-02T03:04:05Z"));
        assert!(parse_time("yesterday").is_none());
    }
}

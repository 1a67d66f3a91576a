//! The GraphQL types of zot's search schema, with zot's names,
//! nullability and field order (zot's CLI checks the schema by
//! introspection before each command).
//!
//! Summaries are resolved lazily from the index's [`ImageData`] and
//! [`RepoData`]: a field no query asks for costs nothing, and only an
//! image's layer history is read from the metadata store, when asked.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, InputObject, InputValueError, InputValueResult, Object, Scalar, ScalarType,
    SimpleObject, Value,
};

use super::model::{self, ImageData, ManifestData, RepoData};
use super::query::QueryData;
use crate::config::Action;

/// zot's `Time` scalar: an RFC 3339 string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Time(String);

#[Scalar(name = "Time")]
impl ScalarType for Time {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Self(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

fn time(secs: i64) -> Option<Time> {
    model::format_time(secs).map(Time)
}

/// A count as GraphQL's 32-bit `Int`, saturated.
fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// zot's `SortCriteria`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "SortCriteria")]
pub(crate) enum SortCriteria {
    Relevance,
    UpdateTime,
    AlphabeticAsc,
    AlphabeticDsc,
    Severity,
    Stars,
    Downloads,
}

/// zot's `PageInput`.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "PageInput")]
pub(crate) struct PageInput {
    pub limit: Option<i32>,
    pub offset: Option<i32>,
    pub sort_by: Option<SortCriteria>,
}

/// zot's `PlatformInput`.
#[derive(Debug, Clone, InputObject)]
#[graphql(name = "PlatformInput", rename_fields = "PascalCase")]
pub(crate) struct PlatformInput {
    pub os: Option<String>,
    pub arch: Option<String>,
}

/// zot's `ImageInput`.
#[derive(Debug, Clone, InputObject)]
#[graphql(name = "ImageInput", rename_fields = "PascalCase")]
pub(crate) struct ImageInput {
    pub repo: String,
    pub tag: String,
    pub digest: Option<String>,
    pub platform: Option<PlatformInput>,
}

/// zot's `Filter`.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "Filter", rename_fields = "PascalCase")]
pub(crate) struct Filter {
    pub os: Option<Vec<Option<String>>>,
    pub arch: Option<Vec<Option<String>>>,
    pub has_to_be_signed: Option<bool>,
    pub is_bookmarked: Option<bool>,
    pub is_starred: Option<bool>,
}

/// zot's `PageInfo`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "PageInfo", rename_fields = "PascalCase")]
pub(crate) struct PageInfo {
    pub total_count: i32,
    pub item_count: i32,
}

impl PageInfo {
    pub(crate) fn new(total: usize, items: usize) -> Self {
        Self {
            total_count: int(total as u64),
            item_count: int(items as u64),
        }
    }
}

/// zot's `Platform`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Platform", rename_fields = "PascalCase")]
pub(crate) struct Platform {
    pub os: Option<String>,
    pub arch: Option<String>,
}

impl From<&model::Platform> for Platform {
    fn from(p: &model::Platform) -> Self {
        Self {
            os: Some(p.os.to_string()),
            arch: Some(p.arch.to_string()),
        }
    }
}

/// zot's `ImageIdentifier`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ImageIdentifier", rename_fields = "PascalCase")]
pub(crate) struct ImageIdentifier {
    pub repo: String,
    pub tag: String,
    pub digest: Option<String>,
    pub platform: Option<Platform>,
}

/// zot's `PackageInfo`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "PackageInfo", rename_fields = "PascalCase")]
pub(crate) struct PackageInfo {
    pub name: Option<String>,
    pub package_path: Option<String>,
    pub installed_version: Option<String>,
    pub fixed_version: Option<String>,
}

/// zot's `CVE`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "CVE", rename_fields = "PascalCase")]
pub(crate) struct Cve {
    pub id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub reference: Option<String>,
    pub severity: Option<String>,
    pub package_list: Option<Vec<Option<PackageInfo>>>,
}

/// zot's `ImageVulnerabilitySummary`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ImageVulnerabilitySummary", rename_fields = "PascalCase")]
pub(crate) struct ImageVulnerabilitySummary {
    pub max_severity: Option<String>,
    pub count: Option<i32>,
    pub unknown_count: Option<i32>,
    pub low_count: Option<i32>,
    pub medium_count: Option<i32>,
    pub high_count: Option<i32>,
    pub critical_count: Option<i32>,
}

/// zot's `CVEResultForImage`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "CVEResultForImage", rename_fields = "PascalCase")]
pub(crate) struct CveResultForImage {
    pub tag: Option<String>,
    #[graphql(name = "CVEList")]
    pub cve_list: Option<Vec<Option<Cve>>>,
    pub summary: Option<ImageVulnerabilitySummary>,
    pub page: Option<PageInfo>,
}

/// zot's `CVEDiffResult`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "CVEDiffResult", rename_fields = "PascalCase")]
pub(crate) struct CveDiffResult {
    pub minuend: ImageIdentifier,
    pub subtrahend: ImageIdentifier,
    #[graphql(name = "CVEList")]
    pub cve_list: Option<Vec<Option<Cve>>>,
    pub summary: Option<ImageVulnerabilitySummary>,
    pub page: Option<PageInfo>,
}

/// zot's `LayerSummary`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "LayerSummary", rename_fields = "PascalCase")]
pub(crate) struct LayerSummary {
    pub size: Option<String>,
    pub digest: Option<String>,
}

impl LayerSummary {
    fn new(digest: &str, size: u64) -> Self {
        Self {
            size: Some(size.to_string()),
            digest: Some(digest.to_string()),
        }
    }
}

/// zot's `HistoryDescription`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "HistoryDescription", rename_fields = "PascalCase")]
pub(crate) struct HistoryDescription {
    pub created: Option<Time>,
    pub created_by: Option<String>,
    pub author: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: Option<bool>,
}

/// zot's `LayerHistory`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "LayerHistory", rename_fields = "PascalCase")]
pub(crate) struct LayerHistory {
    pub layer: Option<LayerSummary>,
    pub history_description: Option<HistoryDescription>,
}

/// zot's `Annotation`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Annotation", rename_fields = "PascalCase")]
pub(crate) struct Annotation {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// zot's `Referrer`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Referrer", rename_fields = "PascalCase")]
pub(crate) struct Referrer {
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    pub size: Option<i32>,
    pub digest: Option<String>,
    pub annotations: Vec<Option<Annotation>>,
}

impl From<&model::Referrer> for Referrer {
    fn from(r: &model::Referrer) -> Self {
        Self {
            media_type: Some(r.media_type.clone()),
            artifact_type: r.artifact_type.clone(),
            size: Some(int(r.size)),
            digest: Some(r.digest.clone()),
            annotations: r
                .annotations
                .iter()
                .map(|(k, v)| {
                    Some(Annotation {
                        key: Some(k.clone()),
                        value: Some(v.clone()),
                    })
                })
                .collect(),
        }
    }
}

fn referrers(list: &[model::Referrer]) -> Option<Vec<Option<Referrer>>> {
    Some(list.iter().map(|r| Some(r.into())).collect())
}

/// zot's `SignatureSummary`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "SignatureSummary", rename_fields = "PascalCase")]
pub(crate) struct SignatureSummary {
    pub tool: Option<String>,
    pub is_trusted: Option<bool>,
    pub author: Option<String>,
}

fn signatures(list: &[model::Signature]) -> Option<Vec<Option<SignatureSummary>>> {
    Some(
        list.iter()
            .map(|s| {
                Some(SignatureSummary {
                    tool: Some(s.tool.to_string()),
                    is_trusted: Some(s.trusted),
                    author: Some(s.author.clone()),
                })
            })
            .collect(),
    )
}

/// zot's `PaginatedImagesResult`.
#[derive(SimpleObject)]
#[graphql(name = "PaginatedImagesResult", rename_fields = "PascalCase")]
pub(crate) struct PaginatedImagesResult {
    pub page: Option<PageInfo>,
    pub results: Vec<ImageSummary>,
}

/// zot's `PaginatedReposResult`.
#[derive(SimpleObject)]
#[graphql(name = "PaginatedReposResult", rename_fields = "PascalCase")]
pub(crate) struct PaginatedReposResult {
    pub page: Option<PageInfo>,
    pub results: Vec<RepoSummary>,
}

/// zot's `GlobalSearchResult` (`Layers` is always empty, as in zot).
#[derive(SimpleObject)]
#[graphql(name = "GlobalSearchResult", rename_fields = "PascalCase")]
pub(crate) struct GlobalSearchResult {
    pub page: Option<PageInfo>,
    pub images: Option<Vec<Option<ImageSummary>>>,
    pub repos: Option<Vec<Option<RepoSummary>>>,
    pub layers: Option<Vec<Option<LayerSummary>>>,
}

/// zot's `RepoInfo`.
#[derive(SimpleObject)]
#[graphql(name = "RepoInfo", rename_fields = "PascalCase")]
pub(crate) struct RepoInfo {
    pub images: Option<Vec<Option<ImageSummary>>>,
    pub summary: Option<RepoSummary>,
}

/// zot's `ImageSummary`: a tagged image, showing all its manifests or
/// only those a query matched.
pub(crate) struct ImageSummary {
    pub image: Arc<ImageData>,
    /// Which of the image's manifests to show (`None`: all).
    pub only: Option<Vec<usize>>,
}

impl ImageSummary {
    pub(crate) fn new(image: Arc<ImageData>) -> Self {
        Self { image, only: None }
    }

    fn text(s: &str) -> Option<&str> {
        Some(s)
    }
}

#[Object(name = "ImageSummary", rename_fields = "PascalCase")]
impl ImageSummary {
    async fn repo_name(&self) -> Option<&str> {
        Some(&self.image.repo)
    }
    async fn tag(&self) -> Option<&str> {
        Some(&self.image.tag)
    }
    async fn digest(&self) -> Option<&str> {
        Some(&self.image.digest)
    }
    async fn media_type(&self) -> Option<&str> {
        Some(&self.image.media_type)
    }
    async fn manifests(&self) -> Option<Vec<Option<ManifestSummary>>> {
        let all = 0..self.image.manifests.len();
        let which: Vec<usize> = match &self.only {
            Some(only) => only.clone(),
            None => all.collect(),
        };
        Some(
            which
                .into_iter()
                .map(|index| {
                    Some(ManifestSummary {
                        image: self.image.clone(),
                        index,
                    })
                })
                .collect(),
        )
    }
    async fn size(&self) -> Option<String> {
        Some(self.image.size.to_string())
    }
    async fn download_count(&self) -> Option<i32> {
        Some(int(self.image.downloads))
    }
    async fn last_pull_timestamp(&self) -> Option<Time> {
        self.image.last_pull.and_then(|t| time(t as i64))
    }
    async fn push_timestamp(&self) -> Option<Time> {
        time(self.image.pushed_at as i64)
    }
    async fn tagged_timestamp(&self) -> Option<Time> {
        time(self.image.tagged_at.unwrap_or(self.image.pushed_at) as i64)
    }
    async fn last_updated(&self) -> Option<Time> {
        time(self.image.last_updated)
    }
    async fn description(&self) -> Option<&str> {
        Self::text(&self.image.described.description)
    }
    async fn is_signed(&self) -> Option<bool> {
        Some(self.image.is_signed())
    }
    async fn signature_info(&self) -> Option<Vec<Option<SignatureSummary>>> {
        signatures(&self.image.signatures)
    }
    async fn licenses(&self) -> Option<&str> {
        Self::text(&self.image.described.licenses)
    }
    async fn labels(&self) -> Option<&str> {
        Self::text(&self.image.described.labels)
    }
    async fn title(&self) -> Option<&str> {
        Self::text(&self.image.described.title)
    }
    async fn source(&self) -> Option<&str> {
        Self::text(&self.image.described.source)
    }
    async fn documentation(&self) -> Option<&str> {
        Self::text(&self.image.described.documentation)
    }
    async fn vendor(&self) -> Option<&str> {
        Self::text(&self.image.described.vendor)
    }
    async fn authors(&self) -> Option<&str> {
        Self::text(&self.image.described.authors)
    }
    /// What the last scan found (every platform of an index); `null`
    /// while scanning is off or the image was not scanned yet.
    async fn vulnerabilities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<ImageVulnerabilitySummary>> {
        let data = ctx.data::<QueryData>()?;
        Ok(data
            .known_vulnerabilities(&self.image.repo, &self.image.digest)
            .await?
            .map(|records| super::cve::summary(&records)))
    }
    async fn referrers(&self) -> Option<Vec<Option<Referrer>>> {
        referrers(&self.image.referrers)
    }
    /// Whether the caller may delete this image.
    async fn is_deletable(&self, ctx: &Context<'_>) -> Option<bool> {
        let data = ctx.data_opt::<QueryData>()?;
        let repo = self.image.repo.parse().ok()?;
        Some(data.caller.may(&repo, Action::Delete))
    }
    /// The image's artifact type (its `artifactType`, else its config's
    /// media type). Not in zot's schema, but zot's web UI asks for it on
    /// an image's page.
    async fn artifact_type(&self) -> Option<&str> {
        self.image.artifact_type.as_deref()
    }
}

/// zot's `ManifestSummary`: one manifest of an image.
pub(crate) struct ManifestSummary {
    image: Arc<ImageData>,
    index: usize,
}

impl ManifestSummary {
    fn data(&self) -> Option<&ManifestData> {
        self.image.manifests.get(self.index)
    }
}

#[Object(name = "ManifestSummary", rename_fields = "PascalCase")]
impl ManifestSummary {
    async fn digest(&self) -> Option<&str> {
        self.data().map(|m| &*m.digest)
    }
    async fn config_digest(&self) -> Option<&str> {
        self.data().and_then(|m| m.config.as_deref())
    }
    async fn last_updated(&self) -> Option<Time> {
        let m = self.data()?;
        time(m.last_updated.unwrap_or(self.image.last_updated))
    }
    async fn size(&self) -> Option<String> {
        self.data().map(|m| m.size.to_string())
    }
    async fn is_signed(&self) -> Option<bool> {
        self.data().map(|m| !m.signatures.is_empty())
    }
    async fn signature_info(&self) -> Option<Vec<Option<SignatureSummary>>> {
        signatures(&self.data()?.signatures)
    }
    async fn platform(&self) -> Option<Platform> {
        self.data()?.platform.as_ref().map(Platform::from)
    }
    async fn download_count(&self) -> Option<i32> {
        self.data().map(|m| int(m.downloads))
    }
    async fn layers(&self) -> Option<Vec<Option<LayerSummary>>> {
        let m = self.data()?;
        Some(
            m.layers
                .iter()
                .map(|(d, s)| Some(LayerSummary::new(d, *s)))
                .collect(),
        )
    }
    /// The config's history beside the layers it made, read from the
    /// metadata store (only an image's own page asks for it).
    async fn history(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<Option<LayerHistory>>>> {
        let Some(m) = self.data() else {
            return Ok(None);
        };
        let data = ctx.data::<QueryData>()?;
        let history = data.history(&self.image.repo, &m.digest).await?;
        Ok(Some(pair_history(&m.layers, &history)))
    }
    /// What the last scan of this manifest found; `null` while scanning
    /// is off or it was not scanned yet.
    async fn vulnerabilities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<ImageVulnerabilitySummary>> {
        let Some(m) = self.data() else {
            return Ok(None);
        };
        let data = ctx.data::<QueryData>()?;
        Ok(data
            .known_vulnerabilities(&self.image.repo, &m.digest)
            .await?
            .map(|records| super::cve::summary(&records)))
    }
    async fn referrers(&self) -> Option<Vec<Option<Referrer>>> {
        referrers(&self.data()?.referrers)
    }
    async fn artifact_type(&self) -> Option<&str> {
        self.data()?.artifact_type.as_deref()
    }
}

/// Pairs history entries with the layers they made, in order: an entry
/// marked `empty_layer` made none. Without history, each layer stands
/// alone.
fn pair_history(
    layers: &[(Arc<str>, u64)],
    history: &[crate::meta::HistoryMeta],
) -> Vec<Option<LayerHistory>> {
    if history.is_empty() {
        return layers
            .iter()
            .map(|(d, s)| {
                Some(LayerHistory {
                    layer: Some(LayerSummary::new(d, *s)),
                    history_description: None,
                })
            })
            .collect();
    }
    let mut next = layers.iter();
    history
        .iter()
        .map(|h| {
            let layer = if h.empty_layer { None } else { next.next() };
            Some(LayerHistory {
                layer: layer.map(|(d, s)| LayerSummary::new(d, *s)),
                history_description: Some(HistoryDescription {
                    created: h
                        .created
                        .as_deref()
                        .and_then(model::parse_time)
                        .and_then(time),
                    created_by: h.created_by.clone(),
                    author: h.author.clone(),
                    comment: h.comment.clone(),
                    empty_layer: Some(h.empty_layer),
                }),
            })
        })
        .collect()
}

/// zot's `RepoSummary`.
pub(crate) struct RepoSummary {
    pub repo: Arc<RepoData>,
    pub rank: u32,
}

#[Object(name = "RepoSummary", rename_fields = "PascalCase")]
impl RepoSummary {
    async fn name(&self) -> Option<&str> {
        Some(&self.repo.name)
    }
    async fn last_updated(&self) -> Option<Time> {
        time(self.repo.last_updated)
    }
    async fn size(&self) -> Option<String> {
        Some(self.repo.size.to_string())
    }
    async fn platforms(&self) -> Option<Vec<Option<Platform>>> {
        Some(self.repo.platforms.iter().map(|p| Some(p.into())).collect())
    }
    async fn vendors(&self) -> Option<Vec<Option<String>>> {
        Some(self.repo.vendors.iter().map(|v| Some(v.clone())).collect())
    }
    async fn newest_image(&self) -> Option<ImageSummary> {
        self.repo.newest.clone().map(ImageSummary::new)
    }
    async fn download_count(&self) -> Option<i32> {
        Some(int(self.repo.downloads))
    }
    async fn star_count(&self) -> Option<i32> {
        Some(int(self.repo.stars()))
    }
    async fn is_bookmarked(&self, ctx: &Context<'_>) -> Option<bool> {
        let data = ctx.data_opt::<QueryData>()?;
        Some(data.bookmarked.contains(&*self.repo.name))
    }
    async fn is_starred(&self, ctx: &Context<'_>) -> Option<bool> {
        let data = ctx.data_opt::<QueryData>()?;
        Some(data.starred.contains(&*self.repo.name))
    }
    /// How well the name matched the query (smaller is better).
    async fn rank(&self) -> Option<i32> {
        Some(int(u64::from(self.rank)))
    }
    /// Berth's byte quota of the repository (`storage.quotas`, or
    /// `maxRepoBytes`) and its usage; null when none applies.
    async fn quota(&self, ctx: &Context<'_>) -> Option<RepoQuota> {
        let data = ctx.data_opt::<QueryData>()?;
        let quota = data.policies.quota(&self.repo.repo)?;
        Some(RepoQuota {
            rule: Some(quota.rule.clone()),
            max_bytes: Some(quota.max_bytes.to_string()),
            used_bytes: Some(self.repo.used.to_string()),
        })
    }
}

/// Berth's quota of a repository (beyond zot's schema). Sizes are strings,
/// as zot's `Size`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "RepoQuota", rename_fields = "PascalCase")]
pub(crate) struct RepoQuota {
    /// The config key the quota comes from.
    pub rule: Option<String>,
    pub max_bytes: Option<String>,
    /// The distinct blobs and manifests of every manifest of the
    /// repository (tagged or not, referrers included).
    pub used_bytes: Option<String>,
}

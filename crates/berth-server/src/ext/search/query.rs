//! zot's search queries, answered from one [`Snapshot`] of the index.
//!
//! Every query sees only the repositories its caller may read: they are
//! filtered before anything is counted, ranked or paged, so totals never
//! tell of what the caller cannot see.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Object, Result};

use super::index::Snapshot;
use super::model::{ImageData, RepoData};
use super::page::{PageRequest, RankedImage, RankedRepo, SortBy, rank, sort_images, sort_repos};
use super::types::{
    CveDiffResult, CveResultForImage, Filter, GlobalSearchResult, ImageInput, ImageSummary,
    PageInfo, PageInput, PaginatedImagesResult, PaginatedReposResult, Referrer, RepoInfo,
    RepoSummary,
};
use crate::api::authz::Caller;
use crate::config::Action;
use crate::meta::{HistoryMeta, MetaStore};

/// zot's answer to a CVE query while scanning is off.
const CVE_DISABLED: &str = "cve search is disabled";

/// What one request's queries read: the index as of the request, and
/// who is asking.
pub(crate) struct QueryData {
    pub snapshot: Arc<Snapshot>,
    pub caller: Caller,
    pub meta: Arc<dyn MetaStore>,
    /// The caller's starred repositories (empty for anonymous callers).
    pub starred: HashSet<String>,
    /// The caller's bookmarked repositories.
    pub bookmarked: HashSet<String>,
    /// Where vulnerabilities come from (`None`: scanning is off).
    pub cve: Option<Arc<dyn super::cve::CveSource>>,
    /// The quotas in force.
    pub policies: Arc<crate::registry::Policies>,
}

impl QueryData {
    /// The repositories the caller may read that hold an image (one that
    /// only received blobs so far is no repository to show, as in zot).
    fn visible(&self) -> impl Iterator<Item = &Arc<RepoData>> {
        self.snapshot
            .repos
            .values()
            .filter(|r| !r.images.is_empty() && self.readable(r))
    }

    fn readable(&self, repo: &RepoData) -> bool {
        self.caller.may(&repo.repo, Action::Read)
    }

    /// A repository the caller may read, by name.
    fn repo(&self, name: &str) -> Option<&Arc<RepoData>> {
        self.snapshot.repos.get(name).filter(|r| self.readable(r))
    }

    /// The image `repo:tag` or `repo@digest`.
    fn image(&self, reference: &str) -> Result<Arc<ImageData>> {
        let (repo, pick): (&str, &dyn Fn(&ImageData) -> bool) =
            if let Some((repo, digest)) = reference.split_once('@') {
                (repo, &move |i: &ImageData| *i.digest == *digest)
            } else if let Some((repo, tag)) = reference.rsplit_once(':') {
                (repo, &move |i: &ImageData| i.tag == tag)
            } else {
                return Err(
                    format!("{reference:?}: expected repository:tag or repository@digest").into(),
                );
            };
        self.repo(repo)
            .and_then(|r| r.images.iter().find(|i| pick(i)).cloned())
            .ok_or_else(|| format!("image {reference:?} not found").into())
    }

    /// The vulnerabilities of an image (every platform of an index),
    /// scanned now if it was not; zot's error while scanning is off.
    pub(crate) async fn vulnerabilities(
        &self,
        image: &ImageData,
    ) -> Result<Vec<super::cve::CveRecord>> {
        let Some(source) = &self.cve else {
            return Err(CVE_DISABLED.into());
        };
        let (Ok(repo), Ok(digest)) = (image.repo.parse(), image.digest.parse()) else {
            return Ok(Vec::new());
        };
        match source.vulnerabilities(&repo, &digest).await? {
            Some(records) => Ok(super::cve::merged(records)),
            None => Err("the vulnerability database is not loaded yet".into()),
        }
    }

    /// Whether vulnerability `id` affects `image` (scanned now if it was
    /// not); `None` for an image that could not be scanned, which is
    /// neither affected nor free of it (one broken image does not fail a
    /// query over many).
    async fn affected_by(&self, image: &ImageData, id: &str) -> Result<Option<bool>> {
        let Some(source) = &self.cve else {
            return Err(CVE_DISABLED.into());
        };
        let (Ok(repo), Ok(digest)) = (image.repo.parse(), image.digest.parse()) else {
            return Ok(None);
        };
        match source.vulnerabilities(&repo, &digest).await {
            Ok(Some(records)) => Ok(Some(records.iter().any(|r| r.id == id))),
            Ok(None) => Err("the vulnerability database is not loaded yet".into()),
            Err(crate::registry::RegistryError::Unsupported(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The page of `images` matching `filter` that vulnerability `id`
    /// affects (`affected`) or does not.
    async fn images_by_cve(
        &self,
        images: Vec<&Arc<ImageData>>,
        id: &str,
        affected: bool,
        filter: &Filter,
        page: &PageRequest,
    ) -> Result<PaginatedImagesResult> {
        let mut found = Vec::new();
        for image in images {
            if self.image_matches(image, filter)
                && self.affected_by(image, id).await? == Some(affected)
            {
                found.push(self.ranked(image, 0));
            }
        }
        Ok(self.page_of_images(found, page))
    }

    /// What a scan already found of an image, without scanning (`None`:
    /// scanning is off, or the image was not scanned yet).
    pub(crate) async fn known_vulnerabilities(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<Vec<super::cve::CveRecord>>> {
        let (Some(source), Ok(repo), Ok(digest)) = (&self.cve, repo.parse(), digest.parse()) else {
            return Ok(None);
        };
        Ok(source.known(&repo, &digest).await?.map(super::cve::merged))
    }

    /// The history recorded for a manifest's config.
    pub(crate) async fn history(&self, repo: &str, digest: &str) -> Result<Vec<HistoryMeta>> {
        let (Ok(repo), Ok(digest)) = (repo.parse(), digest.parse()) else {
            return Ok(Vec::new());
        };
        let m = self.meta.manifest(&repo, &digest).await?;
        Ok(m.and_then(|m| m.image)
            .map(|i| i.history)
            .unwrap_or_default())
    }

    fn repo_matches(&self, repo: &RepoData, filter: &Filter) -> bool {
        let listed = |set: &HashSet<String>| set.contains(&*repo.name);
        if filter.is_starred == Some(true) && !listed(&self.starred)
            || filter.is_bookmarked == Some(true) && !listed(&self.bookmarked)
            || filter.has_to_be_signed == Some(true)
                && !repo.newest.as_ref().is_some_and(|n| n.is_signed())
        {
            return false;
        }
        platform_matches(filter, repo.platforms.iter().map(|p| (&*p.os, &*p.arch)))
    }

    fn image_matches(&self, image: &ImageData, filter: &Filter) -> bool {
        let listed = |set: &HashSet<String>| set.contains(&*image.repo);
        if filter.is_starred == Some(true) && !listed(&self.starred)
            || filter.is_bookmarked == Some(true) && !listed(&self.bookmarked)
            || filter.has_to_be_signed == Some(true) && !image.is_signed()
        {
            return false;
        }
        platform_matches(filter, image.platforms().map(|p| (&*p.os, &*p.arch)))
    }

    fn page_of_repos(
        &self,
        mut found: Vec<RankedRepo>,
        page: &PageRequest,
    ) -> (Vec<RepoSummary>, PageInfo) {
        sort_repos(&mut found, page.sort);
        let (items, total) = page.apply(found);
        let info = PageInfo::new(total, items.len());
        let items = items
            .into_iter()
            .map(|r| RepoSummary {
                repo: r.repo,
                rank: r.rank,
            })
            .collect();
        (items, info)
    }

    fn page_of_images(
        &self,
        mut found: Vec<RankedImage>,
        page: &PageRequest,
    ) -> PaginatedImagesResult {
        sort_images(&mut found, page.sort);
        let (items, total) = page.apply(found);
        PaginatedImagesResult {
            page: Some(PageInfo::new(total, items.len())),
            results: items
                .into_iter()
                .map(|r| ImageSummary {
                    image: r.image,
                    only: r.only,
                })
                .collect(),
        }
    }

    fn ranked(&self, image: &Arc<ImageData>, rank: u32) -> RankedImage {
        RankedImage {
            image: image.clone(),
            rank,
            stars: self
                .snapshot
                .repos
                .get(&*image.repo)
                .map_or(0, |r| r.stars()),
            only: None,
        }
    }

    /// Images related to `reference` by their layers: `derived` finds
    /// those built on it (its layers a strict prefix of theirs), otherwise
    /// those it is built on (theirs a strict prefix of its).
    fn layer_relatives(
        &self,
        reference: &str,
        digest: Option<&str>,
        derived: bool,
    ) -> Result<Vec<(Arc<ImageData>, Vec<usize>)>> {
        let me = self.image(reference)?;
        let mine: Vec<Vec<&str>> = me
            .manifests
            .iter()
            .filter(|m| digest.is_none_or(|d| *m.digest == *d))
            .map(|m| m.layers.iter().map(|(l, _)| &**l).collect())
            .filter(|l: &Vec<&str>| !l.is_empty())
            .collect();
        let mut out = Vec::new();
        for repo in self.visible() {
            for image in &repo.images {
                if image.digest == me.digest {
                    continue;
                }
                let matched: Vec<usize> = image
                    .manifests
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| {
                        let theirs: Vec<&str> = m.layers.iter().map(|(l, _)| &**l).collect();
                        mine.iter().any(|ours| {
                            let (short, long) = if derived {
                                (ours.as_slice(), theirs.as_slice())
                            } else {
                                (theirs.as_slice(), ours.as_slice())
                            };
                            !short.is_empty() && short.len() < long.len() && long.starts_with(short)
                        })
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !matched.is_empty() {
                    out.push((image.clone(), matched));
                }
            }
        }
        Ok(out)
    }
}

/// How an image matches a `repository:tag` query (smaller is better;
/// `None`: no match): `repo:tag` is that repository's tags starting with
/// `tag`; `:tag` every repository's tags containing it; a digest
/// (`sha256:…`) the images whose digest, or a manifest's, starts with it.
fn image_rank(query: &str, repo: &str, tag: &str, image: &ImageData) -> Option<u32> {
    let tag_lower = image.tag.to_lowercase();
    let wanted = tag.to_lowercase();
    if repo.is_empty() {
        return rank(tag, &image.tag);
    }
    if repo == "sha256" && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hit = image.digest.starts_with(query)
            || image.manifests.iter().any(|m| m.digest.starts_with(query));
        return hit.then_some(0);
    }
    if !image.repo.eq_ignore_ascii_case(repo) || !tag_lower.starts_with(&wanted) {
        return None;
    }
    u32::try_from(tag_lower.len() - wanted.len()).ok()
}

/// Whether some platform matches the filter's operating systems and
/// architectures (each list, when given, must match; case ignored).
fn platform_matches<'a>(
    filter: &Filter,
    platforms: impl Iterator<Item = (&'a str, &'a str)>,
) -> bool {
    let wanted = |list: &Option<Vec<Option<String>>>| -> Vec<String> {
        list.iter()
            .flatten()
            .flatten()
            .map(|s| s.to_lowercase())
            .collect()
    };
    let (os, arch) = (wanted(&filter.os), wanted(&filter.arch));
    if os.is_empty() && arch.is_empty() {
        return true;
    }
    let mut platforms = platforms;
    platforms.any(|(o, a)| {
        (os.is_empty() || os.contains(&o.to_lowercase()))
            && (arch.is_empty() || arch.contains(&a.to_lowercase()))
    })
}

fn page(input: Option<PageInput>, default_sort: SortBy) -> Result<PageRequest> {
    let input = input.unwrap_or_default();
    Ok(PageRequest::new(
        input.limit,
        input.offset,
        input.sort_by,
        default_sort,
    )?)
}

/// A page of vulnerabilities (in their order: worst first, then id).
fn cve_page(
    records: &[super::cve::CveRecord],
    requested: Option<PageInput>,
) -> Result<(Vec<Option<crate::ext::search::types::Cve>>, PageInfo)> {
    let input = requested.unwrap_or_default();
    let offset = usize::try_from(input.offset.unwrap_or(0).max(0)).unwrap_or(0);
    let limit = input
        .limit
        .filter(|l| *l > 0)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(usize::MAX);
    let list: Vec<_> = records
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| Some(super::cve::to_cve(r)))
        .collect();
    let info = PageInfo::new(records.len(), list.len());
    Ok((list, info))
}

fn data<'a>(ctx: &Context<'a>) -> Result<&'a QueryData> {
    ctx.data::<QueryData>()
}

/// The root of zot's schema.
pub(crate) struct Query;

#[Object(name = "Query")]
impl Query {
    /// The vulnerabilities of an image, filtered and paged.
    #[graphql(name = "CVEListForImage")]
    async fn cve_list_for_image(
        &self,
        ctx: &Context<'_>,
        image: String,
        requested_page: Option<PageInput>,
        #[graphql(name = "searchedCVE")] searched_cve: Option<String>,
        #[graphql(name = "excludedCVE")] excluded_cve: Option<String>,
        severity: Option<String>,
    ) -> Result<CveResultForImage> {
        let data = data(ctx)?;
        let found = data.image(&image)?;
        let records = data.vulnerabilities(&found).await?;
        let records = super::cve::filtered(
            records,
            searched_cve.as_deref(),
            excluded_cve.as_deref(),
            severity.as_deref(),
        );
        let summary = super::cve::summary(&records);
        let (list, info) = cve_page(&records, requested_page)?;
        Ok(CveResultForImage {
            tag: Some(found.tag.clone()),
            cve_list: Some(list),
            summary: Some(summary),
            page: Some(info),
        })
    }

    /// The vulnerabilities of one image that another lacks.
    #[graphql(name = "CVEDiffListForImages")]
    async fn cve_diff_list_for_images(
        &self,
        ctx: &Context<'_>,
        minuend: ImageInput,
        subtrahend: ImageInput,
        requested_page: Option<PageInput>,
        #[graphql(name = "searchedCVE")] searched_cve: Option<String>,
        #[graphql(name = "excludedCVE")] excluded_cve: Option<String>,
    ) -> Result<CveDiffResult> {
        let data = data(ctx)?;
        let reference = |i: &ImageInput| match &i.digest {
            Some(d) if !d.is_empty() => format!("{}@{d}", i.repo),
            _ => format!("{}:{}", i.repo, i.tag),
        };
        let (a, b) = (
            data.image(&reference(&minuend))?,
            data.image(&reference(&subtrahend))?,
        );
        let less: HashSet<String> = data
            .vulnerabilities(&b)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let records: Vec<_> = data
            .vulnerabilities(&a)
            .await?
            .into_iter()
            .filter(|r| !less.contains(&r.id))
            .collect();
        let records = super::cve::filtered(
            records,
            searched_cve.as_deref(),
            excluded_cve.as_deref(),
            None,
        );
        let summary = super::cve::summary(&records);
        let (list, info) = cve_page(&records, requested_page)?;
        let identify =
            |i: &ImageInput, found: &ImageData| crate::ext::search::types::ImageIdentifier {
                repo: i.repo.clone(),
                tag: found.tag.clone(),
                digest: Some(found.digest.to_string()),
                platform: None,
            };
        Ok(CveDiffResult {
            minuend: identify(&minuend, &a),
            subtrahend: identify(&subtrahend, &b),
            cve_list: Some(list),
            summary: Some(summary),
            page: Some(info),
        })
    }

    /// The images a vulnerability affects.
    #[graphql(name = "ImageListForCVE")]
    async fn image_list_for_cve(
        &self,
        ctx: &Context<'_>,
        id: String,
        filter: Option<Filter>,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedImagesResult> {
        let data = data(ctx)?;
        let filter = filter.unwrap_or_default();
        let page = page(requested_page, SortBy::AlphabeticAsc)?;
        let images: Vec<&Arc<ImageData>> = data.visible().flat_map(|r| r.images.iter()).collect();
        data.images_by_cve(images, &id, true, &filter, &page).await
    }

    /// The images of a repository a vulnerability does not affect (an
    /// image that could not be scanned is in neither list).
    #[graphql(name = "ImageListWithCVEFixed")]
    async fn image_list_with_cve_fixed(
        &self,
        ctx: &Context<'_>,
        id: String,
        image: String,
        filter: Option<Filter>,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedImagesResult> {
        let data = data(ctx)?;
        let filter = filter.unwrap_or_default();
        let page = page(requested_page, SortBy::AlphabeticAsc)?;
        let repo = data
            .repo(&image)
            .ok_or_else(|| format!("repository {image:?} not found"))?;
        data.images_by_cve(repo.images.iter().collect(), &id, false, &filter, &page)
            .await
    }

    /// Images whose manifest, a manifest of whose index, whose config or
    /// one of whose layers has the digest `id`.
    #[graphql(name = "ImageListForDigest")]
    async fn image_list_for_digest(
        &self,
        ctx: &Context<'_>,
        id: String,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedImagesResult> {
        let data = data(ctx)?;
        let page = page(requested_page, SortBy::AlphabeticAsc)?;
        let mut found = Vec::new();
        for repo in data.visible() {
            for image in &repo.images {
                if *image.digest == *id {
                    found.push((image.clone(), None));
                    continue;
                }
                let only: Vec<usize> = image
                    .manifests
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| {
                        *m.digest == *id
                            || m.config.as_deref() == Some(id.as_str())
                            || m.layers.iter().any(|(l, _)| **l == *id)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !only.is_empty() {
                    found.push((image.clone(), Some(only)));
                }
            }
        }
        let ranked = found
            .into_iter()
            .map(|(image, only)| RankedImage {
                only,
                ..data.ranked(&image, 0)
            })
            .collect();
        Ok(data.page_of_images(ranked, &page))
    }

    /// Every repository the caller may read, with its newest image.
    #[graphql(name = "RepoListWithNewestImage")]
    async fn repo_list_with_newest_image(
        &self,
        ctx: &Context<'_>,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedReposResult> {
        let data = data(ctx)?;
        let page = page(requested_page, SortBy::UpdateTime)?;
        let found = data
            .visible()
            .map(|r| RankedRepo {
                repo: r.clone(),
                rank: 0,
            })
            .collect();
        let (results, info) = data.page_of_repos(found, &page);
        Ok(PaginatedReposResult {
            page: Some(info),
            results,
        })
    }

    /// The images of a repository, or of every repository for `""`.
    #[graphql(name = "ImageList")]
    async fn image_list(
        &self,
        ctx: &Context<'_>,
        repo: String,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedImagesResult> {
        let data = data(ctx)?;
        let page = page(requested_page, SortBy::AlphabeticAsc)?;
        let repos: Vec<&Arc<RepoData>> = if repo.is_empty() {
            data.visible().collect()
        } else {
            data.repo(&repo).into_iter().collect()
        };
        let found = repos
            .iter()
            .flat_map(|r| r.images.iter())
            .map(|i| data.ranked(i, 0))
            .collect();
        Ok(data.page_of_images(found, &page))
    }

    /// A repository's images and summary.
    #[graphql(name = "ExpandedRepoInfo")]
    async fn expanded_repo_info(&self, ctx: &Context<'_>, repo: String) -> Result<RepoInfo> {
        let data = data(ctx)?;
        let r = data
            .repo(&repo)
            .ok_or_else(|| format!("repository {repo:?} not found"))?;
        // Newest first, as zot lists them.
        let mut images: Vec<&Arc<ImageData>> = r.images.iter().collect();
        images.sort_by(|a, b| {
            b.last_updated
                .cmp(&a.last_updated)
                .then_with(|| a.tag.cmp(&b.tag))
        });
        Ok(RepoInfo {
            images: Some(
                images
                    .into_iter()
                    .map(|i| Some(ImageSummary::new(i.clone())))
                    .collect(),
            ),
            summary: Some(RepoSummary {
                repo: r.clone(),
                rank: 0,
            }),
        })
    }

    /// Repositories whose name contains `query`, ranked; or, for a query
    /// with a colon, images (see `image_rank`).
    #[graphql(name = "GlobalSearch")]
    async fn global_search(
        &self,
        ctx: &Context<'_>,
        query: String,
        filter: Option<Filter>,
        requested_page: Option<PageInput>,
    ) -> Result<GlobalSearchResult> {
        let data = data(ctx)?;
        let page = page(requested_page, SortBy::Relevance)?;
        let filter = filter.unwrap_or_default();
        let query = query.trim();
        if let Some((repo, tag)) = query.split_once(':') {
            let found: Vec<RankedImage> = data
                .visible()
                .flat_map(|r| r.images.iter())
                .filter(|i| data.image_matches(i, &filter))
                .filter_map(|i| image_rank(query, repo, tag, i).map(|n| data.ranked(i, n)))
                .collect();
            let result = data.page_of_images(found, &page);
            return Ok(GlobalSearchResult {
                page: result.page,
                images: Some(result.results.into_iter().map(Some).collect()),
                repos: Some(Vec::new()),
                layers: Some(Vec::new()),
            });
        }
        let found: Vec<RankedRepo> = data
            .visible()
            .filter(|r| data.repo_matches(r, &filter))
            .filter_map(|r| {
                rank(query, &r.name).map(|n| RankedRepo {
                    repo: r.clone(),
                    rank: n,
                })
            })
            .collect();
        let (repos, info) = data.page_of_repos(found, &page);
        Ok(GlobalSearchResult {
            page: Some(info),
            images: Some(Vec::new()),
            repos: Some(repos.into_iter().map(Some).collect()),
            layers: Some(Vec::new()),
        })
    }

    /// Images built on `image` (its layers a prefix of theirs).
    #[graphql(name = "DerivedImageList")]
    async fn derived_image_list(
        &self,
        ctx: &Context<'_>,
        image: String,
        digest: Option<String>,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedImagesResult> {
        let data = data(ctx)?;
        let page = page(requested_page, SortBy::AlphabeticAsc)?;
        let found = data.layer_relatives(&image, digest.as_deref(), true)?;
        Ok(page_with_only(data, found, &page))
    }

    /// Images `image` is built on (their layers a prefix of its).
    #[graphql(name = "BaseImageList")]
    async fn base_image_list(
        &self,
        ctx: &Context<'_>,
        image: String,
        digest: Option<String>,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedImagesResult> {
        let data = data(ctx)?;
        let page = page(requested_page, SortBy::AlphabeticAsc)?;
        let found = data.layer_relatives(&image, digest.as_deref(), false)?;
        Ok(page_with_only(data, found, &page))
    }

    /// One image, `repository:tag` or `repository@digest`.
    #[graphql(name = "Image")]
    async fn image(&self, ctx: &Context<'_>, image: String) -> Result<ImageSummary> {
        Ok(ImageSummary::new(data(ctx)?.image(&image)?))
    }

    /// The referrers of a manifest, optionally of some artifact types.
    #[graphql(name = "Referrers")]
    async fn referrers(
        &self,
        ctx: &Context<'_>,
        repo: String,
        digest: String,
        #[graphql(name = "type")] kinds: Option<Vec<String>>,
    ) -> Result<Vec<Option<Referrer>>> {
        let data = data(ctx)?;
        let Some(r) = data.repo(&repo) else {
            return Err(format!("repository {repo:?} not found").into());
        };
        let kinds = kinds.unwrap_or_default();
        Ok(r.referrers
            .get(&digest)
            .into_iter()
            .flatten()
            .filter(|x| {
                kinds.is_empty()
                    || x.artifact_type
                        .as_ref()
                        .is_some_and(|t| kinds.iter().any(|k| k == t))
            })
            .map(|x| Some(x.into()))
            .collect())
    }

    /// The repositories the caller starred.
    #[graphql(name = "StarredRepos")]
    async fn starred_repos(
        &self,
        ctx: &Context<'_>,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedReposResult> {
        let data = data(ctx)?;
        listed_repos(data, &data.starred, requested_page)
    }

    /// The repositories the caller bookmarked.
    #[graphql(name = "BookmarkedRepos")]
    async fn bookmarked_repos(
        &self,
        ctx: &Context<'_>,
        requested_page: Option<PageInput>,
    ) -> Result<PaginatedReposResult> {
        let data = data(ctx)?;
        listed_repos(data, &data.bookmarked, requested_page)
    }
}

fn listed_repos(
    data: &QueryData,
    list: &HashSet<String>,
    requested_page: Option<PageInput>,
) -> Result<PaginatedReposResult> {
    let page = page(requested_page, SortBy::AlphabeticAsc)?;
    let found = data
        .visible()
        .filter(|r| list.contains(&*r.name))
        .map(|r| RankedRepo {
            repo: r.clone(),
            rank: 0,
        })
        .collect();
    let (results, info) = data.page_of_repos(found, &page);
    Ok(PaginatedReposResult {
        page: Some(info),
        results,
    })
}

/// A page of images, each showing only the manifests that matched.
fn page_with_only(
    data: &QueryData,
    found: Vec<(Arc<ImageData>, Vec<usize>)>,
    page: &PageRequest,
) -> PaginatedImagesResult {
    let ranked = found
        .into_iter()
        .map(|(image, only)| RankedImage {
            only: Some(only),
            ..data.ranked(&image, 0)
        })
        .collect();
    data.page_of_images(ranked, page)
}

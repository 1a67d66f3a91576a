//! Sorting, ranking and paging of search results, as zot's `PageInput`
//! asks for them.

use std::cmp::Ordering;
use std::sync::Arc;

use super::model::{ImageData, RepoData};
pub(crate) use super::types::SortCriteria as SortBy;

/// A validated page request: `limit` 0 or absent means no limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRequest {
    pub limit: Option<usize>,
    pub offset: usize,
    pub sort: SortBy,
}

/// Why a page request is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PageError {
    #[error("pagination: the requested limit must be zero or more")]
    NegativeLimit,
    #[error("pagination: the requested offset must be zero or more")]
    NegativeOffset,
}

impl PageRequest {
    pub(crate) fn new(
        limit: Option<i32>,
        offset: Option<i32>,
        sort: Option<SortBy>,
        default_sort: SortBy,
    ) -> Result<Self, PageError> {
        let limit = match limit {
            Some(l) if l < 0 => return Err(PageError::NegativeLimit),
            Some(0) | None => None,
            Some(l) => Some(l as usize),
        };
        let offset = match offset {
            Some(o) if o < 0 => return Err(PageError::NegativeOffset),
            Some(o) => o as usize,
            None => 0,
        };
        Ok(Self {
            limit,
            offset,
            sort: sort.unwrap_or(default_sort),
        })
    }

    /// The requested page of `items` and how many there were in all.
    pub(crate) fn apply<T>(&self, items: Vec<T>) -> (Vec<T>, usize) {
        let total = items.len();
        let page = items
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        (page, total)
    }
}

/// How well `name` matches `query` (smaller is better; `None`: no match).
/// An exact name first, then a last path component equal to the query,
/// then one starting with it, then the name containing it anywhere; in
/// each class, the shorter the rest of the name the better. An empty
/// query matches everything equally.
pub(crate) fn rank(query: &str, name: &str) -> Option<u32> {
    if query.is_empty() {
        return Some(0);
    }
    let q = query.to_lowercase();
    let n = name.to_lowercase();
    let last = n.rsplit('/').next().unwrap_or(&n);
    let rest = |len: usize| u32::try_from(len.saturating_sub(q.len()).min(999)).unwrap_or(999);
    let class = if n == q {
        0
    } else if last == q {
        1
    } else if last.starts_with(&q) {
        2
    } else if n.starts_with(&q) {
        3
    } else if n.contains(&q) {
        4
    } else {
        return None;
    };
    Some(class * 1000 + rest(n.len()))
}

/// A repository found, with its rank for the query.
pub(crate) struct RankedRepo {
    pub repo: Arc<RepoData>,
    pub rank: u32,
}

/// Sorts repositories; ties go alphabetically.
pub(crate) fn sort_repos(repos: &mut [RankedRepo], sort: SortBy) {
    let by_name = |a: &RankedRepo, b: &RankedRepo| a.repo.name.cmp(&b.repo.name);
    repos.sort_by(|a, b| {
        let primary = match sort {
            SortBy::Relevance | SortBy::Severity => a.rank.cmp(&b.rank),
            SortBy::UpdateTime => b.repo.last_updated.cmp(&a.repo.last_updated),
            SortBy::AlphabeticAsc => Ordering::Equal,
            SortBy::AlphabeticDsc => b.repo.name.cmp(&a.repo.name),
            SortBy::Stars => b.repo.stars().cmp(&a.repo.stars()),
            SortBy::Downloads => b.repo.downloads.cmp(&a.repo.downloads),
        };
        primary.then_with(|| by_name(a, b))
    });
}

/// An image found, with its rank for the query and its repository's star
/// count (for `STARS`).
pub(crate) struct RankedImage {
    pub image: Arc<ImageData>,
    pub rank: u32,
    pub stars: u64,
    /// Which of its manifests matched (`None`: all of them).
    pub only: Option<Vec<usize>>,
}

/// Sorts images; ties go by repository, then tag.
pub(crate) fn sort_images(images: &mut [RankedImage], sort: SortBy) {
    let by_name = |a: &RankedImage, b: &RankedImage| {
        a.image
            .repo
            .cmp(&b.image.repo)
            .then_with(|| a.image.tag.cmp(&b.image.tag))
    };
    images.sort_by(|a, b| {
        let primary = match sort {
            SortBy::Relevance | SortBy::Severity => a.rank.cmp(&b.rank),
            SortBy::UpdateTime => b.image.last_updated.cmp(&a.image.last_updated),
            SortBy::AlphabeticAsc => Ordering::Equal,
            SortBy::AlphabeticDsc => return by_name(b, a),
            SortBy::Stars => b.stars.cmp(&a.stars),
            SortBy::Downloads => b.image.downloads.cmp(&a.image.downloads),
        };
        primary.then_with(|| by_name(a, b))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_rank_first_then_last_components_then_prefixes() {
        let r = |n| rank("app", n);
        assert!(r("app") < r("team/app"));
        assert!(r("team/app") < r("team/apple"));
        assert!(r("team/apple") < r("application/x"));
        assert!(r("application/x") < r("myapp"));
        assert_eq!(r("base"), None);
        assert_eq!(rank("APP", "app"), Some(0));
        assert_eq!(rank("", "anything"), Some(0));
    }

    #[test]
    fn pages_skip_and_take_and_count_everything() {
        let p = PageRequest::new(Some(2), Some(1), None, SortBy::Relevance).expect("page");
        assert_eq!(p.apply(vec![1, 2, 3, 4]), (vec![2, 3], 4));
        let all = PageRequest::new(Some(0), None, None, SortBy::Relevance).expect("page");
        assert_eq!(all.apply(vec![1, 2]), (vec![1, 2], 2));
        assert_eq!(
            PageRequest::new(Some(-1), None, None, SortBy::Relevance).err(),
            Some(PageError::NegativeLimit)
        );
        assert_eq!(
            PageRequest::new(None, Some(-3), None, SortBy::Relevance).err(),
            Some(PageError::NegativeOffset)
        );
    }
}

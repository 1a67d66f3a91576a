//! The search workloads: zot's GraphQL queries as its web UI and CLI send
//! them, against a data set the setup makes sure exists (by default
//! 10,000 repositories of 10 tags and one repository of 10,000 tags).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_client::{Client, ClientError, OCI_MANIFEST, image_manifest_annotated};
use berth_oci::Digest;
use bytes::Bytes;

/// How big the search data set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SearchSet {
    /// Repositories of `tags` tags each.
    pub(crate) repos: usize,
    pub(crate) tags: usize,
    /// Tags of the one large repository.
    pub(crate) big_tags: usize,
}

/// The repository of the `i`th image set.
pub(crate) fn repo_name(base: &str, i: usize) -> String {
    format!("{base}-search/r{i:05}")
}

/// The large repository.
pub(crate) fn big_repo(base: &str) -> String {
    format!("{base}-search-big")
}

/// zot's web UI's search box: repositories matching a name fragment,
/// nine at a time (`components/Header/SearchSuggestion.jsx`).
pub(crate) fn global_search(fragment: &str) -> String {
    format!(
        "{{GlobalSearch(query:\"{fragment}\", requestedPage: {{limit:9 offset:0 sortBy: RELEVANCE}} ) \
         {{Page {{TotalCount ItemCount}} Repos {{Name LastUpdated Size Platforms {{ Os Arch }} \
         IsStarred IsBookmarked NewestImage {{ Tag Description IsSigned Licenses Vendor Labels }} \
         StarCount DownloadCount}}}}}}"
    )
}

/// The first page of repositories, newest first.
pub(crate) const REPO_LIST: &str = "{RepoListWithNewestImage(requestedPage: {limit:10 offset:0 sortBy: UPDATE_TIME}) \
     {Page {TotalCount ItemCount} Results {Name LastUpdated Size Platforms {Os Arch} \
     NewestImage {Tag Digest LastUpdated Size} DownloadCount StarCount}}}";

/// zot's CLI's `zli image list` of one repository: every image, whole.
pub(crate) fn image_list(repo: &str) -> String {
    format!(
        "{{ImageList(repo: \"{repo}\", requestedPage: {{sortBy: ALPHABETIC_ASC}}) \
         {{Results {{RepoName Tag Digest MediaType Manifests {{Digest ConfigDigest Size \
         Platform {{Os Arch}} IsSigned Layers {{Size Digest}} LastUpdated}} LastUpdated Size IsSigned}}}}}}"
    )
}

/// `query` made unique by a comment (GraphQL ignores it; a server's
/// cache of answers does not), so the server works the answer out.
pub(crate) fn fresh(query: &str, run: u64, i: u64) -> String {
    format!("{query}\n# berth-bench {run} {i}")
}

/// A repository's config (its own build time, so sorting by update time
/// has something to sort) and layer, both small and distinct per repo.
fn repo_blobs(i: usize) -> (Bytes, Bytes) {
    let created = format!(
        "2024-01-01T{:02}:{:02}:{:02}Z",
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60
    );
    let config = serde_json::json!({
        "architecture": if i.is_multiple_of(2) { "amd64" } else { "arm64" },
        "os": "linux",
        "created": created,
        "config": {"Labels": {"org.opencontainers.image.vendor": "berth-bench"}},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created": created, "created_by": format!("bench {i}")}],
    });
    (
        Bytes::from(config.to_string()),
        Bytes::from(format!("berth-bench search layer {i}")),
    )
}

/// Pushes repository `repo`'s blobs and `tags` tagged images.
async fn push_repo(client: &Client, repo: &str, i: usize, tags: usize) -> Result<(), ClientError> {
    let (config, layer) = repo_blobs(i);
    let (cd, ld) = (Digest::sha256(&config), Digest::sha256(&layer));
    let (cl, ll) = (config.len() as u64, layer.len() as u64);
    client.push_blob_monolithic(repo, config, &cd).await?;
    client.push_blob_monolithic(repo, layer, &ld).await?;
    for t in 0..tags {
        let tag = format!("t{t}");
        let manifest =
            image_manifest_annotated((&cd, cl), &[(&ld, ll)], &[("org.berth.bench", &tag)]);
        client
            .put_manifest(repo, &tag, OCI_MANIFEST, manifest)
            .await?;
    }
    Ok(())
}

/// Makes sure the data set exists: a repository set counts as there when
/// its last tag is.
pub(crate) async fn fill(
    client: &Client,
    base: &str,
    set: SearchSet,
    concurrency: usize,
) -> Result<(), ClientError> {
    let last_tag = |n: usize| format!("t{}", n.saturating_sub(1));
    let big = big_repo(base);
    if set.big_tags > 0
        && client
            .head_manifest(&big, &last_tag(set.big_tags))
            .await
            .is_err()
    {
        push_repo(client, &big, usize::MAX / 2, set.big_tags).await?;
    }
    if set.repos == 0
        || client
            .head_manifest(&repo_name(base, set.repos - 1), &last_tag(set.tags))
            .await
            .is_ok()
    {
        return Ok(());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers: Vec<tokio::task::JoinHandle<Result<(), ClientError>>> = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, next, base) = (client.clone(), next.clone(), base.to_string());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= set.repos {
                    return Ok(());
                }
                push_repo(&client, &repo_name(&base, i), i, set.tags).await?;
            }
        }));
    }
    for w in workers {
        w.await
            .map_err(|e| ClientError::Protocol(format!("a fill worker failed: {e}")))??;
    }
    Ok(())
}

/// Sends `query` and checks, without decoding the answer (the client's
/// JSON decoding is not the server's time), that it has no error and
/// found something: a search that finds nothing measures nothing.
pub(crate) async fn query(client: &Client, query: &str, field: &str) -> Result<u64, ClientError> {
    let bytes = client.search_raw(query).await?;
    let answer = std::str::from_utf8(&bytes)
        .map_err(|e| ClientError::Protocol(format!("{field}: the answer is not UTF-8: {e}")))?;
    let has = |needle: &str| answer.contains(needle);
    if !answer.starts_with(&format!("{{\"data\":{{\"{field}\":")) || has("\"errors\":") {
        let head: String = answer.chars().take(300).collect();
        return Err(ClientError::Protocol(format!("{field}: {head}")));
    }
    if has("\"TotalCount\":0,") || has("\"Results\":[]") || has("\"Repos\":[]") {
        return Err(ClientError::Protocol(format!("{field} found nothing")));
    }
    Ok(answer.len() as u64)
}

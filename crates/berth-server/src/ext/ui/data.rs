//! What the pages read: the GraphQL documents they send to search (zot's
//! web UI's shapes, what the user typed always in variables, never in the
//! document) and the answers' types, read leniently (a field search
//! leaves out or answers `null` is its default).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::UiError;
use crate::api::authz::Caller;
use crate::ext::search::Search;

/// What a repository card shows (zot's `GlobalSearch` repository fields).
const REPO_FIELDS: &str = "Name LastUpdated Size Platforms { Os Arch } IsStarred IsBookmarked \
    NewestImage { Tag Vulnerabilities { MaxSeverity Count } Description IsSigned \
    SignatureInfo { Tool IsTrusted Author } Licenses Vendor Labels } StarCount DownloadCount";

/// What an image row shows (zot's `BaseImageList` / `DerivedImageList`).
const IMAGE_FIELDS: &str = "RepoName Tag Description Manifests { Digest Platform { Os Arch } Size } \
    Vendor DownloadCount LastUpdated IsSigned SignatureInfo { Tool IsTrusted Author } \
    Vulnerabilities { MaxSeverity Count }";

/// The home page's lists, each a few cards.
pub(super) const HOME_CARDS: i64 = 6;

/// One page of the repository list.
pub(super) const LIST_PAGE: i64 = 25;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Platform {
    pub os: String,
    pub arch: String,
}

impl Platform {
    pub(super) fn label(&self) -> String {
        match (self.os.as_str(), self.arch.as_str()) {
            ("", "") => "unknown".into(),
            (os, "") => os.into(),
            (os, arch) => format!("{os}/{arch}"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Vulns {
    pub max_severity: String,
    pub count: i64,
    pub unknown_count: i64,
    pub low_count: i64,
    pub medium_count: i64,
    pub high_count: i64,
    pub critical_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Signature {
    pub tool: String,
    pub is_trusted: bool,
    pub author: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Annotation {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Referrer {
    pub media_type: String,
    pub artifact_type: String,
    pub size: i64,
    pub digest: String,
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Layer {
    pub size: String,
    pub digest: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct HistoryDescription {
    pub created: String,
    pub created_by: String,
    pub comment: String,
    pub empty_layer: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct History {
    pub layer: Option<Layer>,
    pub history_description: Option<HistoryDescription>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Manifest {
    pub digest: String,
    pub config_digest: String,
    pub last_updated: String,
    pub size: String,
    pub platform: Platform,
    pub layers: Vec<Layer>,
    pub history: Vec<History>,
    pub referrers: Vec<Referrer>,
    pub artifact_type: String,
    pub vulnerabilities: Option<Vulns>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Image {
    pub repo_name: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    pub manifests: Vec<Manifest>,
    pub size: String,
    pub download_count: i64,
    pub last_updated: String,
    pub description: String,
    pub is_signed: bool,
    pub signature_info: Vec<Signature>,
    pub licenses: String,
    pub labels: String,
    pub title: String,
    pub source: String,
    pub documentation: String,
    pub vendor: String,
    pub authors: String,
    pub vulnerabilities: Option<Vulns>,
    pub referrers: Vec<Referrer>,
    pub artifact_type: String,
}

impl Image {
    /// The annotations zot's schema carries, by their OCI names, those
    /// that are set.
    pub(super) fn annotations(&self) -> Vec<(&'static str, &str)> {
        [
            ("org.opencontainers.image.title", self.title.as_str()),
            ("org.opencontainers.image.description", &self.description),
            ("org.opencontainers.image.source", &self.source),
            (
                "org.opencontainers.image.documentation",
                &self.documentation,
            ),
            ("org.opencontainers.image.vendor", &self.vendor),
            ("org.opencontainers.image.authors", &self.authors),
            ("org.opencontainers.image.licenses", &self.licenses),
            ("labels", &self.labels),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Repo {
    pub name: String,
    pub last_updated: String,
    pub size: String,
    pub platforms: Vec<Platform>,
    pub vendors: Vec<String>,
    pub newest_image: Option<Image>,
    pub download_count: i64,
    pub star_count: i64,
    pub is_bookmarked: bool,
    pub is_starred: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct PageInfo {
    pub total_count: i64,
    pub item_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct RepoPage {
    pub page: PageInfo,
    pub repos: Vec<Repo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ImagePage {
    pub page: PageInfo,
    pub results: Vec<Image>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct RepoInfo {
    pub images: Vec<Image>,
    pub summary: Repo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Package {
    pub name: String,
    pub package_path: String,
    pub installed_version: String,
    pub fixed_version: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Cve {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    pub reference: String,
    pub package_list: Vec<Package>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct CveList {
    pub page: PageInfo,
    #[serde(rename = "CVEList")]
    pub cve_list: Vec<Cve>,
    pub summary: Vulns,
}

/// The home page's lists.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Home {
    pub recent: RepoPage,
    pub popular: RepoPage,
    pub starred: RepoPage,
    pub bookmarked: RepoPage,
}

/// Removes `null`s (object members and list items), so that `default`
/// fills what search left empty.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => {
            a.retain(|x| !x.is_null());
            a.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// Runs `query` as `caller` and reads its `data` as `T`; `None` when the
/// answer has no data (search refused it for this caller: a repository
/// or image it may not read, or that is not there).
async fn run<T: DeserializeOwned>(
    search: &Search,
    caller: &Caller,
    query: &str,
    variables: Value,
) -> Result<Option<T>, UiError> {
    let mut answer = search.query(caller, query, variables).await?;
    let mut data = answer["data"].take();
    if data.is_null() {
        return Ok(None);
    }
    strip_nulls(&mut data);
    serde_json::from_value(data)
        .map(Some)
        .map_err(|e| UiError::Internal(format!("reading an answer of search: {e}")))
}

/// `GlobalSearch` as one field of the answer.
#[derive(Deserialize)]
struct GlobalSearch<T> {
    #[serde(rename = "GlobalSearch", default)]
    found: T,
}

/// The home page: recently updated and most downloaded, and for a user
/// their starred and bookmarked repositories.
pub(super) async fn home(search: &Search, caller: &Caller, user: bool) -> Result<Home, UiError> {
    let page =
        |sort: &str| format!("requestedPage: {{limit: {HOME_CARDS}, offset: 0, sortBy: {sort}}}");
    let list = |alias: &str, sort: &str, filter: &str| {
        format!(
            "{alias}: GlobalSearch(query: \"\", {}{filter}) {{ Page {{ TotalCount ItemCount }} Repos {{ {REPO_FIELDS} }} }}",
            page(sort)
        )
    };
    let mut doc = String::from("{ ");
    doc.push_str(&list("recent", "UPDATE_TIME", ""));
    doc.push_str(&list("popular", "DOWNLOADS", ""));
    if user {
        doc.push_str(&list(
            "starred",
            "UPDATE_TIME",
            ", filter: {IsStarred: true}",
        ));
        doc.push_str(&list(
            "bookmarked",
            "UPDATE_TIME",
            ", filter: {IsBookmarked: true}",
        ));
    }
    doc.push('}');
    Ok(run(search, caller, &doc, Value::Null)
        .await?
        .unwrap_or_default())
}

/// What the repository list asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ListQuery {
    pub text: String,
    /// A `SortCriteria` value.
    pub sort: &'static str,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub signed: bool,
    pub starred: bool,
    pub bookmarked: bool,
    /// 1-based.
    pub page: i64,
}

/// One page of the repositories matching `q`.
pub(super) async fn repo_list(
    search: &Search,
    caller: &Caller,
    q: &ListQuery,
) -> Result<RepoPage, UiError> {
    let doc = format!(
        "query($q: String!, $filter: Filter, $page: PageInput) {{ GlobalSearch(query: $q, filter: $filter, \
         requestedPage: $page) {{ Page {{ TotalCount ItemCount }} Repos {{ {REPO_FIELDS} }} }} }}"
    );
    let mut filter = serde_json::Map::new();
    if let Some(os) = &q.os {
        filter.insert("Os".into(), json!([os]));
    }
    if let Some(arch) = &q.arch {
        filter.insert("Arch".into(), json!([arch]));
    }
    if q.signed {
        filter.insert("HasToBeSigned".into(), json!(true));
    }
    if q.starred {
        filter.insert("IsStarred".into(), json!(true));
    }
    if q.bookmarked {
        filter.insert("IsBookmarked".into(), json!(true));
    }
    let vars = json!({
        "q": q.text,
        "filter": filter,
        "page": {"limit": LIST_PAGE, "offset": (q.page.max(1) - 1) * LIST_PAGE, "sortBy": q.sort},
    });
    let found: Option<GlobalSearch<RepoPage>> = run(search, caller, &doc, vars).await?;
    Ok(found.map(|g| g.found).unwrap_or_default())
}

/// A repository's page; `None` when the caller may not read it or it is
/// not there (the same answer, so a page tells nothing of what it hides).
pub(super) async fn repo(
    search: &Search,
    caller: &Caller,
    name: &str,
) -> Result<Option<RepoInfo>, UiError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "ExpandedRepoInfo", default)]
        info: RepoInfo,
    }
    let doc = "query($repo: String!) { ExpandedRepoInfo(repo: $repo) { \
        Images { Digest MediaType Manifests { Digest Platform { Os Arch } Size } \
        Vulnerabilities { MaxSeverity Count } Tag LastUpdated Size IsSigned \
        SignatureInfo { Tool IsTrusted Author } DownloadCount } \
        Summary { Name LastUpdated Size Platforms { Os Arch } Vendors IsStarred IsBookmarked \
        StarCount DownloadCount NewestImage { RepoName Tag IsSigned SignatureInfo { Tool IsTrusted Author } \
        Vulnerabilities { MaxSeverity Count } Vendor Title Documentation Source Description \
        Licenses Labels Authors } } } }";
    let a: Option<Answer> = run(search, caller, doc, json!({ "repo": name })).await?;
    Ok(a.map(|a| a.info))
}

/// An image's page: the image, then what it is built on and what is
/// built on it.
pub(super) struct ImageView {
    pub image: Image,
    pub base: ImagePage,
    pub derived: ImagePage,
    /// `None`: scanning is off (or this image cannot be scanned).
    pub cves: Option<CveList>,
}

/// `image` is `repository:tag`; `severity` filters the vulnerabilities.
pub(super) async fn image(
    search: &Search,
    caller: &Caller,
    image: &str,
    severity: Option<&str>,
) -> Result<Option<ImageView>, UiError> {
    #[derive(Deserialize)]
    struct One {
        #[serde(rename = "Image", default)]
        image: Image,
    }
    #[derive(Default, Deserialize)]
    struct Relatives {
        #[serde(rename = "BaseImageList", default)]
        base: ImagePage,
        #[serde(rename = "DerivedImageList", default)]
        derived: ImagePage,
    }
    #[derive(Deserialize)]
    struct Cves {
        #[serde(rename = "CVEListForImage", default)]
        list: CveList,
    }
    let doc = "query($image: String!) { Image(image: $image) { RepoName Tag Digest MediaType \
        IsSigned SignatureInfo { Tool IsTrusted Author } Vulnerabilities { MaxSeverity Count } \
        Referrers { MediaType ArtifactType Size Digest Annotations { Key Value } } \
        Size DownloadCount LastUpdated TaggedTimestamp ArtifactType Title Description Source \
        Documentation Vendor Authors Licenses Labels \
        Manifests { ArtifactType Digest ConfigDigest LastUpdated Size Platform { Os Arch } \
        Layers { Size Digest } History { Layer { Size Digest } \
        HistoryDescription { Created CreatedBy Comment EmptyLayer } } \
        Referrers { MediaType ArtifactType Size Digest Annotations { Key Value } } } } }";
    let vars = json!({ "image": image });
    let Some(one) = run::<One>(search, caller, doc, vars.clone()).await? else {
        return Ok(None);
    };
    let relatives = format!(
        "query($image: String!) {{ \
         BaseImageList(image: $image, requestedPage: {{limit: 20, offset: 0}}) {{ Page {{ TotalCount ItemCount }} Results {{ {IMAGE_FIELDS} }} }} \
         DerivedImageList(image: $image, requestedPage: {{limit: 20, offset: 0}}) {{ Page {{ TotalCount ItemCount }} Results {{ {IMAGE_FIELDS} }} }} }}"
    );
    let cves = "query($image: String!, $severity: String) { CVEListForImage(image: $image, \
        requestedPage: {limit: 200, offset: 0, sortBy: SEVERITY}, severity: $severity) { \
        Page { TotalCount ItemCount } CVEList { Id Title Description Severity Reference \
        PackageList { Name PackagePath InstalledVersion FixedVersion } } \
        Summary { Count UnknownCount LowCount MediumCount HighCount CriticalCount MaxSeverity } } }";
    let cve_vars = json!({ "image": image, "severity": severity });
    let (relatives, cves) = tokio::join!(
        run::<Relatives>(search, caller, &relatives, vars),
        run::<Cves>(search, caller, cves, cve_vars),
    );
    let relatives = relatives?.unwrap_or_default();
    Ok(Some(ImageView {
        image: one.image,
        base: relatives.base,
        derived: relatives.derived,
        // Scanning off, or the image not scanned: no section.
        cves: cves.ok().flatten().map(|c| c.list),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_become_defaults() {
        let mut v = json!({"Name": "a", "Platforms": [null, {"Os": "linux", "Arch": null}],
            "NewestImage": null, "StarCount": null});
        strip_nulls(&mut v);
        let r: Repo = serde_json::from_value(v).expect("repo");
        assert_eq!(r.name, "a");
        assert_eq!(r.platforms.len(), 1);
        assert_eq!(r.platforms[0].label(), "linux");
        assert!(r.newest_image.is_none());
        assert_eq!(r.star_count, 0);
    }
}

//! zot's search API (`/v2/_zot/ext/search`, GraphQL) as the command line
//! asks it: the queries zot's own `zli` sends, with their values written
//! into the query text as `zli` writes them, so the same commands work
//! against zot and Berth; and the answers as typed values.
//!
//! The types read zot's field names (`RepoName`, `CVEList`…) and are
//! written back out in camelCase: the stable shapes of `berth … -o json`.
//! Sizes, which zot's schema gives as strings, are numbers here.

use http::{Method, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Client, ClientError, ClientResult};

/// The search route.
pub const SEARCH_PATH: &str = "/v2/_zot/ext/search";

/// How results are ordered (zot's `SortCriteria`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Relevance,
    UpdateTime,
    AlphaAsc,
    AlphaDsc,
    Severity,
}

impl SortBy {
    fn graphql(self) -> &'static str {
        match self {
            Self::Relevance => "RELEVANCE",
            Self::UpdateTime => "UPDATE_TIME",
            Self::AlphaAsc => "ALPHABETIC_ASC",
            Self::AlphaDsc => "ALPHABETIC_DSC",
            Self::Severity => "SEVERITY",
        }
    }
}

/// A GraphQL string literal holding `s`.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The fields of an image, as `zli` asks them.
const IMAGE_FIELDS: &str = "RepoName Tag Digest MediaType \
    Manifests { Digest ConfigDigest Size Platform {Os Arch} IsSigned Layers {Size Digest} LastUpdated } \
    LastUpdated Size IsSigned";

/// A number zot's schema writes as a string (or a number, or null).
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Number(n)) => Some(n),
        Some(Raw::Text(s)) => s.trim().parse().ok(),
        None => None,
    })
}

/// A list zot may answer with `null`.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct Platform {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub arch: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.os, &self.arch) {
            (Some(o), Some(a)) if !o.is_empty() || !a.is_empty() => write!(f, "{o}/{a}"),
            _ => f.write_str("N/A"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct Layer {
    #[serde(default, deserialize_with = "size")]
    pub size: Option<u64>,
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct ManifestSummary {
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub config_digest: Option<String>,
    #[serde(default, deserialize_with = "size")]
    pub size: Option<u64>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub is_signed: Option<bool>,
    #[serde(default, deserialize_with = "list")]
    pub layers: Vec<Layer>,
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// One image (a tag), as zot's `ImageSummary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct ImageSummary {
    #[serde(default)]
    pub repo_name: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub manifests: Vec<ManifestSummary>,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default, deserialize_with = "size")]
    pub size: Option<u64>,
    #[serde(default)]
    pub is_signed: Option<bool>,
}

/// One repository, as zot's `RepoSummary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct RepoSummary {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub platforms: Vec<Platform>,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default, deserialize_with = "size")]
    pub size: Option<u64>,
    #[serde(default)]
    pub download_count: Option<u64>,
    #[serde(default)]
    pub star_count: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct Package {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub package_path: Option<String>,
    #[serde(default)]
    pub installed_version: Option<String>,
    #[serde(default)]
    pub fixed_version: Option<String>,
}

/// One vulnerability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct Cve {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub package_list: Vec<Package>,
}

/// Counts by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct CveSummary {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub unknown_count: Option<u64>,
    #[serde(default)]
    pub low_count: Option<u64>,
    #[serde(default)]
    pub medium_count: Option<u64>,
    #[serde(default)]
    pub high_count: Option<u64>,
    #[serde(default)]
    pub critical_count: Option<u64>,
    #[serde(default)]
    pub max_severity: Option<String>,
}

/// The vulnerabilities of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct ImageCves {
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default, rename(deserialize = "CVEList"), deserialize_with = "list")]
    pub cve_list: Vec<Cve>,
    #[serde(default)]
    pub summary: Option<CveSummary>,
}

/// One side of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct ImageRef {
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// The vulnerabilities of one image that another lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct CveDiff {
    #[serde(default)]
    pub minuend: Option<ImageRef>,
    #[serde(default)]
    pub subtrahend: Option<ImageRef>,
    #[serde(default, rename(deserialize = "CVEList"), deserialize_with = "list")]
    pub cve_list: Vec<Cve>,
    #[serde(default)]
    pub summary: Option<CveSummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct Annotation {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// An artifact that refers to an image (a signature, an SBOM…).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct SearchReferrer {
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default, deserialize_with = "size")]
    pub size: Option<u64>,
    #[serde(default, deserialize_with = "list")]
    pub annotations: Vec<Annotation>,
}

/// What a global search found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase", deserialize = "PascalCase"))]
pub struct SearchResult {
    #[serde(default, deserialize_with = "list")]
    pub images: Vec<ImageSummary>,
    #[serde(default, deserialize_with = "list")]
    pub repos: Vec<RepoSummary>,
}

/// A page of images (`Results`).
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Paged<T> {
    #[serde(default, rename = "Results", deserialize_with = "list")]
    results: Vec<T>,
}

/// A GraphQL answer.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
}

impl Client {
    /// Sends a GraphQL query to the search route; the value of its
    /// `field` in `data`. GraphQL errors come back as
    /// [`ClientError::Query`].
    pub async fn graphql<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        field: &str,
    ) -> ClientResult<T> {
        let body = serde_json::json!({ "query": query });
        let answer = self
            .call(Method::POST, SEARCH_PATH, &[StatusCode::OK], |r| {
                r.header("content-type", "application/json")
                    .body(body.to_string())
            })
            .await?
            .json(SEARCH_PATH)
            .await?;
        let answer: Answer = serde_json::from_value(answer)
            .map_err(|e| ClientError::Protocol(format!("{SEARCH_PATH}: {e}")))?;
        if !answer.errors.is_empty() {
            let messages: Vec<String> = answer.errors.into_iter().map(|e| e.message).collect();
            return Err(ClientError::Query(messages.join("; ")));
        }
        let value = answer
            .data
            .and_then(|mut d| d.get_mut(field).map(serde_json::Value::take))
            .unwrap_or(serde_json::Value::Null);
        serde_json::from_value(value)
            .map_err(|e| ClientError::Protocol(format!("{SEARCH_PATH}: {field}: {e}")))
    }

    /// What zot's management route says of the server (its spec version,
    /// build, and how to log in), `None` where it has none.
    pub async fn management(&self) -> ClientResult<Option<serde_json::Value>> {
        const PATH: &str = "/v2/_zot/ext/mgmt";
        match self.call(Method::GET, PATH, &[StatusCode::OK], |r| r).await {
            Ok(answer) => Ok(Some(answer.json(PATH).await?)),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A query of zot's that answers a page of images: `field(args)`.
    async fn images(&self, field: &str, args: &str) -> ClientResult<Vec<ImageSummary>> {
        let q = format!("{{ {field}({args}) {{ Results {{ {IMAGE_FIELDS} }} }} }}");
        Ok(self.graphql::<Paged<_>>(&q, field).await?.results)
    }

    /// Every image, or those of `repo` (zot's `ImageList`).
    pub async fn image_list(&self, repo: &str, sort: SortBy) -> ClientResult<Vec<ImageSummary>> {
        let args = format!(
            "repo: {}, requestedPage: {{sortBy: {}}}",
            lit(repo),
            sort.graphql()
        );
        self.images("ImageList", &args).await
    }

    /// The images whose manifest, config or a layer is `digest`.
    pub async fn images_by_digest(
        &self,
        digest: &str,
        sort: SortBy,
    ) -> ClientResult<Vec<ImageSummary>> {
        let args = format!(
            "id: {}, requestedPage: {{sortBy: {}}}",
            lit(digest),
            sort.graphql()
        );
        self.images("ImageListForDigest", &args).await
    }

    /// The images built on `image` (`repo:tag`), or that it is built on.
    pub async fn related_images(
        &self,
        image: &str,
        derived: bool,
        sort: SortBy,
    ) -> ClientResult<Vec<ImageSummary>> {
        let field = if derived {
            "DerivedImageList"
        } else {
            "BaseImageList"
        };
        let args = format!(
            "image: {}, requestedPage: {{sortBy: {}}}",
            lit(image),
            sort.graphql()
        );
        self.images(field, &args).await
    }

    /// The vulnerabilities of `image` (`repo:tag`), those matching
    /// `searched` (an id or text; "" for all) and at `severity` if given.
    pub async fn image_cves(
        &self,
        image: &str,
        searched: &str,
        severity: Option<&str>,
        sort: SortBy,
    ) -> ClientResult<ImageCves> {
        let severity = severity.map_or(String::new(), |s| format!(", severity: {}", lit(s)));
        let q = format!(
            "{{ CVEListForImage(image: {}, searchedCVE: {}{severity}, requestedPage: {{sortBy: {}}}) {{ \
             Tag CVEList {{ Id Title Severity Description PackageList {{Name PackagePath InstalledVersion FixedVersion}} }} \
             Summary {{ Count UnknownCount LowCount MediumCount HighCount CriticalCount MaxSeverity }} }} }}",
            lit(image),
            lit(searched),
            sort.graphql()
        );
        self.graphql(&q, "CVEListForImage").await
    }

    /// The images affected by vulnerability `id`, in `repo` if given.
    pub async fn images_affected(
        &self,
        id: &str,
        repo: Option<&str>,
        sort: SortBy,
    ) -> ClientResult<Vec<ImageSummary>> {
        let args = format!(
            "id: {}, requestedPage: {{sortBy: {}}}",
            lit(id),
            sort.graphql()
        );
        let mut found = self.images("ImageListForCVE", &args).await?;
        if let Some(repo) = repo {
            found.retain(|i| i.repo_name.as_deref() == Some(repo));
        }
        Ok(found)
    }

    /// The images of `repo` where vulnerability `id` is fixed.
    pub async fn images_fixed(&self, id: &str, repo: &str) -> ClientResult<Vec<ImageSummary>> {
        let args = format!("id: {}, image: {}", lit(id), lit(repo));
        self.images("ImageListWithCVEFixed", &args).await
    }

    /// The vulnerabilities of `minuend` that `subtrahend` lacks (each
    /// `(repo, tag)`).
    pub async fn cve_diff(
        &self,
        minuend: (&str, &str),
        subtrahend: (&str, &str),
    ) -> ClientResult<CveDiff> {
        let side = |(repo, tag): (&str, &str)| {
            format!("{{Repo: {}, Tag: {}, Digest: \"\"}}", lit(repo), lit(tag))
        };
        let q = format!(
            "{{ CVEDiffListForImages(minuend: {}, subtrahend: {}) {{ \
             Minuend {{Repo Tag Digest Platform {{Os Arch}}}} Subtrahend {{Repo Tag Digest Platform {{Os Arch}}}} \
             CVEList {{ Id Title Description Severity Reference PackageList {{Name InstalledVersion FixedVersion}} }} \
             Summary {{ Count UnknownCount LowCount MediumCount HighCount CriticalCount }} }} }}",
            side(minuend),
            side(subtrahend)
        );
        self.graphql(&q, "CVEDiffListForImages").await
    }

    /// Repositories and images matching `text` (zot's `GlobalSearch`:
    /// `repo` finds repositories, `repo:tag` images).
    pub async fn global_search(&self, text: &str, sort: SortBy) -> ClientResult<SearchResult> {
        let q = format!(
            "{{ GlobalSearch(query: {}, requestedPage: {{sortBy: {}}}) {{ Images {{ {IMAGE_FIELDS} }} \
             Repos {{ Name Platforms {{Os Arch}} LastUpdated Size DownloadCount StarCount }} }} }}",
            lit(text),
            sort.graphql()
        );
        self.graphql(&q, "GlobalSearch").await
    }

    /// The artifacts referring to `digest` in `repo`.
    pub async fn search_referrers(
        &self,
        repo: &str,
        digest: &str,
    ) -> ClientResult<Vec<SearchReferrer>> {
        let q = format!(
            "{{ Referrers(repo: {}, digest: {}) {{ ArtifactType Digest MediaType Size Annotations {{Key Value}} }} }}",
            lit(repo),
            lit(digest)
        );
        Ok(self
            .graphql::<Option<Vec<_>>>(&q, "Referrers")
            .await?
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped() {
        assert_eq!(lit(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lit("x\ny\u{1}"), "\"x\\ny\\u0001\"");
    }

    #[test]
    fn zot_answers_read_and_written_in_stable_shapes() {
        let zot = serde_json::json!({
            "RepoName": "app", "Tag": "v1", "Digest": "sha256:a", "MediaType": "m",
            "Size": "1234", "IsSigned": false, "LastUpdated": "2024-01-01T00:00:00Z",
            "Manifests": [{"Digest": "sha256:b", "ConfigDigest": "sha256:c", "Size": "10",
                           "Platform": {"Os": "linux", "Arch": "amd64"}, "IsSigned": null,
                           "Layers": null, "LastUpdated": null}]
        });
        let image: ImageSummary = serde_json::from_value(zot).expect("reads");
        assert_eq!(image.size, Some(1234));
        assert_eq!(image.manifests[0].layers, Vec::new());
        assert_eq!(
            image.manifests[0]
                .platform
                .as_ref()
                .map(ToString::to_string),
            Some("linux/amd64".into())
        );
        let out = serde_json::to_value(&image).expect("writes");
        assert_eq!(out["repoName"], "app");
        assert_eq!(out["manifests"][0]["configDigest"], "sha256:c");
        let cves: ImageCves = serde_json::from_value(serde_json::json!({
            "Tag": "v1", "CVEList": [{"Id": "CVE-1", "Severity": "HIGH", "PackageList": null}],
            "Summary": {"Count": 1, "HighCount": 1, "MaxSeverity": "HIGH"}
        }))
        .expect("reads");
        assert_eq!(cves.cve_list[0].id.as_deref(), Some("CVE-1"));
        assert_eq!(
            serde_json::to_value(&cves).expect("writes")["cveList"][0]["id"],
            "CVE-1"
        );
    }
}

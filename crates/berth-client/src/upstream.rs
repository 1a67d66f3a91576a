//! What sync needs of an upstream registry: manifests as raw bytes with
//! their checked digest, manifest heads, blob streams, referrers, and
//! whole catalogs and tag lists across `Link` pages.
//!
//! Repository names here are the upstream's own: callers pass them
//! through [`Client::upstream_repo`] first. A missing manifest, blob or
//! tag list is `None` or empty, never an error.

use std::collections::HashSet;

use berth_oci::media::{OCI_INDEX, OCI_MANIFEST};
use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use http::{Method, StatusCode};

use crate::ops::strings;
use crate::request::Answer;
use crate::{ACCEPT_MANIFESTS, Client, ClientError, ClientResult};

/// A manifest as the upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    /// The bytes, unchanged: the digest is theirs.
    pub bytes: Bytes,
    /// From `Content-Type`, else the body's `mediaType`.
    pub media_type: String,
    /// Computed from `bytes` (sha256, or the algorithm of the digest
    /// asked for), and checked against what the upstream said.
    pub digest: Digest,
}

/// What a `HEAD` of a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest` (or computed from a `GET` when the
    /// registry sends none).
    pub digest: Digest,
    /// `Content-Type`.
    pub media_type: String,
    /// `Content-Length`, when sent.
    pub size: Option<u64>,
}

/// A blob's body as it arrives.
pub struct BlobStream {
    /// `Content-Length`, when sent.
    pub len: Option<u64>,
    /// The body in pieces; it holds the client's concurrency permit until
    /// it ends or is dropped. The bytes are not checked against the
    /// digest here (the caller hashes what it stores); an error midway is
    /// not retried (the caller starts again).
    pub stream: BoxStream<'static, ClientResult<Bytes>>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// One entry of a referrers list (OCI 1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referring manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its artifact type (the config's media type for an image).
    pub artifact_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
}

/// The largest manifest read into memory (distribution's own limit is
/// 4 MiB).
const MAX_MANIFEST: u64 = 16 << 20;

/// The most pages a list may have: more is taken for a loop.
const MAX_PAGES: usize = 100_000;

/// Content types that say nothing about a manifest.
const GENERIC_TYPES: [&str; 4] = [
    "",
    "application/json",
    "text/plain",
    "application/octet-stream",
];

impl Client {
    /// `method` on a manifest, accepting every manifest type: the path
    /// and the answer, or `None` on 404.
    async fn manifest_call(
        &self,
        method: Method,
        repo: &str,
        reference: &str,
    ) -> ClientResult<Option<(String, crate::request::Answer)>> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let answer = self
            .call(
                method,
                &path,
                &[StatusCode::OK, StatusCode::NOT_FOUND],
                |r| r.header("accept", ACCEPT_MANIFESTS),
            )
            .await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some((path, answer)))
    }

    /// `GET` a manifest by tag or digest; `None` if the upstream has no
    /// such manifest. When `reference` is a digest, the bytes must hash to
    /// it; when the upstream sends `Docker-Content-Digest`, the bytes must
    /// hash to that: otherwise it is a [`ClientError::Protocol`].
    pub async fn get_manifest_raw(
        &self,
        repo: &str,
        reference: &str,
    ) -> ClientResult<Option<RawManifest>> {
        let Some((path, answer)) = self.manifest_call(Method::GET, repo, reference).await? else {
            return Ok(None);
        };
        let what = format!("{}{path}", self.base);
        let content_type = answer.header("content-type").map(str::to_string);
        let said = answer.header("docker-content-digest").map(str::to_string);
        let bytes = answer.bytes_at_most(MAX_MANIFEST, &what).await?;
        let asked = reference.parse::<Digest>().ok();
        let algorithm = asked.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let digest = Digest::compute(algorithm, &bytes);
        if let Some(asked) = asked
            && asked != digest
        {
            return Err(ClientError::Protocol(format!(
                "{what}: the manifest's digest is {digest}"
            )));
        }
        // A digest in an algorithm Berth does not compute is left unchecked.
        if let Some(said) = said.and_then(|d| d.trim().parse::<Digest>().ok()) {
            let ours = if said.algorithm() == algorithm {
                digest.clone()
            } else {
                Digest::compute(said.algorithm(), &bytes)
            };
            if ours != said {
                return Err(ClientError::Protocol(format!(
                    "{what}: Docker-Content-Digest says {said} but the manifest's digest is {ours}"
                )));
            }
        }
        let media_type = manifest_media_type(content_type.as_deref(), &bytes).ok_or_else(|| {
            ClientError::Protocol(format!("{what}: a manifest without a media type"))
        })?;
        Ok(Some(RawManifest {
            bytes,
            media_type,
            digest,
        }))
    }

    /// `HEAD` a manifest by tag or digest: its digest, media type and
    /// size; `None` if the upstream has no such manifest. Where the
    /// upstream sends no `Docker-Content-Digest` (or no `Content-Type`),
    /// the manifest is fetched and its digest computed.
    pub async fn head_manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> ClientResult<Option<ManifestHead>> {
        let Some((path, answer)) = self.manifest_call(Method::HEAD, repo, reference).await? else {
            return Ok(None);
        };
        let digest = answer
            .header("docker-content-digest")
            .and_then(|d| d.trim().parse::<Digest>().ok());
        let media_type = answer
            .header("content-type")
            .map(essence)
            .filter(|t| !GENERIC_TYPES.contains(&t.as_str()));
        if let (Some(digest), Some(media_type)) = (digest, media_type) {
            if let Ok(asked) = reference.parse::<Digest>()
                && asked != digest
            {
                return Err(ClientError::Protocol(format!(
                    "{}{path}: Docker-Content-Digest says {digest}",
                    self.base
                )));
            }
            return Ok(Some(ManifestHead {
                digest,
                media_type,
                size: answer.declared_length(),
            }));
        }
        drop(answer);
        Ok(self
            .get_manifest_raw(repo, reference)
            .await?
            .map(|m| ManifestHead {
                digest: m.digest,
                media_type: m.media_type,
                size: Some(m.bytes.len() as u64),
            }))
    }

    /// `GET` a blob as a stream, following redirects (to object storage:
    /// credentials are not sent there); `None` if the upstream has no
    /// such blob.
    pub async fn blob_stream(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> ClientResult<Option<BlobStream>> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let answer = self
            .call(
                Method::GET,
                &path,
                &[StatusCode::OK, StatusCode::NOT_FOUND],
                |r| r,
            )
            .await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(BlobStream {
            len: answer.declared_length(),
            stream: answer.into_stream(),
        }))
    }

    /// The manifests that refer to `digest` (OCI 1.1 referrers API), all
    /// pages; empty where the registry has no referrers API (`404`).
    pub async fn referrers(&self, repo: &str, digest: &Digest) -> ClientResult<Vec<Referrer>> {
        let first = format!("/v2/{repo}/referrers/{digest}");
        let mut out = Vec::new();
        for (what, page) in self.json_pages(&first, Some(OCI_INDEX)).await? {
            for entry in page["manifests"].as_array().into_iter().flatten() {
                out.push(referrer(entry).ok_or_else(|| {
                    ClientError::Protocol(format!("{what}: a referrer that is not one: {entry}"))
                })?);
            }
        }
        Ok(out)
    }

    /// The whole catalog, following `Link` pages.
    pub async fn catalog_all(&self) -> ClientResult<Vec<String>> {
        let path = "/v2/_catalog";
        let answer = self
            .call(Method::GET, path, &[StatusCode::OK], |r| r)
            .await?;
        let mut out = Vec::new();
        for (_, page) in self.rest_of_pages(path, answer, None).await? {
            out.extend(strings(&page["repositories"]));
        }
        Ok(out)
    }

    /// All the repository's tags, following `Link` pages; empty if the
    /// repository does not exist (`404`).
    pub async fn tags_all(&self, repo: &str) -> ClientResult<Vec<String>> {
        let first = format!("/v2/{repo}/tags/list");
        let mut out = Vec::new();
        for (_, page) in self.json_pages(&first, None).await? {
            out.extend(strings(&page["tags"]));
        }
        Ok(out)
    }

    /// The JSON bodies of `first` and the pages its `Link`s lead to, each
    /// with its URL; none if the first answers `404`.
    async fn json_pages(
        &self,
        first: &str,
        accept: Option<&'static str>,
    ) -> ClientResult<Vec<(String, serde_json::Value)>> {
        let answer = self
            .call(
                Method::GET,
                first,
                &[StatusCode::OK, StatusCode::NOT_FOUND],
                |r| with_accept(r, accept),
            )
            .await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        self.rest_of_pages(first, answer, accept).await
    }

    /// The JSON body of `answer` (to `first`) and of the pages its
    /// `Link`s lead to.
    async fn rest_of_pages(
        &self,
        first: &str,
        mut answer: Answer,
        accept: Option<&'static str>,
    ) -> ClientResult<Vec<(String, serde_json::Value)>> {
        let mut pages = Vec::new();
        let mut seen = HashSet::new();
        let mut what = answer.url().to_string();
        loop {
            seen.insert(answer.url().to_string());
            let next = next_link(answer.headers())
                .map(|link| {
                    answer.url().join(&link).map_err(|e| {
                        ClientError::Protocol(format!(
                            "{what}: a Link that is not a URL: {link}: {e}"
                        ))
                    })
                })
                .transpose()?;
            pages.push((what.clone(), answer.json(&what).await?));
            let Some(next) = next else {
                return Ok(pages);
            };
            if seen.contains(next.as_str()) || pages.len() >= MAX_PAGES {
                return Err(ClientError::Protocol(format!(
                    "{}{first}: the pages loop (back to {next})",
                    self.base
                )));
            }
            what = next.to_string();
            answer = self
                .call(Method::GET, next.as_str(), &[StatusCode::OK], |r| {
                    with_accept(r, accept)
                })
                .await?;
        }
    }
}

/// `r` with `Accept: accept`, if any.
fn with_accept(
    r: reqwest::RequestBuilder,
    accept: Option<&'static str>,
) -> reqwest::RequestBuilder {
    match accept {
        Some(a) => r.header("accept", a),
        None => r,
    }
}

/// A `Content-Type` without its parameters.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A manifest's media type: `Content-Type` unless it is a generic one,
/// else the body's `mediaType`, else what its shape says (an OCI index
/// has `manifests`, an image manifest `config`).
pub(crate) fn manifest_media_type(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    if let Some(t) = content_type.map(essence)
        && !GENERIC_TYPES.contains(&t.as_str())
    {
        return Some(t);
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(t) = json["mediaType"].as_str().filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    if json["manifests"].is_array() {
        Some(OCI_INDEX.to_string())
    } else if json["config"].is_object() {
        Some(OCI_MANIFEST.to_string())
    } else {
        None
    }
}

/// One entry of a referrers index.
fn referrer(entry: &serde_json::Value) -> Option<Referrer> {
    Some(Referrer {
        digest: entry["digest"].as_str()?.parse().ok()?,
        media_type: entry["mediaType"].as_str()?.to_string(),
        artifact_type: entry["artifactType"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        size: entry["size"].as_u64()?,
    })
}

/// The target of the `rel="next"` link among `Link` headers (RFC 8288),
/// as written (relative or absolute).
pub(crate) fn next_link(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(next_in)
}

/// The `rel="next"` target of one `Link` value.
fn next_in(value: &str) -> Option<String> {
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let is_next = after[..params_end].split([';', ',']).any(|param| {
            param.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.trim().to_string());
        }
        rest = &after[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::media::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST};

    #[test]
    fn next_links() {
        let table: &[(&str, Option<&str>)] = &[
            (
                r#"</v2/_catalog?last=b&n=2>; rel="next""#,
                Some("/v2/_catalog?last=b&n=2"),
            ),
            (
                r#"<https://r/v2/x/tags/list?last=a>; rel=next"#,
                Some("https://r/v2/x/tags/list?last=a"),
            ),
            (
                r#"</first>; rel="prev", </then?a=1,2>; title="x"; rel="next""#,
                Some("/then?a=1,2"),
            ),
            (r#"</p>; rel="prev next""#, Some("/p")),
            (r#"</p>; rel="prev""#, None),
            ("", None),
            ("<unterminated; rel=next", None),
        ];
        for (value, want) in table {
            assert_eq!(next_in(value).as_deref(), *want, "{value}");
        }
    }

    #[test]
    fn media_types() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let typed = br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        let table: &[(Option<&str>, &[u8], Option<&str>)] = &[
            (
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                b"",
                Some(OCI_MANIFEST),
            ),
            (Some("application/json"), typed, Some(DOCKER_MANIFEST)),
            (None, typed, Some(DOCKER_MANIFEST)),
            (None, index, Some(OCI_INDEX)),
            (Some("text/plain"), br#"{"config":{}}"#, Some(OCI_MANIFEST)),
            (None, b"{}", None),
            (None, b"not json", None),
        ];
        for (ct, body, want) in table {
            assert_eq!(manifest_media_type(*ct, body).as_deref(), *want, "{ct:?}");
        }
        let accepted = [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ];
        assert!(accepted.iter().all(|t| ACCEPT_MANIFESTS.contains(t)));
        assert!(!ACCEPT_MANIFESTS.contains('*'));
    }
}

//! Where OSV dumps come from, laid out as OSV publishes them: a local
//! directory (`<dir>/<Ecosystem>/all.zip`, read in place) or an http(s)
//! base URL (`<url>/ecosystems.txt` listing the ecosystems,
//! `<url>/<Ecosystem>/all.zip` downloaded to a temporary file under
//! `.berth/`, streamed, never held whole in memory).
//!
//! Each zip comes back with its SHA-256, the database's version being
//! made of them. A temporary file is removed when its [`Zip`] is dropped,
//! whichever way the refresh ends.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::DbError;

/// The most bytes of one `all.zip` downloaded (2 GiB: OSV's largest,
/// all of its ecosystems together, is about 1 GiB).
const ZIP_LIMIT: u64 = 2 << 30;
/// The most bytes of `ecosystems.txt` (OSV's is about 1 KiB).
const LIST_LIMIT: u64 = 1 << 20;
/// The longest one request may take, its body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The longest a response may stall between two reads.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Downloads are named with this prefix under `.berth/`; `open` removes
/// any a crash left behind.
pub(super) const DOWNLOAD_PREFIX: &str = "osv-download-";

/// An OSV source.
pub(super) enum Source {
    Dir(PathBuf),
    Http {
        base: reqwest::Url,
        client: reqwest::Client,
    },
}

/// One ecosystem's dump, ready to read.
pub(super) struct Zip {
    pub(super) ecosystem: String,
    pub(super) path: PathBuf,
    /// Its SHA-256, in hex.
    pub(super) digest: String,
    /// The downloaded file, removed on drop; `None` for a local one.
    _download: Option<Download>,
}

/// A downloaded file, removed when dropped.
struct Download(PathBuf);

impl Drop for Download {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.0.display());
        }
    }
}

impl Source {
    /// The source `extensions.search.cve.osv.source` names.
    pub(super) fn new(source: &str) -> Result<Self, DbError> {
        if !(source.starts_with("http://") || source.starts_with("https://")) {
            return Ok(Self::Dir(PathBuf::from(source)));
        }
        let bad = |reason: String| DbError::Source {
            at: redact_str(source),
            reason,
        };
        let base = reqwest::Url::parse(source.trim_end_matches('/'))
            .map_err(|e| bad(format!("not a URL: {e}")))?;
        let client = reqwest::Client::builder()
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| bad(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self::Http { base, client })
    }

    /// Every ecosystem the source has: the folders of a directory that
    /// hold an `all.zip`, or the lines of `ecosystems.txt`; sorted, and
    /// without the releases (`Debian:12`) of an ecosystem listed whole
    /// (`Debian`), whose dump has their advisories too.
    pub(super) async fn ecosystems(&self) -> Result<Vec<String>, DbError> {
        let mut found = match self {
            Self::Dir(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || folders_with_zips(&dir)).await??
            }
            Self::Http { base, client } => {
                let url = join(base, "ecosystems.txt")?;
                let mut response = get(client, &url, LIST_LIMIT).await?;
                let mut body = Vec::new();
                while let Some(chunk) = response.next().await? {
                    body.extend_from_slice(&chunk);
                }
                String::from_utf8_lossy(&body)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
        };
        found.retain(|e| {
            let ok = is_ecosystem_name(e);
            if !ok {
                tracing::warn!("osv source {self}: {e:?} is no ecosystem name, skipped");
            }
            ok
        });
        found.sort();
        found.dedup();
        // A release's dump (`Debian:12`) holds a part of its ecosystem's
        // (`Debian`): fetch the whole one only.
        let whole: std::collections::HashSet<String> =
            found.iter().filter(|e| !e.contains(':')).cloned().collect();
        found.retain(|e| {
            e.split_once(':')
                .is_none_or(|(base, _)| !whole.contains(base))
        });
        Ok(found)
    }

    /// Every named ecosystem's dump, in order; downloads go to `dir`.
    pub(super) async fn fetch(
        &self,
        ecosystems: &[String],
        dir: &Path,
    ) -> Result<Vec<Zip>, DbError> {
        let mut zips = Vec::with_capacity(ecosystems.len());
        for ecosystem in ecosystems {
            if !is_ecosystem_name(ecosystem) {
                return Err(DbError::Source {
                    at: self.to_string(),
                    reason: format!("{ecosystem:?} is no ecosystem name"),
                });
            }
            zips.push(self.fetch_one(ecosystem, dir).await?);
        }
        Ok(zips)
    }

    async fn fetch_one(&self, ecosystem: &str, dir: &Path) -> Result<Zip, DbError> {
        match self {
            Self::Dir(root) => {
                let path = root.join(ecosystem).join("all.zip");
                let hashed = path.clone();
                let digest = tokio::task::spawn_blocking(move || hash_file(&hashed)).await??;
                Ok(Zip {
                    ecosystem: ecosystem.to_owned(),
                    path,
                    digest,
                    _download: None,
                })
            }
            Self::Http { base, client } => {
                let url = join(base, &format!("{ecosystem}/all.zip"))?;
                let path = dir.join(format!("{DOWNLOAD_PREFIX}{}.zip", uuid::Uuid::new_v4()));
                let file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .await
                    .map_err(|e| DbError::io(&path, e))?;
                // From here on the file goes whatever happens.
                let download = Download(path.clone());
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
                let mut hasher = Sha256::new();
                let mut response = get(client, &url, ZIP_LIMIT).await?;
                while let Some(chunk) = response.next().await? {
                    hasher.update(&chunk);
                    out.write_all(&chunk)
                        .await
                        .map_err(|e| DbError::io(&path, e))?;
                }
                out.flush().await.map_err(|e| DbError::io(&path, e))?;
                Ok(Zip {
                    ecosystem: ecosystem.to_owned(),
                    path,
                    digest: hex::encode(hasher.finalize()),
                    _download: Some(download),
                })
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::Http { base, .. } => f.write_str(&redact(base)),
        }
    }
}

/// A response body being read: refused past its limit, or when it ends
/// short of the length it declared.
struct Body {
    url: String,
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    limit: u64,
    declared: Option<u64>,
    read: u64,
}

/// GETs `url`: refused unless the answer is a success no longer than
/// `limit`.
async fn get(client: &reqwest::Client, url: &reqwest::Url, limit: u64) -> Result<Body, DbError> {
    let shown = redact(url);
    let response = client
        .get(url.clone())
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| DbError::http(&shown, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(DbError::Status { url: shown, status });
    }
    let declared = response.content_length();
    if declared.is_some_and(|n| n > limit) {
        return Err(DbError::TooLarge { url: shown, limit });
    }
    Ok(Body {
        url: shown,
        stream: response.bytes_stream().boxed(),
        limit,
        declared,
        read: 0,
    })
}

impl Body {
    /// The next chunk; `None` at the (complete) end.
    async fn next(&mut self) -> Result<Option<bytes::Bytes>, DbError> {
        match self.stream.next().await {
            Some(Ok(chunk)) => {
                self.read += chunk.len() as u64;
                if self.read > self.limit {
                    return Err(DbError::TooLarge {
                        url: self.url.clone(),
                        limit: self.limit,
                    });
                }
                Ok(Some(chunk))
            }
            Some(Err(e)) => Err(DbError::http(&self.url, e)),
            None => match self.declared {
                Some(n) if n != self.read => Err(DbError::Truncated {
                    url: self.url.clone(),
                    read: self.read,
                    declared: n,
                }),
                _ => Ok(None),
            },
        }
    }
}

/// `base` with `path` appended (each segment percent-encoded as needed:
/// `Rocky Linux/all.zip`).
fn join(base: &reqwest::Url, path: &str) -> Result<reqwest::Url, DbError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| DbError::Source {
            at: redact(base),
            reason: "not a base URL".into(),
        })?
        .pop_if_empty()
        .extend(path.split('/'));
    Ok(url)
}

/// A URL as errors and logs show it: without credentials or query (a
/// signed URL's signature).
fn redact(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    // Both fail only for URLs that cannot have credentials anyway.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

/// [`redact`] for a source that may not parse.
fn redact_str(source: &str) -> String {
    reqwest::Url::parse(source).map_or_else(|_| "<the configured URL>".into(), |u| redact(&u))
}

/// Whether `name` can be an ecosystem's folder (as the config checks).
fn is_ecosystem_name(name: &str) -> bool {
    !(name.is_empty() || name.contains(['/', '\\', '\0']) || name.contains(".."))
}

/// The folders of `dir` holding an `all.zip`.
fn folders_with_zips(dir: &Path) -> Result<Vec<String>, DbError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DbError::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DbError::io(dir, e))?;
        if entry.path().join("all.zip").is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            found.push(name.to_owned());
        }
    }
    Ok(found)
}

/// The SHA-256 of a file, in hex.
fn hash_file(path: &Path) -> Result<String, DbError> {
    let mut file = std::fs::File::open(path).map_err(|e| DbError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| DbError::io(path, e))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_joined_encoded_and_shown_without_credentials() {
        let base = reqwest::Url::parse("https://user:secret@osv.example/dumps?sig=x")
            .unwrap_or_else(|e| panic!("{e}"));
        let url = join(&base, "Rocky Linux/all.zip").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            url.as_str(),
            "https://user:secret@osv.example/dumps/Rocky%20Linux/all.zip?sig=x"
        );
        assert_eq!(
            redact(&url),
            "https://osv.example/dumps/Rocky%20Linux/all.zip"
        );
        let root = reqwest::Url::parse("http://osv.example").unwrap_or_else(|e| panic!("{e}"));
        let url = join(&root, "ecosystems.txt").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.as_str(), "http://osv.example/ecosystems.txt");
    }
}

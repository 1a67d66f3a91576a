//! OSV advisories for a scan: each ecosystem's `all.zip` as OSV
//! publishes it (`<SOURCE>/<Ecosystem>/all.zip`), from a local directory
//! or an HTTP(S) base URL (downloaded to an anonymous temporary file,
//! with a timeout and a size cap), read with `berth_vuln::advisory::read_zip`
//! into a map keyed as `berth_vuln::matching::findings` looks advisories
//! up. Only the advisories of the image's packages are kept, so memory is
//! the size of what is found, not of the dumps.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, BufReader, Seek};
use std::path::PathBuf;
use std::time::Duration;

use berth_vuln::Package;
use berth_vuln::advisory::{
    Advisory, AdvisoryError, advisory_ecosystems, normalize_name, read_zip,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// OSV's public bucket.
pub(crate) const DEFAULT_SOURCE: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// The largest dump downloaded (2 GiB; OSV's largest, Debian's, is a few
/// hundred MiB).
const MAX_DUMP: u64 = 2 << 30;

/// How long one dump's download may take, and its connection.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why advisories could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OsvError {
    #[error("advisory source {0}: no such directory")]
    NoSource(String),
    #[error("no advisories for ecosystem {ecosystem}: {at} does not exist")]
    Missing { ecosystem: String, at: String },
    #[error("cannot download {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("{at}: {source}")]
    Dump {
        at: String,
        #[source]
        source: AdvisoryError,
    },
    #[error("{at}: {source}")]
    Io {
        at: String,
        #[source]
        source: io::Error,
    },
}

/// Where the dumps are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OsvSource {
    Dir(PathBuf),
    /// A base URL, without a trailing `/`.
    Url(String),
}

/// The advisories that may affect an image's packages.
#[derive(Debug, Default)]
pub(crate) struct Advisories {
    by_key: HashMap<(String, String), Vec<Advisory>>,
    /// Ecosystems without a dump, records that could not be read: each
    /// with the folder it is about.
    pub(crate) notes: Vec<(String, String)>,
}

impl Advisories {
    /// The lookup `findings` asks for: the advisories of one advisory
    /// ecosystem and normalized name.
    pub(crate) fn lookup(&self, ecosystem: &str, name: &str) -> Vec<Advisory> {
        self.by_key
            .get(&(ecosystem.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

/// OSV's folder of an ecosystem: the name before the release
/// (`Debian:12` → `Debian`, `Ubuntu:22.04:LTS` → `Ubuntu`).
pub(crate) fn folder(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// The folders the packages' advisories are in.
pub(crate) fn folders<'a>(packages: impl IntoIterator<Item = &'a Package>) -> BTreeSet<String> {
    packages
        .into_iter()
        .map(|p| folder(&p.ecosystem).to_owned())
        .collect()
}

/// The `(advisory ecosystem, normalized name)` keys the packages are
/// looked up by: all that is kept of the dumps.
pub(crate) fn wanted<'a>(
    packages: impl IntoIterator<Item = &'a Package>,
) -> HashSet<(String, String)> {
    let mut keys = HashSet::new();
    for p in packages {
        let name = normalize_name(&p.ecosystem, p.advisory_name()).into_owned();
        for ecosystem in advisory_ecosystems(&p.ecosystem) {
            keys.insert((ecosystem, name.clone()));
        }
    }
    keys
}

impl OsvSource {
    /// `http://` and `https://` are base URLs; anything else a directory.
    pub(crate) fn parse(s: &str) -> Self {
        if s.starts_with("http://") || s.starts_with("https://") {
            Self::Url(s.trim_end_matches('/').to_owned())
        } else {
            Self::Dir(PathBuf::from(s))
        }
    }

    /// Fails early on a directory that is not there.
    pub(crate) fn check(&self) -> Result<(), OsvError> {
        match self {
            Self::Dir(dir) if !dir.is_dir() => Err(OsvError::NoSource(dir.display().to_string())),
            _ => Ok(()),
        }
    }

    /// Where `folder`'s dump is.
    fn location(&self, folder: &str) -> String {
        match self {
            Self::Dir(dir) => dir.join(folder).join("all.zip").display().to_string(),
            Self::Url(base) => format!("{base}/{}/all.zip", encode(folder)),
        }
    }

    /// `folder`'s dump, opened at its start; `Ok(None)` when the source
    /// has none (a file that is not there, a 404), which is an error only
    /// for an ecosystem named on the command line (`required`).
    pub(crate) async fn fetch(
        &self,
        client: &reqwest::Client,
        folder: &str,
        required: bool,
    ) -> Result<Option<std::fs::File>, OsvError> {
        let at = self.location(folder);
        let missing = || {
            if required {
                Err(OsvError::Missing {
                    ecosystem: folder.to_owned(),
                    at: at.clone(),
                })
            } else {
                Ok(None)
            }
        };
        match self {
            Self::Dir(_) => match std::fs::File::open(&at) {
                Ok(f) => Ok(Some(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing(),
                Err(source) => Err(OsvError::Io { at, source }),
            },
            Self::Url(_) => {
                let download = |reason: String| OsvError::Download {
                    url: at.clone(),
                    reason,
                };
                let resp = client
                    .get(&at)
                    .send()
                    .await
                    .map_err(|e| download(error_chain(&e)))?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return missing();
                }
                if !resp.status().is_success() {
                    return Err(download(resp.status().to_string()));
                }
                if let Some(n) = resp.content_length().filter(|n| *n > MAX_DUMP) {
                    return Err(download(format!("{n} bytes, over the limit of {MAX_DUMP}")));
                }
                let io_error = |source| OsvError::Io {
                    at: "temporary file".into(),
                    source,
                };
                let file = tempfile::tempfile().map_err(io_error)?;
                let mut file = tokio::fs::File::from_std(file);
                let mut body = resp.bytes_stream();
                let mut total = 0u64;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| download(error_chain(&e)))?;
                    total += chunk.len() as u64;
                    if total > MAX_DUMP {
                        return Err(download(format!("over the limit of {MAX_DUMP} bytes")));
                    }
                    file.write_all(&chunk).await.map_err(io_error)?;
                }
                file.flush().await.map_err(io_error)?;
                let mut file = file.into_std().await;
                file.rewind().map_err(io_error)?;
                Ok(Some(file))
            }
        }
    }
}

/// The HTTP client downloads use.
pub(crate) fn http_client() -> Result<reqwest::Client, OsvError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| OsvError::Download {
            url: "(client)".into(),
            reason: error_chain(&e),
        })
}

/// Reads one dump into `into`, keeping the advisories of `wanted` keys;
/// records that cannot be read are counted in a note, withdrawn ones
/// skipped.
pub(crate) fn read_dump(
    source: &OsvSource,
    folder: &str,
    file: std::fs::File,
    wanted: &HashSet<(String, String)>,
    into: &mut Advisories,
) -> Result<(), OsvError> {
    let mut unreadable = 0usize;
    let mut first_error = None;
    let read = read_zip(BufReader::new(file), |record| match record {
        Ok(advisory) => {
            for (ecosystem, name) in advisory.keys() {
                let key = (ecosystem.to_owned(), name.to_owned());
                if wanted.contains(&key) {
                    let kept = advisory.for_key(ecosystem, name);
                    into.by_key.entry(key).or_default().push(kept);
                }
            }
        }
        Err(e) if e.is_withdrawn() => {}
        Err(e) => {
            unreadable += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
    });
    let count = read.map_err(|e| OsvError::Dump {
        at: source.location(folder),
        source: e,
    })?;
    if let Some(first) = first_error {
        into.notes.push((
            folder.to_owned(),
            format!(
                "{unreadable} of the {count} records of {} could not be read (the first: {first})",
                source.location(folder)
            ),
        ));
    }
    Ok(())
}

/// A note for an ecosystem the source has no dump for.
pub(crate) fn missing_note(source: &OsvSource, folder: &str) -> String {
    format!(
        "no advisories for ecosystem {folder}: {} does not exist; its packages were not checked",
        source.location(folder)
    )
}

/// An error with its causes, on one line (reqwest's own says only
/// "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A URL path segment: bytes other than letters, digits and `-._~`
/// percent-encoded (`Rocky Linux` → `Rocky%20Linux`).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_locations() {
        let url = OsvSource::parse("https://example.test/osv/");
        assert_eq!(url, OsvSource::Url("https://example.test/osv".into()));
        assert_eq!(
            url.location("Rocky Linux"),
            "https://example.test/osv/Rocky%20Linux/all.zip"
        );
        assert_eq!(
            url.location("crates.io"),
            "https://example.test/osv/crates.io/all.zip"
        );
        let dir = OsvSource::parse("/srv/osv");
        assert_eq!(dir.location("Debian"), "/srv/osv/Debian/all.zip");
        assert_eq!(folder("Debian:12"), "Debian");
        assert_eq!(folder("Ubuntu:Pro:22.04:LTS"), "Ubuntu");
        assert_eq!(folder("PyPI"), "PyPI");
    }
}

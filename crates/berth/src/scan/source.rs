//! Where an image's manifests and layers come from: an OCI image layout
//! on disk, or a registry through `berth-client` (layers streamed to
//! anonymous temporary files, checked against their digests, never held
//! in memory). [`Source::images`] walks from the top manifest to the
//! image manifests to scan, one per platform of an index.

use std::collections::VecDeque;
use std::io::{self, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_client::{Client, ClientError, ClientOptions};
use berth_oci::Digest;
use berth_oci::media::REF_NAME_ANNOTATION;

use super::manifest::{
    Descriptor, MAX_MANIFEST, Manifest, ManifestError, Platform, config_platform, is_platform_image,
};
use super::reference::{ManifestRef, Target};

/// How deep indexes may nest (an index of indexes of images is 2).
const MAX_DEPTH: usize = 4;

/// Why the image could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// The layout is missing or broken.
    #[error("{path}: {reason}")]
    Layout { path: String, reason: String },
    /// A manifest that is none.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The registry could not be reached, refused, or broke the protocol.
    #[error("{what}: {source}")]
    Registry {
        what: String,
        #[source]
        source: ClientError,
    },
    /// Nothing of the platform asked for.
    #[error("{image} has no image for platform {wanted} (it has: {have})")]
    NoPlatform {
        image: String,
        wanted: String,
        have: String,
    },
    /// Content that is not what its descriptor says.
    #[error("{0}")]
    Content(String),
    /// A temporary file could not be made or read.
    #[error("temporary file: {0}")]
    Temp(#[source] io::Error),
}

/// One image manifest to scan.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) digest: Digest,
    /// From the index's descriptor, else from the image's config.
    pub(crate) platform: Option<Platform>,
    pub(crate) layers: Vec<Descriptor>,
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegistryOptions {
    /// `user:password`, sent as Basic credentials.
    pub(crate) creds: Option<String>,
    /// Plain HTTP, or HTTPS with any certificate.
    pub(crate) insecure: bool,
}

/// An opened image source.
pub(crate) enum Source {
    Layout {
        dir: PathBuf,
        tag: Option<String>,
    },
    Registry {
        client: Box<Client>,
        repo: String,
        reference: ManifestRef,
    },
}

impl Source {
    /// Checks that the layout is one, or reaches the registry (with
    /// `insecure`, HTTPS without checking its certificate, else plain
    /// HTTP).
    pub(crate) async fn open(
        target: &Target,
        options: &RegistryOptions,
    ) -> Result<Self, SourceError> {
        match target {
            Target::Layout { path, tag } => {
                if !path.join("oci-layout").is_file() {
                    return Err(SourceError::Layout {
                        path: path.display().to_string(),
                        reason: "not an OCI image layout (no oci-layout file)".into(),
                    });
                }
                Ok(Self::Layout {
                    dir: path.clone(),
                    tag: tag.clone(),
                })
            }
            Target::Registry {
                host,
                repo,
                reference,
            } => {
                let client = connect(host, options).await?;
                Ok(Self::Registry {
                    client: Box::new(client),
                    repo: repo.as_str().to_owned(),
                    reference: reference.clone(),
                })
            }
        }
    }

    /// The image manifests to scan: the one IMAGE names, or each
    /// platform's of its index (only `wanted`'s, when given), in the
    /// index's order.
    pub(crate) async fn images(
        &self,
        wanted: Option<&Platform>,
    ) -> Result<Vec<Image>, SourceError> {
        let (digest, bytes) = self.top().await?;
        let mut queue = VecDeque::from([(digest, bytes, None::<Platform>, 0)]);
        let mut images = Vec::new();
        let mut seen = Vec::new();
        while let Some((digest, bytes, platform, depth)) = queue.pop_front() {
            match Manifest::parse(&bytes, &format!("manifest {digest}"))? {
                Manifest::Index(children) if depth < MAX_DEPTH => {
                    for child in children.into_iter().filter(is_platform_image) {
                        if let Some(p) = &child.platform {
                            remember(&mut seen, p);
                            if wanted.is_some_and(|w| !p.matches(w)) {
                                continue;
                            }
                        }
                        let bytes = self.manifest(&child.digest).await?;
                        queue.push_back((child.digest, bytes, child.platform, depth + 1));
                    }
                }
                Manifest::Index(_) => {
                    return Err(SourceError::Content(format!(
                        "manifest {digest}: indexes nested more than {MAX_DEPTH} deep"
                    )));
                }
                Manifest::Image { config, layers } => {
                    let platform = match platform {
                        Some(p) => Some(p),
                        None => config_platform(&self.small_blob(&config.digest).await?),
                    };
                    if let (Some(w), Some(p)) = (wanted, &platform) {
                        remember(&mut seen, p);
                        if !p.matches(w) {
                            continue;
                        }
                    }
                    images.push(Image {
                        digest,
                        platform,
                        layers,
                    });
                }
            }
        }
        if images.is_empty() {
            return Err(SourceError::NoPlatform {
                image: self.to_string(),
                wanted: wanted.map_or_else(|| "any".into(), ToString::to_string),
                have: if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                },
            });
        }
        Ok(images)
    }

    /// A layer's bytes as stored, in a file read from its start: the
    /// layout's blob, or the registry's copied to an anonymous temporary
    /// file (gone when closed) and checked against its digest and size.
    pub(crate) async fn layer(&self, layer: &Descriptor) -> Result<std::fs::File, SourceError> {
        match self {
            Self::Layout { dir, .. } => {
                let path = blob_path(dir, &layer.digest);
                std::fs::File::open(&path).map_err(|e| layout_error(&path, e))
            }
            Self::Registry { client, repo, .. } => {
                let file = tempfile::tempfile().map_err(SourceError::Temp)?;
                let mut file = tokio::fs::File::from_std(file);
                let got = client
                    .pull_blob_to(repo, &layer.digest, layer.size, &mut file)
                    .await
                    .map_err(|source| SourceError::Registry {
                        what: format!("layer {}", layer.digest),
                        source,
                    })?;
                if got != layer.size {
                    return Err(SourceError::Content(format!(
                        "layer {}: {got} bytes where the manifest says {}",
                        layer.digest, layer.size
                    )));
                }
                let mut file = file.into_std().await;
                file.rewind().map_err(SourceError::Temp)?;
                Ok(file)
            }
        }
    }

    /// The top manifest and its digest.
    async fn top(&self) -> Result<(Digest, Vec<u8>), SourceError> {
        match self {
            Self::Layout { dir, tag } => {
                let top = layout_top(dir, tag.as_deref())?;
                let bytes = self.manifest(&top).await?;
                Ok((top, bytes))
            }
            Self::Registry {
                client,
                repo,
                reference,
            } => {
                let (bytes, _) = client
                    .get_manifest(repo, &reference.to_string())
                    .await
                    .map_err(|source| SourceError::Registry {
                        what: self.to_string(),
                        source,
                    })?;
                let digest = match reference {
                    ManifestRef::Digest(d) => {
                        check_digest(d, &bytes)?;
                        d.clone()
                    }
                    ManifestRef::Tag(_) => Digest::sha256(&bytes),
                };
                Ok((digest, bytes.to_vec()))
            }
        }
    }

    /// A manifest by digest, checked against it.
    async fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, SourceError> {
        let bytes = match self {
            Self::Layout { .. } => self.small_blob(digest).await?,
            Self::Registry { client, repo, .. } => client
                .get_manifest(repo, &digest.to_string())
                .await
                .map_err(|source| SourceError::Registry {
                    what: format!("manifest {digest}"),
                    source,
                })?
                .0
                .to_vec(),
        };
        check_digest(digest, &bytes)?;
        Ok(bytes)
    }

    /// A blob of at most [`MAX_MANIFEST`] bytes (a config).
    async fn small_blob(&self, digest: &Digest) -> Result<Vec<u8>, SourceError> {
        match self {
            Self::Layout { dir, .. } => {
                let path = blob_path(dir, digest);
                let size = std::fs::metadata(&path)
                    .map_err(|e| layout_error(&path, e))?
                    .len();
                if size > MAX_MANIFEST {
                    return Err(SourceError::Content(format!(
                        "{}: {size} bytes, over the limit of {MAX_MANIFEST}",
                        path.display()
                    )));
                }
                std::fs::read(&path).map_err(|e| layout_error(&path, e))
            }
            Self::Registry { client, repo, .. } => {
                let mut out = Vec::new();
                client
                    .pull_blob_to(repo, digest, MAX_MANIFEST, &mut out)
                    .await
                    .map_err(|source| SourceError::Registry {
                        what: format!("blob {digest}"),
                        source,
                    })?;
                Ok(out)
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Layout { dir, tag } => {
                write!(f, "oci:{}", dir.display())?;
                tag.as_ref().map_or(Ok(()), |t| write!(f, ":{t}"))
            }
            Self::Registry {
                client,
                repo,
                reference,
            } => {
                let sep = if matches!(reference, ManifestRef::Digest(_)) {
                    '@'
                } else {
                    ':'
                };
                write!(f, "{}/{repo}{sep}{reference}", client.base())
            }
        }
    }
}

/// A client for `host`, checked with `GET /v2/`: over HTTPS, and with
/// `insecure` over HTTPS with any certificate or, when that fails to
/// connect, plain HTTP. Any answer (401 included) counts as reached. A
/// connection must be made within 30 s, and a download that stalls for
/// 2 minutes fails.
async fn connect(host: &str, options: &RegistryOptions) -> Result<Client, SourceError> {
    let client_options = ClientOptions {
        accept_invalid_certs: options.insecure,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    };
    let make = |scheme: &str| {
        Client::with_options(
            &format!("{scheme}://{host}"),
            options.creds.as_deref(),
            client_options.clone(),
        )
        .map_err(|source| SourceError::Registry {
            what: format!("registry {host}"),
            source,
        })
    };
    let https = make("https")?;
    let first = match https.ping().await {
        Ok(()) => return Ok(https),
        Err(e) if e.status().is_some() => return Ok(https),
        Err(e) => e,
    };
    if options.insecure {
        let http = make("http")?;
        match http.ping().await {
            Ok(()) => return Ok(http),
            Err(e) if e.status().is_some() => return Ok(http),
            Err(_) => {}
        }
    }
    Err(SourceError::Registry {
        what: format!(
            "cannot reach registry {host}{}",
            if options.insecure {
                " (over HTTPS nor HTTP)"
            } else {
                " over HTTPS (--insecure allows plain HTTP)"
            }
        ),
        source: first,
    })
}

/// The manifest of `tag` in a layout's `index.json` (without a tag: the
/// only manifest, or `latest`).
fn layout_top(dir: &Path, tag: Option<&str>) -> Result<Digest, SourceError> {
    let path = dir.join("index.json");
    let bytes = std::fs::read(&path).map_err(|e| layout_error(&path, e))?;
    let entries = match Manifest::parse(&bytes, &path.display().to_string())? {
        Manifest::Index(entries) => entries,
        Manifest::Image { .. } => {
            return Err(SourceError::Layout {
                path: path.display().to_string(),
                reason: "not an index".into(),
            });
        }
    };
    let name = |d: &Descriptor| d.annotations.get(REF_NAME_ANNOTATION).cloned();
    let found = match tag {
        None if entries.len() == 1 => entries.first(),
        None => entries
            .iter()
            .find(|d| name(d).as_deref() == Some("latest")),
        Some(tag) => entries.iter().find(|d| name(d).as_deref() == Some(tag)),
    };
    found.map(|d| d.digest.clone()).ok_or_else(|| {
        let tags: Vec<String> = entries.iter().filter_map(name).collect();
        SourceError::Layout {
            path: dir.display().to_string(),
            reason: format!(
                "no manifest tagged {} (tags: {})",
                tag.unwrap_or("latest"),
                if tags.is_empty() {
                    "none".into()
                } else {
                    tags.join(", ")
                }
            ),
        }
    })
}

/// Adds a platform to those seen, once.
fn remember(seen: &mut Vec<String>, platform: &Platform) {
    let name = platform.to_string();
    if !seen.contains(&name) {
        seen.push(name);
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

fn layout_error(path: &Path, e: io::Error) -> SourceError {
    SourceError::Layout {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn check_digest(digest: &Digest, bytes: &[u8]) -> Result<(), SourceError> {
    let got = Digest::compute(digest.algorithm(), bytes);
    if &got == digest {
        Ok(())
    } else {
        Err(SourceError::Content(format!(
            "manifest {digest}: its bytes' digest is {got}"
        )))
    }
}

//! The two ends of a copy whatever their transport: a [`Source`] (a
//! registry's repository, an OCI layout, a docker-archive) and a
//! [`Target`] (the same three), each a [`CopySource`] / [`CopyTarget`] for
//! the one walk ([`super::ImageCopy`]). A target brings a blob over from
//! its source itself: skipped when there, mounted from the same registry,
//! else streamed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_oci::Digest;
use berth_oci::manifest::Descriptor;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryStreamExt};

use super::archive::{ArchiveSource, ArchiveTarget};
use super::layout::{LayoutSource, LayoutTarget};
use super::{CopyRefused, CopySource, CopyTarget};
use crate::{Client, ClientError, ManifestHead, Mount, RawManifest, Referrer};

/// A blob's bytes as they are read.
pub type BlobBytes = BoxStream<'static, Result<Bytes, CopyError>>;

/// Why a copy failed (said on one line).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A registry's answer, or no answer.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// A file of a layout or an archive.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Content that cannot be copied (see [`CopyRefused`]).
    #[error("{0}")]
    Refused(#[from] CopyRefused),
    /// Content that is not what it says (a digest, a layout, an archive).
    #[error("{0}")]
    Invalid(String),
    /// What is asked for is not there (the message names it).
    #[error("{0}")]
    NotFound(String),
}

impl CopyError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How a blob came to be at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobDone {
    /// It was there already.
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Its bytes were sent.
    Copied,
}

/// Hears how each blob's copy goes (a progress bar per blob, or nothing).
pub trait Progress: Send + Sync {
    /// A blob's copy starts.
    fn start(&self, blob: &Descriptor) -> Box<dyn BlobProgress>;
}

/// One blob's copy.
pub trait BlobProgress: Send + Sync {
    /// `bytes` more have gone.
    fn advance(&self, bytes: u64);
    /// It is done.
    fn finish(&self, how: BlobDone);
}

/// Hears nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &Descriptor) -> Box<dyn BlobProgress> {
        Box::new(Quiet)
    }
}

impl BlobProgress for Quiet {
    fn advance(&self, _: u64) {}
    fn finish(&self, _: BlobDone) {}
}

/// Where an image is read from.
pub enum Source {
    /// A registry (the repository is the walk's).
    Registry(Client),
    /// An OCI image layout.
    Layout(LayoutSource),
    /// A docker-archive.
    Archive(ArchiveSource),
}

impl Source {
    /// Blob `digest` as a stream.
    pub async fn blob(&self, repo: &str, digest: &Digest) -> Result<BlobBytes, CopyError> {
        match self {
            Self::Registry(c) => {
                let repo = c.upstream_repo(repo);
                let blob = c
                    .blob_stream(&repo, digest)
                    .await?
                    .ok_or_else(|| CopyError::NotFound(format!("blob {digest}: blob unknown")))?;
                Ok(blob.stream.map_err(CopyError::Client).boxed())
            }
            Self::Layout(l) => l.blob(digest).await,
            Self::Archive(a) => a.blob(digest).await,
        }
    }
}

impl CopySource for Source {
    type Error = CopyError;

    async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<RawManifest>, CopyError> {
        match self {
            Self::Registry(c) => Ok(CopySource::manifest(c, repo, reference).await?),
            Self::Layout(l) => l.manifest(reference).await,
            Self::Archive(a) => Ok(a.manifest(reference)),
        }
    }

    async fn head(&self, repo: &str, reference: &str) -> Result<Option<ManifestHead>, CopyError> {
        match self {
            Self::Registry(c) => Ok(CopySource::head(c, repo, reference).await?),
            _ => Ok(self.manifest(repo, reference).await?.map(|m| ManifestHead {
                size: Some(m.bytes.len() as u64),
                digest: m.digest,
                media_type: m.media_type,
            })),
        }
    }

    async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Vec<Referrer>, CopyError> {
        match self {
            Self::Registry(c) => Ok(CopySource::referrers(c, repo, digest).await?),
            Self::Layout(l) => l.referrers(digest).await,
            Self::Archive(_) => Ok(Vec::new()),
        }
    }
}

/// Where an image is copied to.
pub enum TargetKind {
    /// A repository of a registry.
    Registry { client: Client, repo: String },
    /// An OCI image layout (its `index.json` written by [`Target::finish`]).
    Layout(LayoutTarget),
    /// A docker-archive (written whole by [`Target::finish`]).
    Archive(ArchiveTarget),
}

/// A target and the source its blobs come from.
pub struct Target {
    pub kind: TargetKind,
    pub source: Arc<Source>,
    /// The repository at the source (where blobs are read, and mounted
    /// from).
    pub source_repo: String,
    pub progress: Arc<dyn Progress>,
    /// Blobs larger than this go to a registry in `PATCH`es this large.
    pub chunk: u64,
}

impl Target {
    /// Ends the copy of `top` (the manifest just stored): a layout's
    /// `index.json` is written, an archive's file made. Nothing for a
    /// registry (the tag is already there).
    pub async fn finish(&self) -> Result<(), CopyError> {
        match &self.kind {
            TargetKind::Registry { .. } => Ok(()),
            TargetKind::Layout(l) => l.finish(),
            TargetKind::Archive(a) => a.finish().await,
        }
    }

    /// Whether the source is this registry (so a blob can be mounted).
    fn mount_from(&self, client: &Client) -> Option<String> {
        match &*self.source {
            Source::Registry(c) if c.base() == client.base() => {
                Some(c.upstream_repo(&self.source_repo))
            }
            _ => None,
        }
    }

    /// The source's bytes of `blob`, told to `progress` as they go.
    async fn read(
        &self,
        blob: &Descriptor,
        progress: &Arc<dyn BlobProgress>,
    ) -> Result<BlobBytes, CopyError> {
        let data = self.source.blob(&self.source_repo, &blob.digest).await?;
        let progress = progress.clone();
        Ok(data
            .inspect_ok(move |b| progress.advance(b.len() as u64))
            .boxed())
    }

    async fn ensure_in_registry(
        &self,
        client: &Client,
        repo: &str,
        blob: &Descriptor,
        progress: &Arc<dyn BlobProgress>,
    ) -> Result<BlobDone, CopyError> {
        if client.blob_exists(repo, &blob.digest).await? {
            return Ok(BlobDone::Exists);
        }
        let location = match self.mount_from(client) {
            Some(from) if from != repo => match client.mount_blob(repo, &blob.digest, &from).await?
            {
                Mount::Mounted => return Ok(BlobDone::Mounted),
                Mount::Session(location) => location,
            },
            _ => client.start_upload(repo).await?,
        };
        // The blob from an offset: the source read again from its start
        // and the bytes before the offset dropped (not sent again; each
        // byte told to `progress` once).
        let reopen = |offset: u64| {
            let progress = progress.clone();
            async move {
                let data = self
                    .source
                    .blob(&self.source_repo, &blob.digest)
                    .await
                    .map_err(into_client)?;
                let mut skip = offset;
                Ok(data
                    .map_err(into_client)
                    .map_ok(move |mut b| {
                        let drop = usize::try_from(skip.min(b.len() as u64)).unwrap_or(b.len());
                        skip -= drop as u64;
                        let _ = b.split_to(drop);
                        progress.advance(b.len() as u64);
                        b
                    })
                    .try_filter(|b| futures_util::future::ready(!b.is_empty()))
                    .boxed())
            }
            .boxed()
        };
        client
            .upload_stream(location, &blob.digest, blob.size, self.chunk, &reopen)
            .await?;
        Ok(BlobDone::Copied)
    }
}

/// A copy's error as the client's (an upload's body fails with it).
fn into_client(e: CopyError) -> ClientError {
    match e {
        CopyError::Client(c) => c,
        other => ClientError::Transport(other.to_string()),
    }
}

impl CopyTarget for Target {
    type Error = CopyError;

    async fn tag_digest(&self, tag: &str) -> Option<Digest> {
        match &self.kind {
            TargetKind::Registry { client, repo } => client
                .head_manifest_digest(repo, tag)
                .await
                .ok()
                .flatten()
                .map(|h| h.digest),
            TargetKind::Layout(l) => l.tag_digest(tag),
            TargetKind::Archive(_) => None,
        }
    }

    async fn has_manifest(&self, digest: &Digest) -> bool {
        match &self.kind {
            TargetKind::Registry { client, repo } => matches!(
                client.head_manifest_digest(repo, &digest.to_string()).await,
                Ok(Some(_))
            ),
            TargetKind::Layout(l) => l.has_blob(digest),
            TargetKind::Archive(_) => false,
        }
    }

    async fn ensure_blob(&self, blob: &Descriptor) -> Result<(), CopyError> {
        let progress: Arc<dyn BlobProgress> = Arc::from(self.progress.start(blob));
        let done = match &self.kind {
            TargetKind::Registry { client, repo } => {
                self.ensure_in_registry(client, repo, blob, &progress)
                    .await?
            }
            TargetKind::Layout(l) => {
                if l.has_blob(&blob.digest) {
                    BlobDone::Exists
                } else {
                    let data = self.read(blob, &progress).await?;
                    l.write_blob(blob, data).await?;
                    BlobDone::Copied
                }
            }
            TargetKind::Archive(a) => {
                let data = self.read(blob, &progress).await?;
                a.write_blob(blob, data).await?;
                BlobDone::Copied
            }
        };
        progress.finish(done);
        Ok(())
    }

    async fn put_manifest(
        &self,
        manifest: &RawManifest,
        tag: Option<&str>,
    ) -> Result<(), CopyError> {
        match &self.kind {
            TargetKind::Registry { client, repo } => {
                let reference = tag.map_or_else(|| manifest.digest.to_string(), String::from);
                client
                    .put_manifest(
                        repo,
                        &reference,
                        &manifest.media_type,
                        manifest.bytes.clone(),
                    )
                    .await?;
                Ok(())
            }
            TargetKind::Layout(l) => l.put_manifest(manifest, tag),
            TargetKind::Archive(a) => a.put_manifest(manifest),
        }
    }
}

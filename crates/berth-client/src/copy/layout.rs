//! An OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`)
//! as a copy's source or target. Tags are the `index.json` entries'
//! `org.opencontainers.image.ref.name`; referrers are entries whose
//! manifest has a `subject`. As a target, blobs are written checked and
//! renamed into place as they arrive, and `index.json` is written once,
//! last, atomically ([`LayoutTarget::finish`]): a copy cut short leaves
//! the layout's index as it was.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_oci::Digest;
use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::{OCI_INDEX, OCI_LAYOUT_VERSION, REF_NAME_ANNOTATION};
use bytes::Bytes;
use serde_json::{Value, json};

use super::ends::{BlobBytes, CopyError};
use super::files::{blob_path, read_range, write_atomic, write_blob};
use crate::{RawManifest, Referrer};

/// The largest manifest read.
const MAX_MANIFEST: u64 = 16 << 20;

/// The entries of `dir/index.json` (none when it does not exist).
fn read_index(dir: &Path) -> Result<Vec<Descriptor>, CopyError> {
    let path = dir.join("index.json");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CopyError::io(&path, e)),
    };
    let doc: Value = serde_json::from_slice(&text)
        .map_err(|e| CopyError::Invalid(format!("{}: {e}", path.display())))?;
    serde_json::from_value(doc["manifests"].clone())
        .map_err(|e| CopyError::Invalid(format!("{}: manifests: {e}", path.display())))
}

/// An entry's tag.
fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

/// A layout read from.
pub struct LayoutSource {
    dir: PathBuf,
    index: Vec<Descriptor>,
}

impl LayoutSource {
    /// Opens the layout at `dir` (its `index.json` must exist).
    pub fn open(dir: &Path) -> Result<Self, CopyError> {
        if !dir.join("index.json").is_file() {
            return Err(CopyError::NotFound(format!(
                "{}: not an OCI layout (no index.json)",
                dir.display()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            index: read_index(dir)?,
        })
    }

    /// What a reference-less `oci:DIR` means: the only entry (by digest).
    pub fn only_entry(&self) -> Result<String, CopyError> {
        match self.index.as_slice() {
            [one] => Ok(one.digest.to_string()),
            _ => Err(CopyError::Invalid(format!(
                "{}: {} images; name one (oci:DIR:TAG)",
                self.dir.display(),
                self.index.len()
            ))),
        }
    }

    /// The tags of the layout.
    pub fn tags(&self) -> Vec<String> {
        self.index
            .iter()
            .filter_map(ref_name)
            .map(String::from)
            .collect()
    }

    /// A manifest by tag or digest; its digest is checked.
    pub async fn manifest(&self, reference: &str) -> Result<Option<RawManifest>, CopyError> {
        let entry = match reference.parse::<Digest>() {
            Ok(d) => self
                .index
                .iter()
                .find(|e| e.digest == d)
                .cloned()
                .or_else(|| {
                    Some(Descriptor {
                        media_type: String::new(),
                        digest: d,
                        size: 0,
                        artifact_type: None,
                        annotations: None,
                        extra: serde_json::Map::new(),
                    })
                }),
            Err(_) => self
                .index
                .iter()
                .find(|e| ref_name(e) == Some(reference))
                .cloned(),
        };
        let Some(entry) = entry else {
            return Ok(None);
        };
        let path = blob_path(&self.dir, &entry.digest);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => Bytes::from(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CopyError::io(&path, e)),
        };
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(CopyError::Invalid(format!(
                "{}: a manifest larger than {MAX_MANIFEST} bytes",
                path.display()
            )));
        }
        let digest = Digest::compute(entry.digest.algorithm(), &bytes);
        if digest != entry.digest {
            return Err(CopyError::Invalid(format!(
                "{}: its digest is {digest}",
                path.display()
            )));
        }
        let said = (!entry.media_type.is_empty()).then_some(entry.media_type.as_str());
        let media_type = crate::upstream::manifest_media_type(said, &bytes).ok_or_else(|| {
            CopyError::Invalid(format!(
                "{}: a manifest without a media type",
                path.display()
            ))
        })?;
        Ok(Some(RawManifest {
            bytes,
            media_type,
            digest,
        }))
    }

    /// The entries whose manifest's subject is `digest`.
    pub async fn referrers(&self, digest: &Digest) -> Result<Vec<Referrer>, CopyError> {
        let mut out = Vec::new();
        for entry in &self.index {
            if entry.digest == *digest {
                continue;
            }
            let Some(m) = self.manifest(&entry.digest.to_string()).await? else {
                continue;
            };
            let Ok(parsed) = Manifest::parse(&m.bytes, Some(&m.media_type)) else {
                continue;
            };
            if parsed.subject.as_ref().is_some_and(|s| s.digest == *digest) {
                out.push(Referrer {
                    artifact_type: parsed.effective_artifact_type(),
                    digest: m.digest,
                    media_type: m.media_type,
                    size: m.bytes.len() as u64,
                });
            }
        }
        Ok(out)
    }

    /// A blob as a stream.
    pub async fn blob(&self, digest: &Digest) -> Result<BlobBytes, CopyError> {
        let path = blob_path(&self.dir, digest);
        let len = tokio::fs::metadata(&path)
            .await
            .map_err(|e| CopyError::io(&path, e))?
            .len();
        read_range(&path, 0, len).await
    }
}

/// A layout written to.
pub struct LayoutTarget {
    dir: PathBuf,
    /// `index.json` when the copy began (tags it already has).
    before: Vec<Descriptor>,
    /// Entries to add at the end: tagged manifests and referrers.
    added: Mutex<Vec<Descriptor>>,
}

impl LayoutTarget {
    /// Opens (or starts) the layout at `dir`.
    pub fn open(dir: &Path) -> Result<Self, CopyError> {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| CopyError::io(&blobs, e))?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            let text = json!({"imageLayoutVersion": OCI_LAYOUT_VERSION}).to_string();
            write_atomic(&marker, text.as_bytes())?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            before: read_index(dir)?,
            added: Mutex::default(),
        })
    }

    pub(super) fn tag_digest(&self, tag: &str) -> Option<Digest> {
        self.before
            .iter()
            .find(|e| ref_name(e) == Some(tag))
            .map(|e| e.digest.clone())
    }

    pub(super) fn has_blob(&self, digest: &Digest) -> bool {
        blob_path(&self.dir, digest).is_file()
    }

    pub(super) async fn write_blob(
        &self,
        blob: &Descriptor,
        data: BlobBytes,
    ) -> Result<(), CopyError> {
        let dest = blob_path(&self.dir, &blob.digest);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| CopyError::io(parent, e))?;
        }
        write_blob(&dest, &blob.digest, blob.size, data, &|_| ()).await
    }

    /// Stores the manifest's bytes as a blob; a tagged manifest, or a
    /// referrer, gets an `index.json` entry at [`Self::finish`].
    pub(super) fn put_manifest(&self, m: &RawManifest, tag: Option<&str>) -> Result<(), CopyError> {
        let dest = blob_path(&self.dir, &m.digest);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| CopyError::io(parent, e))?;
        }
        if !dest.is_file() {
            write_atomic(&dest, &m.bytes)?;
        }
        let subject = Manifest::parse(&m.bytes, Some(&m.media_type))
            .ok()
            .and_then(|p| p.subject);
        if tag.is_none() && subject.is_none() {
            return Ok(());
        }
        let annotations = tag.map(|t| [(REF_NAME_ANNOTATION.to_string(), t.to_string())].into());
        self.added
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Descriptor {
                media_type: m.media_type.clone(),
                digest: m.digest.clone(),
                size: m.bytes.len() as u64,
                artifact_type: None,
                annotations,
                extra: serde_json::Map::new(),
            });
        Ok(())
    }

    /// Writes `index.json`: what it held, less the entries of the tags
    /// just copied, plus the new entries.
    pub(super) fn finish(&self) -> Result<(), CopyError> {
        let added = self.added.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut entries = read_index(&self.dir)?;
        entries.retain(|old| {
            !added
                .iter()
                .any(|new| match (ref_name(old), ref_name(new)) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => old.digest == new.digest,
                    _ => false,
                })
        });
        entries.extend(added);
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        });
        let bytes = serde_json::to_vec_pretty(&doc)
            .map_err(|e| CopyError::Invalid(format!("index.json: {e}")))?;
        write_atomic(&self.dir.join("index.json"), &bytes)
    }
}

//! A docker-archive (`docker save`, `podman save`, `skopeo copy …
//! docker-archive:`) as a copy's source or target.
//!
//! Read, its `manifest.json` image becomes an OCI image manifest: the
//! config (Docker's JSON, which is an OCI image config) as
//! `application/vnd.oci.image.config.v1+json`, each layer file as it is
//! (never recompressed, so its digest is the file's) as
//! `application/vnd.oci.image.layer.v1.tar`, `+gzip` or `+zstd` by its
//! first bytes. The archive is read in place: one pass to index and hash
//! its files, then each blob streamed from its offset.
//!
//! Written, blobs are staged in a directory beside the file as they
//! arrive (checked), and the tarball — `manifest.json`, `<hex>.json`,
//! `<hex>.tar` per layer, as skopeo writes it — is made at the end under
//! a temporary name and renamed over the file. An archive holds one
//! image: an index must be cut to one platform first.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::{ManifestKind, OCI_MANIFEST};
use berth_oci::{Algorithm, Digest, DigestHasher};
use bytes::Bytes;
use serde_json::{Value, json};

use super::ends::{BlobBytes, CopyError};
use super::files::{blob_path, read_range, temp_beside, write_blob};
use crate::RawManifest;

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A blob's place in the archive: its data's offset and length.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    len: u64,
}

/// A docker-archive read from.
pub struct ArchiveSource {
    file: PathBuf,
    manifest: RawManifest,
    blobs: HashMap<Digest, Span>,
    /// `RepoTags` of the image read.
    pub repo_tags: Vec<String>,
}

impl ArchiveSource {
    /// Opens `file` and reads the image `reference` names (`NAME:TAG` of
    /// its `RepoTags`, `@N`, or nothing when it holds one image).
    pub async fn open(file: &Path, reference: Option<&str>) -> Result<Self, CopyError> {
        let file = file.to_path_buf();
        let reference = reference.map(String::from);
        tokio::task::spawn_blocking(move || Self::open_blocking(file, reference.as_deref()))
            .await
            .map_err(|e| CopyError::Invalid(format!("reading the archive: {e}")))?
    }

    fn open_blocking(file: PathBuf, reference: Option<&str>) -> Result<Self, CopyError> {
        let io = |e| CopyError::io(&file, e);
        let invalid = |what: String| CopyError::Invalid(format!("{}: {what}", file.display()));
        let mut spans: HashMap<String, Span> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let mut archive = tar::Archive::new(std::fs::File::open(&file).map_err(io)?);
        for entry in archive.entries().map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = normal(&entry.path().map_err(io)?.to_string_lossy());
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let span = Span {
                    offset: entry.raw_file_position(),
                    len: entry.size(),
                };
                spans.insert(name, span);
            } else if (kind.is_symlink() || kind.is_hard_link())
                && let Some(target) = entry.link_name().map_err(io)?
            {
                let target = target.to_string_lossy().into_owned();
                let base = if kind.is_symlink() {
                    name.rsplit_once('/').map_or("", |(d, _)| d).to_string()
                } else {
                    String::new()
                };
                links.insert(name, normal(&format!("{base}/{target}")));
            }
        }
        let find = |name: &str| -> Result<Span, CopyError> {
            let mut name = normal(name);
            for _ in 0..8 {
                if let Some(s) = spans.get(&name) {
                    return Ok(*s);
                }
                match links.get(&name) {
                    Some(t) => name = t.clone(),
                    None => break,
                }
            }
            Err(invalid(format!("no file {name} in the archive")))
        };
        let mut reader = std::fs::File::open(&file).map_err(io)?;
        let listing = read_span(&mut reader, find("manifest.json")?, 16 << 20).map_err(io)?;
        let images: Vec<Value> =
            serde_json::from_slice(&listing).map_err(|e| invalid(format!("manifest.json: {e}")))?;
        let image = pick(&images, reference).ok_or_else(|| match reference {
            Some(r) => CopyError::NotFound(format!("{}: no image {r}", file.display())),
            None => invalid(format!(
                "{} images; name one (FILE:NAME:TAG or FILE:@N)",
                images.len()
            )),
        })?;
        let config_name = image["Config"]
            .as_str()
            .ok_or_else(|| invalid("an image without a Config".into()))?;
        let config_span = find(config_name)?;
        let config = read_span(&mut reader, config_span, 16 << 20).map_err(io)?;
        let config_digest = Digest::sha256(&config);
        let mut blobs = HashMap::from([(config_digest.clone(), config_span)]);
        let mut layers = Vec::new();
        for name in image["Layers"].as_array().into_iter().flatten() {
            let name = name
                .as_str()
                .ok_or_else(|| invalid("a layer that is not a name".into()))?;
            let span = find(name)?;
            let (digest, magic) = hash_span(&mut reader, span).map_err(io)?;
            layers.push(json!({
                "mediaType": layer_type(&magic),
                "digest": digest.to_string(),
                "size": span.len,
            }));
            blobs.insert(digest, span);
        }
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
            "layers": layers,
        });
        let bytes = Bytes::from(doc.to_string());
        Ok(Self {
            manifest: RawManifest {
                digest: Digest::sha256(&bytes),
                bytes,
                media_type: OCI_MANIFEST.to_string(),
            },
            blobs,
            repo_tags: crate::ops::strings(&image["RepoTags"]),
            file,
        })
    }

    /// The image's manifest, whatever the reference (an archive read
    /// holds one image here).
    pub fn manifest(&self, reference: &str) -> Option<RawManifest> {
        match reference.parse::<Digest>() {
            Ok(d) if d != self.manifest.digest => None,
            _ => Some(self.manifest.clone()),
        }
    }

    /// A blob of the image as a stream.
    pub async fn blob(&self, digest: &Digest) -> Result<BlobBytes, CopyError> {
        let span = self.blobs.get(digest).ok_or_else(|| {
            CopyError::NotFound(format!("{}: no blob {digest}", self.file.display()))
        })?;
        read_range(&self.file, span.offset, span.len).await
    }
}

/// A path inside the archive without `./` and `..` steps.
fn normal(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The image `reference` names among `images`.
fn pick<'a>(images: &'a [Value], reference: Option<&str>) -> Option<&'a Value> {
    let Some(reference) = reference else {
        return match images {
            [one] => Some(one),
            _ => None,
        };
    };
    if let Some(n) = reference.strip_prefix('@') {
        return images.get(n.parse::<usize>().ok()?);
    }
    images.iter().find(|i| {
        crate::ops::strings(&i["RepoTags"]).iter().any(|t| {
            t == reference
                || t.strip_prefix("docker.io/library/") == Some(reference)
                || t.strip_prefix("docker.io/") == Some(reference)
                || t.strip_prefix("localhost/") == Some(reference)
        })
    })
}

/// `span` of `file`, read whole (at most `max` bytes).
fn read_span(file: &mut std::fs::File, span: Span, max: u64) -> std::io::Result<Vec<u8>> {
    if span.len > max {
        return Err(std::io::Error::other(format!(
            "a file of more than {max} bytes"
        )));
    }
    file.seek(std::io::SeekFrom::Start(span.offset))?;
    let mut out = Vec::new();
    file.take(span.len).read_to_end(&mut out)?;
    Ok(out)
}

/// The sha256 of `span` and its first bytes.
fn hash_span(file: &mut std::fs::File, span: Span) -> std::io::Result<(Digest, Vec<u8>)> {
    file.seek(std::io::SeekFrom::Start(span.offset))?;
    let mut hasher = DigestHasher::new(Algorithm::Sha256);
    let mut part = file.take(span.len);
    let mut buf = vec![0; 256 * 1024];
    let mut magic = Vec::new();
    loop {
        let n = part.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if magic.len() < 4 {
            magic.extend_from_slice(&buf[..n.min(4 - magic.len())]);
        }
        hasher.update(&buf[..n]);
    }
    Ok((hasher.finish(), magic))
}

/// A layer's OCI media type by its first bytes.
fn layer_type(magic: &[u8]) -> &'static str {
    if magic.starts_with(&[0x1f, 0x8b]) {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
}

/// A docker-archive written to.
pub struct ArchiveTarget {
    file: PathBuf,
    /// Where blobs wait for the tarball; removed when the target goes.
    staging: PathBuf,
    repo_tag: Option<String>,
    manifest: Mutex<Option<RawManifest>>,
}

impl ArchiveTarget {
    /// A target writing `file`, its image named `repo_tag` (`NAME:TAG`).
    pub fn create(file: &Path, repo_tag: Option<String>) -> Result<Self, CopyError> {
        let staging = temp_beside(file);
        let blobs = staging.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| CopyError::io(&blobs, e))?;
        Ok(Self {
            file: file.to_path_buf(),
            staging,
            repo_tag,
            manifest: Mutex::default(),
        })
    }

    pub(super) async fn write_blob(
        &self,
        blob: &Descriptor,
        data: BlobBytes,
    ) -> Result<(), CopyError> {
        let dest = blob_path(&self.staging, &blob.digest);
        if dest.is_file() {
            return Ok(());
        }
        write_blob(&dest, &blob.digest, blob.size, data, &|_| ()).await
    }

    pub(super) fn put_manifest(&self, m: &RawManifest) -> Result<(), CopyError> {
        let parsed = Manifest::parse(&m.bytes, Some(&m.media_type))
            .map_err(|e| CopyError::Invalid(format!("{}: {e}", m.digest)))?;
        if parsed.kind == ManifestKind::Index {
            return Err(CopyError::Invalid(
                "a docker-archive holds one image: choose one with --platform".into(),
            ));
        }
        *self.manifest.lock().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
        Ok(())
    }

    /// Makes the tarball and renames it over the file.
    pub(super) async fn finish(&self) -> Result<(), CopyError> {
        let manifest = self
            .manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| CopyError::Invalid("no image was copied".into()))?;
        let parsed = Manifest::parse(&manifest.bytes, Some(&manifest.media_type))
            .map_err(|e| CopyError::Invalid(format!("{}: {e}", manifest.digest)))?;
        let config = parsed
            .config
            .ok_or_else(|| CopyError::Invalid("an image without a config".into()))?;
        let (file, staging, tag) = (
            self.file.clone(),
            self.staging.clone(),
            self.repo_tag.clone(),
        );
        tokio::task::spawn_blocking(move || {
            write_tar(&file, &staging, &config, &parsed.layers, tag)
        })
        .await
        .map_err(|e| CopyError::Invalid(format!("writing the archive: {e}")))?
    }
}

impl Drop for ArchiveTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Writes the tarball of `config` and `layers` (staged under `staging`)
/// to `file`, through a temporary name.
fn write_tar(
    file: &Path,
    staging: &Path,
    config: &Descriptor,
    layers: &[Descriptor],
    repo_tag: Option<String>,
) -> Result<(), CopyError> {
    let tmp = temp_beside(file).with_extension("tar");
    let io = |e| CopyError::io(&tmp, e);
    let out = std::fs::File::create(&tmp).map_err(io)?;
    let written = (|| -> std::io::Result<()> {
        let mut tar = tar::Builder::new(std::io::BufWriter::new(out));
        let config_name = format!("{}.json", config.digest.hex());
        let layer_names: Vec<String> = layers
            .iter()
            .map(|l| format!("{}.tar", l.digest.hex()))
            .collect();
        let listing = json!([{
            "Config": config_name,
            "RepoTags": repo_tag.into_iter().collect::<Vec<_>>(),
            "Layers": layer_names,
        }]);
        append(&mut tar, "manifest.json", listing.to_string().as_bytes())?;
        let mut put_file = |name: &str, digest: &Digest| -> std::io::Result<()> {
            let mut f = std::fs::File::open(blob_path(staging, digest))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(f.metadata()?.len());
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, &mut f)
        };
        put_file(&config_name, &config.digest)?;
        let mut done = std::collections::HashSet::new();
        for (layer, name) in layers.iter().zip(&layer_names) {
            if done.insert(&layer.digest) {
                put_file(name, &layer.digest)?;
            }
        }
        let out = tar.into_inner()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, file).map_err(|e| CopyError::io(file, e))
}

/// Adds a file named `name` holding `data`.
fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_magic() {
        assert_eq!(normal("./a/../b/./layer.tar"), "b/layer.tar");
        assert_eq!(
            layer_type(&[0x1f, 0x8b, 8, 0]),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            layer_type(b"ustar"),
            "application/vnd.oci.image.layer.v1.tar"
        );
        let images = vec![
            json!({"RepoTags": ["docker.io/library/app:v1"]}),
            json!({"RepoTags": ["b:2"]}),
        ];
        assert!(pick(&images, Some("app:v1")).is_some());
        assert!(pick(&images, Some("@1")).is_some_and(|i| i["RepoTags"][0] == "b:2"));
        assert!(pick(&images, None).is_none());
    }
}

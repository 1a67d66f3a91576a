//! Dedupe in a bucket: a blob's bytes stored once, linked from repositories.
//!
//! - `.berth/data/<id>`: the bytes, where an upload completed them (no
//!   copy; any key will do since the pointer names it);
//! - `.berth/blobs/<alg>/<hex>`: the pointer, `"<size> <data key>"`, which
//!   says a digest is stored and where;
//! - `<repo>/_links/<alg>/<hex>`: the same text, so a read is one small GET
//!   and then the bytes;
//! - `.berth/refs/<alg>/<hex>/<repo>`: who links the digest, so the sweep
//!   asks one LIST whether anybody still does.
//!
//! Every change to one digest's objects (a commit, a link, an unlink, the
//! sweep) holds the lock `blob:<digest>`, shared across instances, so the
//! sweep cannot delete bytes a link is being written for.

use std::time::{Duration, SystemTime};

use berth_oci::{Digest, RepoName};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{BucketStore, is_not_found};
use crate::storage::{BlobGuard, StorageError, StorageResult};

/// Where a digest's bytes are: `"<size> <data key>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pointer {
    pub(super) size: u64,
    /// Relative to the store's prefix.
    pub(super) data: String,
}

impl Pointer {
    fn parse(body: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        let (size, data) = text.trim().split_once(' ')?;
        if !data.starts_with(".berth/data/") || data.contains("..") {
            return None;
        }
        Some(Self {
            size: size.parse().ok()?,
            data: data.to_string(),
        })
    }

    fn to_body(&self) -> Bytes {
        Bytes::from(format!("{} {}", self.size, self.data))
    }
}

fn alg_hex(digest: &Digest) -> String {
    format!("{}/{}", digest.algorithm().as_str(), digest.hex())
}

impl BucketStore {
    /// Up to `max` repositories whose links name `digest` (the keys under
    /// `.berth/refs/<alg>/<hex>/`; repository names may hold `/`).
    pub(super) async fn linking(
        &self,
        digest: &Digest,
        max: usize,
    ) -> StorageResult<Vec<RepoName>> {
        let refs = self.key(&format!(".berth/refs/{}", alg_hex(digest)));
        let prefix = format!("{refs}/");
        let mut listing = self.bucket.list(Some(&refs));
        let mut out = Vec::new();
        while let Some(item) = listing.next().await {
            let meta = item.map_err(|e| self.err(e))?;
            if let Some(repo) = meta
                .location
                .as_ref()
                .strip_prefix(&prefix)
                .and_then(|r| r.parse::<RepoName>().ok())
            {
                out.push(repo);
                if out.len() >= max {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub(super) fn link_key(&self, repo: &RepoName, digest: &Digest) -> ObjPath {
        self.repo_key(repo, &format!("_links/{}", alg_hex(digest)))
    }

    fn pointer_key(&self, digest: &Digest) -> ObjPath {
        self.key(&format!(".berth/blobs/{}", alg_hex(digest)))
    }

    fn ref_key(&self, repo: &RepoName, digest: &Digest) -> ObjPath {
        self.key(&format!(".berth/refs/{}/{repo}", alg_hex(digest)))
    }

    /// The key an upload's bytes are completed at with dedupe on.
    pub(super) fn shared_data(&self, id: &str) -> String {
        format!(".berth/data/{id}")
    }

    pub(super) async fn lock_blob(&self, digest: &Digest) -> StorageResult<BlobGuard> {
        self.locks.lock_blob(digest).await
    }

    async fn read_pointer(&self, key: &ObjPath) -> StorageResult<Option<(Pointer, SystemTime)>> {
        match self.bucket.get(key).await {
            Ok(r) => {
                let modified: SystemTime = r.meta.last_modified.into();
                let body = r.bytes().await.map_err(|e| self.err(e))?;
                let p = Pointer::parse(&body).ok_or_else(|| StorageError::Corrupt {
                    path: key.to_string().into(),
                    message: "expected \"<size> <data key>\"".into(),
                })?;
                Ok(Some((p, modified)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Where the repository's blob is (the bytes its link points to, or its
    /// own plain object), its size, and when it was linked or stored. S3
    /// dates are whole seconds: the end of that second is taken, so GC's
    /// delay is never shortened.
    pub(super) async fn locate(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> StorageResult<Option<(ObjPath, u64, SystemTime)>> {
        let end_of_second = Duration::from_secs(1);
        if let Some((p, t)) = self.read_pointer(&self.link_key(repo, digest)).await? {
            return Ok(Some((self.key(&p.data), p.size, t + end_of_second)));
        }
        let plain = self.blob_key(repo, digest);
        Ok(self.head(&plain).await?.map(|m| {
            let t: SystemTime = m.last_modified.into();
            (plain, m.size, t + end_of_second)
        }))
    }

    /// Links `repo` to the bytes `p` names; the caller holds the blob's
    /// lock. The reference goes first, so a link never exists unreferenced.
    async fn write_link(&self, repo: &RepoName, digest: &Digest, p: &Pointer) -> StorageResult<()> {
        self.put(&self.ref_key(repo, digest), Bytes::new()).await?;
        self.put(&self.link_key(repo, digest), p.to_body()).await
    }

    /// Removes `repo`'s link; the caller holds the blob's lock.
    pub(super) async fn unlink(&self, repo: &RepoName, digest: &Digest) -> StorageResult<bool> {
        let linked = self.delete(&self.link_key(repo, digest)).await?;
        self.delete(&self.ref_key(repo, digest)).await?;
        Ok(linked)
    }

    /// Records that `digest` is stored at `data` (if it is not stored yet)
    /// and links `repo` to wherever it is; the caller holds the blob's
    /// lock. Returns whether `data` became the digest's bytes (false: they
    /// were stored already, and `data` is surplus).
    pub(super) async fn adopt(
        &self,
        repo: &RepoName,
        digest: &Digest,
        data: Pointer,
    ) -> StorageResult<bool> {
        let (p, adopted) = match self.read_pointer(&self.pointer_key(digest)).await? {
            Some((existing, _)) if self.head(&self.key(&existing.data)).await?.is_some() => {
                (existing, false)
            }
            _ => {
                self.put(&self.pointer_key(digest), data.to_body()).await?;
                (data, true)
            }
        };
        self.write_link(repo, digest, &p).await?;
        Ok(adopted)
    }

    /// The pointer of a digest, if it is stored.
    pub(super) async fn pointer(&self, digest: &Digest) -> StorageResult<Option<Pointer>> {
        Ok(self
            .read_pointer(&self.pointer_key(digest))
            .await?
            .map(|(p, _)| p))
    }

    /// A small blob: its bytes are stored unless the digest already is,
    /// then linked.
    pub(super) async fn put_shared(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> StorageResult<()> {
        let _blob = self.lock_blob(digest).await?;
        if let Some(p) = self.pointer(digest).await?
            && self.head(&self.key(&p.data)).await?.is_some()
        {
            return self.write_link(repo, digest, &p).await;
        }
        let p = Pointer {
            size: bytes.len() as u64,
            data: self.shared_data(&uuid::Uuid::new_v4().to_string()),
        };
        self.put(&self.key(&p.data), bytes).await?;
        self.adopt(repo, digest, p).await.map(|_| ())
    }

    /// Makes `from`'s blob available in `to`: a link to the same bytes, or
    /// (without dedupe, or from a plain blob) a server-side copy.
    pub(super) async fn link_from(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        let _blob = self.lock_blob(digest).await?;
        let Some((key, size, _)) = self.locate(from, digest).await? else {
            return Ok(false);
        };
        if !self.dedupe {
            return match self.bucket.copy(&key, &self.blob_key(to, digest)).await {
                Ok(()) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(self.err(e)),
            };
        }
        let p = match self.read_pointer(&self.link_key(from, digest)).await? {
            Some((p, _)) => p,
            None => {
                // A plain blob (written without dedupe): its bytes become
                // shared by a copy.
                let p = Pointer {
                    size,
                    data: self.shared_data(&uuid::Uuid::new_v4().to_string()),
                };
                match self.bucket.copy(&key, &self.key(&p.data)).await {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(e) => return Err(self.err(e)),
                }
                return self.adopt(to, digest, p).await.map(|_| true);
            }
        };
        self.write_link(to, digest, &p).await?;
        Ok(true)
    }

    /// Removes digests no repository links any more, with their bytes,
    /// when their pointer is older than `delay`.
    pub(super) async fn sweep_shared(&self, delay: Duration) -> StorageResult<usize> {
        let mut stored = Vec::new();
        for alg in ["sha256", "sha512"] {
            let prefix = self.key(&format!(".berth/blobs/{alg}"));
            let listed = self
                .bucket
                .list_with_delimiter(Some(&prefix))
                .await
                .map_err(|e| self.err(e))?;
            stored.extend(listed.objects.into_iter().filter_map(|o| {
                let d = format!("{alg}:{}", o.location.filename()?)
                    .parse::<Digest>()
                    .ok()?;
                let t: SystemTime = o.last_modified.into();
                Some((d, t))
            }));
        }
        let mut removed = 0;
        for (digest, modified) in stored {
            let young = SystemTime::now()
                .duration_since(modified)
                .map_or(true, |age| age < delay + Duration::from_secs(1));
            if young {
                continue;
            }
            let _blob = self.lock_blob(&digest).await?;
            let refs = self.key(&format!(".berth/refs/{}", alg_hex(&digest)));
            let mut listing = self.bucket.list(Some(&refs));
            match listing.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(self.err(e)),
                None => {}
            }
            if let Some(p) = self.pointer(&digest).await? {
                self.delete(&self.key(&p.data)).await?;
            }
            if self.delete(&self.pointer_key(&digest)).await? {
                tracing::info!(target: "berth::gc", root = %self.location, %digest, reason = "stored blob no repository links", "deleted");
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::Pointer;

    #[test]
    fn pointers_parse_and_refuse_other_keys() {
        let p = Pointer::parse(b"12 .berth/data/abc").expect("parse");
        assert_eq!(p.size, 12);
        assert_eq!(p.data, ".berth/data/abc");
        assert_eq!(Pointer::parse(&p.to_body()), Some(p));
        for bad in [
            &b"12"[..],
            b"x .berth/data/a",
            b"12 team/app/index.json",
            b"12 .berth/data/../../x",
            b"\xff",
        ] {
            assert_eq!(Pointer::parse(bad), None, "{bad:?}");
        }
    }
}

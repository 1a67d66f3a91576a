//! The [`Layout`] of [`FsStore`]: its repositories (found by a walk of
//! the root, created with their `oci-layout`) and their `index.json`: how
//! it is read, cached and replaced.
//!
//! A new `index.json` is written into one of two slot files in the
//! repository's `.uploads/` (`.index-a`, `.index-b`), whichever is not the
//! current `index.json`, and then hard-linked and renamed over
//! `index.json`. So every update is still an atomic rename of a complete
//! file, yet no inode is created or freed per update: the replaced
//! `index.json` lives on as the other slot and is rewritten by the update
//! after next. (On ext4 without a journal every freed inode makes the next
//! allocations in its group slower for minutes; with a rename per tag push
//! that was the largest cost of a push.)
//!
//! The slot is truncated before it is written, so its data goes to new
//! blocks, which ext4 writes out before a rename over another file commits
//! (`auto_da_alloc`), as it would for a fresh file: on ext4 with its
//! default journal (`data=ordered`), after a power loss without
//! `storage.commit`, `index.json` is the old or the new version, never old
//! blocks under a new size — as good as the old write-a-new-file scheme.
//! Without a journal, or with `data=writeback`, only `storage.commit`
//! (the slot synced before the rename) promises that.
//!
//! Each write sets the file's mtime to a value above both the slot's
//! previous mtime and the current `index.json`'s, so a file's stamp (inode,
//! size, mtime) — what the parse cache and the metadata store's `IndexVersion` key on
//! — does not repeat for different contents, even when a slot is rewritten
//! within one clock tick (on file systems that keep nanoseconds).
//!
//! The write ([`small_io`]: on the async worker, or on a blocking thread
//! when it syncs or the index is large) holds the repository lock
//! ([`HeldLock`]) until it is done, even if the request is dropped
//! meanwhile: no other holder can start writing the same slot.
//!
//! A reader outside the repository lock (scrub) may have opened a slot
//! that is being rewritten two updates later. A slot is only ever
//! rewritten while it is not `index.json`, so [`read_index_sync`] accepts
//! what it read only if the file did not change while it read and
//! `index.json` still is that file; otherwise it reads again.

use std::io::{ErrorKind, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_oci::RepoName;

use berth_oci::media::OCI_LAYOUT_VERSION;

use super::backend::Layout;
use super::fs::{
    BLOBS_DIR, FsStore, INDEX_JSON, INLINE_BYTES, OCI_LAYOUT, UPLOADS_DIR, not_found, on_blocking,
    small_io, sync_dirs,
};
use super::index::OciIndex;
use super::locks::{HeldLock, RepoGuard};
use super::{IndexVersion, IoContext, StorageError, StorageResult};

/// The two files `index.json` alternates between, in `.uploads/`. Dot
/// names: upload listings and GC skip them.
const INDEX_SLOTS: [&str; 2] = [".index-a", ".index-b"];

/// Repositories the parse cache holds before it starts over. (The cache
/// is ours, not `moka`'s: an entry is valid for exactly one file stamp,
/// not for a time, it is taken out for an update and put back after the
/// write, and its bound is in index entries, not in repositories.)
const INDEX_CACHE_MAX: usize = 4096;

/// Index entries, over all repositories, the parse cache holds at most:
/// others are dropped to make room (the index just written is always
/// kept). Each cached entry, with its JSON and lookup, is well under a
/// KiB.
const INDEX_CACHE_ENTRIES: usize = 50_000;

/// Entries of an `index.json` serialized on the async worker at most; a
/// larger one is serialized and written on a blocking thread, as is one
/// whose bytes come to more than [`INLINE_BYTES`].
const INLINE_INDEX_ENTRIES: usize = 1024;

/// Reads of an `index.json` that keeps changing underneath before giving
/// up (with growing pauses between them).
const READ_ATTEMPTS: u32 = 10;

/// What identifies one version of a file: inode, size, mtime (ns).
pub(super) type IndexStamp = (u64, u64, i128);

pub(super) fn stamp_of(meta: &std::fs::Metadata) -> IndexStamp {
    let mtime_ns = match meta
        .modified()
        .map(|t| t.duration_since(SystemTime::UNIX_EPOCH))
    {
        Ok(Ok(after)) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Ok(Err(before)) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
        Err(_) => 0,
    };
    (crate::os::inode(meta), meta.len(), mtime_ns)
}

fn mtime_of(meta: &std::fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Parsed `index.json` files by repository, with the stamp of the file
/// they were read from or written to.
#[derive(Default)]
pub(super) struct IndexCache {
    entries: std::sync::Mutex<Cached>,
}

/// The cached indexes and how many entries they hold together.
#[derive(Default)]
struct Cached {
    by_repo: std::collections::HashMap<String, (IndexStamp, Arc<OciIndex>)>,
    entries: usize,
}

impl Cached {
    fn remove(&mut self, repo: &str) -> Option<(IndexStamp, Arc<OciIndex>)> {
        let removed = self.by_repo.remove(repo)?;
        self.entries = self.entries.saturating_sub(removed.1.len());
        Some(removed)
    }
}

impl IndexCache {
    /// Takes the entry of `repo` out if it is for `stamp`: the caller is
    /// about to change it (under the repository lock) and puts it back
    /// with [`IndexCache::put`]. Not cloned unless somebody else holds it.
    fn take(&self, repo: &str, stamp: IndexStamp) -> Option<OciIndex> {
        let mut cached = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match cached.by_repo.get(repo) {
            Some((s, _)) if *s == stamp => {}
            _ => return None,
        }
        let (_, index) = cached.remove(repo)?;
        Some(Arc::try_unwrap(index).unwrap_or_else(|shared| (*shared).clone()))
    }

    fn put(&self, repo: &str, stamp: IndexStamp, index: OciIndex) {
        let mut cached = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        cached.remove(repo);
        if cached.by_repo.len() >= INDEX_CACHE_MAX {
            *cached = Cached::default();
        }
        // Others make room until this one fits (or is alone).
        while cached.entries + index.len() > INDEX_CACHE_ENTRIES {
            let Some(other) = cached.by_repo.keys().next().cloned() else {
                break;
            };
            cached.remove(&other);
        }
        cached.entries += index.len();
        cached
            .by_repo
            .insert(repo.to_string(), (stamp, Arc::new(index)));
    }

    fn forget(&self, repo: &str) {
        let mut cached = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        cached.remove(repo);
    }
}

impl FsStore {
    /// Refuses a repository whose directory would lie in another
    /// repository's `blobs/` or hold one.
    async fn check_nesting(&self, repo: &RepoName) -> StorageResult<()> {
        let parts: Vec<&str> = repo.components().collect();
        let mut prefix = self.root().to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            if *part == BLOBS_DIR
                && i > 0
                && tokio::fs::metadata(prefix.join(INDEX_JSON)).await.is_ok()
            {
                return Err(StorageError::NameConflict(format!(
                    "{repo} would lie inside the blobs of repository {}",
                    parts[..i].join("/")
                )));
            }
            prefix.push(part);
        }
        if tokio::fs::metadata(prefix.join(BLOBS_DIR).join(INDEX_JSON))
            .await
            .is_ok()
        {
            return Err(StorageError::NameConflict(format!(
                "{repo}/blobs is a repository, so {repo} cannot be one"
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Layout for FsStore {
    /// The root must be a directory (a disk that went away, or a root
    /// removed under the server, fails this).
    async fn reachable(&self) -> StorageResult<()> {
        let root = self.root().to_path_buf();
        on_blocking(root.clone(), move || {
            let meta = std::fs::metadata(&root).at(&root)?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(std::io::Error::other("not a directory")).at(&root)
            }
        })
        .await
    }

    async fn repo_exists(&self, repo: &RepoName) -> StorageResult<bool> {
        let p = self.repo_dir(repo).join(INDEX_JSON);
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e).at(&p),
        }
    }

    /// Also creates `.uploads/`, which a layout made by another tool lacks.
    /// Refuses a new repository whose directory would lie in another
    /// repository's `blobs/` (`a/blobs` when `a` exists) or hold one.
    async fn create_repo(&self, guard: &RepoGuard) -> StorageResult<()> {
        let repo = guard.repo();
        let dir = self.repo_dir(repo);
        let exists = self.repo_exists(repo).await?;
        if !exists {
            self.check_nesting(repo).await?;
        }
        let uploads = dir.join(UPLOADS_DIR);
        tokio::fs::create_dir_all(&uploads).await.at(&uploads)?;
        if exists {
            return Ok(());
        }
        let layout = dir.join(OCI_LAYOUT);
        if tokio::fs::metadata(&layout).await.is_err() {
            let body = format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}");
            self.write_atomic(repo, &layout, body.as_bytes()).await?;
        }
        self.write_index(guard, OciIndex::default()).await
    }

    async fn list_repos(&self) -> StorageResult<Vec<RepoName>> {
        let root = self.root().to_path_buf();
        let found = on_blocking(self.root().to_path_buf(), move || walk_repos(&root)).await?;
        let mut names: Vec<RepoName> = found.iter().filter_map(|n| n.parse().ok()).collect();
        names.sort();
        Ok(names)
    }

    async fn read_index(&self, repo: &RepoName) -> StorageResult<Option<OciIndex>> {
        let p = self.repo_dir(repo).join(INDEX_JSON);
        on_blocking(p.clone(), move || read_index_sync(&p)).await
    }

    async fn index_version(&self, repo: &RepoName) -> StorageResult<Option<IndexVersion>> {
        Ok(IndexVersion::of_file(&self.repo_dir(repo).join(INDEX_JSON)))
    }

    /// The index to change: from the cache when the file still has the
    /// stamp it had when this store last read or wrote it.
    async fn index_for_update(&self, guard: &RepoGuard) -> StorageResult<OciIndex> {
        let repo = guard.repo();
        let p = self.repo_dir(repo).join(INDEX_JSON);
        let stamp = match std::fs::metadata(&p) {
            Ok(m) => Some(stamp_of(&m)),
            Err(e) if not_found(&e) => None,
            Err(e) => return Err(e).at(&p),
        };
        if let Some(index) = stamp.and_then(|st| self.index_cache.take(repo.as_str(), st)) {
            return Ok(index);
        }
        Ok(on_blocking(p.clone(), move || read_index_sync(&p))
            .await?
            .unwrap_or_default())
    }

    /// Writes `index` as the guard's repository's `index.json` (serialized and
    /// written in one go, `small_io`) and caches it parsed.
    async fn write_index(&self, guard: &RepoGuard, index: OciIndex) -> StorageResult<()> {
        let repo = guard.repo();
        let dir = self.repo_dir(repo);
        let (root, commit, tmp) = (
            self.root().to_path_buf(),
            self.commit(),
            self.temp_path(repo),
        );
        let path = dir.join(INDEX_JSON);
        let held: HeldLock = guard.keep();
        let to_json = |index: &OciIndex, dir: &Path| {
            index.to_json().map_err(|e| StorageError::Corrupt {
                path: dir.join(INDEX_JSON),
                message: e.to_string(),
            })
        };
        // Most entries' JSON is kept, so the bytes are mostly copied here;
        // a large index is serialized on the blocking thread.
        let ready = if index.len() <= INLINE_INDEX_ENTRIES {
            Some(to_json(&index, &dir)?)
        } else {
            None
        };
        let heavy = commit || ready.as_ref().is_none_or(|b| b.len() > INLINE_BYTES);
        let result = small_io(heavy, path, move || {
            let _held = held;
            let bytes = match ready {
                Some(bytes) => bytes,
                None => to_json(&index, &dir)?,
            };
            let stamp = write_index_sync(&root, &dir, &tmp, commit, &bytes)?;
            Ok((index, stamp))
        })
        .await;
        match result {
            Ok((index, stamp)) => {
                self.index_cache.put(repo.as_str(), stamp, index);
                Ok(())
            }
            Err(e) => {
                self.index_cache.forget(repo.as_str());
                Err(e)
            }
        }
    }
}

/// Writes `bytes` into the slot that is not `index.json` and renames a
/// fresh hard link of it over `index.json`. Returns the new file's stamp.
/// With `commit`, the file and the directory (and any directory created up
/// to `root`) are synced before it returns.
fn write_index_sync(
    root: &Path,
    repo_dir: &Path,
    tmp: &Path,
    commit: bool,
    bytes: &[u8],
) -> StorageResult<IndexStamp> {
    let dest = repo_dir.join(INDEX_JSON);
    let uploads = repo_dir.join(UPLOADS_DIR);
    let created = std::fs::metadata(&uploads).is_err();
    if created {
        std::fs::create_dir_all(&uploads).at(&uploads)?;
    }
    let current = match std::fs::metadata(&dest) {
        Ok(m) => Some(m),
        Err(e) if not_found(&e) => None,
        Err(e) => return Err(e).at(&dest),
    };
    let (slot, previous) = free_slot(&uploads, current.as_ref())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&slot)
        .at(&slot)?;
    file.write_all(bytes).at(&slot)?;
    let floor = [previous.as_ref(), current.as_ref()]
        .into_iter()
        .flatten()
        .map(|m| mtime_of(m) + Duration::from_nanos(1))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    file.set_modified(SystemTime::now().max(floor)).at(&slot)?;
    if commit {
        file.sync_all().at(&slot)?;
    }
    let stamp = stamp_of(&file.metadata().at(&slot)?);
    drop(file);
    std::fs::hard_link(&slot, tmp).at(tmp)?;
    if let Err(e) = std::fs::rename(tmp, &dest) {
        let _ = std::fs::remove_file(tmp);
        return Err(e).at(&dest);
    }
    if commit {
        sync_dirs(root, repo_dir, created)?;
    }
    Ok(stamp)
}

/// The slot `index.json` is not (creating the first one if needed), with
/// its metadata when it exists.
fn free_slot(
    uploads: &Path,
    current: Option<&std::fs::Metadata>,
) -> StorageResult<(std::path::PathBuf, Option<std::fs::Metadata>)> {
    let current_ino = current.map(crate::os::inode);
    for name in INDEX_SLOTS {
        let slot = uploads.join(name);
        match std::fs::symlink_metadata(&slot) {
            Ok(m) if m.is_file() && Some(crate::os::inode(&m)) != current_ino => {
                return Ok((slot, Some(m)));
            }
            Ok(m) if m.is_file() => continue,
            // Not a plain file (somebody else's): out of the way.
            Ok(_) => {
                remove_any(&slot)?;
                return Ok((slot, None));
            }
            Err(e) if not_found(&e) => return Ok((slot, None)),
            Err(e) => return Err(e).at(&slot),
        }
    }
    // Both slots are `index.json` (linked to each other by hand): the
    // second gets a file of its own.
    let slot = uploads.join(INDEX_SLOTS[1]);
    std::fs::remove_file(&slot).at(&slot)?;
    Ok((slot, None))
}

fn remove_any(path: &Path) -> StorageResult<()> {
    let removed = match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == ErrorKind::NotADirectory => std::fs::remove_file(path),
        other => other,
    };
    match removed {
        Err(e) if !not_found(&e) => Err(e).at(path),
        _ => Ok(()),
    }
}

/// Reads and parses an `index.json`; `None` if it is missing. What was
/// read counts only if the file did not change while it was read and is
/// still `index.json` (a slot is rewritten only once it is not); else it
/// is read again.
pub(super) fn read_index_sync(p: &Path) -> StorageResult<Option<OciIndex>> {
    use std::io::Read as _;
    for attempt in 0..READ_ATTEMPTS {
        if attempt > 0 {
            // Written again meanwhile: give the writer a moment (up to
            // about half a second in all).
            std::thread::sleep(Duration::from_millis(1 << attempt.min(7)));
        }
        let mut file = match std::fs::File::open(p) {
            Ok(f) => f,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e).at(p),
        };
        let before = stamp_of(&file.metadata().at(p)?);
        let mut bytes = Vec::with_capacity(usize::try_from(before.1).unwrap_or(0));
        file.read_to_end(&mut bytes).at(p)?;
        let after = stamp_of(&file.metadata().at(p)?);
        let current = match std::fs::metadata(p) {
            Ok(m) => Some(stamp_of(&m)),
            Err(e) if not_found(&e) => None,
            Err(e) => return Err(e).at(p),
        };
        if before != after || current != Some(before) {
            continue;
        }
        // Read whole, unchanged, and still the index: if it does not
        // parse, it is corrupt.
        return serde_json::from_slice::<OciIndex>(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                path: p.to_path_buf(),
                message: e.to_string(),
            });
    }
    Err(StorageError::Io {
        path: p.to_path_buf(),
        source: std::io::Error::other("it was written again on every attempt to read it"),
    })
}

/// Depth-first walk collecting the relative paths of directories holding an
/// `index.json`. Directories whose name cannot be a name component (such as
/// `.uploads`, `_trivy`) and a repository's own `blobs` are skipped.
fn walk_repos(root: &Path) -> StorageResult<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, name)) = stack.pop() {
        let is_repo = !name.is_empty() && dir.join(INDEX_JSON).is_file();
        if is_repo {
            out.push(name.clone());
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if not_found(&e) => continue,
            Err(e) => return Err(e).at(&dir),
        };
        for entry in entries {
            let entry = entry.at(&dir)?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            if !entry.file_type().at(&dir)?.is_dir() {
                continue;
            }
            if let Some(child) = super::walk_into(&name, is_repo, &file_name) {
                stack.push((entry.path(), child));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(n: usize) -> OciIndex {
        let mut index = OciIndex::default();
        for i in 0..n {
            let body = format!("m{i}");
            index.add_untagged(berth_oci::manifest::Descriptor {
                media_type: berth_oci::media::OCI_MANIFEST.into(),
                digest: berth_oci::Digest::sha256(body.as_bytes()),
                size: body.len() as u64,
                artifact_type: None,
                annotations: None,
                extra: Default::default(),
            });
        }
        index
    }

    /// The cache holds at most its budget of entries over all indexes,
    /// but always the index just put, however large.
    #[test]
    fn the_parse_cache_keeps_to_its_entry_budget() {
        let cache = IndexCache::default();
        let stamp = (1, 1, 1);
        cache.put("a", stamp, index_of(INDEX_CACHE_ENTRIES / 2));
        cache.put("b", stamp, index_of(INDEX_CACHE_ENTRIES / 4));
        assert!(cache.take("a", stamp).is_some(), "within the budget");
        cache.put("a", stamp, index_of(INDEX_CACHE_ENTRIES / 2));
        cache.put("big", stamp, index_of(INDEX_CACHE_ENTRIES + 1));
        assert!(cache.take("a", stamp).is_none(), "dropped for the big one");
        assert!(cache.take("b", stamp).is_none(), "dropped for the big one");
        let big = cache.take("big", stamp).expect("the latest is kept");
        assert_eq!(big.len(), INDEX_CACHE_ENTRIES + 1);
        assert!(cache.take("big", stamp).is_none(), "taken out");
        cache.put("c", stamp, index_of(3));
        assert_eq!(cache.entries.lock().expect("lock").entries, 3);
        // Put over an entry a stale stamp left behind: counted once.
        cache.put("c", (2, 2, 2), index_of(5));
        assert_eq!(cache.entries.lock().expect("lock").entries, 5);
        // An index that fits beside the others leaves them cached.
        cache.put("d", stamp, index_of(INDEX_CACHE_ENTRIES - 10));
        assert!(cache.take("d", stamp).is_some());
        cache.put("d", stamp, index_of(INDEX_CACHE_ENTRIES - 10));
        cache.put("e", stamp, index_of(4));
        assert!(cache.take("d", stamp).is_some(), "4 more still fit");
    }

    fn index_with(tag: &str) -> Vec<u8> {
        format!(r#"{{"schemaVersion":2,"manifests":[],"x":"{tag}"}}"#).into_bytes()
    }

    #[test]
    fn updates_alternate_between_two_inodes_and_stamps_never_repeat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let repo = root.join("r");
        std::fs::create_dir_all(&repo).expect("mkdir");
        let mut inodes = std::collections::BTreeSet::new();
        let mut stamps = std::collections::BTreeSet::new();
        for i in 0..20 {
            // Same length every time: only the mtime tells versions apart.
            let bytes = index_with(&format!("{:03}", i));
            let tmp = repo.join(UPLOADS_DIR).join(format!("tmp-{i}"));
            let stamp = write_index_sync(root, &repo, &tmp, i % 2 == 0, &bytes).expect("write");
            assert!(
                stamps.insert(stamp),
                "stamp {stamp:?} repeated at write {i}"
            );
            let meta = std::fs::metadata(repo.join(INDEX_JSON)).expect("stat");
            assert_eq!(stamp_of(&meta), stamp);
            inodes.insert(crate::os::inode(&meta));
            assert_eq!(std::fs::read(repo.join(INDEX_JSON)).expect("read"), bytes);
            assert!(!tmp.exists(), "the temporary link is gone");
        }
        assert_eq!(inodes.len(), 2, "two inodes, reused");
        let listed: Vec<String> = std::fs::read_dir(repo.join(UPLOADS_DIR))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(listed.len(), 2, "only the two slots: {listed:?}");
    }

    #[test]
    fn a_foreign_index_is_replaced_and_shorter_content_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("r");
        std::fs::create_dir_all(&repo).expect("mkdir");
        // Written by another tool: a file of its own, much longer.
        let long = index_with(&"x".repeat(4000));
        std::fs::write(repo.join(INDEX_JSON), &long).expect("write");
        let tmp = repo.join(UPLOADS_DIR).join("tmp-1");
        write_index_sync(dir.path(), &repo, &tmp, false, &long).expect("first");
        let short = index_with("s");
        let tmp = repo.join(UPLOADS_DIR).join("tmp-2");
        write_index_sync(dir.path(), &repo, &tmp, false, &short).expect("second");
        let tmp = repo.join(UPLOADS_DIR).join("tmp-3");
        write_index_sync(dir.path(), &repo, &tmp, false, &short).expect("third");
        assert_eq!(std::fs::read(repo.join(INDEX_JSON)).expect("read"), short);
        let parsed = read_index_sync(&repo.join(INDEX_JSON)).expect("parse");
        assert_eq!(parsed.expect("index").extra["x"], "s");
    }

    #[test]
    fn slots_that_are_not_files_or_share_the_index_are_put_right() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("r");
        let uploads = repo.join(UPLOADS_DIR);
        std::fs::create_dir_all(uploads.join(INDEX_SLOTS[0])).expect("a directory in the way");
        let tmp = uploads.join("tmp-1");
        write_index_sync(dir.path(), &repo, &tmp, false, &index_with("1")).expect("write");
        assert!(uploads.join(INDEX_SLOTS[0]).is_file());
        // Both slots hard-linked to index.json.
        std::fs::hard_link(uploads.join(INDEX_SLOTS[0]), uploads.join(INDEX_SLOTS[1]))
            .expect("link");
        let tmp = uploads.join("tmp-2");
        write_index_sync(dir.path(), &repo, &tmp, false, &index_with("2")).expect("write");
        assert_eq!(
            std::fs::read(repo.join(INDEX_JSON)).expect("read"),
            index_with("2")
        );
        assert_eq!(
            std::fs::read(uploads.join(INDEX_SLOTS[0])).expect("read"),
            index_with("1"),
            "the previous version is untouched"
        );
    }

    #[test]
    fn a_reader_without_the_lock_never_sees_a_torn_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let repo = root.join("r");
        std::fs::create_dir_all(&repo).expect("mkdir");
        let first = index_with("start");
        write_index_sync(&root, &repo, &repo.join("tmp-0"), false, &first).expect("write");
        let writer = {
            let (root, repo) = (root.clone(), repo.clone());
            std::thread::spawn(move || {
                for i in 1..2000 {
                    // Lengths that vary, so a torn read would not parse.
                    let bytes = index_with(&"v".repeat(1 + (i * 37) % 3000));
                    let tmp = repo.join(UPLOADS_DIR).join(format!("tmp-{i}"));
                    write_index_sync(&root, &repo, &tmp, false, &bytes).expect("write");
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() {
            let index = read_index_sync(&repo.join(INDEX_JSON))
                .expect("never torn")
                .expect("present");
            let x = index.extra["x"].as_str().expect("x").to_string();
            assert!(x == "start" || x.chars().all(|c| c == 'v'), "{x}");
            reads += 1;
        }
        writer.join().expect("writer");
        assert!(reads > 0);
    }

    #[test]
    fn a_corrupt_index_is_reported_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(INDEX_JSON);
        assert!(read_index_sync(&p).expect("missing").is_none());
        std::fs::write(&p, b"{not json").expect("write");
        assert!(matches!(
            read_index_sync(&p),
            Err(StorageError::Corrupt { .. })
        ));
    }
}

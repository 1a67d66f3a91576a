//! zb's tests, and a few more: what each one sets up (untimed), what one
//! request of it does (timed), and what it leaves to clean up.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use berth_client::{Client, ClientError, OCI_MANIFEST, image_manifest, image_manifest_annotated};
use berth_oci::{Algorithm, Digest, DigestHasher};
use bytes::Bytes;

use super::search::{self, SearchSet};
use super::stats::{Outcome, PullTimes, Sample};

pub(crate) const KIB: usize = 1024;
pub(crate) const MIB: usize = 1024 * 1024;
/// Chunk size of streamed chunked pushes, unless `--chunk-mib` says.
const CHUNK: usize = 10 * MIB;
/// Repositories the catalog test makes sure exist.
pub(crate) const CATALOG_REPOS: usize = 1000;
/// Tags the tag-list test makes sure exist.
const TAGS: usize = 100;

/// What one request of a test does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Catalog,
    PushMonolith(usize),
    PushChunked(usize),
    Pull(usize),
    /// zb's mix: 20% 1 MB, 70% 10 MB, 10% 100 MB.
    PullMixed,
    PushMonolithMixed,
    /// 75% pulls, 25% pushes of one size.
    PullPush(usize),
    PushManifest,
    PullManifest,
    ListTags,
    /// zot's GraphQL search: the UI's search box on a name fragment.
    SearchGlobal,
    /// The first page of repositories with their newest images.
    SearchRepoList,
    /// Every image of the large repository, as `zli image list` asks:
    /// the same document each time (answers may be reused).
    SearchImageList,
    /// The same, each document made unique (a comment), so every answer
    /// is worked out afresh.
    SearchImageListFresh,
}

/// A test: its name (as zb names it) and kind.
#[derive(Debug, Clone)]
pub(crate) struct Test {
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

fn size_name(size: usize) -> String {
    if size >= MIB {
        format!("{}MB", size / MIB)
    } else {
        format!("{}KB", size / KIB)
    }
}

/// Every test, in the order they run.
pub(crate) fn all() -> Vec<Test> {
    let mut t = vec![Test {
        name: "Get Catalog".into(),
        kind: Kind::Catalog,
    }];
    for size in [KIB, MIB, 10 * MIB, 100 * MIB] {
        t.push(Test {
            name: format!("Push Monolith {}", size_name(size)),
            kind: Kind::PushMonolith(size),
        });
    }
    for size in [MIB, 10 * MIB, 100 * MIB] {
        t.push(Test {
            name: format!("Push Chunk Streamed {}", size_name(size)),
            kind: Kind::PushChunked(size),
        });
    }
    for size in [KIB, MIB, 10 * MIB, 100 * MIB] {
        t.push(Test {
            name: format!("Pull {}", size_name(size)),
            kind: Kind::Pull(size),
        });
    }
    t.push(Test {
        name: "Pull Mixed 20% 1MB, 70% 10MB, 10% 100MB".into(),
        kind: Kind::PullMixed,
    });
    t.push(Test {
        name: "Push Monolith Mixed 20% 1MB, 70% 10MB, 10% 100MB".into(),
        kind: Kind::PushMonolithMixed,
    });
    for size in [MIB, 10 * MIB, 100 * MIB] {
        t.push(Test {
            name: format!("Pull 75% and Push 25% Mixed {}", size_name(size)),
            kind: Kind::PullPush(size),
        });
    }
    t.push(Test {
        name: "Push Manifest".into(),
        kind: Kind::PushManifest,
    });
    t.push(Test {
        name: "Pull Manifest".into(),
        kind: Kind::PullManifest,
    });
    t.push(Test {
        name: "List Tags".into(),
        kind: Kind::ListTags,
    });
    t.push(Test {
        name: "Search GlobalSearch Name Fragment".into(),
        kind: Kind::SearchGlobal,
    });
    t.push(Test {
        name: "Search RepoListWithNewestImage First Page".into(),
        kind: Kind::SearchRepoList,
    });
    t.push(Test {
        name: "Search ImageList Large Repository".into(),
        kind: Kind::SearchImageList,
    });
    t.push(Test {
        name: "Search ImageList Large Repository Uncached".into(),
        kind: Kind::SearchImageListFresh,
    });
    t
}

/// Whether a test needs the search extension (and its data set).
pub(crate) fn is_search(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::SearchGlobal
            | Kind::SearchRepoList
            | Kind::SearchImageList
            | Kind::SearchImageListFresh
    )
}

/// The size of request `i` of a mixed test.
fn mixed(i: u64) -> usize {
    match i % 10 {
        0 | 1 => MIB,
        9 => 100 * MIB,
        _ => 10 * MIB,
    }
}

/// What the setup of a test left for its requests.
pub(crate) struct Prepared {
    /// The config blob every pushed image shares.
    config: (Digest, u64),
    /// Pullable images by layer size: (tag, config digest, layer digest).
    images: Vec<(usize, String, Digest)>,
    /// A filler per size, so pushes copy rather than make random bytes.
    fillers: Mutex<Vec<Filler>>,
}

/// One test against one registry: its state and what to clean up.
pub(crate) struct Runner {
    pub(crate) client: Client,
    pub(crate) repo: String,
    pub(crate) kind: Kind,
    prepared: Option<Prepared>,
    counter: AtomicU64,
    /// Manifests pushed, to delete afterwards: (repo, digest).
    pub(crate) pushed: Mutex<Vec<(String, Digest)>>,
    /// Distinguishes this run's content from earlier runs'.
    run_id: u64,
    /// The search tests' data set.
    search: SearchSet,
    /// Bytes per PATCH of a chunked push.
    pub(crate) chunk: usize,
}

fn outcome(e: &ClientError) -> Outcome {
    e.status()
        .map(|s| Outcome::Status(s.as_u16()))
        .unwrap_or(Outcome::Error)
}

impl Runner {
    pub(crate) fn new(client: Client, repo: &str, kind: Kind, search: SearchSet) -> Self {
        Self {
            search,
            chunk: CHUNK,
            client,
            repo: repo.to_string(),
            kind,
            prepared: None,
            counter: AtomicU64::new(0),
            pushed: Mutex::new(Vec::new()),
            run_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }

    fn prepared(&self) -> Result<&Prepared, ClientError> {
        self.prepared
            .as_ref()
            .ok_or_else(|| ClientError::Protocol("the test was not set up".into()))
    }

    /// Bytes of `size` that no earlier push had: a shared filler with a
    /// unique tail, hashed from the filler's saved hash state, so making a
    /// request's data costs a copy and no hashing of the filler (the load
    /// generator shares the cores with the registry it measures).
    fn unique_blob(&self, size: usize) -> Result<(Bytes, Digest), ClientError> {
        let prepared = self.prepared()?;
        let filler = {
            let mut fillers = prepared.fillers.lock().unwrap_or_else(|p| p.into_inner());
            match fillers.iter().find(|f| f.bytes.len() == size) {
                Some(f) => f.clone(),
                None => {
                    let f = Filler::new(size);
                    fillers.push(f.clone());
                    f
                }
            }
        };
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        Ok(filler.unique(&format!("berth-bench {} {n}", self.run_id)))
    }

    /// Pushes one image whose layer is `size` bytes; returns its tag and
    /// layer digest.
    async fn push_image(&self, size: usize) -> Result<(String, Digest), ClientError> {
        let (data, digest) = self.unique_blob(size)?;
        self.client
            .push_blob_monolithic(&self.repo, data, &digest)
            .await?;
        let tag = self.put_manifest_for(&digest, size as u64).await?;
        Ok((tag, digest))
    }

    async fn put_manifest_for(&self, layer: &Digest, size: u64) -> Result<String, ClientError> {
        let prepared = self.prepared()?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tag = format!("t{}-{n}", self.run_id % 1_000_000);
        // Each manifest distinct, so every push stores a new one.
        let manifest = image_manifest_annotated(
            (&prepared.config.0, prepared.config.1),
            &[(layer, size)],
            &[("org.berth.bench", &tag)],
        );
        let d = self
            .client
            .put_manifest(&self.repo, &tag, OCI_MANIFEST, manifest)
            .await?;
        self.pushed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.repo.clone(), d));
        Ok(tag)
    }

    /// Untimed: what the requests need (a config blob, images to pull,
    /// repositories for the catalog, tags to list).
    pub(crate) async fn setup(&mut self) -> Result<(), ClientError> {
        let config = Bytes::from(format!("{{\"berth-bench\":{}}}", self.run_id));
        let config_digest = Digest::sha256(&config);
        let config_len = config.len() as u64;
        self.client
            .push_blob_monolithic(&self.repo, config, &config_digest)
            .await?;
        self.prepared = Some(Prepared {
            config: (config_digest.clone(), config_len),
            images: Vec::new(),
            fillers: Mutex::new(Vec::new()),
        });
        let pull_sizes: Vec<usize> = match self.kind {
            Kind::Pull(s) | Kind::PullPush(s) => vec![s],
            Kind::PullMixed => vec![MIB, 10 * MIB, 100 * MIB],
            Kind::PullManifest | Kind::PushManifest => vec![KIB],
            _ => Vec::new(),
        };
        let mut images = Vec::new();
        for size in pull_sizes {
            let (tag, layer) = self.push_image(size).await?;
            images.push((size, tag, layer));
        }
        if let Some(p) = self.prepared.as_mut() {
            p.images = images;
        }
        match self.kind {
            Kind::Catalog => self.fill_catalog().await?,
            k if is_search(k) => search::fill(&self.client, &self.repo, self.search, 16).await?,
            Kind::ListTags => {
                let (_, layer) = self.push_image(KIB).await?;
                for _ in 1..TAGS {
                    self.put_manifest_for(&layer, KIB as u64).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes sure the registry has [`CATALOG_REPOS`] repositories.
    async fn fill_catalog(&self) -> Result<(), ClientError> {
        let have = self.client.catalog(Some(CATALOG_REPOS)).await?.len();
        for i in have..CATALOG_REPOS {
            let repo = format!("{}-catalog/r{i:04}", self.repo);
            let (data, digest) = (Bytes::from_static(b"{}"), Digest::sha256(b"{}"));
            self.client
                .push_blob_monolithic(&repo, data, &digest)
                .await?;
            let manifest = image_manifest((&digest, 2), &[]);
            self.client
                .put_manifest(&repo, "latest", OCI_MANIFEST, manifest)
                .await?;
        }
        Ok(())
    }

    /// The blob request `i` will push, if it pushes one: made (and hashed)
    /// before the clock starts, as zb prepares its images beforehand.
    fn prepare(&self, i: u64) -> Result<Option<(Bytes, Digest, bool)>, ClientError> {
        let (size, chunked) = match self.kind {
            Kind::PushMonolith(size) => (size, false),
            Kind::PushChunked(size) => (size, true),
            Kind::PushMonolithMixed => (mixed(i), false),
            Kind::PullPush(size) if i % 4 == 3 => (size, false),
            _ => return Ok(None),
        };
        let (data, digest) = self.unique_blob(size)?;
        Ok(Some((data, digest, chunked)))
    }

    /// One timed request: request `i` of the test.
    pub(crate) async fn request(&self, i: u64) -> Sample {
        let prepared = self.prepare(i);
        let start = Instant::now();
        let result = match prepared {
            Ok(Some((data, digest, chunked))) => self.push(data, digest, chunked).await,
            Ok(None) => self.operation(i).await,
            Err(e) => Err(e),
        };
        let latency = start.elapsed();
        match result {
            Ok((bytes, pull)) => Sample {
                latency,
                outcome: Outcome::Status(200),
                bytes,
                pull,
            },
            Err(e) => Sample {
                latency,
                outcome: outcome(&e),
                bytes: 0,
                pull: None,
            },
        }
    }

    /// The requests that push nothing.
    async fn operation(&self, i: u64) -> Result<(u64, Option<PullTimes>), ClientError> {
        match self.kind {
            Kind::Catalog => {
                self.client.catalog(None).await?;
                Ok((0, None))
            }
            Kind::Pull(size) | Kind::PullPush(size) => self.pull(size).await,
            Kind::PullMixed => self.pull(mixed(i)).await,
            Kind::PushManifest => {
                let prepared = self.prepared()?;
                let layer = prepared
                    .images
                    .first()
                    .map(|(_, _, d)| d.clone())
                    .ok_or_else(|| ClientError::Protocol("no image".into()))?;
                self.put_manifest_for(&layer, KIB as u64).await?;
                Ok((0, None))
            }
            Kind::PullManifest => {
                let tag = self.image(KIB)?.1.clone();
                let (body, _) = self.client.get_manifest(&self.repo, &tag).await?;
                Ok((body.len() as u64, None))
            }
            Kind::ListTags => {
                self.client.tags(&self.repo).await?;
                Ok((0, None))
            }
            // Each of these documents is made unique (`fresh`), so every
            // answer is worked out, none reused.
            Kind::SearchGlobal => {
                // Ten repositories match each fragment (r0000x … r0999x).
                let n = (i as usize * 7919) % self.search.repos.div_ceil(10).max(1);
                let q = search::global_search(&format!("r{n:04}"));
                let q = search::fresh(&q, self.run_id, i);
                Ok((search::query(&self.client, &q, "GlobalSearch").await?, None))
            }
            Kind::SearchRepoList => {
                let q = search::fresh(search::REPO_LIST, self.run_id, i);
                Ok((
                    search::query(&self.client, &q, "RepoListWithNewestImage").await?,
                    None,
                ))
            }
            Kind::SearchImageList | Kind::SearchImageListFresh => {
                let mut q = search::image_list(&search::big_repo(&self.repo));
                if self.kind == Kind::SearchImageListFresh {
                    q = search::fresh(&q, self.run_id, i);
                }
                Ok((search::query(&self.client, &q, "ImageList").await?, None))
            }
            Kind::PushMonolith(_) | Kind::PushChunked(_) | Kind::PushMonolithMixed => {
                Err(ClientError::Protocol("a push without prepared data".into()))
            }
        }
    }

    /// A push: the layer blob, then the manifest.
    async fn push(
        &self,
        data: Bytes,
        digest: Digest,
        chunked: bool,
    ) -> Result<(u64, Option<PullTimes>), ClientError> {
        let size = data.len();
        if chunked {
            self.client
                .push_blob_chunked(&self.repo, data, &digest, self.chunk)
                .await?;
        } else {
            self.client
                .push_blob_monolithic(&self.repo, data, &digest)
                .await?;
        }
        self.put_manifest_for(&digest, size as u64).await?;
        Ok((size as u64, None))
    }

    fn image(&self, size: usize) -> Result<&(usize, String, Digest), ClientError> {
        self.prepared()?
            .images
            .iter()
            .find(|(s, _, _)| *s == size)
            .ok_or_else(|| ClientError::Protocol(format!("no {size}-byte image set up")))
    }

    /// A pull as a client does it: manifest HEAD and GET, config, layer.
    async fn pull(&self, size: usize) -> Result<(u64, Option<PullTimes>), ClientError> {
        let (_, tag, layer) = self.image(size)?;
        let prepared = self.prepared()?;
        let manifest_head = self.client.head_manifest(&self.repo, tag).await?;
        let (body, manifest_get) = self.client.get_manifest(&self.repo, tag).await?;
        let config = self
            .client
            .pull_blob(&self.repo, &prepared.config.0)
            .await?;
        let blob = self.client.pull_blob(&self.repo, layer).await?;
        if blob.bytes != size as u64 {
            return Err(ClientError::Protocol(format!(
                "pulled {} bytes of a {size}-byte layer",
                blob.bytes
            )));
        }
        Ok((
            body.len() as u64 + config.bytes + blob.bytes,
            Some(PullTimes {
                manifest_head,
                manifest_get,
                config: config.ttfb,
                layer: blob.ttfb,
            }),
        ))
    }

    /// Deletes the manifests the test pushed; returns how many would not go.
    pub(crate) async fn cleanup(&self) -> usize {
        let mut pushed =
            std::mem::take(&mut *self.pushed.lock().unwrap_or_else(|p| p.into_inner()));
        // Tags of one manifest go with it.
        pushed.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
        pushed.dedup();
        let mut refused = 0;
        for (repo, digest) in pushed {
            if self
                .client
                .delete_manifest(&repo, &digest.to_string())
                .await
                .is_err()
            {
                refused += 1;
            }
        }
        refused
    }
}

/// `size` bytes of cheap, incompressible-looking filler (xorshift).
/// Bytes of the end of a pushed blob that make it unique.
const UNIQUE_TAIL: usize = 64;

/// Pseudo-random bytes of one size, and the hash state of all but their
/// last `tail_len` bytes.
#[derive(Clone)]
pub(crate) struct Filler {
    bytes: Bytes,
    head_hash: DigestHasher,
}

impl Filler {
    fn new(size: usize) -> Self {
        let bytes = filler(size);
        let mut head_hash = DigestHasher::new(Algorithm::Sha256);
        head_hash.update(&bytes[..size - UNIQUE_TAIL.min(size)]);
        Self { bytes, head_hash }
    }

    /// The filler with its tail replaced by `mark` (cut or padded with
    /// spaces to the tail's length), and its digest.
    fn unique(&self, mark: &str) -> (Bytes, Digest) {
        let size = self.bytes.len();
        let tail_len = UNIQUE_TAIL.min(size);
        let mut tail = mark.as_bytes().to_vec();
        tail.resize(tail_len, b' ');
        let mut data = Vec::with_capacity(size);
        data.extend_from_slice(&self.bytes[..size - tail_len]);
        data.extend_from_slice(&tail);
        let mut hasher = self.head_hash.clone();
        hasher.update(&tail);
        (Bytes::from(data), hasher.finish())
    }
}

fn filler(size: usize) -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_have_zb_names_and_the_mix_is_zbs() {
        let names: Vec<String> = all().into_iter().map(|t| t.name).collect();
        for want in [
            "Get Catalog",
            "Push Monolith 1MB",
            "Push Chunk Streamed 100MB",
            "Pull 10MB",
            "Pull 75% and Push 25% Mixed 1MB",
            "Push Monolith 1KB",
        ] {
            assert!(names.iter().any(|n| n == want), "{want}");
        }
        let sizes: Vec<usize> = (0..10).map(mixed).collect();
        assert_eq!(sizes.iter().filter(|s| **s == MIB).count(), 2);
        assert_eq!(sizes.iter().filter(|s| **s == 10 * MIB).count(), 7);
        assert_eq!(sizes.iter().filter(|s| **s == 100 * MIB).count(), 1);
        assert_eq!(filler(1000).len(), 1000);
    }

    #[test]
    fn unique_blobs_differ_and_carry_their_own_digest() {
        for size in [1, 63, 64, 65, KIB, MIB + 3] {
            let f = Filler::new(size);
            let (a, da) = f.unique("berth-bench 1 1");
            let (b, db) = f.unique("berth-bench 1 2");
            assert_eq!((a.len(), b.len()), (size, size));
            assert_eq!(da, Digest::sha256(&a));
            assert_eq!(db, Digest::sha256(&b));
            if size >= 16 {
                assert_ne!(da, db);
            }
        }
    }
}

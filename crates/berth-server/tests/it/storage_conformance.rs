//! The conformance suites of the three storage seams ([`Layout`],
//! [`Blobs`], [`Uploads`]) and of a [`Store`]'s locks, each run against
//! the local filesystem and against S3 (a real `s3s-fs` server checking
//! signatures). `reopen` gives a second handle on the same data, standing
//! in for another instance or a restart.
//!
//! [`Layout`]: berth_server::storage::Layout
//! [`Blobs`]: berth_server::storage::Blobs
//! [`Uploads`]: berth_server::storage::Uploads

use berth_oci::{Algorithm, Digest, DigestHasher, RepoName};
use berth_server::storage::{OciIndex, Store, UploadState};
use bytes::Bytes;
use futures_util::StreamExt;

fn repo(s: &str) -> RepoName {
    s.parse().expect("repo name")
}

fn digest_of(data: &[u8]) -> Digest {
    let mut h = DigestHasher::new(Algorithm::Sha256);
    h.update(data);
    h.finish()
}

async fn collect(mut s: berth_server::storage::ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b.expect("read"));
    }
    out
}

/// Sends `data` as one chunk of an upload, as the registry does.
async fn append(store: &Store, r: &RepoName, id: &str, st: &mut UploadState, data: &[u8]) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let chunks: Vec<Bytes> = data.chunks(300_000).map(Bytes::copy_from_slice).collect();
    let send = async move {
        for c in chunks {
            tx.send(c).await.expect("send");
        }
    };
    let (_, written) = tokio::join!(send, store.uploads.upload_append(r, id, st, rx));
    written.expect("append");
    st.size += data.len() as u64;
}

/// Runs every suite; panics naming the first check that fails.
pub async fn run(store: Store, reopen: impl Fn() -> Store) {
    layout(&store, &reopen).await;
    blobs(&store).await;
    uploads(&store, &reopen).await;
    root_files(&store, &reopen).await;
}

/// [`RootFiles`](berth_server::storage::RootFiles): small files under the
/// root outside every repository, as zot keeps its trust material.
async fn root_files(s: &Store, reopen: &impl Fn() -> Store) {
    let f = &s.files;
    assert_eq!(
        f.list_files("_cosign").await.expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(f.read_file("_cosign/sha256:ab").await.expect("read"), None);
    f.write_file("_cosign/sha256:ab", b"key one")
        .await
        .expect("write");
    f.write_file("_cosign/sha256:aa", b"key two")
        .await
        .expect("write");
    f.write_file("_notation/truststore/x509/ca/default/sha256:cd", b"cert")
        .await
        .expect("write nested");
    f.write_file("_cosign/sha256:ab", b"key one, again")
        .await
        .expect("overwrite");
    assert_eq!(
        f.list_files("_cosign").await.expect("list"),
        vec!["sha256:aa", "sha256:ab"],
        "sorted, files only, no temporaries"
    );
    assert_eq!(
        reopen()
            .files
            .read_file("_cosign/sha256:ab")
            .await
            .expect("read"),
        Some(b"key one, again".to_vec()),
        "another handle on the root sees it"
    );
    assert_eq!(
        f.list_files("_notation/truststore/x509/ca/default")
            .await
            .expect("list"),
        vec!["sha256:cd"]
    );
    assert!(f.delete_file("_cosign/sha256:aa").await.expect("delete"));
    assert!(
        !f.delete_file("_cosign/sha256:aa")
            .await
            .expect("delete again")
    );
    assert_eq!(
        f.list_files("_cosign").await.expect("list"),
        vec!["sha256:ab"]
    );
    // Never a path into a repository, out of the root, or odd.
    for bad in [
        "cosign/k",
        "team/app/index.json",
        "_cosign/../team",
        "_a//b",
        "/_a",
        "_a/b c",
        "",
    ] {
        assert!(f.write_file(bad, b"x").await.is_err(), "{bad:?}");
        assert!(f.read_file(bad).await.is_err(), "{bad:?}");
    }
    assert!(
        !s.layout
            .list_repos()
            .await
            .expect("repos")
            .iter()
            .any(|r| r.as_str().starts_with('_')),
        "root files are no repositories"
    );
}

/// [`Layout`](berth_server::storage::Layout): repositories, `index.json`
/// and its version, the repository lock. Leaves `team/app` and `other`.
async fn layout(s: &Store, reopen: &impl Fn() -> Store) {
    let a = repo("team/app");
    let b = repo("other");

    // The root itself can be reached (the health checks), empty or not.
    s.layout.reachable().await.expect("reachable");

    // Repositories.
    assert!(
        !s.layout.repo_exists(&a).await.expect("exists"),
        "starts empty"
    );
    assert!(
        s.layout.list_repos().await.expect("list").is_empty(),
        "starts empty"
    );
    {
        let g = s.lock_repo(&a).await.expect("lock");
        s.layout.create_repo(&g).await.expect("create");
        s.layout
            .create_repo(&g)
            .await
            .expect("create is idempotent");
    }
    let g = s.lock_repo(&b).await.expect("lock");
    s.layout.create_repo(&g).await.expect("create");
    drop(g);
    assert_eq!(
        s.layout.list_repos().await.expect("list"),
        vec![b.clone(), a.clone()]
    );
    let empty = s
        .layout
        .read_index(&a)
        .await
        .expect("index")
        .expect("present");
    assert!(empty.is_empty(), "a new repository has an empty index");
    assert_eq!(
        serde_json::to_value(&empty).expect("json"),
        serde_json::to_value(OciIndex::default()).expect("json")
    );

    // index.json: written whole, version changes with it, seen by a
    // second handle.
    let fp0 = s.layout.index_version(&a).await.expect("fp").expect("some");
    let g = s.lock_repo(&a).await.expect("lock");
    let mut index = s.layout.index_for_update(&g).await.expect("for update");
    index
        .extra
        .insert("annotations".into(), serde_json::json!({"k": "v"}));
    s.layout
        .write_index(&g, index.clone())
        .await
        .expect("write");
    drop(g);
    let fp1 = s.layout.index_version(&a).await.expect("fp").expect("some");
    assert_ne!(fp0, fp1, "a write changes the version");
    let other = reopen();
    let seen = other
        .layout
        .read_index(&a)
        .await
        .expect("index")
        .expect("present");
    assert_eq!(
        serde_json::to_value(&seen).expect("json"),
        serde_json::to_value(&index).expect("json"),
        "a second handle reads what was written"
    );
    assert_eq!(other.layout.index_version(&a).await.expect("fp"), Some(fp1));

    // Locks: exclusive while held.
    let g = s.lock_repo(&a).await.expect("lock");
    assert!(s.try_lock_repo(&a).await.expect("try").is_none(), "held");
    drop(g);
    assert!(s.try_lock_repo(&a).await.expect("try").is_some(), "free");
}

/// [`Blobs`](berth_server::storage::Blobs) in the repositories [`layout`]
/// made.
async fn blobs(s: &Store) {
    let a = repo("team/app");
    let b = repo("other");

    // Small blobs.
    let body = b"{\"hello\":\"world\"}".to_vec();
    let d = digest_of(&body);
    assert_eq!(s.blobs.blob_len(&a, &d).await.expect("len"), None);
    assert_eq!(s.blobs.read_blob(&a, &d).await.expect("read"), None);
    assert!(
        s.blobs
            .read_blob_range(&a, &d, 0, 1)
            .await
            .expect("range")
            .is_none()
    );
    s.blobs
        .put_blob_bytes(&a, &d, Bytes::from(body.clone()))
        .await
        .expect("put");
    assert_eq!(
        s.blobs.blob_len(&a, &d).await.expect("len"),
        Some(body.len() as u64)
    );
    assert_eq!(
        s.blobs.read_blob(&a, &d).await.expect("read"),
        Some(body.clone())
    );
    let part = s
        .blobs
        .read_blob_range(&a, &d, 2, 5)
        .await
        .expect("range")
        .expect("present");
    assert_eq!(collect(part).await, body[2..7].to_vec(), "a range read");
    // A small blob whole, or one byte past the bound to tell it is longer.
    let n = body.len() as u64;
    assert_eq!(
        s.blobs.read_small_blob(&a, &d, n).await.expect("small"),
        Some(body.clone())
    );
    assert_eq!(
        s.blobs.read_small_blob(&a, &d, 4).await.expect("small"),
        Some(body[..5].to_vec()),
        "a longer blob gives max + 1 bytes"
    );
    // Where the blob is known to be (deduplicating stores keep a record;
    // others none): never a repository that lacks it.
    for holder in s.blobs.holders(&d).await.expect("holders") {
        assert!(
            s.blobs.blob_len(&holder, &d).await.expect("len").is_some(),
            "{holder} is named a holder"
        );
    }
    assert!(
        s.blobs
            .holders(&digest_of(b"held nowhere"))
            .await
            .expect("holders")
            .is_empty()
    );
    assert_eq!(
        s.blobs.read_small_blob(&b, &d, n).await.expect("small"),
        None,
        "another repository's blob is not there"
    );
    let modified = s
        .blobs
        .blob_modified(&a, &d)
        .await
        .expect("mtime")
        .expect("some");
    assert!(modified.elapsed().map_or(true, |e| e.as_secs() < 600));
    assert_eq!(
        s.blobs.list_blobs(&a).await.expect("blobs"),
        vec![d.clone()]
    );
    assert!(s.blobs.list_blobs(&b).await.expect("blobs").is_empty());

    // A manifest's blob is stored only when the blobs it names are there.
    let manifest = b"{\"layers\":[]}".to_vec();
    let md = digest_of(&manifest);
    let absent = digest_of(b"absent");
    assert_eq!(
        s.blobs
            .put_blob_needing(
                &a,
                &md,
                Bytes::from(manifest.clone()),
                &[d.clone(), absent.clone()]
            )
            .await
            .expect("put needing"),
        Some(absent),
        "the first missing one"
    );
    assert_eq!(
        s.blobs.blob_len(&a, &md).await.expect("len"),
        None,
        "nothing stored"
    );
    assert_eq!(
        s.blobs
            .put_blob_needing(
                &a,
                &md,
                Bytes::from(manifest.clone()),
                std::slice::from_ref(&d)
            )
            .await
            .expect("put needing"),
        None
    );
    assert_eq!(
        s.blobs.read_blob(&a, &md).await.expect("read"),
        Some(manifest)
    );
    assert!(s.blobs.delete_blob(&a, &md).await.expect("delete"));

    // Linking into another repository, and deleting from one only.
    let missing = digest_of(b"nothing");
    assert!(
        !s.blobs.link_blob(&a, &b, &missing).await.expect("link"),
        "no source"
    );
    assert!(s.blobs.link_blob(&a, &b, &d).await.expect("link"));
    assert_eq!(
        s.blobs.read_blob(&b, &d).await.expect("read"),
        Some(body.clone())
    );
    assert!(s.blobs.delete_blob(&a, &d).await.expect("delete"));
    assert!(!s.blobs.delete_blob(&a, &d).await.expect("delete again"));
    assert_eq!(s.blobs.blob_len(&a, &d).await.expect("len"), None);
    assert_eq!(
        s.blobs.blob_len(&b, &d).await.expect("len"),
        Some(body.len() as u64)
    );
}

/// [`Uploads`](berth_server::storage::Uploads) in the repositories
/// [`layout`] made.
async fn uploads(s: &Store, reopen: &impl Fn() -> Store) {
    let a = repo("team/app");
    let b = repo("other");
    let other = reopen();

    // An upload larger than an S3 part, in uneven chunks, resumed by a
    // second handle between chunks, with the hash state saved.
    let data: Vec<u8> = (0..(11 << 20) + 12345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let id = uuid::Uuid::new_v4().to_string();
    let mut st = s
        .uploads
        .upload_create(&a, &id)
        .await
        .expect("create upload");
    assert_eq!(st.size, 0);
    let cut1 = 1 << 20;
    let cut2 = (6 << 20) + 3;
    append(s, &a, &id, &mut st, &data[..cut1]).await;
    st.hash_state = Some(b"state-1".to_vec());
    s.uploads.upload_save(&a, &id, &st).await.expect("save");
    let loaded = other
        .uploads
        .upload_load(&a, &id)
        .await
        .expect("load")
        .expect("session");
    assert_eq!(loaded.size, cut1 as u64);
    assert_eq!(loaded.hash_state.as_deref(), Some(&b"state-1"[..]));
    let mut st = loaded;
    append(&other, &a, &id, &mut st, &data[cut1..cut2]).await;
    st.hash_state = Some(b"state-2".to_vec());
    other.uploads.upload_save(&a, &id, &st).await.expect("save");
    let mut st = s
        .uploads
        .upload_load(&a, &id)
        .await
        .expect("load")
        .expect("session");
    assert_eq!(st.size, cut2 as u64);
    append(s, &a, &id, &mut st, &data[cut2..]).await;
    assert_eq!(
        collect(
            s.uploads
                .upload_read(&a, &id, &mut st)
                .await
                .expect("read upload")
        )
        .await,
        data,
        "the upload reads back whole"
    );
    let big = digest_of(&data);
    assert!(
        s.uploads
            .list_uploads(&a)
            .await
            .expect("uploads")
            .iter()
            .any(|e| e.session.as_deref() == Some(id.as_str())),
        "the session is listed"
    );
    s.uploads
        .upload_commit(&a, &id, st, &big)
        .await
        .expect("commit");
    assert_eq!(
        s.blobs.blob_len(&a, &big).await.expect("len"),
        Some(data.len() as u64)
    );
    let got = s
        .blobs
        .read_blob_range(&a, &big, 0, data.len() as u64)
        .await
        .expect("range")
        .expect("present");
    assert!(collect(got).await == data, "the committed blob is the data");
    assert!(
        s.uploads
            .upload_load(&a, &id)
            .await
            .expect("load")
            .is_none(),
        "the session ends with its commit"
    );
    assert!(
        s.uploads
            .list_uploads(&a)
            .await
            .expect("uploads")
            .iter()
            .all(|e| e.session.as_deref() != Some(id.as_str())),
        "nothing of it is left"
    );

    // A small upload is committed without a part; a cancelled one leaves
    // nothing; an unknown one is unknown.
    let id2 = uuid::Uuid::new_v4().to_string();
    let mut st = s.uploads.upload_create(&b, &id2).await.expect("create");
    append(s, &b, &id2, &mut st, b"tiny").await;
    s.uploads
        .upload_commit(&b, &id2, st, &digest_of(b"tiny"))
        .await
        .expect("commit");
    assert_eq!(
        s.blobs
            .read_blob(&b, &digest_of(b"tiny"))
            .await
            .expect("read"),
        Some(b"tiny".to_vec())
    );
    let id3 = uuid::Uuid::new_v4().to_string();
    let mut st = s.uploads.upload_create(&b, &id3).await.expect("create");
    append(s, &b, &id3, &mut st, &data[..(5 << 20) + 1]).await;
    s.uploads.upload_save(&b, &id3, &st).await.expect("save");
    assert!(s.uploads.upload_remove(&b, &id3).await.expect("remove"));
    assert!(
        !s.uploads
            .upload_remove(&b, &id3)
            .await
            .expect("remove again")
    );
    assert!(
        s.uploads
            .upload_load(&b, &id3)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        s.uploads
            .list_uploads(&b)
            .await
            .expect("uploads")
            .is_empty(),
        "a cancelled upload leaves nothing"
    );
    // GC's way: list leftovers and remove them by name.
    let id4 = uuid::Uuid::new_v4().to_string();
    s.uploads.upload_create(&b, &id4).await.expect("create");
    let left = s.uploads.list_uploads(&b).await.expect("uploads");
    assert_eq!(left.len(), 1);
    assert!(
        s.uploads
            .remove_upload_entry(&b, &left[0].name)
            .await
            .expect("remove")
    );
    assert!(
        s.uploads
            .upload_load(&b, &id4)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        s.uploads
            .remove_upload_entry(&b, "../index.json")
            .await
            .is_err(),
        "only upload leftovers can be removed that way"
    );
}

/// The suite on a local root, with or without dedupe.
async fn run_local(dedupe: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |p: std::path::PathBuf| async move {
        Store::local(
            berth_server::storage::FsStore::open_with_dedupe(p, false, dedupe)
                .await
                .expect("open"),
        )
    };
    let store = open(dir.path().to_path_buf()).await;
    let second = open(dir.path().to_path_buf()).await;
    run(store, move || second.clone()).await;
}

#[tokio::test]
async fn local_filesystem_passes() {
    run_local(true).await;
}

#[tokio::test]
async fn local_filesystem_without_dedupe_passes() {
    run_local(false).await;
}

/// The suite on two handles of one bucket (each with its own client).
#[cfg(any(feature = "s3", feature = "azure"))]
async fn run_pair(open: impl Fn() -> Store) {
    let store = open();
    let second = open();
    run(store, move || second.clone()).await;
}

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_passes() {
    let server = crate::s3_server::S3Server::start();
    run_pair(|| server.store("conformance")).await;
}

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_without_dedupe_passes() {
    let server = crate::s3_server::S3Server::start();
    let open = || {
        let mut opts = server.options("plain");
        opts.dedupe = false;
        berth_server::storage::BucketStore::open_s3(
            &opts,
            berth_server::storage::RepoLocks::default(),
        )
        .expect("open")
        .into_store()
    };
    run_pair(open).await;
    assert!(
        server
            .dir
            .path()
            .join("data/berth/plain/team/app/blobs/sha256")
            .is_dir(),
        "without dedupe the bucket holds plain OCI layouts"
    );
}

#[cfg(feature = "azure")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_passes() {
    let server = crate::azurite_server::AzuriteServer::start();
    run_pair(|| server.store("conformance")).await;
}

#[cfg(feature = "azure")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_without_dedupe_passes() {
    let server = crate::azurite_server::AzuriteServer::start();
    run_pair(|| server.store_with("plain", false)).await;
}

/// Two handles on one bucket with separate locks, as two instances whose
/// shared lock failed: a write of `index.json` read before the other's
/// write is refused (the conditional write of a bucket), and one not read
/// under the lock at all too.
#[cfg(any(feature = "s3", feature = "azure"))]
pub async fn fenced_index_writes(a: &Store, b: &Store) {
    let repo: berth_oci::RepoName = "fenced".parse().expect("repo");
    let ga = a.lock_repo(&repo).await.expect("lock");
    a.layout.create_repo(&ga).await.expect("create");
    let mut mine = a.layout.index_for_update(&ga).await.expect("read");
    let gb = b.lock_repo(&repo).await.expect("lock");
    b.layout
        .create_repo(&gb)
        .await
        .expect("creating an existing repository leaves it alone");
    let mut theirs = b.layout.index_for_update(&gb).await.expect("read");
    theirs.extra.insert("by".into(), serde_json::json!("b"));
    b.layout.write_index(&gb, theirs).await.expect("b writes");
    mine.extra.insert("by".into(), serde_json::json!("a"));
    let err = a
        .layout
        .write_index(&ga, mine)
        .await
        .expect_err("a's write must not replace b's");
    assert!(
        err.to_string().contains("changed while its lock was held"),
        "{err}"
    );
    let now = a
        .layout
        .read_index(&repo)
        .await
        .expect("read")
        .expect("index");
    assert_eq!(now.extra["by"], serde_json::json!("b"), "b's write stands");
    // Read again under the lock, a's next write goes through.
    let mut again = a.layout.index_for_update(&ga).await.expect("read");
    again.extra.insert("by".into(), serde_json::json!("a"));
    a.layout
        .write_index(&ga, again.clone())
        .await
        .expect("a writes");
    // Written once, it must be read again before the next write: a write
    // with nothing read under the lock would be unconditional.
    let err = a
        .layout
        .write_index(&ga, again)
        .await
        .expect_err("not read under the lock");
    assert!(
        err.to_string().contains("must be read under its lock"),
        "{err}"
    );
}

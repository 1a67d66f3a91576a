use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// How long a test waits for a callback before it fails (never asserted
/// as a duration: a slow machine only makes the test slower).
const PATIENCE: Duration = Duration::from_secs(20);

/// Watches `file` and counts the callbacks.
fn counting(file: &Path, force_poll: bool) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let path = file.to_path_buf();
    let files = Files {
        what: "test",
        paths: Box::new(move || vec![path.clone()]),
        rewatch: None,
    };
    let task = spawn_with(
        files,
        move || {
            counter.fetch_add(1, Ordering::SeqCst);
        },
        force_poll,
    );
    (calls, task)
}

/// Waits until `calls` exceeds `n`.
async fn called_after(calls: &AtomicUsize, n: usize) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if calls.load(Ordering::SeqCst) > n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Writes, replaces by rename, deletes and recreates `file`; each is seen.
async fn sees_every_kind_of_edit(force_poll: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("watched.conf");
    std::fs::write(&file, "one").expect("write");
    let (calls, task) = counting(&file, force_poll);
    // The watcher starts on the runtime and takes its first look when it
    // gets there (on a loaded machine, after an edit made at once): edit
    // in place until it sees one.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut text = String::from("two");
    while calls.load(Ordering::SeqCst) == 0 && tokio::time::Instant::now() < deadline {
        text.push_str(", longer");
        std::fs::write(&file, &text).expect("write");
        for _ in 0..50 {
            if calls.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(called_after(&calls, 0).await, "an edit in place");

    let n = calls.load(Ordering::SeqCst);
    let next = tmp.path().join(".watched.conf.tmp");
    std::fs::write(&next, "three, longer still").expect("write");
    std::fs::rename(&next, &file).expect("rename");
    assert!(called_after(&calls, n).await, "a file renamed over it");

    let n = calls.load(Ordering::SeqCst);
    std::fs::remove_file(&file).expect("remove");
    assert!(called_after(&calls, n).await, "the file removed");
    let n = calls.load(Ordering::SeqCst);
    std::fs::write(&file, "four").expect("write");
    assert!(called_after(&calls, n).await, "the file back");
    task.abort();
}

#[tokio::test]
async fn the_native_watcher_sees_edits_renames_and_removals() {
    sees_every_kind_of_edit(false).await;
}

#[tokio::test]
async fn the_poll_fallback_sees_them_too() {
    sees_every_kind_of_edit(true).await;
}

#[tokio::test]
async fn rewatch_follows_another_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("sub").join("b"));
    std::fs::create_dir(tmp.path().join("sub")).expect("mkdir");
    std::fs::write(&a, "a").expect("write");
    std::fs::write(&b, "b").expect("write");
    let current = Arc::new(Mutex::new(a.clone()));
    let rewatch = Arc::new(Notify::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, counter) = (current.clone(), calls.clone());
    let task = spawn(
        Files {
            what: "test",
            paths: Box::new(move || vec![c.lock().expect("lock").clone()]),
            rewatch: Some(rewatch.clone()),
        },
        move || {
            counter.fetch_add(1, Ordering::SeqCst);
        },
    );
    *current.lock().expect("lock") = b.clone();
    rewatch.notify_one();
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&b, "b, changed").expect("write");
    assert!(called_after(&calls, 0).await, "the new file is watched");
    task.abort();
}

#[test]
fn reads_are_not_changes() {
    let watched = Watched::new(&[PathBuf::from("/x/watched")]);
    let event = |kind, path: &str| Ok(notify::Event::new(kind).add_path(PathBuf::from(path)));
    let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
    let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
    let created = EventKind::Create(notify::event::CreateKind::File);
    assert!(!watched.relevant(&event(open, "/x/watched")));
    assert!(watched.relevant(&event(written, "/x/watched")));
    assert!(watched.relevant(&event(created, "/x/watched")));
    assert!(!watched.relevant(&event(created, "/x/other")));
    assert!(watched.relevant(&Err(notify::Error::generic("overflow"))));
}

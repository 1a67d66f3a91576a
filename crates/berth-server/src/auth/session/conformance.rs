//! The one suite every [`SessionStore`] passes (memory and files in this
//! crate's unit tests, Redis in the integration tests).

use std::sync::Arc;

use super::store::{RecordKind, SessionStore, now};

/// Runs every check against `store` (which must start empty of the ids
/// used: each run picks fresh ones).
pub async fn run(store: Arc<dyn SessionStore>) {
    let tag = super::random_token();
    let id = |n: &str| format!("{tag}-{n}");
    let later = now() + 3600;

    // Put, get, overwrite.
    assert_eq!(
        store.get(RecordKind::Session, &id("a")).await.expect("get"),
        None
    );
    store
        .put(RecordKind::Session, &id("a"), b"one", later)
        .await
        .expect("put");
    assert_eq!(
        store
            .get(RecordKind::Session, &id("a"))
            .await
            .expect("get")
            .as_deref(),
        Some(&b"one"[..])
    );
    store
        .put(RecordKind::Session, &id("a"), b"two", later)
        .await
        .expect("put");
    assert_eq!(
        store
            .get(RecordKind::Session, &id("a"))
            .await
            .expect("get")
            .as_deref(),
        Some(&b"two"[..])
    );
    // Kinds are apart: a login state is no session id.
    assert_eq!(
        store.get(RecordKind::Login, &id("a")).await.expect("get"),
        None
    );
    assert!(
        store
            .claim(RecordKind::Login, &id("a"), later)
            .await
            .expect("claim"),
        "a session's id does not stand in the way of a login state"
    );
    assert!(
        store
            .get(RecordKind::Session, &id("a"))
            .await
            .expect("get")
            .is_some()
    );

    // Delete, twice.
    store
        .delete(RecordKind::Session, &id("a"))
        .await
        .expect("delete");
    store
        .delete(RecordKind::Session, &id("a"))
        .await
        .expect("delete again");
    assert_eq!(
        store.get(RecordKind::Session, &id("a")).await.expect("get"),
        None
    );

    // An expired record is never returned.
    store
        .put(RecordKind::Session, &id("old"), b"x", now() - 1)
        .await
        .expect("put");
    assert_eq!(
        store
            .get(RecordKind::Session, &id("old"))
            .await
            .expect("get"),
        None
    );
    assert!(
        store
            .claim(RecordKind::Session, &id("old"), later)
            .await
            .expect("claim"),
        "an expired record does not stand in the way of a claim"
    );
    store
        .put(RecordKind::Login, &id("old2"), b"x", now() - 1)
        .await
        .expect("put");
    store.purge().await.expect("purge");
    assert_eq!(
        store
            .get(RecordKind::Login, &id("old2"))
            .await
            .expect("get"),
        None
    );

    // A claim is once, even when many race for it; it stands until its
    // expiry.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let (store, key) = (store.clone(), id("state"));
        racers.push(tokio::spawn(async move {
            store
                .claim(RecordKind::Login, &key, later)
                .await
                .expect("claim")
        }));
    }
    let mut won = 0;
    for r in racers {
        if r.await.expect("racer") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "one claim wins");
    assert!(
        store
            .get(RecordKind::Login, &id("state"))
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        !store
            .claim(RecordKind::Login, &id("state"), later)
            .await
            .expect("claim"),
        "claimed already"
    );

    // Binary records survive as they are.
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .put(RecordKind::Session, &id("bin"), &bytes, later)
        .await
        .expect("put");
    assert_eq!(
        store
            .get(RecordKind::Session, &id("bin"))
            .await
            .expect("get"),
        Some(bytes)
    );
    store
        .delete(RecordKind::Session, &id("bin"))
        .await
        .expect("delete");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::store::{FileStore, MemoryStore};

    #[tokio::test]
    async fn memory_store_passes_the_suite() {
        super::run(Arc::new(MemoryStore::default())).await;
    }

    #[tokio::test]
    async fn file_store_passes_the_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        super::run(Arc::new(
            FileStore::open(dir.path().join("_sessions")).expect("open"),
        ))
        .await;
    }

    #[tokio::test]
    async fn file_store_names_no_id_and_leaves_no_temporary_file() {
        use super::super::store::{RecordKind, SessionStore};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(dir.path().to_path_buf()).expect("open");
        store
            .put(RecordKind::Session, "secret-id", b"r", super::now() + 60)
            .await
            .expect("put");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            names[0].starts_with("session_") && !names[0].contains("secret-id"),
            "{names:?}"
        );
    }
}

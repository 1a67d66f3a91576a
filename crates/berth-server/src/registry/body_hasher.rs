//! Hashing an upload body as it arrives: the first [`INLINE`] bytes on
//! the request's own task, the rest on a blocking thread of its own.
//!
//! A large body is read from the socket, hashed and written: on the
//! request's task alone, reading and hashing take turns on one core while
//! the other waits. Handing the hashing to a thread lets the task read the
//! next frame while the thread hashes the last one (and the backend's
//! writer writes it). A small body (a manifest, a config, a small layer)
//! is hashed in place, where a thread would cost more than it saves.
//!
//! Such threads only help while cores are idle: at most one fewer than
//! the cores hash at once, and a body that finds them all busy is hashed
//! in place. (Sixteen 100 MiB pushes at once, each with its own hashing
//! thread, were 2-7% slower on two cores and held 14 MiB more memory than
//! in place; one push alone is 17% faster with its thread.)

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_oci::DigestHasher;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{RegistryError, RegistryResult};

/// Bytes of a body hashed in place before the rest goes to a thread.
const INLINE: u64 = 1 << 20;
/// Frames queued for the hashing thread (as the writer's queue).
const QUEUE: usize = 4;

/// Hashing threads running now.
static THREADS: AtomicUsize = AtomicUsize::new(0);
/// At most this many at once: the cores but one, and at least one.
static MAX_THREADS: LazyLock<usize> = LazyLock::new(|| {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
});

/// A place among the hashing threads, given back when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Self> {
        THREADS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < *MAX_THREADS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        THREADS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Feeds one body's frames, in order, to a session's hasher.
pub(super) struct BodyHasher<'a> {
    hasher: &'a mut DigestHasher,
    inline: u64,
    thread: Option<(mpsc::Sender<Bytes>, JoinHandle<DigestHasher>)>,
}

impl<'a> BodyHasher<'a> {
    pub(super) fn new(hasher: &'a mut DigestHasher) -> Self {
        Self {
            hasher,
            inline: 0,
            thread: None,
        }
    }

    /// Hashes `frame` after every frame before it.
    pub(super) async fn update(&mut self, frame: &Bytes) -> RegistryResult<()> {
        if let Some((tx, _)) = &self.thread {
            return tx.send(frame.clone()).await.map_err(|_| lost());
        }
        self.hasher.update(frame);
        let before = self.inline;
        self.inline += frame.len() as u64;
        if before <= INLINE
            && self.inline > INLINE
            && let Some(slot) = Slot::take()
        {
            let fresh = DigestHasher::new(self.hasher.algorithm());
            let mut hasher = std::mem::replace(self.hasher, fresh);
            let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
            let join = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                while let Some(b) = rx.blocking_recv() {
                    hasher.update(&b);
                }
                hasher
            });
            self.thread = Some((tx, join));
        }
        Ok(())
    }

    /// Waits for the thread, if any, and puts the hasher back: it has then
    /// seen every frame passed to [`BodyHasher::update`].
    pub(super) async fn finish(self) -> RegistryResult<()> {
        if let Some((tx, join)) = self.thread {
            drop(tx);
            *self.hasher = join.await.map_err(|_| lost())?;
        }
        Ok(())
    }
}

/// The hashing thread ended early (it panicked): the session's hash is
/// lost with it, and the session is reloaded from the backend.
fn lost() -> RegistryError {
    RegistryError::Internal("the upload's hashing thread stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::{Algorithm, Digest};

    /// Whatever the frames, the hasher ends as if it had hashed them all
    /// in place, with or without a thread.
    #[tokio::test]
    async fn hashes_every_frame_in_order_across_the_hand_over() {
        for (frames, size) in [(0usize, 0usize), (3, 1000), (40, 100_000), (7, 600_000)] {
            let data: Vec<u8> = (0..frames * size).map(|i| (i % 253) as u8).collect();
            let mut hasher = DigestHasher::new(Algorithm::Sha256);
            let mut feed = BodyHasher::new(&mut hasher);
            for part in data.chunks(size.max(1)) {
                feed.update(&Bytes::copy_from_slice(part))
                    .await
                    .expect("update");
            }
            let threaded = feed.thread.is_some();
            feed.finish().await.expect("finish");
            assert_eq!(hasher.finish(), Digest::sha256(&data), "{frames} x {size}");
            if frames * size <= INLINE as usize {
                assert!(!threaded, "a small body is hashed in place");
            }
        }
    }

    /// Bodies past the limit of threads are hashed in place, and a
    /// finished body gives its thread's place back.
    #[tokio::test]
    async fn threads_are_limited_and_given_back() {
        let big = Bytes::from(vec![7u8; INLINE as usize + 1]);
        let mut hashers: Vec<DigestHasher> = (0..*MAX_THREADS + 1)
            .map(|_| DigestHasher::new(Algorithm::Sha256))
            .collect();
        let mut feeds: Vec<BodyHasher<'_>> = hashers.iter_mut().map(BodyHasher::new).collect();
        for f in &mut feeds {
            f.update(&big).await.expect("update");
        }
        // Other tests may hold places meanwhile: at most the limit is used.
        let threaded = feeds.iter().filter(|f| f.thread.is_some()).count();
        assert!(threaded <= *MAX_THREADS, "{threaded}");
        for f in feeds {
            f.finish().await.expect("finish");
        }
        for h in hashers {
            assert_eq!(h.finish(), Digest::sha256(&big));
        }
        // Every place comes back (other tests' bodies end soon too).
        let free = async {
            while Slot::take().is_none() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), free)
            .await
            .expect("a place among the hashing threads comes back");
    }
}

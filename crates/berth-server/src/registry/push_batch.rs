//! Group commit of manifest pushes.
//!
//! Every manifest push ends with the same steps under its repository's
//! lock: check the blobs it names, rewrite `index.json`, update the
//! metadata store. With many pushes into one repository those steps queue
//! behind each other, and the `index.json` rewrite is O(entries). So a push
//! leaves its [`IndexOp`] in the repository's queue before it waits for the
//! lock, and whoever gets the lock next commits every op queued by then:
//! each is checked on its own (its blobs, create-only tags), then all that
//! passed go into one `index.json` write and one metadata change. Each
//! pusher gets its own outcome.
//!
//! The committer is whichever pusher holds the lock, not a task of its own.
//! A pusher whose request goes away while its op is queued takes the op
//! back, so nothing is recorded once every request is gone. A committer
//! whose request is cancelled mid-batch drops the batch's senders: their
//! pushers see that and commit their own op again, alone (a write already
//! on a blocking thread finishes first: it holds the lock). A pusher whose
//! op was committed by an earlier holder returns without taking the
//! lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::{Digest, Reference, RepoName};
use tokio::sync::oneshot;

use super::{Registry, RegistryError, RegistryResult};
use crate::meta::{ManifestMeta, RepoChange};
use crate::storage::RepoGuard;

/// Ops one lock holder commits at most, so one hold stays short.
const MAX_BATCH: usize = 256;

/// One manifest push, ready to be recorded.
#[derive(Clone)]
pub(super) struct IndexOp {
    pub reference: Reference,
    /// The entry for `index.json` (without the tag annotation).
    pub desc: Descriptor,
    /// The manifest's bytes, written again if its blob vanished (a delete
    /// between the write before the lock and the lock).
    pub content: bytes::Bytes,
    /// Blobs or child manifests that must exist in the repository.
    pub needed: Vec<Digest>,
    /// The tag may be created but not moved.
    pub create_only: bool,
    /// The manifest's metadata; for an index, its children's are added
    /// under the lock.
    pub meta: ManifestMeta,
    /// Set for an image index, whose children's metadata is recorded too.
    pub index: Option<Manifest>,
    /// Committed again after its committer went away mid-batch, which may
    /// have recorded it already: a create-only tag that names this very
    /// manifest is then its own. (So a retry also succeeds if somebody
    /// else created the tag with this manifest meanwhile, and is refused
    /// if the tag was moved on since; neither moves a tag.)
    pub retry: bool,
}

type Waiter = (u64, IndexOp, oneshot::Sender<RegistryResult<()>>);

/// Takes a queued op back when dropped (a no-op once a committer has it).
struct Withdraw<'a> {
    queue: &'a PushQueue,
    repo: &'a RepoName,
    id: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.queue.withdraw(self.repo, self.id);
    }
}

/// Manifest pushes waiting for their repository's lock, by repository.
#[derive(Default)]
pub(super) struct PushQueue {
    next_id: AtomicU64,
    pending: Mutex<HashMap<RepoName, Vec<Waiter>>>,
    /// The most ops one committer has taken at once (for tests and
    /// operators: above 1 means batches form).
    largest: AtomicUsize,
}

impl PushQueue {
    fn add(&self, repo: &RepoName, op: IndexOp) -> (u64, oneshot::Receiver<RegistryResult<()>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.entry(repo.clone()).or_default().push((id, op, tx));
        (id, rx)
    }

    /// The oldest ops queued for `repo`, at most [`MAX_BATCH`].
    fn take(&self, repo: &RepoName) -> Vec<Waiter> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(queue) = pending.get_mut(repo) else {
            return Vec::new();
        };
        let rest = queue.split_off(queue.len().min(MAX_BATCH));
        let batch = std::mem::replace(queue, rest);
        if queue.is_empty() {
            pending.remove(repo);
        }
        self.largest.fetch_max(batch.len(), Ordering::Relaxed);
        batch
    }

    /// How many ops wait for `repo`'s lock now.
    fn queued(&self, repo: &RepoName) -> usize {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(repo).map_or(0, Vec::len)
    }

    /// Takes op `id` back if no committer has it yet.
    fn withdraw(&self, repo: &RepoName, id: u64) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(queue) = pending.get_mut(repo) else {
            return false;
        };
        let before = queue.len();
        queue.retain(|(i, _, _)| *i != id);
        let withdrawn = queue.len() != before;
        if queue.is_empty() {
            pending.remove(repo);
        }
        withdrawn
    }
}

impl Registry {
    /// How many manifest pushes into `repo` wait for its lock, to be
    /// recorded together by whichever gets it.
    pub fn queued_pushes(&self, repo: &RepoName) -> usize {
        self.pushes.queued(repo)
    }

    /// The most manifest pushes one `index.json` write has recorded so far.
    pub fn largest_push_batch(&self) -> usize {
        self.pushes.largest.load(Ordering::Relaxed)
    }

    /// Records a checked manifest push in `repo`'s `index.json` and
    /// metadata, together with whatever other pushes are waiting.
    pub(super) async fn commit_push(&self, repo: &RepoName, op: IndexOp) -> RegistryResult<()> {
        let (id, mut rx) = self.pushes.add(repo, op.clone());
        // Declared before the withdrawal so that it is dropped after it:
        // the op is taken back before the lock is let go.
        let mut holding: Option<RepoGuard> = None;
        // A push whose request goes away while its op is still queued
        // takes it back: no later holder records it behind its back.
        let _withdraw = Withdraw {
            queue: &self.pushes,
            repo,
            id,
        };
        let store = self.store(repo);
        let locked = tokio::select! {
            biased;
            done = &mut rx => match done {
                Ok(outcome) => return outcome,
                // Its committer was cancelled: commit it alone.
                Err(_) => store.lock_repo(repo).await,
            },
            guard = store.lock_repo(repo) => guard,
        };
        let guard = match locked {
            Ok(g) => holding.insert(g),
            Err(e) if self.pushes.withdraw(repo, id) => return Err(e.into()),
            Err(e) => return rx.await.unwrap_or(Err(e.into())),
        };
        // Ours may have been committed by the holder before, or may sit
        // behind more than a batch's worth of others.
        loop {
            let batch = match rx.try_recv() {
                Ok(outcome) => return outcome,
                Err(oneshot::error::TryRecvError::Empty) => self.pushes.take(repo),
                Err(oneshot::error::TryRecvError::Closed) => {
                    // Its committer went away mid-batch, perhaps after
                    // writing it: commit it again, as a retry.
                    let (tx, own) = oneshot::channel();
                    rx = own;
                    let mut again = op.clone();
                    again.retry = true;
                    vec![(id, again, tx)]
                }
            };
            if batch.is_empty() {
                // Neither queued nor answered: not reachable, but no loop.
                return Err(RegistryError::Internal(
                    "the manifest push was lost before it was recorded",
                ));
            }
            self.commit_batch(guard, batch).await;
        }
    }

    /// Commits `batch` under `guard`, sending each op its outcome.
    async fn commit_batch(&self, guard: &RepoGuard, batch: Vec<Waiter>) {
        let repo = guard.repo();
        let mut waiting = Vec::with_capacity(batch.len());
        for (_, op, tx) in batch {
            match self.check_op(repo, &op).await {
                Ok(()) => waiting.push((op, tx)),
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        }
        if waiting.is_empty() {
            return;
        }
        match self.record_ops(guard, &waiting).await {
            Ok(verdicts) => {
                for ((_, tx), verdict) in waiting.into_iter().zip(verdicts) {
                    let _ = tx.send(verdict);
                }
            }
            Err(e) => {
                for (_, tx) in waiting {
                    let _ = tx.send(Err(e.duplicate()));
                }
            }
        }
    }

    /// Under the lock: the blobs the op names exist, and so does its own.
    async fn check_op(&self, repo: &RepoName, op: &IndexOp) -> RegistryResult<()> {
        // The manifest's own blob is written again if a delete came in
        // since it was written before the lock.
        let missing = self
            .store(repo)
            .blobs
            .put_blob_needing(repo, &op.desc.digest, op.content.clone(), &op.needed)
            .await?;
        match missing {
            None => Ok(()),
            Some(d) => Err(RegistryError::ManifestBlobUnknown(d)),
        }
    }

    /// One `index.json` update and one metadata change for every op, in
    /// order; an op is refused on its own when its create-only tag exists
    /// by then (perhaps from an earlier op of the same batch), when it
    /// would move an immutable tag, or when it would take the repository
    /// past its quota (counting the ops before it).
    async fn record_ops(
        &self,
        guard: &RepoGuard,
        ops: &[(IndexOp, oneshot::Sender<RegistryResult<()>>)],
    ) -> RegistryResult<Vec<RegistryResult<()>>> {
        let repo = guard.repo();
        let in_step = self.in_step(guard).await?;
        let policies = self.policies();
        let immutable: Vec<Option<&str>> = ops
            .iter()
            .map(|(op, _)| match &op.reference {
                Reference::Tag(t) => policies.immutable_rule(repo, t.as_str()),
                Reference::Digest(_) => None,
            })
            .collect();
        let quota = policies.quota(repo);
        let mut usage = match quota {
            Some(_) => Some(self.referenced_blobs(repo).await?),
            None => None,
        };
        let verdicts = self
            .store(repo)
            .update_index(guard, |index| {
                let verdicts: Vec<RegistryResult<()>> = ops
                    .iter()
                    .zip(&immutable)
                    .map(|((op, _), immutable)| {
                        let existing = match &op.reference {
                            Reference::Tag(t) => index.find_tag(t.as_str()).map(|d| &d.digest),
                            Reference::Digest(_) => None,
                        };
                        let moved = existing.is_some_and(|d| *d != op.desc.digest);
                        if let (Reference::Tag(t), Some(rule), true) =
                            (&op.reference, immutable, moved)
                        {
                            return Err(RegistryError::TagImmutable {
                                tag: t.to_string(),
                                rule: rule.to_string(),
                            });
                        }
                        if let Reference::Tag(t) = &op.reference
                            && op.create_only
                            && existing.is_some_and(|d| !(op.retry && *d == op.desc.digest))
                        {
                            return Err(RegistryError::TagExists(t.to_string()));
                        }
                        if let (Some(q), Some(usage)) = (quota, usage.as_mut()) {
                            let used: u64 = usage.values().sum();
                            let adds = super::policy::push_adds(&op.meta, usage);
                            if adds > 0 && used + adds > q.max_bytes {
                                return Err(RegistryError::QuotaExceeded {
                                    rule: q.rule.clone(),
                                    limit: q.max_bytes,
                                    used,
                                    projected: used + adds,
                                });
                            }
                            super::policy::add_blobs(usage, &op.meta);
                        }
                        match &op.reference {
                            Reference::Tag(t) => index.set_tag(op.desc.clone(), t.as_str()),
                            Reference::Digest(_) => index.add_untagged(op.desc.clone()),
                        }
                        Ok(())
                    })
                    .collect();
                (verdicts.iter().any(Result::is_ok), verdicts)
            })
            .await?;
        if let (Some(q), Some(usage)) = (quota, &usage) {
            self.unreferenced.settle(repo, usage);
            self.emit(super::events::RegistryEvent::QuotaUsage {
                repo: repo.to_string(),
                used: usage.values().sum(),
                limit: q.max_bytes,
            });
        }
        let mut change = RepoChange::default();
        for ((op, _), verdict) in ops.iter().zip(&verdicts) {
            if verdict.is_err() {
                continue;
            }
            change.put_manifests.push(op.meta.clone());
            if let Some(index) = &op.index {
                change
                    .put_manifests
                    .extend(self.child_metas(repo, index).await?);
            }
            if let Reference::Tag(t) = &op.reference {
                change
                    .set_tags
                    .push((t.to_string(), op.desc.digest.to_string()));
            }
        }
        if !change.put_manifests.is_empty() {
            self.after_write(guard, in_step, change).await?;
        }
        Ok(verdicts)
    }
}

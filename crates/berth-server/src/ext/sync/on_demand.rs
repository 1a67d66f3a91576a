//! On-demand sync: the [`Mirror`] the API asks when a repository lacks a
//! manifest or a blob. The first request for an image fetches its
//! manifest and answers with it at once; the copy of the rest (blobs,
//! children, tag, referrers) goes on in a task of its own, so a client
//! that disconnects cancels nothing. Requests for the same image meanwhile
//! join that one fetch (a "flight"); blob requests join the blob's fetch
//! and stream its bytes as they arrive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use berth_oci::{Digest, Reference, RepoName};
use tokio::sync::watch;

use berth_client::copy::{CopyTarget, Outcome};

use super::copy::Job;
use super::upstream::Upstream;
use super::{Inner, SyncError, periodic};
use crate::registry::{ManifestContent, Mirror, MirroredBlob, RegistryResult};

/// What a flight's manifest fetch gave: the manifest as it will be
/// stored, `None` when the upstream lacks it, or why it failed.
type FlightResult = Result<Option<ManifestContent>, Arc<SyncError>>;

/// One image fetch: its answer, once the manifest is in.
type Flight = watch::Sender<Option<FlightResult>>;

/// Flights under way by (repository, reference).
type FlightTable = Arc<Mutex<HashMap<(RepoName, String), Arc<Flight>>>>;

/// The image fetches under way, by (repository, reference).
#[derive(Default)]
pub(super) struct Flights {
    running: FlightTable,
}

/// Takes a flight out of the table when its task ends, however it ends.
struct Landing {
    table: FlightTable,
    key: (RepoName, String),
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// The API's side of on-demand sync.
pub(super) struct OnDemand(pub Arc<Inner>);

/// The upstream covering a local repository for on-demand sync: the
/// first `onDemand` registry with a rule for it.
struct Route {
    upstream: Arc<Upstream>,
    rule: usize,
    remote: String,
}

impl Inner {
    fn route(&self, repo: &RepoName) -> Option<Route> {
        self.upstreams().iter().find_map(|up| {
            if !up.config.on_demand {
                return None;
            }
            let (rule, remote) = up.rules.remote_for(repo.as_str())?;
            Some(Route {
                upstream: up.clone(),
                rule,
                remote,
            })
        })
    }

    fn job_for<'a>(self: &'a Arc<Self>, route: &'a Route, repo: &RepoName) -> Job<'a> {
        Job::new(
            &self.registry,
            &self.fetches,
            &route.upstream,
            route.rule,
            repo.clone(),
            route.remote.clone(),
        )
    }

    /// Joins or starts the flight of `reference` in `repo`.
    async fn flight(
        self: &Arc<Self>,
        route: Route,
        repo: &RepoName,
        reference: &str,
    ) -> FlightResult {
        let key = (repo.clone(), reference.to_string());
        let (flight, first) = {
            let mut running = self
                .flights
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match running.get(&key) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(watch::Sender::new(None));
                    running.insert(key.clone(), f.clone());
                    (f, true)
                }
            }
        };
        let mut answer = flight.subscribe();
        if first {
            let inner = self.clone();
            let landing = Landing {
                table: self.flights.running.clone(),
                key,
            };
            let reference = reference.to_string();
            let repo = repo.clone();
            tokio::spawn(async move {
                let _landing = landing;
                inner.fly(&route, &repo, &reference, &flight).await;
            });
        }
        match answer.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(Ok(None)),
            Err(_) => Err(Arc::new(SyncError::Fetch("the image fetch stopped".into()))),
        }
    }

    /// The flight's task: the manifest, answered to every waiter, then
    /// the rest of the image.
    async fn fly(
        self: &Arc<Self>,
        route: &Route,
        repo: &RepoName,
        reference: &str,
        flight: &Flight,
    ) {
        let job = self.job_for(route, repo);
        let options = job.options();
        let copy = job.copy(&options);
        let limit = route.upstream.config.sync_timeout;
        let answer = |r: FlightResult| {
            flight.send_replace(Some(r));
        };
        let resolved = match tokio::time::timeout(limit, copy.resolve(reference)).await {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) => return answer(Ok(None)),
            Ok(Err(e)) => return answer(Err(Arc::new(e))),
            Err(_) => return answer(Err(Arc::new(SyncError::Timeout(limit)))),
        };
        if route.upstream.config.only_signed {
            match copy.signed(&resolved.manifest.digest).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(target: "berth::sync", upstream = %route.upstream.name(), "{repo}:{reference} is not signed upstream: not copied (onlySigned)");
                    return answer(Ok(None));
                }
                Err(e) => return answer(Err(Arc::new(e))),
            }
        }
        answer(Ok(Some(ManifestContent {
            bytes: resolved.manifest.bytes.to_vec(),
            media_type: resolved.manifest.media_type.clone(),
            digest: resolved.manifest.digest.clone(),
        })));
        let tag = (!reference.contains(':')).then_some(reference);
        if let Some(t) = tag
            && copy.target.tag_digest(t).await.as_ref() == Some(&resolved.manifest.digest)
        {
            // A tag checked again (`manifestCheckInterval`) that has not
            // moved: nothing to copy, nothing to announce.
            periodic::record(
                self,
                &route.upstream,
                repo,
                reference,
                Ok(Outcome::UpToDate),
            );
            return;
        }
        let done = match tokio::time::timeout(limit, copy.complete(&resolved, tag)).await {
            Ok(r) => r.map(|()| Outcome::Copied(resolved.manifest.digest.clone())),
            Err(_) => Err(SyncError::Timeout(limit)),
        };
        periodic::record(self, &route.upstream, repo, reference, done);
    }
}

#[async_trait::async_trait]
impl Mirror for OnDemand {
    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        local: Option<&Digest>,
    ) -> RegistryResult<Option<ManifestContent>> {
        let Some(route) = self.0.route(repo) else {
            return Ok(None);
        };
        if let Reference::Tag(t) = reference {
            if !route.upstream.rules.tag_allowed(route.rule, t.as_str()) {
                return Ok(None);
            }
            if local.is_some() {
                self.0
                    .checked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((repo.clone(), t.to_string()), Instant::now());
            }
        }
        let name = route.upstream.name().to_string();
        match self.0.flight(route, repo, &reference.to_string()).await {
            Ok(Some(m)) if Some(&m.digest) == local => Ok(None),
            Ok(found) => Ok(found),
            Err(e) => match local {
                Some(_) => {
                    tracing::warn!(target: "berth::sync", upstream = %name, "{repo}:{reference}: the upstream cannot be checked ({e}); serving the local copy");
                    Ok(None)
                }
                None => Err(Arc::try_unwrap(e)
                    .unwrap_or_else(|shared| SyncError::Fetch(shared.to_string()))
                    .into_registry(&name)),
            },
        }
    }

    fn recheck_due(&self, repo: &RepoName, tag: &str) -> bool {
        let Some(route) = self.0.route(repo) else {
            return false;
        };
        let Some(every) = route.upstream.config.manifest_check_interval else {
            return false;
        };
        let checked = self.0.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked
            .get(&(repo.clone(), tag.to_string()))
            .is_none_or(|at| at.elapsed() >= every)
    }

    async fn blob(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<Option<MirroredBlob>> {
        let Some(route) = self.0.route(repo) else {
            return Ok(None);
        };
        let name = route.upstream.name().to_string();
        let source = super::fetch::BlobSource {
            upstream: route.upstream.clone(),
            remote: route.remote.clone(),
            local: repo.clone(),
        };
        let fetch = match self.0.fetches.get(&source, digest).await {
            Ok(Some(f)) => f,
            // Stored meanwhile: read it from the registry.
            Ok(None) => {
                let len = self.0.registry.blob_len(repo, digest).await?;
                let stream = self
                    .0
                    .registry
                    .read_blob_range(repo, digest, 0, len)
                    .await?;
                return Ok(Some(MirroredBlob {
                    len: Some(len),
                    stream,
                }));
            }
            Err(e) => return Err(e.into_registry(&name)),
        };
        match fetch.started().await {
            Ok(Some(len)) => Ok(Some(MirroredBlob {
                len,
                stream: fetch.reader(),
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into_registry(&name)),
        }
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) {
        let Some(route) = self.0.route(repo) else {
            return;
        };
        let job = self.0.job_for(&route, repo);
        let options = job.options();
        let copy = job.copy(&options);
        let limit = route.upstream.config.sync_timeout;
        let result = match tokio::time::timeout(limit, copy.referrers(digest, 0)).await {
            Ok(r) => r,
            Err(_) => Err(SyncError::Timeout(limit)),
        };
        if let Err(e) = result {
            tracing::warn!(target: "berth::sync", upstream = %route.upstream.name(), "{repo}: the referrers of {digest} could not be copied: {e}");
        }
    }
}

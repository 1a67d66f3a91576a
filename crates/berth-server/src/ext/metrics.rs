//! Prometheus metrics (`extensions.metrics`, served at `prometheus.path`,
//! default `/metrics`, in the OpenMetrics text format).
//!
//! zot's names where zot has the same metric, so its dashboards keep
//! working: `zot_http_requests_total{method,code}`,
//! `zot_http_method_latency_seconds{method}`,
//! `zot_http_repo_latency_seconds{repo}`, `zot_repo_uploads_total{repo}`,
//! `zot_repo_downloads_total{repo}`, `zot_info`. Berth's own, by route
//! template (never the raw path): `berth_http_requests_total{method,route,status}`,
//! `berth_http_request_duration_seconds{method,route}`; bytes received and
//! sent; repositories and storage bytes per root; upload sessions open;
//! GC and scrub runs and what they removed or found; process figures.
//!
//! Requests are counted by [`track`], a middleware; the rest comes from
//! registry events and from reads at scrape time. Who may scrape follows
//! `http.accessControl.metrics` ([`serve`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http::{Method, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as PromRegistry;

use crate::api::AppState;
use crate::api::endpoint::{Endpoint, Mounted, parse};
use crate::registry::Registry;
use crate::registry::events::RegistryEvent;

/// Latency buckets, in seconds: from half a millisecond to ten minutes.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 600.0,
];
/// How often storage bytes per root are measured (a walk of the root).
const STORAGE_EVERY: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodCode {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoLabel {
    repo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RootLabel {
    root: String,
}

/// A service the registry needs (see [`crate::health`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabel {
    dependency: String,
}

/// An upstream of the sync extension.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

/// An upstream of the sync extension, and what became of an image.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabel {
    upstream: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RootKind {
    root: String,
    kind: String,
}

/// zot's `zot_info` labels, spelled as zot spells them.
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    commit: String,
    binaryType: String,
    goVersion: String,
    version: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric, and the registry that encodes them.
pub struct Metrics {
    prom: PromRegistry,
    path: String,
    http_requests: Family<MethodCode, Counter>,
    method_latency: Histograms<MethodLabel>,
    repo_latency: Histograms<RepoLabel>,
    route_requests: Family<RouteStatus, Counter>,
    route_latency: Histograms<Route>,
    received: Counter,
    sent: Counter,
    uploads: Family<RepoLabel, Counter>,
    downloads: Family<RepoLabel, Counter>,
    repositories: Family<RootLabel, Gauge>,
    storage_bytes: Family<RootLabel, Gauge>,
    uploads_in_progress: Gauge,
    dependency_up: Family<DependencyLabel, Gauge>,
    dependency_failures: Family<DependencyLabel, Counter>,
    repos_created: Counter,
    gc_runs: Family<RootLabel, Counter>,
    gc_removed: Family<RootKind, Counter>,
    scrub_runs: Counter,
    sync_images: Family<SyncLabel, Counter>,
    sync_bytes: Family<UpstreamLabel, Counter>,
    quota_used: Family<RepoLabel, Gauge>,
    quota_limit: Family<RepoLabel, Gauge>,
    scrub_affected: Gauge,
    resident: Gauge,
    virtual_memory: Gauge,
    cpu: FloatGauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge,
    /// Root directory → bytes, from the last walk.
    measured: Mutex<HashMap<String, i64>>,
    /// Held while the failure counters catch up with the health checks',
    /// so that two scrapes at once do not both add the same failures.
    catching_up: Mutex<()>,
}

impl Metrics {
    /// The metrics, served at `path`.
    pub fn new(path: &str) -> Arc<Self> {
        let mut prom = PromRegistry::default();
        let m = Self {
            path: path.to_string(),
            http_requests: Family::default(),
            method_latency: Family::new_with_constructor(latency_histogram),
            repo_latency: Family::new_with_constructor(latency_histogram),
            route_requests: Family::default(),
            route_latency: Family::new_with_constructor(latency_histogram),
            received: Counter::default(),
            sent: Counter::default(),
            uploads: Family::default(),
            downloads: Family::default(),
            repositories: Family::default(),
            storage_bytes: Family::default(),
            uploads_in_progress: Gauge::default(),
            dependency_up: Family::default(),
            dependency_failures: Family::default(),
            repos_created: Counter::default(),
            gc_runs: Family::default(),
            gc_removed: Family::default(),
            scrub_runs: Counter::default(),
            sync_images: Family::default(),
            sync_bytes: Family::default(),
            quota_used: Family::default(),
            quota_limit: Family::default(),
            scrub_affected: Gauge::default(),
            resident: Gauge::default(),
            virtual_memory: Gauge::default(),
            cpu: FloatGauge::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
            start_time: Gauge::default(),
            measured: Mutex::new(HashMap::new()),
            catching_up: Mutex::new(()),
            prom: PromRegistry::default(),
        };
        prom.register(
            "zot_http_requests",
            "Requests by method and status code",
            m.http_requests.clone(),
        );
        prom.register(
            "zot_http_method_latency_seconds",
            "Request latency by method",
            m.method_latency.clone(),
        );
        prom.register(
            "zot_http_repo_latency_seconds",
            "Request latency by repository",
            m.repo_latency.clone(),
        );
        prom.register(
            "zot_repo_uploads",
            "Manifests pushed, by repository",
            m.uploads.clone(),
        );
        prom.register(
            "zot_repo_downloads",
            "Manifests pulled (GET), by repository",
            m.downloads.clone(),
        );
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            commit: String::new(),
            binaryType: "berth".into(),
            goVersion: String::new(),
            version: env!("CARGO_PKG_VERSION").into(),
        })
        .set(1);
        prom.register("zot_info", "Build information", info);
        prom.register(
            "berth_http_requests",
            "Requests by method, route template and status",
            m.route_requests.clone(),
        );
        prom.register(
            "berth_http_request_duration_seconds",
            "Request latency by method and route template",
            m.route_latency.clone(),
        );
        prom.register(
            "berth_http_received_bytes",
            "Request body bytes received",
            m.received.clone(),
        );
        prom.register(
            "berth_http_sent_bytes",
            "Response body bytes sent",
            m.sent.clone(),
        );
        prom.register(
            "berth_repositories",
            "Repositories per storage root",
            m.repositories.clone(),
        );
        prom.register(
            "berth_storage_bytes",
            "Bytes on disk per storage root (hard links counted once; measured every 5 minutes)",
            m.storage_bytes.clone(),
        );
        prom.register(
            "berth_uploads_in_progress",
            "Upload sessions open",
            m.uploads_in_progress.clone(),
        );
        prom.register(
            "berth_dependency_up",
            "Whether the last health check reached the dependency (metadata store, storage roots): 1 or 0",
            m.dependency_up.clone(),
        );
        prom.register(
            "berth_dependency_check_failures",
            "Health checks of the dependency that failed",
            m.dependency_failures.clone(),
        );
        prom.register(
            "berth_repositories_created",
            "Repositories created",
            m.repos_created.clone(),
        );
        prom.register("berth_gc_runs", "GC runs per root", m.gc_runs.clone());
        prom.register(
            "berth_gc_removed",
            "What GC and retention removed, by root and kind (tag, manifest, blob, upload)",
            m.gc_removed.clone(),
        );
        prom.register("berth_scrub_runs", "Scrub runs", m.scrub_runs.clone());
        prom.register(
            "berth_sync_images",
            "Images the sync extension copied, skipped or failed to copy, by upstream",
            m.sync_images.clone(),
        );
        prom.register(
            "berth_sync_bytes",
            "Blob bytes the sync extension downloaded and stored, by upstream",
            m.sync_bytes.clone(),
        );
        prom.register(
            "berth_quota_used_bytes",
            "Bytes a repository under a quota references, as of its last write",
            m.quota_used.clone(),
        );
        prom.register(
            "berth_quota_limit_bytes",
            "The byte quota of a repository, as of its last write",
            m.quota_limit.clone(),
        );
        prom.register(
            "berth_scrub_affected_images",
            "Images the last scrub found damaged",
            m.scrub_affected.clone(),
        );
        prom.register(
            "process_resident_memory_bytes",
            "Resident memory",
            m.resident.clone(),
        );
        prom.register(
            "process_virtual_memory_bytes",
            "Virtual memory",
            m.virtual_memory.clone(),
        );
        prom.register(
            "process_cpu_seconds_total",
            "CPU time, user and system",
            m.cpu.clone(),
        );
        prom.register(
            "process_open_fds",
            "Open file descriptors",
            m.open_fds.clone(),
        );
        prom.register(
            "process_max_fds",
            "File descriptor limit",
            m.max_fds.clone(),
        );
        prom.register(
            "process_start_time_seconds",
            "Start time, Unix seconds",
            m.start_time.clone(),
        );
        Arc::new(Self { prom, ..m })
    }

    /// The path the metrics are served at.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn count_request(
        &self,
        method: &Method,
        ep: Option<&Endpoint>,
        route: &str,
        status: u16,
        secs: f64,
    ) {
        let method = method.as_str().to_string();
        self.http_requests
            .get_or_create(&MethodCode {
                method: method.clone(),
                code: status.to_string(),
            })
            .inc();
        self.method_latency
            .get_or_create(&MethodLabel {
                method: method.clone(),
            })
            .observe(secs);
        if let Some(repo) = ep.and_then(Endpoint::repo) {
            let repo = RepoLabel {
                repo: repo.to_string(),
            };
            self.repo_latency.get_or_create(&repo).observe(secs);
            if let Some(Endpoint::Manifest { .. }) = ep {
                if method == "PUT" && status == 201 {
                    self.uploads.get_or_create(&repo).inc();
                } else if method == "GET" && status == 200 {
                    self.downloads.get_or_create(&repo).inc();
                }
            }
        }
        self.route_requests
            .get_or_create(&RouteStatus {
                method: method.clone(),
                route: route.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.route_latency
            .get_or_create(&Route {
                method,
                route: route.to_string(),
            })
            .observe(secs);
    }

    fn on_event(&self, event: &RegistryEvent) {
        match event {
            RegistryEvent::RepoCreated { .. } => {
                self.repos_created.inc();
            }
            RegistryEvent::GcFinished { root, report } => {
                self.gc_runs
                    .get_or_create(&RootLabel { root: root.clone() })
                    .inc();
                for (kind, n) in [
                    ("tag", report.tags),
                    ("manifest", report.manifests),
                    ("blob", report.blobs),
                    ("upload", report.uploads),
                ] {
                    self.gc_removed
                        .get_or_create(&RootKind {
                            root: root.clone(),
                            kind: kind.into(),
                        })
                        .inc_by(n as u64);
                }
            }
            RegistryEvent::ScrubFinished { affected, .. } => {
                self.scrub_runs.inc();
                self.scrub_affected.set(*affected as i64);
            }
            RegistryEvent::Synced {
                upstream, outcome, ..
            } => {
                self.sync_images
                    .get_or_create(&SyncLabel {
                        upstream: upstream.clone(),
                        outcome: outcome.as_str().into(),
                    })
                    .inc();
            }
            RegistryEvent::SyncedBlob { upstream, bytes } => {
                self.sync_bytes
                    .get_or_create(&UpstreamLabel {
                        upstream: upstream.clone(),
                    })
                    .inc_by(*bytes);
            }
            RegistryEvent::QuotaUsage { repo, used, limit } => {
                let repo = RepoLabel { repo: repo.clone() };
                let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                self.quota_used.get_or_create(&repo).set(gauge(*used));
                self.quota_limit.get_or_create(&repo).set(gauge(*limit));
            }
            RegistryEvent::ManifestPushed { .. }
            | RegistryEvent::LintFailed { .. }
            | RegistryEvent::ManifestDeleted { .. }
            | RegistryEvent::ManifestPulled { .. } => {}
        }
    }

    /// Reads what is read at scrape time, then encodes everything.
    async fn render(
        &self,
        registry: &Registry,
        health: &crate::health::Health,
    ) -> Result<String, std::fmt::Error> {
        self.uploads_in_progress
            .set(registry.uploads_in_progress() as i64);
        let one_at_a_time = self.catching_up.lock().unwrap_or_else(|p| p.into_inner());
        for dep in health.dependencies() {
            let label = DependencyLabel {
                dependency: dep.name().to_string(),
            };
            self.dependency_up
                .get_or_create(&label)
                .set(i64::from(dep.is_up()));
            let counted = self.dependency_failures.get_or_create(&label);
            counted.inc_by(dep.failures().saturating_sub(counted.get()));
        }
        drop(one_at_a_time);
        let mut per_root: HashMap<String, i64> = registry
            .roots()
            .all()
            .iter()
            .map(|r| (r.store.location().to_string(), 0))
            .collect();
        if let Ok(repos) = registry.meta().repos().await {
            for repo in repos.iter().filter_map(|r| r.parse().ok()) {
                let root = registry.roots().root_of(&repo).store.location().to_string();
                *per_root.entry(root).or_default() += 1;
            }
        }
        for (root, n) in per_root {
            self.repositories.get_or_create(&RootLabel { root }).set(n);
        }
        for (root, bytes) in self
            .measured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            self.storage_bytes
                .get_or_create(&RootLabel { root: root.clone() })
                .set(*bytes);
        }
        self.read_process();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.prom)?;
        Ok(out)
    }

    /// Process figures from `/proc`, read by `procfs` (Linux; elsewhere
    /// they stay 0). A figure that cannot be read keeps its last value.
    #[cfg(target_os = "linux")]
    fn read_process(&self) {
        use procfs::WithCurrentSystemInfo as _;
        use procfs::process::{LimitValue, Process};

        let Ok(me) = Process::myself() else {
            return;
        };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            self.cpu.set((stat.utime + stat.stime) as f64 / ticks);
            self.virtual_memory.set(stat.vsize as i64);
            self.resident.set(stat.rss_bytes().get() as i64);
            let boot = procfs::boot_time_secs().unwrap_or(0) as i64;
            self.start_time
                .set(boot + (stat.starttime as f64 / ticks) as i64);
        }
        if let Ok(fds) = me.fd_count() {
            self.open_fds.set(fds as i64);
        }
        if let Ok(limits) = me.limits() {
            self.max_fds.set(match limits.max_open_files.soft_limit {
                LimitValue::Value(n) => n as i64,
                LimitValue::Unlimited => 0,
            });
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn read_process(&self) {}
}

/// Starts the listeners: registry events, and the periodic storage walk.
pub fn spawn(metrics: &Arc<Metrics>, registry: &Arc<Registry>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut rx = registry.subscribe();
    let m = metrics.clone();
    let events = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => m.on_event(&e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "metrics fell behind registry events");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let (m, reg) = (metrics.clone(), registry.clone());
    let storage = tokio::spawn(async move {
        loop {
            let roots: Vec<std::path::PathBuf> = reg
                .roots()
                .all()
                .iter()
                // Object stores are not walked: listing a bucket costs
                // requests and money.
                .filter_map(|r| r.store.local.as_ref().map(|fs| fs.root().to_path_buf()))
                .collect();
            let sizes = tokio::task::spawn_blocking(move || {
                roots
                    .into_iter()
                    .map(|r| (r.display().to_string(), disk_bytes(&r) as i64))
                    .collect::<HashMap<_, _>>()
            })
            .await
            .unwrap_or_default();
            *m.measured.lock().unwrap_or_else(|p| p.into_inner()) = sizes;
            tokio::time::sleep(STORAGE_EVERY).await;
        }
    });
    vec![events, storage]
}

/// Bytes in regular files under `dir`, each inode once.
fn disk_bytes(dir: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() && crate::os::file_id(&meta).is_none_or(|id| seen.insert(id)) {
                total += meta.len();
            }
        }
    }
    total
}

/// The route template of a request path, and its endpoint when it is one
/// of the distribution API. The API document's paths count as "other", as
/// does any path that is no route.
fn classify(path: &str) -> (String, Option<Endpoint>) {
    let labelled = Mounted {
        metrics: None,
        apikeys: true,
        token: true,
        openid: true,
        logout: true,
        docs: false,
        search: true,
        mgmt: true,
        userprefs: true,
        trust: true,
        ui: true,
    };
    match parse(path, &labelled) {
        Ok(ep) if ep.kind().is_v2() => (ep.template().to_string(), Some(ep)),
        Ok(ep) => (ep.template().to_string(), None),
        Err(_) => ("other".to_string(), None),
    }
}

/// Counts every request except scrapes: by method, status, route template
/// and repository, with its latency and body bytes.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(metrics) = state.metrics.clone() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    if path == metrics.path {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let (route, ep) = classify(&path);
    let req = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        let received = metrics.received.clone();
        let (parts, body) = req.into_parts();
        let counted = body.into_data_stream().inspect_ok(move |chunk| {
            received.inc_by(chunk.len() as u64);
        });
        Request::from_parts(parts, Body::from_stream(counted))
    } else {
        req
    };
    let start = Instant::now();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    if method != Method::HEAD {
        let sent = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| axum::body::HttpBody::size_hint(resp.body()).exact())
            .unwrap_or(0);
        metrics.sent.inc_by(sent);
    }
    metrics.count_request(&method, ep.as_ref(), &route, resp.status().as_u16(), secs);
    resp
}

/// `GET <prometheus.path>`: the metrics (who may read them was decided
/// by authorization, from `accessControl.metrics`).
pub async fn serve(State(state): State<AppState>) -> Response {
    let Some(metrics) = state.metrics.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match metrics.render(&state.registry, &state.health).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => crate::api::error::ApiError::internal(e).into_response(),
    }
}

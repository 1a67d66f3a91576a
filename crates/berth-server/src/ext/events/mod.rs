//! Events (`extensions.events`): CloudEvents 1.0 to each configured sink,
//! over HTTP (binary mode: `ce-*` headers, JSON data) or NATS (structured
//! mode on the sink's subject, see `nats.rs`), with zot's event types:
//! `zotregistry.repository.created`, `zotregistry.image.updated`,
//! `zotregistry.image.deleted`, `zotregistry.image.lint_failed`.
//!
//! A push never waits for a sink: events come from the registry's
//! broadcast channel into one bounded queue per sink ([`QUEUE`] events;
//! when full, new events for that sink are dropped and counted in the
//! log). Each sink's worker delivers in order, retrying a failed delivery
//! with growing pauses ([`ATTEMPTS`] tries) before giving it up.

mod nats;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::{ConfigError, EventsConfig, SinkConfig};
use crate::registry::Registry;
use crate::registry::events::RegistryEvent;

/// Events waiting per sink before new ones are dropped.
pub const QUEUE: usize = 1024;
/// Delivery attempts per event.
pub const ATTEMPTS: u32 = 5;
/// The pause after the first failed attempt; doubled after each.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// CloudEvents `source`, unless `extensions.events.source` says otherwise.
const SOURCE: &str = "berth";
/// The namespace of event types, unless `extensions.events.typePrefix`
/// says otherwise.
const TYPE_NAMESPACE: &str = "zotregistry";

/// How this registry names its events: the CloudEvents `source`, and the
/// namespace of types.
#[derive(Debug, Clone)]
pub(super) struct Naming {
    source: String,
    type_prefix: Option<String>,
}

impl Naming {
    fn new(config: &EventsConfig) -> Self {
        Self {
            source: config.source.clone().unwrap_or_else(|| SOURCE.to_string()),
            type_prefix: config.type_prefix.clone(),
        }
    }

    /// The event's `type`: zot's, under `typePrefix` when set.
    pub(super) fn type_of(&self, event: &CloudEvent) -> String {
        match (&self.type_prefix, event.kind.strip_prefix(TYPE_NAMESPACE)) {
            (Some(prefix), Some(rest)) => format!("{prefix}{rest}"),
            _ => event.kind.to_string(),
        }
    }

    pub(super) fn source(&self) -> &str {
        &self.source
    }
}

/// One event, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    pub id: String,
    pub kind: &'static str,
    pub time: String,
    pub data: Value,
}

/// The CloudEvent for a registry event, if it is one sinks hear about.
pub fn cloud_event(event: &RegistryEvent) -> Option<CloudEvent> {
    let (kind, data) = match event {
        RegistryEvent::RepoCreated { repo } => {
            ("zotregistry.repository.created", json!({ "name": repo }))
        }
        RegistryEvent::ManifestPushed {
            repo,
            reference,
            digest,
            media_type,
            manifest,
        }
        | RegistryEvent::LintFailed {
            repo,
            reference,
            digest,
            media_type,
            manifest,
        } => (
            match event {
                RegistryEvent::LintFailed { .. } => "zotregistry.image.lint_failed",
                _ => "zotregistry.image.updated",
            },
            json!({
                "name": repo,
                "reference": reference,
                "digest": digest.to_string(),
                "mediaType": media_type,
                "manifest": String::from_utf8_lossy(manifest),
            }),
        ),
        RegistryEvent::ManifestDeleted {
            repo,
            reference,
            digest,
            media_type,
        } => (
            "zotregistry.image.deleted",
            json!({
                "name": repo,
                "reference": reference,
                "digest": digest.as_ref().map(ToString::to_string),
                "mediaType": media_type,
            }),
        ),
        RegistryEvent::Synced {
            upstream,
            repo,
            reference,
            outcome,
            message,
        } => (
            match outcome {
                crate::registry::events::SyncOutcome::Failed => "io.berth.sync.image.failed",
                _ => "io.berth.sync.image.synced",
            },
            json!({
                "upstream": upstream,
                "name": repo,
                "reference": reference,
                "outcome": outcome.as_str(),
                "message": message,
            }),
        ),
        RegistryEvent::ManifestPulled { .. }
        | RegistryEvent::SyncedBlob { .. }
        | RegistryEvent::QuotaUsage { .. }
        | RegistryEvent::GcFinished { .. }
        | RegistryEvent::ScrubFinished { .. } => return None,
    };
    Some(CloudEvent {
        id: uuid::Uuid::new_v4().to_string(),
        kind,
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        data,
    })
}

/// Why a delivery failed (logged, and retried).
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    /// The request did not get an answer.
    #[error(transparent)]
    Send(#[from] reqwest::Error),
    /// The sink answered, but not with success.
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    /// Connecting to, or publishing on, a NATS server failed.
    #[error("{0}")]
    Nats(String),
}

/// How a sink is reached.
enum Transport {
    Http(reqwest::Client),
    Nats(Box<nats::NatsSink>),
}

/// A sink's delivery worker.
struct Sink {
    config: SinkConfig,
    transport: Transport,
    naming: Naming,
}

impl Sink {
    async fn deliver(&self, event: &CloudEvent) -> Result<(), DeliveryError> {
        match &self.transport {
            Transport::Http(client) => self.post(client, event).await,
            Transport::Nats(nats) => nats.publish(event, &self.naming).await,
        }
    }

    async fn post(
        &self,
        client: &reqwest::Client,
        event: &CloudEvent,
    ) -> Result<(), DeliveryError> {
        let mut req = client
            .post(&self.config.address)
            .timeout(self.config.timeout.0)
            .header("ce-specversion", "1.0")
            .header("ce-id", &event.id)
            .header("ce-source", self.naming.source())
            .header("ce-type", self.naming.type_of(event))
            .header("ce-time", &event.time)
            .header("content-type", "application/json");
        if let Some(channel) = &self.config.channel {
            req = req.header("ce-channel", channel);
        }
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        if let Some(c) = &self.config.credentials {
            if let Some(token) = &c.token {
                req = req.bearer_auth(token);
            } else if let Some(user) = &c.username {
                req = req.basic_auth(user, Some(c.password.as_deref().unwrap_or("")));
            }
        }
        let resp = req.body(event.data.to_string()).send().await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(resp.status()))
        }
    }

    async fn run(self, mut queue: mpsc::Receiver<CloudEvent>) {
        while let Some(event) = queue.recv().await {
            let mut pause = FIRST_PAUSE;
            for attempt in 1..=ATTEMPTS {
                match self.deliver(&event).await {
                    Ok(()) => break,
                    Err(e) if attempt == ATTEMPTS => {
                        tracing::warn!(sink = %self.config.address, id = %event.id, kind = event.kind, error = %e, "event given up after {ATTEMPTS} attempts");
                    }
                    Err(e) => {
                        tracing::info!(sink = %self.config.address, id = %event.id, attempt, error = %e, "event delivery failed, retrying");
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                }
            }
        }
    }
}

/// The HTTP client of sink `i`: its CA, client certificate and proxy.
fn http_client(i: usize, sink: &SinkConfig) -> Result<reqwest::Client, ConfigError> {
    let at = |k: &str| format!("extensions.events.sinks.{i}.{k}");
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| ConfigError::key(at(key), format!("cannot read {}: {e}", path.display())))
    };
    let mut builder = reqwest::Client::builder();
    if let Some(tls) = &sink.tls {
        if let Some(ca) = &tls.cacertfile {
            let certs = reqwest::Certificate::from_pem_bundle(&read("tlsconfig.cacertfile", ca)?)
                .map_err(|e| ConfigError::key(at("tlsconfig.cacertfile"), e.to_string()))?;
            builder = builder.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&tls.certfile, &tls.keyfile) {
            let mut pem = read("tlsconfig.certfile", cert)?;
            pem.extend(read("tlsconfig.keyfile", key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ConfigError::key(at("tlsconfig.certfile"), e.to_string()))?;
            builder = builder.identity(identity);
        }
    }
    if let Some(proxy) = &sink.proxy {
        let proxy =
            reqwest::Proxy::all(proxy).map_err(|e| ConfigError::key(at("proxy"), e.to_string()))?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| ConfigError::key(at("tlsconfig"), format!("cannot make an HTTP client: {e}")))
}

/// Starts one worker per sink and the listener that feeds them.
pub fn spawn(
    config: &EventsConfig,
    registry: &Arc<Registry>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ConfigError> {
    if !config.enable || config.sinks.is_empty() {
        return Ok(Vec::new());
    }
    let naming = Naming::new(config);
    let mut tasks = Vec::new();
    let mut queues = Vec::new();
    for (i, sink) in config.sinks.iter().enumerate() {
        let (tx, rx) = mpsc::channel(QUEUE);
        let transport = match sink.kind.as_str() {
            "nats" => Transport::Nats(Box::new(nats::NatsSink::new(sink.clone()))),
            _ => Transport::Http(http_client(i, sink)?),
        };
        let worker = Sink {
            config: sink.clone(),
            transport,
            naming: naming.clone(),
        };
        tasks.push(tokio::spawn(worker.run(rx)));
        queues.push((sink.address.clone(), tx));
    }
    let mut events = registry.subscribe();
    tasks.push(tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "events fell behind the registry; some were not sent");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let Some(ce) = cloud_event(&event) else {
                continue;
            };
            for (address, queue) in &queues {
                if queue.try_send(ce.clone()).is_err() {
                    tracing::warn!(sink = %address, id = %ce.id, kind = ce.kind, "sink queue full, event dropped");
                }
            }
        }
    }));
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_events_map_to_zot_types() {
        let d = berth_oci::Digest::sha256(b"m");
        let pushed = cloud_event(&RegistryEvent::ManifestPushed {
            repo: "a/b".into(),
            reference: "v1".into(),
            digest: d.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest: Arc::new(b"{\"schemaVersion\":2}".to_vec()),
        })
        .expect("event");
        assert_eq!(pushed.kind, "zotregistry.image.updated");
        assert_eq!(pushed.data["name"], "a/b");
        assert_eq!(pushed.data["digest"], d.to_string());
        assert_eq!(pushed.data["manifest"], "{\"schemaVersion\":2}");
        let created = cloud_event(&RegistryEvent::RepoCreated { repo: "x".into() }).expect("event");
        assert_eq!(created.kind, "zotregistry.repository.created");
        assert!(cloud_event(&RegistryEvent::ManifestPulled { repo: "x".into() }).is_none());
        let lint = cloud_event(&RegistryEvent::LintFailed {
            repo: "a/b".into(),
            reference: "v2".into(),
            digest: d.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest: Arc::new(b"{}".to_vec()),
        })
        .expect("event");
        assert_eq!(lint.kind, "zotregistry.image.lint_failed");
        assert_eq!(lint.data["reference"], "v2");
    }
}

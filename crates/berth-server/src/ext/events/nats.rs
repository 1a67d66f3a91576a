//! A NATS sink, as zot's: each event is published on the sink's `channel`
//! subject in CloudEvents' structured mode (the whole event as JSON, what
//! the CloudEvents NATS binding and zot's SDK send), then flushed, so a
//! delivery counts only once the server has it. The connection is made at
//! the first delivery and made again after a failure (the delivery is
//! retried as an HTTP one is); `credentials` are a username and password,
//! a token, or a NATS credentials `file`.

use serde_json::json;
use tokio::sync::Mutex;

use super::{CloudEvent, DeliveryError, Naming};
use crate::config::SinkConfig;

pub(super) struct NatsSink {
    config: SinkConfig,
    client: Mutex<Option<async_nats::Client>>,
}

/// The event in CloudEvents' JSON format.
pub(super) fn structured(event: &CloudEvent, naming: &Naming) -> serde_json::Value {
    json!({
        "specversion": "1.0",
        "id": event.id,
        "source": naming.source(),
        "type": naming.type_of(event),
        "time": event.time,
        "datacontenttype": "application/json",
        "data": event.data,
    })
}

impl NatsSink {
    pub(super) fn new(config: SinkConfig) -> Self {
        Self {
            config,
            client: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<async_nats::Client, DeliveryError> {
        let mut options = async_nats::ConnectOptions::new()
            .name("berth")
            .connection_timeout(self.config.timeout.0)
            .request_timeout(Some(self.config.timeout.0));
        if let Some(c) = &self.config.credentials {
            if let Some(file) = &c.file {
                options = options.credentials_file(file).await.map_err(|e| {
                    DeliveryError::Nats(format!("credentials file {}: {e}", file.display()))
                })?;
            } else if let Some(token) = &c.token {
                options = options.token(token.clone());
            } else if let Some(user) = &c.username {
                options =
                    options.user_and_password(user.clone(), c.password.clone().unwrap_or_default());
            }
        }
        if let Some(tls) = &self.config.tls {
            options = options.require_tls(true);
            if let Some(ca) = &tls.cacertfile {
                options = options.add_root_certificates(ca.clone());
            }
            if let (Some(cert), Some(key)) = (&tls.certfile, &tls.keyfile) {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
        }
        options
            .connect(self.config.address.as_str())
            .await
            .map_err(|e| DeliveryError::Nats(format!("connecting: {e}")))
    }

    /// Publishes `event` and waits until the server has it.
    pub(super) async fn publish(
        &self,
        event: &CloudEvent,
        naming: &Naming,
    ) -> Result<(), DeliveryError> {
        let mut held = self.client.lock().await;
        let client = match held.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = self.connect().await?;
                *held = Some(c.clone());
                c
            }
        };
        let subject = self.config.channel.clone().unwrap_or_default();
        let body = structured(event, naming).to_string();
        let sent = async {
            client
                .publish(subject, body.into())
                .await
                .map_err(|e| DeliveryError::Nats(format!("publishing: {e}")))?;
            client
                .flush()
                .await
                .map_err(|e| DeliveryError::Nats(format!("flushing: {e}")))
        };
        let outcome = match tokio::time::timeout(self.config.timeout.0, sent).await {
            Ok(r) => r,
            Err(_) => Err(DeliveryError::Nats(
                "the server did not take it in time".into(),
            )),
        };
        if outcome.is_err() {
            // Connect again for the next attempt.
            *held = None;
        }
        outcome
    }
}

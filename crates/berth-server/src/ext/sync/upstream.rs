//! One configured upstream registry (`extensions.sync.registries[i]`):
//! a `berth-client` per URL, tried in order, with the registry's
//! credentials (from `credentialsFile`, or its credential helper, asked
//! before each call), certificates, retries and request bound; its
//! content rules.

use std::time::Duration;

use berth_client::{
    BlobStream, Client, ClientError, ClientOptions, ManifestHead, RawManifest, Referrer,
};
use berth_oci::Digest;

use super::SyncError;
use super::content::ContentRules;
use super::helper::Helper;
use super::upstream_files::{CertDir, Credentials};
use crate::config::SyncRegistry;

/// An upstream registry and how to reach it.
pub(super) struct Upstream {
    pub config: SyncRegistry,
    pub rules: ContentRules,
    /// One client per URL, in the config's order.
    clients: Vec<Client>,
    /// The credential helper, when one logs in in place of the
    /// credentials file.
    helper: Option<Helper>,
    name: String,
}

impl Upstream {
    /// Builds the clients of registry `index`.
    pub(super) fn new(
        index: usize,
        config: &SyncRegistry,
        credentials: Option<&Credentials>,
    ) -> Result<Self, SyncError> {
        let rules = ContentRules::new(&config.content)
            .map_err(|e| SyncError::Setup(format!("registries[{index}].content: {e}")))?;
        let certs = match &config.cert_dir {
            Some(dir) => Some(
                super::upstream_files::load_cert_dir(dir)
                    .map_err(|e| SyncError::Setup(format!("registries[{index}].certDir: {e}")))?,
            ),
            None => None,
        };
        let helper = match &config.credential_helper {
            Some(h) => Some(Helper::new(h, config.urls.len()).map_err(|e| {
                SyncError::Setup(format!("registries[{index}].credentialHelper: {e}"))
            })?),
            None => None,
        };
        let mut clients = Vec::new();
        for url in &config.urls {
            // A helper's logins take the place of the file's.
            let auth = credentials
                .filter(|_| helper.is_none())
                .and_then(|c| c.for_url(url))
                .map(|(u, p)| format!("{u}:{p}"));
            let options = client_options(config, certs.as_ref());
            let client = Client::with_options(url, auth.as_deref(), options)
                .map_err(|e| SyncError::Setup(format!("registries[{index}].urls: {url}: {e}")))?;
            clients.push(client);
        }
        let name = config.urls.first().cloned().unwrap_or_default();
        Ok(Self {
            config: config.clone(),
            rules,
            clients,
            helper,
            name,
        })
    }

    /// The first URL: how the log and the metrics name this upstream.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Runs `call` against each URL in turn until one answers: a
    /// connection failure or a server error moves on to the next mirror;
    /// an answer (found, not found, refused) is final.
    async fn first<T, F, Fut>(&self, call: F) -> Result<T, SyncError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut last = None;
        for (i, client) in self.clients.iter().enumerate() {
            if let Some(helper) = &self.helper {
                helper.refresh(i, client).await;
            }
            match call(client.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if e.status() == Some(http::StatusCode::UNAUTHORIZED) => {
                    if let Some(helper) = &self.helper {
                        helper.refused(i);
                    }
                    return Err(SyncError::upstream(client.base(), e));
                }
                Err(e) if moves_on(&e) => last = Some((client.base().to_string(), e)),
                Err(e) => return Err(SyncError::upstream(client.base(), e)),
            }
        }
        Err(match last {
            Some((url, e)) => SyncError::upstream(&url, e),
            None => SyncError::Setup("no upstream URL".into()),
        })
    }

    pub(super) async fn catalog(&self) -> Result<Vec<String>, SyncError> {
        self.first(|c| async move { c.catalog_all().await }).await
    }

    pub(super) async fn tags(&self, repo: &str) -> Result<Vec<String>, SyncError> {
        self.first(|c| {
            let name = c.upstream_repo(repo);
            async move { c.tags_all(&name).await }
        })
        .await
    }

    pub(super) async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<RawManifest>, SyncError> {
        self.first(|c| {
            let (name, reference) = (c.upstream_repo(repo), reference.to_string());
            async move { c.get_manifest_raw(&name, &reference).await }
        })
        .await
    }

    pub(super) async fn head(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, SyncError> {
        self.first(|c| {
            let (name, reference) = (c.upstream_repo(repo), reference.to_string());
            async move { c.head_manifest_digest(&name, &reference).await }
        })
        .await
    }

    pub(super) async fn blob_stream(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<BlobStream>, SyncError> {
        self.first(|c| {
            let (name, digest) = (c.upstream_repo(repo), digest.clone());
            async move { c.blob_stream(&name, &digest).await }
        })
        .await
    }

    pub(super) async fn referrers(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Vec<Referrer>, SyncError> {
        self.first(|c| {
            let (name, digest) = (c.upstream_repo(repo), digest.clone());
            async move { c.referrers(&name, &digest).await }
        })
        .await
    }
}

/// Whether an error is the mirror's (so the next URL is tried).
fn moves_on(e: &ClientError) -> bool {
    match e.status() {
        Some(s) => s.is_server_error(),
        None => matches!(e, ClientError::Transport(_)),
    }
}

fn client_options(config: &SyncRegistry, certs: Option<&CertDir>) -> ClientOptions {
    ClientOptions {
        accept_invalid_certs: !config.tls_verify,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        ca_certs_pem: certs.map(|c| c.ca_pem.clone()).unwrap_or_default(),
        identity_pem: certs.and_then(|c| c.identity_pem.clone()),
        max_retries: config.max_retries.unwrap_or(0),
        retry_delay: config.retry_delay.unwrap_or(Duration::from_secs(1)),
        max_retry_delay: config.max_retry_delay.unwrap_or(Duration::from_secs(30)),
        max_concurrent: Some(config.req_concurrent.max(1)),
        http1_only: config.disable_http2,
        max_per_second: config.req_per_sec,
        max_idle_per_host: config.max_idle_conns_per_host,
    }
}

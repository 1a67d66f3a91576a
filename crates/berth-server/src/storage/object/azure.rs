//! The Azure Blob Storage client of [`BucketStore`] (feature `azure`):
//! zot's `azure` keys (distribution's). The service is
//! `https://<accountname>.blob.<realm>` unless `serviceurl` names another;
//! an address whose host is an IP address or `localhost` (Azurite's, the
//! emulator's) is path-style, with the account as the path's first segment,
//! added when the URL has no path.

use object_store::azure::MicrosoftAzureBuilder;

use super::{BucketSettings, BucketStore, Clients, Limits};
use crate::storage::StorageResult;
use crate::storage::locks::RepoLocks;

/// How Berth signs its requests to Azure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AzureCredentials {
    /// The account's shared key (`accountkey`).
    SharedKey(String),
    /// A service principal (`credentials.type: client_secret`).
    ClientSecret {
        client_id: String,
        tenant_id: String,
        secret: String,
    },
    /// What the environment offers (`credentials.type:
    /// default_credentials`): `AZURE_*` variables, workload or managed
    /// identity.
    #[default]
    Default,
}

/// zot's `storage.storageDriver` keys for `azure`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureOptions {
    pub settings: BucketSettings,
    pub account_name: String,
    pub container: String,
    pub credentials: AzureCredentials,
    /// The domain of the service (default `core.windows.net`).
    pub realm: Option<String>,
    /// The service's URL, replacing `https://<account>.blob.<realm>`.
    pub service_url: Option<String>,
}

/// The blob service's URL, path-style (account in the path) for an
/// emulator's address.
fn service_url(opts: &AzureOptions) -> String {
    let Some(url) = &opts.service_url else {
        let realm = opts.realm.as_deref().unwrap_or("core.windows.net");
        return format!("https://{}.blob.{realm}", opts.account_name);
    };
    let url = url.trim_end_matches('/');
    let Some((_, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
        .trim_matches(['[', ']']);
    let emulator = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok();
    if emulator && path.is_empty() {
        format!("{url}/{}", opts.account_name)
    } else {
        url.to_string()
    }
}

impl BucketStore {
    /// Connects to an Azure Blob container (no request is made until the
    /// first use).
    pub fn open_azure(opts: &AzureOptions, locks: RepoLocks) -> StorageResult<Self> {
        let location = format!(
            "azure://{}/{}/{}",
            opts.account_name,
            opts.container,
            opts.settings.root_directory.trim_matches('/')
        );
        let url = service_url(opts);
        // Without credentials in the config, the environment's
        // (`AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_CLIENT_ID`/`_SECRET`/
        // `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`…), as the Azure
        // SDKs read it; the config's account, container and service win.
        let base = match opts.credentials {
            AzureCredentials::Default => MicrosoftAzureBuilder::from_env(),
            _ => MicrosoftAzureBuilder::new(),
        };
        let mut b = base
            .with_account(&opts.account_name)
            .with_container_name(&opts.container)
            .with_endpoint(url.clone());
        b = match &opts.credentials {
            AzureCredentials::SharedKey(key) => b.with_access_key(key),
            AzureCredentials::ClientSecret {
                client_id,
                tenant_id,
                secret,
            } => b.with_client_secret_authorization(client_id, secret, tenant_id),
            AzureCredentials::Default => b,
        };
        let allow_http = url.starts_with("http://");
        let limits = Limits {
            max_copy: None,
            max_parts: 50_000,
        };
        let clients = Clients::build(location, limits, allow_http, false, |options, retry| {
            b.clone()
                .with_client_options(options)
                .with_retry(retry)
                .build()
        })?;
        Ok(Self::new(clients, &opts.settings, locks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: Option<&str>) -> String {
        service_url(&AzureOptions {
            account_name: "acct".into(),
            service_url: url.map(str::to_string),
            ..Default::default()
        })
    }

    #[test]
    fn service_urls() {
        assert_eq!(with_url(None), "https://acct.blob.core.windows.net");
        assert_eq!(
            with_url(Some("http://127.0.0.1:10000")),
            "http://127.0.0.1:10000/acct"
        );
        assert_eq!(
            with_url(Some("http://localhost:10000/")),
            "http://localhost:10000/acct"
        );
        assert_eq!(
            with_url(Some("http://127.0.0.1:10000/other")),
            "http://127.0.0.1:10000/other"
        );
        assert_eq!(
            with_url(Some("https://acct.blob.example.net")),
            "https://acct.blob.example.net"
        );
    }
}

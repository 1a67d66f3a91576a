//! The `ecr` helper: a registry login from AWS ECR's
//! `GetAuthorizationToken`, as zot does: the token is base64 of
//! `AWS:<password>`; it lives twelve hours and is replaced an hour before
//! it expires.
//!
//! An ECR URL (`<account>.dkr.ecr.<region>.amazonaws.com`, `ecr-fips`
//! too) names the region asked; any other URL (a name of one's own in
//! front of ECR, a test) is asked in AWS's own region (`AWS_REGION`, the
//! profile). No registry is named in the call (AWS has deprecated it: the
//! token opens every registry the credentials may read).
//!
//! The client is the AWS SDK's, configured as the DynamoDB metadata
//! store's: AWS's credential chain (the environment, profile files, web
//! identity, ECS and instance roles) and AWS's endpoint settings
//! (`AWS_ENDPOINT_URL_ECR` or `AWS_ENDPOINT_URL` for a local server).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::config::Region;
use base64::Engine;

use super::{HelperError, Login, Source};

/// ECR's tokens are replaced this long before they expire (zot's).
const WINDOW: Duration = Duration::from_secs(3600);
/// The time limit of one call.
const TIMEOUT: Duration = Duration::from_secs(20);

pub(super) struct Ecr {
    /// A client per region (`None`: AWS's own), made on first use.
    clients: tokio::sync::Mutex<HashMap<Option<String>, Client>>,
}

/// The account and region an ECR registry's `host[:port]` names.
pub(super) fn account_and_region(host: &str) -> Option<(String, String)> {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [account, "dkr", ecr, region, "amazonaws", "com", rest @ ..]
            if matches!(*ecr, "ecr" | "ecr-fips")
                && matches!(rest, [] | ["cn"])
                && !account.is_empty()
                && account.chars().all(|c| c.is_ascii_digit())
                && !region.is_empty() =>
        {
            Some((account.to_string(), region.to_string()))
        }
        _ => None,
    }
}

impl Ecr {
    pub(super) fn new() -> Self {
        Self {
            clients: tokio::sync::Mutex::default(),
        }
    }

    async fn client(&self, region: Option<&str>) -> Client {
        let mut clients = self.clients.lock().await;
        let key = region.map(str::to_string);
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(TIMEOUT)
                .operation_timeout(TIMEOUT)
                .build(),
        );
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_string()));
        }
        let client = Client::new(&loader.load().await);
        clients.insert(key, client.clone());
        client
    }
}

/// The login in a `GetAuthorizationToken` token: base64 of `user:password`.
pub(super) fn decode(token: &str) -> Result<(String, String), HelperError> {
    let bad = |why: &str| HelperError::Fetch(format!("ECR answered a token that is {why}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad("not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not text"))?;
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            Ok((user.to_string(), password.to_string()))
        }
        _ => Err(bad("not user:password")),
    }
}

#[async_trait::async_trait]
impl Source for Ecr {
    async fn login(&self, url: &str) -> Result<Login, HelperError> {
        let host = crate::ext::sync::upstream_files::host_of(url).unwrap_or_default();
        // The token opens every registry the credentials may read: the
        // account named matters only for where to ask (its region).
        let region = account_and_region(&host).map(|(_, region)| region);
        let client = self.client(region.as_deref()).await;
        let out = client.get_authorization_token().send().await.map_err(|e| {
            HelperError::Fetch(format!(
                "ECR GetAuthorizationToken: {}",
                aws_sdk_ecr::error::DisplayErrorContext(&e)
            ))
        })?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| HelperError::Fetch("ECR answered no authorization data".into()))?;
        let token = data
            .authorization_token()
            .ok_or_else(|| HelperError::Fetch("ECR answered no authorization token".into()))?;
        let (user, password) = decode(token)?;
        Ok(Login {
            user,
            password,
            expires: data
                .expires_at()
                .and_then(|t| SystemTime::try_from(*t).ok()),
        })
    }

    fn window(&self) -> Duration {
        WINDOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_name_their_account_and_region() {
        let named = |h: &str| account_and_region(h);
        let want = |a: &str, r: &str| Some((a.to_string(), r.to_string()));
        assert_eq!(
            named("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            want("123456789012", "eu-west-1")
        );
        assert_eq!(
            named("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com:443"),
            want("123456789012", "us-east-1")
        );
        assert_eq!(
            named("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            want("123456789012", "cn-north-1")
        );
        for other in [
            "127.0.0.1:5000",
            "registry.example.com",
            "public.ecr.aws",
            "acct.dkr.ecr.eu-west-1.amazonaws.com",
            "123.dkr.ecr.eu-west-1.amazonaws.com.evil.test",
        ] {
            assert_eq!(named(other), None, "{other}");
        }
    }

    #[test]
    fn tokens_decode_to_a_login() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            decode(&enc("AWS:eyJwYXlsb2Fk:with:colons")).expect("decodes"),
            ("AWS".to_string(), "eyJwYXlsb2Fk:with:colons".to_string())
        );
        for bad in ["%%%".to_string(), enc("no-colon"), enc("AWS:")] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
    }
}

//! The verifying keys of classic bearer tokens, from AWS Secrets Manager
//! (`http.auth.bearer.awsSecretsManager`, feature `secretsmanager`).
//!
//! The secret's `SecretString` is a JSON object from key id to key: a PEM
//! public key (or certificate), or a JWKS document holding one key (a lone
//! JWK is taken too); RSA, ECDSA (P-256, P-384) and Ed25519. A token names
//! its key by `kid`. (A P-521 key is read, but ES512 tokens are not
//! verified: the JWT library has no ES512; such a token is refused.)
//!
//! Nothing is fetched at start-up. The keys are read on first use and used
//! until `refreshInterval` has passed, then read again by the next request
//! that needs them (one at a time; the others use the keys at hand). When
//! the secret cannot be read, or what it holds is not all usable keys,
//! the last good keys go on serving for up to [`GRACE`] past their
//! deadline (a broken rotation or an AWS outage does not lock every client
//! out at once); without such keys the request is answered 503. The next
//! read is tried a few seconds later.
//!
//! The client is the AWS SDK's, configured from the environment as the
//! metadata store's DynamoDB client is: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` for another
//! endpoint (a local test server). Profiles and instance roles are not read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};

use super::{AuthConfigError, TokenError};
use crate::config::AwsSecretsManagerConfig;

/// How long past their deadline the last good keys serve while the secret
/// cannot be read.
pub const GRACE: Duration = Duration::from_secs(600);
/// The wait before the secret is read again after a failed read.
const RETRY: Duration = Duration::from_secs(5);
/// The time limit of one read of the secret.
const TIMEOUT: Duration = Duration::from_secs(10);

const SERVICE: &str = "AWS Secrets Manager";
const KEY: &str = "http.auth.bearer.awsSecretsManager";

type KeyMap = HashMap<String, DecodingKey>;

#[derive(Default)]
struct State {
    keys: Option<Arc<KeyMap>>,
    /// When the keys at hand were read.
    fetched: Option<Instant>,
    failed: Option<Instant>,
}

/// The keys of one secret.
pub struct SecretKeys {
    client: Client,
    secret: String,
    refresh: Duration,
    state: RwLock<State>,
    /// One read at a time (a std lock would be held across it).
    fetching: tokio::sync::Mutex<()>,
}

impl SecretKeys {
    /// The client for `config`; nothing is read yet.
    pub fn new(config: &AwsSecretsManagerConfig) -> Result<Self, AuthConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(access), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(AuthConfigError::Needs {
                key: KEY,
                needs: "AWS credentials in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            });
        };
        let credentials = Credentials::new(
            access,
            secret,
            env("AWS_SESSION_TOKEN"),
            None,
            "berth-environment",
        );
        let timeouts = aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
            .connect_timeout(TIMEOUT)
            .operation_timeout(TIMEOUT)
            .build();
        let mut builder = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .timeout_config(timeouts);
        if let Some(endpoint) =
            env("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| env("AWS_ENDPOINT_URL"))
        {
            builder = builder.endpoint_url(endpoint);
        }
        tracing::info!(
            region = %config.region,
            secret = %config.secret_name,
            refresh = ?config.refresh(),
            "bearer token keys from AWS Secrets Manager"
        );
        Ok(Self {
            client: Client::from_conf(builder.build()),
            secret: config.secret_name.clone(),
            refresh: config.refresh(),
            state: RwLock::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The key named `kid`.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        let keys = self.keys().await?;
        keys.get(kid)
            .cloned()
            .ok_or_else(|| TokenError::invalid(format!("no key {kid} in the secret")))
    }

    /// The keys at hand, read again when due.
    async fn keys(&self) -> Result<Arc<KeyMap>, TokenError> {
        let (usable, due) = self.snapshot();
        if let (Some(keys), false) = (&usable, due) {
            return Ok(keys.clone());
        }
        let guard = match &usable {
            // Someone else is reading: use the keys at hand.
            Some(keys) => match self.fetching.try_lock() {
                Ok(g) => g,
                Err(_) => return Ok(keys.clone()),
            },
            None => self.fetching.lock().await,
        };
        // Whoever held the lock may have read the secret, or failed to.
        let (usable, due) = self.snapshot();
        if !due {
            drop(guard);
            return usable.ok_or_else(|| self.unavailable("the last read failed; retrying soon"));
        }
        let read = self.read().await;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match read {
            Ok(keys) => {
                let keys = Arc::new(keys);
                state.keys = Some(keys.clone());
                state.fetched = Some(Instant::now());
                state.failed = None;
                Ok(keys)
            }
            Err(cause) => {
                state.failed = Some(Instant::now());
                tracing::error!(secret = %self.secret, error = %cause, "bearer keys: reading the secret failed");
                usable.ok_or_else(|| self.unavailable(&cause))
            }
        }
    }

    fn unavailable(&self, cause: &str) -> TokenError {
        TokenError::Unavailable {
            service: SERVICE,
            cause: format!("secret {}: {cause}", self.secret),
        }
    }

    /// The keys still usable (within their interval, or the grace after
    /// it), and whether a read is due.
    fn snapshot(&self) -> (Option<Arc<KeyMap>>, bool) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let age = state.fetched.map(|t| t.elapsed());
        let usable = match age {
            Some(age) if age < self.refresh + GRACE => state.keys.clone(),
            _ => None,
        };
        let stale = age.is_none_or(|age| age >= self.refresh);
        let retry_ok = state.failed.is_none_or(|t| t.elapsed() >= RETRY);
        (usable, stale && retry_ok)
    }

    /// One read of the secret into keys; any unusable key fails it all.
    async fn read(&self) -> Result<KeyMap, String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret)
            .send()
            .await
            .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())?;
        let text = out
            .secret_string()
            .ok_or("the secret has no SecretString (binary secrets are not read)")?;
        parse_secret(text)
    }
}

/// The keys of a `SecretString`.
pub fn parse_secret(text: &str) -> Result<KeyMap, String> {
    let raw: HashMap<String, String> = serde_json::from_str(text)
        .map_err(|e| format!("the secret is not a JSON object of key id to key: {e}"))?;
    if raw.is_empty() {
        return Err("the secret holds no keys".into());
    }
    raw.into_iter()
        .map(|(kid, value)| {
            parse_key(&value)
                .map(|k| (kid.clone(), k))
                .map_err(|e| format!("key {kid}: {e}"))
        })
        .collect()
}

/// One key: PEM, or a JWKS of one key, or a JWK.
fn parse_key(value: &str) -> Result<DecodingKey, String> {
    let value = value.trim();
    if value.starts_with('{') {
        let jwk: Jwk = match serde_json::from_str::<JwkSet>(value) {
            Ok(mut set) if set.keys.len() == 1 => set.keys.remove(0),
            Ok(set) => return Err(format!("a JWKS of {} keys, not one", set.keys.len())),
            Err(_) => serde_json::from_str(value).map_err(|e| format!("not a JWKS or JWK: {e}"))?,
        };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err("a symmetric key, not a public key".into());
        }
        return DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string());
    }
    super::bearer::pem_key(value.as_bytes())
        .ok_or_else(|| "no RSA, ECDSA or Ed25519 public key or certificate in the PEM".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_or_fail_whole() {
        let ec = rcgen::KeyPair::generate().expect("key");
        let pem = ec.public_key_pem();
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed key");
        let secret = serde_json::json!({"a": pem, "b": ed.public_key_pem()}).to_string();
        let keys = parse_secret(&secret).expect("parses");
        assert_eq!(keys.len(), 2);
        for bad in [
            "[]".to_string(),
            "{}".to_string(),
            serde_json::json!({"a": pem, "b": "not a key"}).to_string(),
            serde_json::json!({"a": "{\"keys\": []}"}).to_string(),
            serde_json::json!({"a": "{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}"}).to_string(),
        ] {
            assert!(parse_secret(&bad).is_err(), "{bad}");
        }
    }
}

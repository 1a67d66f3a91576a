//! `http.auth.bearer`: zot's schema for bearer tokens — classic Docker
//! registry tokens (`realm`, `service`, and their verifying key from `cert`
//! or `awsSecretsManager`) and workload identity tokens (`oidc`).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::ConfigError;
use super::value::DurationValue;

/// `http.auth.bearer`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BearerConfig {
    /// The token server's URL, sent to clients in the challenge.
    #[serde(default)]
    pub realm: Option<String>,
    /// This registry's name at the token server; a classic token's `aud`
    /// must be it.
    #[serde(default)]
    pub service: Option<String>,
    /// PEM certificate (or public key) whose key signs classic tokens.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The keys that sign classic tokens, from AWS Secrets Manager
    /// (instead of `cert`).
    #[serde(default)]
    pub aws_secrets_manager: Option<AwsSecretsManagerConfig>,
    /// OIDC issuers whose tokens name a user (workload identity); an array,
    /// or one object as older zot wrote it.
    #[serde(default, deserialize_with = "one_or_many")]
    pub oidc: Vec<OidcProviderConfig>,
    /// The token service that Berth's own token endpoint
    /// (`/zot/auth/token`) forwards the requests it does not own to.
    #[serde(default)]
    pub upstream_token_endpoint: Option<UpstreamTokenEndpoint>,
}

/// `http.auth.bearer.upstreamTokenEndpoint`: an existing Docker token
/// service kept beside Berth's own token endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamTokenEndpoint {
    /// The service's token URL; HTTPS unless `allowInsecureHttp`.
    pub realm: String,
    /// The `service` sent to it (the name this registry has there); when
    /// empty, the client's own is passed on.
    #[serde(default)]
    pub service: String,
    /// Whether an `http://` realm is allowed (default false).
    #[serde(default, rename = "allowInsecureHttp")]
    pub allow_insecure_http: bool,
}

/// `http.auth.bearer.awsSecretsManager`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsSecretsManagerConfig {
    /// The AWS region of the secret.
    pub region: String,
    /// The secret's name or ARN. Its `SecretString` is a JSON object from
    /// key id (`kid`) to a PEM public key or a JWKS of one key.
    pub secret_name: String,
    /// How long fetched keys are used before the secret is read again
    /// (default, and when 0: one minute).
    #[serde(default)]
    pub refresh_interval: Option<DurationValue>,
}

impl AwsSecretsManagerConfig {
    /// `refreshInterval`, defaulted.
    pub fn refresh(&self) -> std::time::Duration {
        match self.refresh_interval {
            Some(DurationValue(d)) if !d.is_zero() => d,
            _ => std::time::Duration::from_secs(60),
        }
    }
}

/// One entry of `http.auth.bearer.oidc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcProviderConfig {
    /// The issuer URL: `iss` of its tokens, and where
    /// `/.well-known/openid-configuration` is found.
    #[serde(default)]
    pub issuer: String,
    /// A token's `aud` must name one of them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// CEL expressions over the token's claims: the user name, groups,
    /// variables and validations.
    #[serde(default)]
    pub claim_mapping: ClaimMappingConfig,
    /// PEM CA certificates, the only roots trusted for the issuer's HTTPS.
    #[serde(default)]
    pub certificate_authority: Option<String>,
    /// A file of them (instead of `certificateAuthority`).
    #[serde(default)]
    pub certificate_authority_file: Option<PathBuf>,
    /// Accept tokens whose `iss` is not `issuer` (default false).
    #[serde(default)]
    pub skip_issuer_verification: bool,
}

impl OidcProviderConfig {
    /// `audiences`, trimmed.
    pub fn trimmed_audiences(&self) -> Vec<String> {
        self.audiences
            .iter()
            .map(|a| a.trim().to_string())
            .collect()
    }
}

/// `claimMapping` of an OIDC issuer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimMappingConfig {
    /// Named values computed in order; each may use `claims` and earlier
    /// `vars`.
    #[serde(default)]
    pub variables: Vec<ClaimVariable>,
    /// Boolean expressions a token must all satisfy.
    #[serde(default)]
    pub validations: Vec<ClaimValidation>,
    /// The user name (default `claims.iss + '/' + claims.sub`).
    #[serde(default)]
    pub username: Option<String>,
    /// The user's groups, a list of strings (default: none).
    #[serde(default)]
    pub groups: Option<String>,
}

/// One of `claimMapping.variables`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimVariable {
    pub name: String,
    pub expression: String,
}

/// One of `claimMapping.validations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimValidation {
    pub expression: String,
    /// Logged when the expression is false.
    #[serde(default)]
    pub message: String,
}

/// An array, or a lone object taken as an array of one.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OidcProviderConfig>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<OidcProviderConfig>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of OIDC issuers, or one")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let one: OidcProviderConfig =
                Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok(vec![one])
        }
    }
    d.deserialize_any(Visitor)
}

impl BearerConfig {
    /// What can be checked without reading files or the network; the CEL
    /// expressions are compiled here, so a bad one is refused at load.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        const AT: &str = "http.auth.bearer";
        if self.cert.is_some() && self.aws_secrets_manager.is_some() {
            return Err(ConfigError::key(
                format!("{AT}.awsSecretsManager"),
                "contradicts cert: the token-verifying keys come from one or the other",
            ));
        }
        let classic = self.cert.is_some() || self.aws_secrets_manager.is_some();
        if classic {
            for (key, value) in [("realm", &self.realm), ("service", &self.service)] {
                if value.as_deref().is_none_or(str::is_empty) {
                    return Err(ConfigError::key(
                        format!("{AT}.{key}"),
                        "needed with cert or awsSecretsManager (classic bearer tokens)",
                    ));
                }
            }
        }
        if let Some(asm) = &self.aws_secrets_manager {
            if !cfg!(feature = "secretsmanager") {
                return Err(ConfigError::key(
                    format!("{AT}.awsSecretsManager"),
                    "this berth was built without the \"secretsmanager\" feature",
                ));
            }
            for (key, value) in [("region", &asm.region), ("secretName", &asm.secret_name)] {
                if value.trim().is_empty() {
                    return Err(ConfigError::key(
                        format!("{AT}.awsSecretsManager.{key}"),
                        "must not be empty",
                    ));
                }
            }
        }
        for (i, p) in self.oidc.iter().enumerate() {
            let at = format!("{AT}.oidc[{i}]");
            if p.issuer.trim().is_empty() {
                return Err(ConfigError::key(format!("{at}.issuer"), "required"));
            }
            // Trimmed where they are used (`OidcProviderConfig::audiences`).
            if p.audiences.is_empty() || p.audiences.iter().any(|a| a.trim().is_empty()) {
                return Err(ConfigError::key(
                    format!("{at}.audiences"),
                    "at least one, and none empty",
                ));
            }
            if p.certificate_authority.is_some() && p.certificate_authority_file.is_some() {
                return Err(ConfigError::key(
                    format!("{at}.certificateAuthorityFile"),
                    "contradicts certificateAuthority; set one",
                ));
            }
            crate::auth::oidc::ClaimMapping::compile(&p.claim_mapping)
                .map_err(|e| ConfigError::key(format!("{at}.claimMapping.{}", e.key), e.message))?;
        }
        if let Some(up) = &self.upstream_token_endpoint {
            up.check()?;
        }
        if !classic && self.oidc.is_empty() {
            return Err(ConfigError::key(
                AT,
                "needs cert or awsSecretsManager (with realm and service), or oidc",
            ));
        }
        Ok(())
    }

    /// Whether classic tokens (with an `access` claim) are accepted.
    pub fn classic(&self) -> bool {
        self.cert.is_some() || self.aws_secrets_manager.is_some()
    }
}

impl UpstreamTokenEndpoint {
    /// An absolute URL, HTTPS unless plain HTTP is allowed.
    fn check(&self) -> Result<(), ConfigError> {
        const AT: &str = "http.auth.bearer.upstreamTokenEndpoint";
        let url = reqwest::Url::parse(&self.realm).map_err(|e| {
            ConfigError::key(format!("{AT}.realm"), format!("not an absolute URL: {e}"))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http => {}
            "http" => {
                return Err(ConfigError::key(
                    format!("{AT}.realm"),
                    "must use https unless allowInsecureHttp is true",
                ));
            }
            other => {
                return Err(ConfigError::key(
                    format!("{AT}.realm"),
                    format!("scheme {other:?}: must be https (or http with allowInsecureHttp)"),
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::key(format!("{AT}.realm"), "has no host"));
        }
        Ok(())
    }
}

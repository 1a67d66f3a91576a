//! `http.auth`: zot's schema for authentication.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use super::bearer::BearerConfig;

/// `http.auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    /// Users and bcrypt password hashes, one `user:hash` a line; the file
    /// is re-read when it changes.
    #[serde(default)]
    pub htpasswd: Option<HtpasswdConfig>,
    /// Users, passwords and groups from an LDAP directory.
    #[serde(default)]
    pub ldap: Option<LdapConfig>,
    /// JWTs from an external token server (Docker token authentication).
    #[serde(default)]
    pub bearer: Option<BearerConfig>,
    /// API keys (`/zot/auth/apikey`), usable as the password in Basic
    /// authentication (default false).
    #[serde(default)]
    pub apikey: bool,
    /// How a client certificate names its holder (with `http.tls.cacert`).
    #[serde(default)]
    pub mtls: Option<MtlsConfig>,
    /// Seconds a failed login waits before it is answered (default 0).
    #[serde(default)]
    pub fail_delay: u64,
    /// Login in a browser through OpenID Connect providers.
    #[serde(default)]
    pub openid: Option<super::openid::OpenIdConfig>,
    /// The keys browser session cookies are signed (and with
    /// `encryptKey`, encrypted) with; default: random at each start.
    #[serde(default)]
    pub session_keys_file: Option<PathBuf>,
    /// Where sessions are kept: `local` (default) or `redis`.
    #[serde(default)]
    pub session_driver: Option<super::openid::SessionDriverConfig>,
    /// `Secure` session cookies without TLS (behind a TLS proxy); with
    /// TLS they always are.
    #[serde(default)]
    pub secure_session: bool,
}

impl AuthConfig {
    /// What can be checked without reading files; `has_client_ca`: whether
    /// `http.tls.cacert` is set.
    pub(super) fn check(&self, has_client_ca: bool) -> Result<(), ConfigError> {
        if self.mtls.is_some() && !has_client_ca {
            return Err(ConfigError::key(
                "http.auth.mtls",
                "needs http.tls.cacert, the CA of client certificates",
            ));
        }
        if self.apikey && self.htpasswd.is_none() && self.ldap.is_none() && !self.openid_providers()
        {
            return Err(ConfigError::key(
                "http.auth.apikey",
                "needs htpasswd, ldap or openid, for users to log in and make keys",
            ));
        }
        if let Some(l) = &self.ldap {
            if l.insecure && l.start_tls {
                return Err(ConfigError::key(
                    "http.auth.ldap.startTLS",
                    "contradicts insecure: true (plain LDAP); choose one",
                ));
            }
            if l.credentials_file.is_some() && (l.bind_dn.is_some() || l.bind_password.is_some()) {
                return Err(ConfigError::key(
                    "http.auth.ldap.bindDN",
                    "contradicts credentialsFile (which holds the bind user); choose one",
                ));
            }
            if l.bind_password.is_some() && l.bind_dn.is_none() {
                return Err(ConfigError::key(
                    "http.auth.ldap.bindPassword",
                    "needs bindDN, the user it is the password of",
                ));
            }
            if l.skip_verify && l.ca_cert.is_some() {
                return Err(ConfigError::key(
                    "http.auth.ldap.skipVerify",
                    "contradicts caCert (which is then not used to verify); choose one",
                ));
            }
        }
        if let Some(b) = &self.bearer {
            b.check()?;
        }
        if let Some(m) = &self.mtls {
            crate::auth::mtls::MtlsIdentity::new(m)
                .map_err(|e| ConfigError::key(e.key(), e.message()))?;
        }
        Ok(())
    }
}

/// `http.auth.htpasswd`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtpasswdConfig {
    pub path: PathBuf,
}

/// `http.auth.ldap`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LdapConfig {
    /// The directory's host name or address.
    pub address: String,
    /// Its port (default 389).
    #[serde(default = "default_ldap_port")]
    pub port: u16,
    /// Upgrade the connection with StartTLS (default false).
    #[serde(default, rename = "startTLS")]
    pub start_tls: bool,
    /// Plain LDAP with no TLS at all (default false: `ldaps://`
    /// unless `startTLS`).
    #[serde(default)]
    pub insecure: bool,
    /// Accept any server certificate (default false).
    #[serde(default)]
    pub skip_verify: bool,
    /// CA certificates for the directory's certificate (default: the
    /// system's roots).
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Search the whole subtree under `baseDN` (default false: one level).
    #[serde(default)]
    pub subtree_search: bool,
    /// Where users are looked up.
    #[serde(rename = "baseDN")]
    pub base_dn: String,
    /// The attribute holding a user's login name, e.g. `uid`.
    pub user_attribute: String,
    /// An extra LDAP filter users must match, e.g. `(objectClass=person)`.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// The attribute of a user listing their groups, e.g. `memberOf`; its
    /// values (full DNs for `memberOf`) are the group names policies use
    /// (default: none, so no groups come from LDAP).
    #[serde(default)]
    pub user_group_attribute: Option<String>,
    /// JSON file with the bind user: `{"bindDN": "...", "bindPassword":
    /// "..."}` (default: none, an anonymous bind).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// The bind user written in the config itself, as zot 1.x had it
    /// (not with `credentialsFile`).
    #[serde(default, rename = "bindDN")]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_password: Option<String>,
}

fn default_ldap_port() -> u16 {
    389
}

/// `http.auth.mtls`: which part of a client certificate (verified against
/// `http.tls.cacert`) names the caller.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MtlsConfig {
    /// Tried in order, the first present wins: `CommonName` (`CN`),
    /// `Subject` (`DN`, RFC 2253 as Go prints it), `Email`
    /// (`rfc822name`), `URI` (`URL`), `DNSName` (`DNS`); default
    /// `["CommonName"]`.
    #[serde(default)]
    pub identity_attributes: Vec<String>,
    /// For `URI`: a regular expression whose first group is the identity
    /// (default: the whole URI).
    #[serde(default)]
    pub uri_san_pattern: Option<String>,
    /// Which URI SAN to use (default 0, the first).
    #[serde(default)]
    pub uri_san_index: usize,
    /// Which DNS SAN to use (default 0).
    #[serde(default)]
    pub dns_san_index: usize,
    /// Which email SAN to use (default 0).
    #[serde(default)]
    pub email_san_index: usize,
}

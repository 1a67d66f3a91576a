//! LDAP authentication (`http.auth.ldap`), as zot does it: bind as the
//! configured service user, search `baseDN` for exactly one entry whose
//! `userAttribute` is the login name (and that matches `userFilter`), then
//! bind as that entry with the given password. The values of
//! `userGroupAttribute` on the entry (e.g. `memberOf` DNs) become the
//! caller's groups for access control.
//!
//! A successful login is remembered for [`REMEMBER`], keyed by the user and
//! a salted hash of the password, so a client's burst of requests costs one
//! round of binds, not one per request; failures are never remembered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::AuthConfigError;
use crate::config::LdapConfig;

/// How long a successful login is remembered.
pub const REMEMBER: Duration = Duration::from_secs(30);
/// How long a directory has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the directory could not answer a login or a look-up.
#[derive(Debug, thiserror::Error)]
enum DirectoryError {
    #[error("{0}")]
    Connect(#[source] ldap3::LdapError),
    #[error("bind as {dn}: {source}")]
    ServiceBind {
        dn: String,
        #[source]
        source: ldap3::LdapError,
    },
    #[error("search {base}: {source}")]
    Search {
        base: String,
        #[source]
        source: ldap3::LdapError,
    },
    #[error("{0}")]
    UserBind(#[source] ldap3::LdapError),
}

/// `credentialsFile`: the service user Berth searches as.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BindCredentials {
    #[serde(rename = "bindDN")]
    bind_dn: String,
    bind_password: String,
}

/// A user the directory knows: the name as the directory spells it, and
/// the groups it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUser {
    pub name: String,
    pub groups: Vec<String>,
}

/// A configured directory.
pub struct Ldap {
    config: LdapConfig,
    url: String,
    bind: Option<BindCredentials>,
    tls: Option<Arc<rustls::ClientConfig>>,
    salt: [u8; 16],
    /// Recent logins, by the name typed: the salted password hash and the
    /// user, for [`REMEMBER`].
    remembered: moka::sync::Cache<String, (Vec<u8>, LdapUser)>,
    /// Recent look-ups (for API keys), by the name, for [`REMEMBER`].
    looked_up: moka::sync::Cache<String, LdapUser>,
}

/// A cache whose entries live [`REMEMBER`] from their insertion.
fn remember<V: Clone + Send + Sync + 'static>() -> moka::sync::Cache<String, V> {
    moka::sync::Cache::builder().time_to_live(REMEMBER).build()
}

impl Ldap {
    /// Reads the credentials file and CA certificates; errors name the key.
    pub fn load(config: &LdapConfig) -> Result<Self, AuthConfigError> {
        const KEY: &str = "http.auth.ldap.credentialsFile";
        let bind = match &config.credentials_file {
            Some(path) => {
                let text =
                    std::fs::read(path).map_err(|e| AuthConfigError::unreadable(KEY, path, e))?;
                Some(serde_json::from_slice(&text).map_err(|e| {
                    AuthConfigError::bad_file(
                        KEY,
                        path,
                        format!("{e} (want {{\"bindDN\": …, \"bindPassword\": …}})"),
                    )
                })?)
            }
            // zot 1.x's inline bind user.
            None => config.bind_dn.as_ref().map(|dn| BindCredentials {
                bind_dn: dn.clone(),
                bind_password: config.bind_password.clone().unwrap_or_default(),
            }),
        };
        let tls = match &config.ca_cert {
            Some(path) => Some(client_tls(path)?),
            None => None,
        };
        let scheme = if config.insecure || config.start_tls {
            "ldap"
        } else {
            "ldaps"
        };
        let host = if config.address.contains(':') && !config.address.starts_with('[') {
            format!("[{}]", config.address)
        } else {
            config.address.clone()
        };
        Ok(Self {
            url: format!("{scheme}://{host}:{}", config.port),
            config: config.clone(),
            bind,
            tls,
            salt: *uuid::Uuid::new_v4().as_bytes(),
            remembered: remember(),
            looked_up: remember(),
        })
    }

    fn password_digest(&self, password: &str) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(password.as_bytes());
        h.finalize().to_vec()
    }

    /// The user when `user` and `password` log in, `None` when they do
    /// not (or the directory cannot be reached: logged).
    pub async fn verify(&self, user: &str, password: &str) -> Option<LdapUser> {
        // An empty password would be an unauthenticated bind, which LDAP
        // servers accept: never a login.
        if user.is_empty() || password.is_empty() {
            return None;
        }
        let digest = self.password_digest(password);
        if let Some((known, found)) = self.remembered.get(user)
            && known == digest
        {
            return Some(found);
        }
        match self.login(user, Some(password)).await {
            Ok(Some(found)) => {
                self.remembered
                    .insert(user.to_string(), (digest, found.clone()));
                Some(found)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "http.auth.ldap: directory error");
                None
            }
        }
    }

    /// Whether the directory still has `user`, and their groups now (no
    /// password: for API keys, whose owner may have left or changed
    /// groups). Remembered for [`REMEMBER`].
    pub async fn lookup(&self, user: &str) -> Option<LdapUser> {
        if user.is_empty() {
            return None;
        }
        if let Some(found) = self.looked_up.get(user) {
            return Some(found);
        }
        match self.login(user, None).await {
            Ok(Some(found)) => {
                self.looked_up.insert(user.to_string(), found.clone());
                Some(found)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "http.auth.ldap: directory error");
                None
            }
        }
    }

    fn filter(&self, user: &str) -> String {
        let own = format!(
            "({}={})",
            self.config.user_attribute,
            ldap3::ldap_escape(user)
        );
        match self.config.user_filter.as_deref().map(str::trim) {
            Some(extra) if !extra.is_empty() => {
                let extra = if extra.starts_with('(') {
                    extra.to_string()
                } else {
                    format!("({extra})")
                };
                format!("(&{own}{extra})")
            }
            _ => own,
        }
    }

    /// Finds the one entry of `user`; with `password`, binds as it too.
    async fn login(
        &self,
        user: &str,
        password: Option<&str>,
    ) -> Result<Option<LdapUser>, DirectoryError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(TIMEOUT)
            .set_starttls(self.config.start_tls && !self.config.insecure)
            .set_no_tls_verify(self.config.skip_verify);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(DirectoryError::Connect)?;
        ldap3::drive!(conn);
        ldap.with_timeout(TIMEOUT);
        if let Some(bind) = &self.bind {
            ldap.simple_bind(&bind.bind_dn, &bind.bind_password)
                .await
                .and_then(|r| r.success())
                .map_err(|source| DirectoryError::ServiceBind {
                    dn: bind.bind_dn.clone(),
                    source,
                })?;
        }
        let scope = if self.config.subtree_search {
            Scope::Subtree
        } else {
            Scope::OneLevel
        };
        let mut attrs = vec![self.config.user_attribute.as_str()];
        if let Some(g) = &self.config.user_group_attribute {
            attrs.push(g.as_str());
        }
        ldap.with_timeout(TIMEOUT);
        let (entries, _) = ldap
            .search(&self.config.base_dn, scope, &self.filter(user), attrs)
            .await
            .and_then(|r| r.success())
            .map_err(|source| DirectoryError::Search {
                base: self.config.base_dn.clone(),
                source,
            })?;
        if entries.len() != 1 {
            let _ = ldap.unbind().await;
            if entries.len() > 1 {
                tracing::warn!(user, "http.auth.ldap: more than one entry matches, refused");
            }
            return Ok(None);
        }
        let Some(entry) = entries.into_iter().next().map(SearchEntry::construct) else {
            return Ok(None);
        };
        if let Some(password) = password {
            ldap.with_timeout(TIMEOUT);
            let bound = ldap
                .simple_bind(&entry.dn, password)
                .await
                .map_err(DirectoryError::UserBind)?;
            if bound.rc != 0 {
                let _ = ldap.unbind().await;
                return Ok(None);
            }
        }
        let _ = ldap.unbind().await;
        let values = |attr: &str| {
            entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        // The directory matched the name loosely (case, spaces): the
        // caller is named as the directory spells it, so one person has
        // one name in policies, keys and the audit.
        let name = values(&self.config.user_attribute)
            .into_iter()
            .find(|v| v.trim().eq_ignore_ascii_case(user.trim()))
            .unwrap_or_else(|| user.to_string());
        let groups = self
            .config
            .user_group_attribute
            .as_deref()
            .map(values)
            .unwrap_or_default();
        Ok(Some(LdapUser { name, groups }))
    }
}

fn client_tls(path: &Path) -> Result<Arc<rustls::ClientConfig>, AuthConfigError> {
    const KEY: &str = "http.auth.ldap.caCert";
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| AuthConfigError::unreadable(KEY, path, e))?;
    if certs.is_empty() {
        return Err(AuthConfigError::NoCertificate {
            key: KEY,
            path: path.to_path_buf(),
        });
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| AuthConfigError::bad_file(KEY, path, e))?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldap(filter: Option<&str>) -> Ldap {
        let config: LdapConfig = serde_json::from_value(serde_json::json!({
            "address": "ldap.example", "baseDN": "ou=people,dc=x", "userAttribute": "uid",
            "userFilter": filter, "insecure": true,
        }))
        .expect("config");
        Ldap::load(&config).expect("load")
    }

    #[test]
    fn filters_escape_the_login_name() {
        assert_eq!(ldap(None).filter("alice"), "(uid=alice)");
        assert_eq!(
            ldap(None).filter("*)(uid=*"),
            "(uid=\\2a\\29\\28uid=\\2a)",
            "a name cannot widen the search"
        );
        assert_eq!(
            ldap(Some("(objectClass=person)")).filter("bob"),
            "(&(uid=bob)(objectClass=person))"
        );
        assert_eq!(
            ldap(Some("objectClass=person")).filter("bob"),
            "(&(uid=bob)(objectClass=person))"
        );
        assert_eq!(ldap(None).url, "ldap://ldap.example:389");
    }
}

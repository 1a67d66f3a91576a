//! API keys (`http.auth.apikey`): long random secrets (`zak_…`) a logged-in
//! user creates for scripts and CI, usable as the password in Basic
//! authentication.
//!
//! A key is shown once, when created; only the SHA-256 of its secret part
//! is stored (zot's scheme), in `<rootDirectory>/.berth/apikeys.redb`,
//! apart from the metadata store because keys cannot be derived from
//! storage. A key belongs to the user who made it and works only with that
//! user name, and only while htpasswd or LDAP still has that user (with
//! the groups the directory gives them now); it may expire; `scopes`, when
//! given, are repository globs outside which the key grants nothing;
//! deleting it revokes it at once.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The prefix of every key.
pub const PREFIX: &str = "zak_";
/// The store's file, under the main root.
pub const FILE: &str = ".berth/apikeys.redb";
/// `lastUsed` is written at most this often per key.
const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);

/// SHA-256 (hex) of the secret part → the key's record (JSON).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

/// What is kept of a key. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub uuid: String,
    pub user: String,
    pub label: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used: Option<i64>,
    pub creator_ua: String,
    /// For a user who logged in through an OpenID provider (whom no
    /// directory here knows): the groups they had when they made the key,
    /// which the key keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid_groups: Option<Vec<String>>,
}

impl ApiKey {
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

/// What [`ApiKeys::verify`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck {
    Valid(ApiKey),
    /// No such key, or not this user's.
    Unknown,
    Expired,
}

/// Why the key store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Its directory cannot be made.
    #[error("api key store: {0}")]
    Io(#[from] std::io::Error),
    /// The database file cannot be created or opened.
    #[error("api key store: {}: {source}", path.display())]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// A read or write of the database failed.
    #[error("api key store: {0}")]
    Db(#[from] redb::Error),
    /// A record cannot be encoded, or a stored one decoded.
    #[error("api key store: {0}")]
    Record(#[from] serde_json::Error),
    /// A check did not finish (its thread panicked).
    #[error("api key store: {0}")]
    Interrupted(#[from] tokio::task::JoinError),
}

/// A database error as a [`StoreError`].
fn err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub struct ApiKeys {
    db: Database,
}

impl ApiKeys {
    /// Opens (creating) the store under `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let path = root.join(FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Database::create(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(KEYS).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(Self { db })
    }

    /// Makes a key for `user`; returns its record and the key itself,
    /// which is not kept.
    pub fn create(
        &self,
        user: &str,
        label: &str,
        scopes: &[String],
        expires_at: Option<i64>,
        creator_ua: &str,
    ) -> Result<(ApiKey, String), StoreError> {
        self.create_for(user, None, label, scopes, expires_at, creator_ua)
    }

    /// [`ApiKeys::create`], for an OpenID user with `openid_groups`
    /// (`None`: a user of htpasswd or LDAP).
    pub fn create_for(
        &self,
        user: &str,
        openid_groups: Option<Vec<String>>,
        label: &str,
        scopes: &[String],
        expires_at: Option<i64>,
        creator_ua: &str,
    ) -> Result<(ApiKey, String), StoreError> {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let record = ApiKey {
            uuid: uuid::Uuid::new_v4().to_string(),
            user: user.to_string(),
            label: label.to_string(),
            scopes: scopes.to_vec(),
            created_at: now(),
            expires_at,
            last_used: None,
            creator_ua: creator_ua.to_string(),
            openid_groups,
        };
        self.put(&hash(&secret), &record)?;
        Ok((record, format!("{PREFIX}{secret}")))
    }

    fn put(&self, hash: &str, record: &ApiKey) -> Result<(), StoreError> {
        let json = serde_json::to_vec(record)?;
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(KEYS)
            .map_err(err)?
            .insert(hash, json.as_slice())
            .map_err(err)?;
        txn.commit().map_err(err)
    }

    fn all(&self) -> Result<Vec<(String, ApiKey)>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(KEYS).map_err(err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            out.push((k.value().to_string(), serde_json::from_slice(v.value())?));
        }
        Ok(out)
    }

    /// `user`'s keys, oldest first.
    pub fn list(&self, user: &str) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> = self
            .all()?
            .into_iter()
            .map(|(_, k)| k)
            .filter(|k| k.user == user)
            .collect();
        keys.sort_by_key(|k| (k.created_at, k.uuid.clone()));
        Ok(keys)
    }

    /// Revokes `user`'s key `uuid`; false when there is none.
    pub fn delete(&self, user: &str, uuid: &str) -> Result<bool, StoreError> {
        let Some((hash, _)) = self
            .all()?
            .into_iter()
            .find(|(_, k)| k.user == user && k.uuid == uuid)
        else {
            return Ok(false);
        };
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(KEYS)
            .map_err(err)?
            .remove(hash.as_str())
            .map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(true)
    }

    /// Checks `key` presented as `user`'s password.
    pub fn verify(&self, user: &str, key: &str) -> Result<KeyCheck, StoreError> {
        let Some(secret) = key.strip_prefix(PREFIX) else {
            return Ok(KeyCheck::Unknown);
        };
        let hash = hash(secret);
        let found: Option<ApiKey> = {
            let txn = self.db.begin_read().map_err(err)?;
            let table = txn.open_table(KEYS).map_err(err)?;
            match table.get(hash.as_str()).map_err(err)? {
                Some(v) => Some(serde_json::from_slice(v.value())?),
                None => None,
            }
        };
        let Some(record) = found.filter(|k| k.user == user) else {
            return Ok(KeyCheck::Unknown);
        };
        let now = now();
        if record.is_expired(now) {
            return Ok(KeyCheck::Expired);
        }
        if record
            .last_used
            .is_none_or(|t| now - t >= LAST_USED_RESOLUTION.as_secs() as i64)
        {
            self.touch(&hash, now)?;
        }
        Ok(KeyCheck::Valid(record))
    }

    /// Sets a key's `lastUsed`, in one transaction that finds it first: a
    /// key revoked meanwhile stays revoked.
    fn touch(&self, hash: &str, now: i64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(KEYS).map_err(err)?;
            let current: Option<ApiKey> = match table.get(hash).map_err(err)? {
                Some(v) => Some(serde_json::from_slice(v.value())?),
                None => None,
            };
            if let Some(mut record) = current {
                record.last_used = Some(now);
                let json = serde_json::to_vec(&record)?;
                table.insert(hash, json.as_slice()).map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_owned_expire_and_revoke() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = ApiKeys::open(dir.path()).expect("open");
        let (rec, key) = keys
            .create("alice", "ci", &["app/**".into()], None, "test")
            .expect("create");
        assert!(key.starts_with(PREFIX) && key.len() == PREFIX.len() + 32);
        // Only the hash is on disk.
        let raw = std::fs::read(dir.path().join(FILE)).expect("read");
        let secret = &key[PREFIX.len()..];
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));

        assert!(matches!(keys.verify("alice", &key), Ok(KeyCheck::Valid(k)) if k.uuid == rec.uuid));
        assert_eq!(keys.verify("bob", &key).ok(), Some(KeyCheck::Unknown));
        assert_eq!(keys.verify("alice", secret).ok(), Some(KeyCheck::Unknown));
        assert_eq!(
            keys.verify("alice", "zak_nope").ok(),
            Some(KeyCheck::Unknown)
        );
        assert_eq!(keys.list("alice").expect("list").len(), 1);
        assert!(keys.list("bob").expect("list").is_empty());

        let (_, old) = keys
            .create("alice", "old", &[], Some(now() - 1), "test")
            .expect("create");
        assert_eq!(keys.verify("alice", &old).ok(), Some(KeyCheck::Expired));

        assert!(!keys.delete("bob", &rec.uuid).expect("delete"), "not bob's");
        assert!(keys.delete("alice", &rec.uuid).expect("delete"));
        assert_eq!(keys.verify("alice", &key).ok(), Some(KeyCheck::Unknown));
    }
}

//! Sessions in Redis (`sessionDriver: {name: redis, …}`), shared by every
//! instance that names the same server and prefix: `<prefix>:sess:<kind>:
//! <sha256 of the id>`, expiring with the record (`SET … EXAT`); a spent
//! login state is claimed with `SET … NX`.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::store::{RecordKind, SessionStore, StoreError};
use crate::meta::{MetaError, Redis};

pub struct RedisStore {
    redis: Redis,
}

fn unavailable(e: MetaError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects to the server `driver` names.
    pub async fn connect(driver: &crate::config::CacheDriverConfig) -> Result<Self, StoreError> {
        let opts =
            crate::server::redis_options(driver, "http.auth.sessionDriver").map_err(unavailable)?;
        let redis = Redis::connect(&opts).await.map_err(unavailable)?;
        Ok(Self { redis })
    }

    fn key(&self, kind: RecordKind, id: &str) -> String {
        let kind = match kind {
            RecordKind::Session => "session",
            RecordKind::Login => "login",
        };
        self.redis.key(&format!(
            "sess:{kind}:{}",
            hex::encode(Sha256::digest(id.as_bytes()))
        ))
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn put(
        &self,
        kind: RecordKind,
        id: &str,
        record: &[u8],
        expires: i64,
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(kind, id))
            .arg(record)
            .arg("EXAT")
            .arg(expires);
        self.redis.query::<()>(&cmd).await.map_err(unavailable)
    }

    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(kind, id));
        self.redis.query(&cmd).await.map_err(unavailable)
    }

    async fn claim(&self, kind: RecordKind, id: &str, expires: i64) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(kind, id))
            .arg("")
            .arg("EXAT")
            .arg(expires)
            .arg("NX");
        let set: Option<String> = self.redis.query(&cmd).await.map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(kind, id));
        self.redis.query::<()>(&cmd).await.map_err(unavailable)
    }

    async fn purge(&self) -> Result<usize, StoreError> {
        // Redis expires the keys itself.
        Ok(0)
    }

    async fn shared_secret(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.redis.key("sess:cookie-key");
        let fresh = cookie::Key::generate();
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(fresh.master()).arg("NX");
        self.redis
            .query::<Option<String>>(&set)
            .await
            .map_err(unavailable)?;
        let mut get = redis::cmd("GET");
        get.arg(&key);
        self.redis.query(&get).await.map_err(unavailable)
    }
}

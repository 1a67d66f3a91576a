//! zot's go-redis options in `storage.cacheDriver` (for `name: redis`), in
//! the keys or in the URL's query (`?dial_timeout=3&read_timeout=6s`, a
//! bare number there being seconds, as go-redis reads it), mapped to what
//! Berth's Redis client does, or refused by name where Berth cannot do
//! what they ask:
//!
//! | key | here |
//! |---|---|
//! | `dial_timeout` | how long connecting may take (default 5 s) |
//! | `read_timeout`, `write_timeout` | lower the bound on each command (`commandTimeout`, at most 3 s) |
//! | `max_retries` | reconnection attempts before a command fails (default 2; -1: none) |
//! | `min_retry_backoff`, `max_retry_backoff` | the first and the longest pause between them |
//! | `protocol` | 2 (RESP2, default) or 3 (RESP3) |
//! | `disable_identity`, `identity_suffix` | no `CLIENT SETINFO`; the library name `redis-rs(<suffix>)` |
//! | `pool_size` (capped by `max_active_conns`) | how many connections commands are spread over (default 1; each pipelines, so one is rarely the limit) |
//! | `pool_timeout`, `min_idle_conns` (≤ the pool), `max_idle_conns` (0 or ≥ the pool), `context_timeout_enabled` | met as they are: connections are never waited for, all stay open, every command is bounded |
//! | `max_redirects`, `read_only`, `route_by_latency`, `route_randomly` | cluster routing, which go-redis ignores for one node too |
//! | `rootDir` | zot's embedded cache directory: ignored, as zot ignores it, with a warning |
//!
//! Refused: several `addr` or `addr=` in the URL (a Redis cluster),
//! `master_name` and `sentinel_*` (Sentinel), `client_name` (no name
//! survives the client's reconnections), `conn_max_idle_time` and
//! `conn_max_lifetime` (connections are kept for the process's life),
//! `pool_fifo: true`, `unstable_resp3: true`, and any other query key.

use std::time::Duration;

use super::ConfigError;
use super::drivers::CacheDriverConfig;
use super::value::parse_go_duration;

/// The Redis client's settings, resolved from the go-redis options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisClient {
    pub connect_timeout: Option<Duration>,
    /// The bound on one command: `commandTimeout`, lowered by
    /// `read_timeout` and `write_timeout`.
    pub command_timeout: Duration,
    pub reconnect_attempts: Option<usize>,
    pub min_backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
    pub resp3: bool,
    /// `None`: the library's `CLIENT SETINFO`; `Some(None)`: none;
    /// `Some(Some(suffix))`: with this suffix.
    pub identity: Option<Option<String>>,
    pub connections: usize,
    /// The URL without the go-redis query keys.
    pub url: Option<String>,
}

/// The keys go-redis reads from a URL's query that Berth maps too.
const URL_KEYS: &[&str] = &[
    "dial_timeout",
    "read_timeout",
    "write_timeout",
    "max_retries",
    "min_retry_backoff",
    "max_retry_backoff",
    "pool_size",
    "pool_timeout",
    "min_idle_conns",
    "max_idle_conns",
    "max_active_conns",
    "protocol",
    "db",
    "client_name",
    "conn_max_idle_time",
    "conn_max_lifetime",
    "pool_fifo",
    "context_timeout_enabled",
    "skip_verify",
    "addr",
];

/// A duration from a URL's query: go-redis reads a bare number as seconds.
fn url_duration(at: &str, v: &str) -> Result<Duration, ConfigError> {
    match v.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => parse_go_duration(v)
            .ok_or_else(|| ConfigError::key(at, format!("invalid duration {v:?}"))),
    }
}

impl CacheDriverConfig {
    /// The go-redis options resolved, or the first refused by name.
    pub fn redis_client(&self) -> Result<RedisClient, ConfigError> {
        let at = |k: &str| format!("storage.cacheDriver.{k}");
        let refuse = |k: &str, why: &str| Err(ConfigError::key(at(k), why.to_string()));
        let mut o = self.clone();
        // The URL's query, as go-redis reads it; a key also set outside
        // the URL keeps that value.
        let mut url = self.url.clone();
        if let Some(u) = &self.url
            && let Some((base, query)) = u.split_once('?')
        {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let key = format!("url?{k}");
                let dur = |o: &mut Option<super::value::DurationValue>| -> Result<(), ConfigError> {
                    if o.is_none() {
                        *o = Some(super::value::DurationValue(url_duration(&at(&key), v)?));
                    }
                    Ok(())
                };
                let int = |what: &str| {
                    v.parse::<i64>()
                        .map_err(|_| ConfigError::key(at(&key), format!("{what} must be a number")))
                };
                match k {
                    "addr" => {
                        return refuse(
                            "url",
                            "a Redis cluster (addr= in the URL) is not supported: berth talks to one Redis node",
                        );
                    }
                    "dial_timeout" => dur(&mut o.dial_timeout)?,
                    "read_timeout" => dur(&mut o.read_timeout)?,
                    "write_timeout" => dur(&mut o.write_timeout)?,
                    "min_retry_backoff" => dur(&mut o.min_retry_backoff)?,
                    "max_retry_backoff" => dur(&mut o.max_retry_backoff)?,
                    "pool_timeout" => dur(&mut o.pool_timeout)?,
                    "conn_max_idle_time" => dur(&mut o.conn_max_idle_time)?,
                    "conn_max_lifetime" => dur(&mut o.conn_max_lifetime)?,
                    "max_retries" => {
                        o.max_retries.get_or_insert(int("max_retries")?);
                    }
                    "protocol" => {
                        let n = u8::try_from(int(k)?).map_err(|_| {
                            ConfigError::key(at(&key), "must be 2 or 3".to_string())
                        })?;
                        o.protocol.get_or_insert(n);
                    }
                    "pool_size" | "min_idle_conns" | "max_idle_conns" | "max_active_conns" => {
                        let n = usize::try_from(int(k)?).map_err(|_| {
                            ConfigError::key(at(&key), "must not be negative".to_string())
                        })?;
                        let slot = match k {
                            "pool_size" => &mut o.pool_size,
                            "min_idle_conns" => &mut o.min_idle_conns,
                            "max_idle_conns" => &mut o.max_idle_conns,
                            _ => &mut o.max_active_conns,
                        };
                        slot.get_or_insert(n);
                    }
                    "client_name" => {
                        o.client_name.get_or_insert(v.to_string());
                    }
                    "pool_fifo" | "context_timeout_enabled" => {
                        let b = v == "true" || v == "1";
                        let slot = if k == "pool_fifo" {
                            &mut o.pool_fifo
                        } else {
                            &mut o.context_timeout_enabled
                        };
                        slot.get_or_insert(b);
                    }
                    // The redis crate reads the database from the path;
                    // `?db=` would be lost.
                    "db" => {
                        return refuse(
                            &key,
                            "give the database in the URL's path (redis://host:port/N) or as db",
                        );
                    }
                    _ if URL_KEYS.contains(&k) => {
                        return refuse(&key, "not supported by berth's Redis client");
                    }
                    _ => return refuse(&key, "unknown URL option"),
                }
            }
            url = Some(base.to_string());
        }
        // go-redis's universal client: a master name makes it a Sentinel
        // client (whatever the addresses), several addresses a cluster.
        let sentinel = [
            ("master_name", o.master_name.is_some()),
            ("sentinel_username", o.sentinel_username.is_some()),
            ("sentinel_password", o.sentinel_password.is_some()),
        ];
        if let Some((key, _)) = sentinel.iter().find(|(_, set)| *set) {
            return refuse(
                key,
                "Redis Sentinel is not supported: give the master's address",
            );
        }
        if o.addr.len() > 1 {
            return refuse(
                "addr",
                "several addresses make a Redis cluster, which berth does not support: give one node",
            );
        }
        if o.client_name.is_some() {
            return refuse(
                "client_name",
                "berth's Redis client cannot keep a client name across its reconnections",
            );
        }
        for (k, v) in [
            ("conn_max_idle_time", o.conn_max_idle_time),
            ("conn_max_lifetime", o.conn_max_lifetime),
        ] {
            if v.is_some_and(|d| !d.0.is_zero()) {
                return refuse(
                    k,
                    "berth keeps its Redis connections for the life of the process (0 only)",
                );
            }
        }
        if o.pool_fifo == Some(true) {
            return refuse(
                "pool_fifo",
                "berth uses its connections in turn; there is no idle queue to order",
            );
        }
        if o.unstable_resp3 == Some(true) {
            return refuse("unstable_resp3", "not supported by berth's Redis client");
        }
        let resp3 = match o.protocol {
            None | Some(2) => false,
            Some(3) => true,
            Some(_) => return refuse("protocol", "must be 2 or 3"),
        };
        let pool = o.pool_size.unwrap_or(1).max(1);
        let connections = match o.max_active_conns {
            Some(max) if max > 0 => pool.min(max),
            _ => pool,
        };
        if o.min_idle_conns.is_some_and(|n| n > connections) {
            return refuse(
                "min_idle_conns",
                "more than the connections berth opens (pool_size, max_active_conns)",
            );
        }
        if o.max_idle_conns.is_some_and(|n| n != 0 && n < connections) {
            return refuse(
                "max_idle_conns",
                "below pool_size: berth keeps every connection open",
            );
        }
        let mut command_timeout = o.command_timeout.0;
        for d in [o.read_timeout, o.write_timeout].into_iter().flatten() {
            if !d.0.is_zero() {
                command_timeout = command_timeout.min(d.0);
            }
        }
        let reconnect_attempts = match o.max_retries {
            None | Some(0) => None,
            Some(n) if n < 0 => Some(0),
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let identity = match (o.disable_identity, &o.identity_suffix) {
            (Some(true), _) => Some(None),
            (_, Some(suffix)) => Some(Some(suffix.clone())),
            _ => None,
        };
        Ok(RedisClient {
            connect_timeout: o.dial_timeout.map(|d| d.0).filter(|d| !d.is_zero()),
            command_timeout,
            reconnect_attempts,
            min_backoff: o.min_retry_backoff.map(|d| d.0),
            max_backoff: o.max_retry_backoff.map(|d| d.0),
            resp3,
            identity,
            connections,
            url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(extra: serde_json::Value) -> Result<CacheDriverConfig, String> {
        let mut v = serde_json::json!({"name": "redis", "addr": ["127.0.0.1:6379"]});
        if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn refused(extra: serde_json::Value) -> String {
        match driver(extra).expect("parses").redis_client() {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn go_redis_options_map_to_the_client() {
        let c = driver(serde_json::json!({
            "dial_timeout": "2s", "read_timeout": "500ms", "write_timeout": "5s",
            "max_retries": 4, "min_retry_backoff": "10ms", "max_retry_backoff": "1s",
            "protocol": 3, "pool_size": 4, "max_active_conns": 3, "min_idle_conns": 1,
            "max_idle_conns": 0, "pool_timeout": "4s", "context_timeout_enabled": true,
            "pool_fifo": false, "read_only": false, "route_randomly": false,
            "max_redirects": 3, "route_by_latency": false, "identity_suffix": "zotmeta",
            "conn_max_idle_time": 0, "unstable_resp3": false
        }))
        .expect("parses")
        .redis_client()
        .expect("accepted");
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.command_timeout, Duration::from_millis(500));
        assert_eq!(c.reconnect_attempts, Some(4));
        assert_eq!(c.min_backoff, Some(Duration::from_millis(10)));
        assert_eq!(c.max_backoff, Some(Duration::from_secs(1)));
        assert!(c.resp3);
        assert_eq!(c.connections, 3, "pool_size capped by max_active_conns");
        assert_eq!(c.identity, Some(Some("zotmeta".into())));
        let c = driver(serde_json::json!({"max_retries": -1, "disable_identity": true}))
            .expect("parses")
            .redis_client()
            .expect("accepted");
        assert_eq!(c.reconnect_attempts, Some(0));
        assert_eq!(c.identity, Some(None));
        assert_eq!(
            c.command_timeout,
            Duration::from_secs(1),
            "commandTimeout's default"
        );
    }

    #[test]
    fn the_url_query_is_read_as_go_redis_reads_it() {
        let c = driver(serde_json::json!({
            "url": "redis://u:p@h:6379/2?dial_timeout=3&read_timeout=200ms&pool_size=2&protocol=3"
        }))
        .expect("parses")
        .redis_client()
        .expect("accepted");
        assert_eq!(
            c.connect_timeout,
            Some(Duration::from_secs(3)),
            "a bare number is seconds"
        );
        assert_eq!(c.command_timeout, Duration::from_millis(200));
        assert_eq!(c.connections, 2);
        assert!(c.resp3);
        assert_eq!(c.url.as_deref(), Some("redis://u:p@h:6379/2"));
        // zot's cluster example.
        let e = refused(serde_json::json!({
            "url": "redis://user:password@host1:6379?dial_timeout=3&read_timeout=6s&addr=host2:6379&addr=host3:6379"
        }));
        assert!(
            e.contains("storage.cacheDriver.url: a Redis cluster"),
            "{e}"
        );
        let e = refused(serde_json::json!({"url": "redis://h?frobnicate=1"}));
        assert!(e.contains("url?frobnicate"), "{e}");
    }

    #[test]
    fn what_cannot_be_done_is_refused_by_name() {
        for (extra, key) in [
            (
                serde_json::json!({"addr": ["a:1", "b:1"]}),
                "storage.cacheDriver.addr",
            ),
            (
                serde_json::json!({"master_name": "m"}),
                "storage.cacheDriver.master_name",
            ),
            (
                serde_json::json!({"sentinel_password": "p"}),
                "storage.cacheDriver.sentinel_password",
            ),
            (
                serde_json::json!({"addr": ["a:1", "b:1"], "master_name": "m"}),
                "storage.cacheDriver.master_name",
            ),
            (
                serde_json::json!({"client_name": "c"}),
                "storage.cacheDriver.client_name",
            ),
            (
                serde_json::json!({"conn_max_lifetime": "5s"}),
                "storage.cacheDriver.conn_max_lifetime",
            ),
            (
                serde_json::json!({"conn_max_idle_time": "5s"}),
                "storage.cacheDriver.conn_max_idle_time",
            ),
            (
                serde_json::json!({"pool_fifo": true}),
                "storage.cacheDriver.pool_fifo",
            ),
            (
                serde_json::json!({"unstable_resp3": true}),
                "storage.cacheDriver.unstable_resp3",
            ),
            (
                serde_json::json!({"protocol": 4}),
                "storage.cacheDriver.protocol",
            ),
            (
                serde_json::json!({"pool_size": 2, "min_idle_conns": 3}),
                "storage.cacheDriver.min_idle_conns",
            ),
            (
                serde_json::json!({"pool_size": 3, "max_idle_conns": 2}),
                "storage.cacheDriver.max_idle_conns",
            ),
        ] {
            let e = refused(extra.clone());
            assert!(e.starts_with(key), "{extra}: {e}");
        }
    }
}

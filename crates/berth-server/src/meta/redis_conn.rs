//! The connection to Redis that [`RedisMetaStore`](super::RedisMetaStore)
//! and [`RedisLocks`](super::RedisLocks) share: where the server is
//! ([`RedisOptions`]), and [`Redis`], one async connection that every
//! command of a process goes through.
//!
//! The connection is the redis crate's [`ConnectionManager`]: one
//! multiplexed connection (commands from many tasks are pipelined on it,
//! each reply matched to its command, so a command that timed out cannot
//! have its late reply read as another's answer) that reconnects by itself
//! once the server is back. Every command is bounded: one that has no
//! reply within [`RedisOptions::command_timeout`] (1 s unless
//! `storage.cacheDriver.commandTimeout` says otherwise), or finds the
//! server down, fails as
//! [`MetaError::Unavailable`] naming `the metadata store (redis at
//! host:port)`, never the password. A single Redis node only: no cluster,
//! no sentinel.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult};

use super::{MetaError, MetaResult};

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command may take in all by default, waiting for a
/// connection (a reconnect under way) and for its reply included: a
/// request that needs a Redis that hangs is answered 503 within about
/// this, and it is well under the locks' lease, so one stalled renewal
/// fails in time for the next to keep the locks.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a lost connection is tried again before the command that
/// found it lost fails (the next command tries anew): few, so that while
/// the server is down each request is answered 503 at once.
const RECONNECT_ATTEMPTS: usize = 2;
/// The first pause between two connection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Where the Redis metadata store lives: zot's `storage.cacheDriver`
/// settings for its `redis` driver.
#[derive(Clone)]
pub struct RedisOptions {
    /// A `redis://[user[:password]@]host[:port][/db]` URL; takes precedence
    /// over `addr`.
    pub url: Option<String>,
    /// `host:port` addresses. Only the first is used: Berth talks to a
    /// single Redis node, not a cluster.
    pub addr: Vec<String>,
    /// The prefix of every key (zot's `keyprefix`), so several registries
    /// can share one database.
    pub key_prefix: String,
    /// The database number; overrides the URL's when not 0.
    pub db: i64,
    /// The ACL user; overrides the URL's when set.
    pub username: Option<String>,
    /// The password; overrides the URL's when set. Never logged.
    pub password: Option<String>,
    /// How long one command may take, reconnecting included, before it
    /// fails as unavailable (Berth's `commandTimeout`).
    pub command_timeout: Duration,
    /// How long connecting may take (go-redis's `dial_timeout`).
    pub connect_timeout: Duration,
    /// Reconnection attempts before a command fails (`max_retries`).
    pub reconnect_attempts: usize,
    /// The first pause between two attempts (`min_retry_backoff`).
    pub reconnect_pause: Duration,
    /// The longest pause between two attempts (`max_retry_backoff`).
    pub reconnect_max_pause: Option<Duration>,
    /// RESP3 instead of RESP2 (`protocol: 3`).
    pub resp3: bool,
    /// `CLIENT SETINFO` as the library sends it (`None`), not at all
    /// (`Some(None)`), or naming the library `redis-rs(<suffix>)`.
    pub identity: Option<Option<String>>,
    /// How many connections commands are spread over (`pool_size`).
    pub connections: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            url: None,
            addr: Vec::new(),
            key_prefix: "berth".into(),
            db: 0,
            username: None,
            password: None,
            command_timeout: COMMAND_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            reconnect_attempts: RECONNECT_ATTEMPTS,
            reconnect_pause: RECONNECT_PAUSE,
            reconnect_max_pause: None,
            resp3: false,
            identity: None,
            connections: 1,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("addr", &self.addr)
            .field("key_prefix", &self.key_prefix)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_attempts", &self.reconnect_attempts)
            .field("resp3", &self.resp3)
            .field("identity", &self.identity)
            .field("connections", &self.connections)
            .finish()
    }
}

/// `url` with the password of its user info, if any, masked.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<redacted>{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// Splits `host:port` (or `[v6]:port`, or a bare host) for Redis's
/// default port 6379.
fn parse_addr(addr: &str) -> MetaResult<(String, u16)> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| MetaError::InvalidConfig(format!("invalid redis address {addr}")))?;
        (host, after.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (addr, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| {
            MetaError::InvalidConfig(format!("invalid port in redis address {addr}"))
        })?,
        None => 6379,
    };
    if host.is_empty() {
        return Err(MetaError::InvalidConfig(format!(
            "invalid redis address {addr}"
        )));
    }
    Ok((host.to_string(), port))
}

fn connection_info(o: &RedisOptions) -> MetaResult<ConnectionInfo> {
    let info = if let Some(url) = &o.url {
        // The URL may hold a password: the message does not quote it
        // (nor do the redis crate's parse errors).
        url.as_str()
            .into_connection_info()
            .map_err(|e| MetaError::InvalidConfig(format!("invalid redis url: {e}")))?
    } else {
        let addr = o
            .addr
            .first()
            .ok_or_else(|| MetaError::InvalidConfig("redis: neither url nor addr is set".into()))?;
        let (host, port) = parse_addr(addr)?;
        ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map_err(|e| err(e, SERVICE))?
    };
    let mut settings = info.redis_settings().clone();
    if o.db != 0 {
        settings = settings.set_db(o.db);
    }
    if let Some(user) = &o.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &o.password {
        settings = settings.set_password(password);
    }
    if o.resp3 {
        settings = settings.set_protocol(redis::ProtocolVersion::RESP3);
    }
    settings = match &o.identity {
        None => settings,
        Some(None) => settings.set_skip_set_lib_name(),
        Some(Some(suffix)) => {
            settings.set_lib_name(format!("redis-rs({suffix})"), env!("CARGO_PKG_VERSION"))
        }
    };
    Ok(info.set_redis_settings(settings))
}

/// What the store is called in messages until a connection names the
/// server's address.
const SERVICE: &str = "the metadata store (redis)";

/// A Redis error as what happened, naming the store `service`: a
/// connection refused, dropped or timed out means the service is
/// unavailable; an error reply is a failure.
fn err(e: redis::RedisError, service: &str) -> MetaError {
    let message = e.to_string();
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        MetaError::Unavailable {
            service: service.into(),
            message,
        }
    } else {
        MetaError::Failed {
            location: service.into(),
            message,
        }
    }
}

/// The connections to a Redis server (one unless `pool_size` asks for
/// more; commands take them in turn), and the key prefix. Cheap to clone;
/// clones share the connections.
#[derive(Clone)]
pub(crate) struct Redis {
    cons: Arc<[ConnectionManager]>,
    next: Arc<AtomicUsize>,
    /// `the metadata store (redis at host:port)`, for messages (never the
    /// password).
    service: String,
    prefix: String,
    /// [`RedisOptions::command_timeout`].
    timeout: Duration,
}

impl Redis {
    /// Connects to the server `o` names; fails, naming its address, if it
    /// cannot be reached or refuses the credentials.
    pub(crate) async fn connect(o: &RedisOptions) -> MetaResult<Self> {
        let info = connection_info(o)?;
        let service = format!("the metadata store (redis at {})", info.addr());
        let unreachable = |e: redis::RedisError| MetaError::Unavailable {
            service: service.clone(),
            message: e.to_string(),
        };
        let client = redis::Client::open(info).map_err(unreachable)?;
        let mut config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(o.connect_timeout))
            .set_response_timeout(Some(o.command_timeout))
            .set_number_of_retries(o.reconnect_attempts)
            .set_min_delay(o.reconnect_pause);
        if let Some(max) = o.reconnect_max_pause {
            config = config.set_max_delay(max);
        }
        // Connects now, so that a wrong address or password fails here
        // with its own message.
        let mut cons = Vec::with_capacity(o.connections.max(1));
        for _ in 0..o.connections.max(1) {
            let con = tokio::time::timeout(
                o.connect_timeout * 2,
                client.get_connection_manager_with_config(config.clone()),
            )
            .await
            .map_err(|_| MetaError::Unavailable {
                service: service.clone(),
                message: format!("no connection within {:?}", o.connect_timeout * 2),
            })?
            .map_err(unreachable)?;
            cons.push(con);
        }
        Ok(Self {
            cons: cons.into(),
            next: Arc::new(AtomicUsize::new(0)),
            service,
            prefix: o.key_prefix.clone(),
            timeout: o.command_timeout,
        })
    }

    /// A handle on a connection for one command (cheap: each connection
    /// pipelines the commands of every handle on it), the next in turn.
    fn con(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.cons.len();
        self.cons[i].clone()
    }

    /// Awaits a command sent on [`Redis::con`], bounded by the command
    /// timeout, its error said as what happened.
    async fn run<T>(&self, command: impl Future<Output = RedisResult<T>>) -> MetaResult<T> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(reply) => reply.map_err(|e| err(e, &self.service)),
            Err(_) => Err(MetaError::Unavailable {
                service: self.service.clone(),
                message: format!("no reply within {:?}", self.timeout),
            }),
        }
    }

    /// Sends `cmd` and reads its reply.
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> MetaResult<T> {
        let mut con = self.con();
        self.run(cmd.query_async(&mut con)).await
    }

    /// Sends `pipe` (a `MULTI`/`EXEC` when atomic) and reads its replies.
    /// Safe on the shared connection: a pipeline is written as one piece,
    /// so no other task's command lands between its `MULTI` and `EXEC`
    /// (unlike a `WATCH`, which spans round trips).
    pub(super) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> MetaResult<T> {
        let mut con = self.con();
        self.run(pipe.query_async(&mut con)).await
    }

    /// Runs a script (`EVALSHA`, loading it on the first `NOSCRIPT`).
    pub(super) async fn invoke<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
    ) -> MetaResult<T> {
        let mut con = self.con();
        self.run(call.invoke_async(&mut con)).await
    }

    /// The store's name in messages.
    pub(super) fn service(&self) -> &str {
        &self.service
    }

    /// The key `rest` under the prefix.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("redis.local:6380").expect("addr"),
            ("redis.local".into(), 6380)
        );
        assert_eq!(
            parse_addr("redis.local").expect("addr"),
            ("redis.local".into(), 6379)
        );
        assert_eq!(
            parse_addr("[::1]:7000").expect("addr"),
            ("::1".into(), 7000)
        );
        assert_eq!(parse_addr("::1").expect("addr"), ("::1".into(), 6379));
        assert!(parse_addr("host:port").is_err());
        assert!(parse_addr(":6379").is_err());
    }

    #[test]
    fn passwords_stay_out_of_debug() {
        let o = RedisOptions {
            url: Some("redis://me:hunter2@redis.local:6379/1".into()),
            password: Some("hunter3".into()),
            ..Default::default()
        };
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(
            shown.contains("redis://me:<redacted>@redis.local:6379/1"),
            "{shown}"
        );
        assert_eq!(redact_url("redis://h:1/2"), "redis://h:1/2");
    }

    #[test]
    fn options_override_the_url() {
        let o = RedisOptions {
            url: Some("redis://a:b@h:7000/3".into()),
            db: 5,
            password: Some("c".into()),
            ..Default::default()
        };
        let info = connection_info(&o).expect("info");
        assert_eq!(info.addr().to_string(), "h:7000");
        assert_eq!(info.redis_settings().db(), 5);
        assert_eq!(info.redis_settings().username(), Some("a"));
        assert_eq!(info.redis_settings().password(), Some("c"));
        let o = RedisOptions {
            addr: vec!["h2:7001".into(), "ignored:1".into()],
            ..Default::default()
        };
        let info = connection_info(&o).expect("info");
        assert_eq!(info.addr().to_string(), "h2:7001");
        assert!(connection_info(&RedisOptions::default()).is_err());
    }
}

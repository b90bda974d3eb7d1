//! Redis cache adapter: the access-token revocation list, the rate limiter, the lockout
//! attempt counters and short-lived values (logins waiting for their second factor,
//! WebAuthn challenges, used TOTP steps), shared by every instance of the service through
//! one Redis server
//! ([`RedisCache::connect`]) or one Redis Cluster ([`RedisCache::connect_cluster`]).
//!
//! # Keys
//!
//! Every key starts with the prefix given to [`RedisCache::connect`] (`{p}`, e.g. `auth:`)
//! and carries a TTL, so nothing grows forever, except two small keys that say whether the
//! revocation list is complete (see [`revocations`]). `{rv}` is `rv` on a single server
//! and the hash tag `{rv}` on a cluster:
//!
//! | key | value | expires |
//! |---|---|---|
//! | `{p}{rv}:jti:{uuid}` | `1` | at the latest `until` asked for (`PEXPIREAT`) |
//! | `{p}{rv}:sid:{uuid}` | `1` | at the latest `until` asked for |
//! | `{p}{rv}:usr:{uuid}` | the latest "not before", unix ms | at the latest `until` asked for |
//! | `{p}{rv}:warm` | `1`: the list holds what storage held when it was last warmed | never |
//! | `{p}{rv}:epoch` | a random number, changed by an instance whose revocation write failed | never |
//! | `{p}rl:{key}` | GCRA theoretical arrival time, unix ms | when that time is reached |
//! | `{p}at:{key}` | hash `failures`, `last_failure`, `level`, `locked_until` (ms) | after [`auth_domain::policy::LockoutPolicy::retention`] |
//! | `{p}ep:{key}` | `{expires_at}:{value}`: unix ms, then the value's bytes (a claim's mark: empty; a counter: its digits) | `expires_at - now` after it was written (`PX`; a counter keeps its first) |
//!
//! # Redis Cluster
//!
//! A script, and the `MGET` of a revocation check, must touch keys of one hash slot. The
//! rate limiter, the counters and the short-lived values ([`ephemeral`]) touch one key
//! per operation, so their keys spread over every master. The revocation keys all carry the hash tag `{rv}` and so live in *one* slot, on
//! one master (and its replicas): the `MGET` of a check reads the token's entries together
//! with the marker that says the list is complete, and the marker can only vouch for
//! entries on its own server, whose loss (a restart, a failover to a lagging replica) it
//! shares. The price: revocation entries (small, and short-lived: they expire with the
//! access tokens) and checks do not spread over the masters, and that one master being
//! down fails every check closed, as a single server being down does. Tags per user would
//! spread them, but then every slot would need its own marker and epoch, all warmed. A
//! prefix that holds a hash tag itself (`{auth}:`) puts every key in its slot: correct,
//! but nothing spreads.
//!
//! # Atomicity
//!
//! Every write is one Lua script (`EVALSHA`, loaded on first use) or one command, so Redis
//! applies it atomically with respect to every other client: the revocation scripts
//! ([`revocations`]) keep the later expiry and the later "not before" mark; the rate limiter
//! and the attempt counters ([`limits`], scripts in `src/lua/`) reproduce
//! [`auth_domain::policy::gcra`] and the lockout policy's functions, all in integer
//! milliseconds; short-lived values ([`ephemeral`]) are set with `SET … PX`, taken with
//! `GETDEL` (single use), and claimed or counted by a script each. The rate limiter, the
//! counters and the short-lived values judge time by the `now` they are given (truncated to
//! the millisecond), never by the server's clock: a short-lived value carries its
//! `expires_at` beside it, and its TTL only lets Redis drop it; revocation entries expire by
//! the server's clock at their `until`.
//!
//! # Failures
//!
//! Every operation (taking a pooled connection included) is bounded by
//! [`RedisOptions::timeout`]. A timeout, a connection or I/O failure, or a server that is
//! loading or down (on a cluster also `CLUSTERDOWN`, `TRYAGAIN`, a master down, and
//! redirections that do not settle in time) is [`PortError::Unavailable`]; anything else
//! (an unexpected reply, a script error, corrupt data) is [`PortError::Unexpected`]. Error
//! messages never contain the password of the Redis URL.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_domain::model::ColdReason;
use auth_domain::monitoring::{PoolStatus, redact_url};
use auth_domain::ports::{Cache, PortError};
use auth_domain::types::Timestamp;
use chrono::{DateTime, Utc};
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, ErrorKind, RedisError, ServerErrorKind};
use deadpool_redis::{PoolConfig, Runtime, Timeouts};
use tracing::Instrument as _;

mod cluster;
mod connection;
mod ephemeral;
mod limits;
mod revocations;
#[cfg(feature = "test-support")]
pub mod test_cluster;
#[cfg(feature = "test-support")]
pub mod test_tls;

use revocations::Warmth;

/// Pool and TLS settings of a [`RedisCache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Most connections open at once (default 16); one server only (a cluster's operations
    /// share one multiplexed connection).
    pub pool_size: usize,
    /// Bound on every operation, waiting for a connection included (default 2 s).
    pub timeout: Duration,
    /// With a `rediss://` URL: the CA certificates (PEM) to trust instead of the
    /// platform's, for a server whose certificate comes from a private CA.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: Duration::from_secs(2),
            ca_cert_pem: None,
        }
    }
}

/// The Redis cache. Cloning is cheap: clones share one connection pool (or, on a cluster,
/// one multiplexed cluster connection).
#[derive(Clone)]
pub struct RedisCache {
    backend: Backend,
    last_failure: Arc<Mutex<Option<Instant>>>,
    warmth: Arc<Warmth>,
    prefix: String,
    timeout: Duration,
}

/// Where the keys live.
#[derive(Clone)]
enum Backend {
    /// One server, through a pool of multiplexed connections.
    Single(Pool),
    /// A Redis Cluster, through one multiplexed cluster connection.
    Cluster(Cluster),
}

/// Shows the prefix and the pool's size, never the URL (it may hold a password).
impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("cluster", &self.is_cluster())
            .field("pool_size", &self.pool_status().max_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What went wrong, without the URL's password.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("invalid redis configuration for {target}")]
    Config {
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("redis connection pool: {0}")]
    Pool(String),
    #[error("unexpected data in redis: {0}")]
    Data(String),
    /// The revocation list may lack revocations (lost data, a failed write, an outage).
    #[error("the revocation list in redis is not warmed again yet")]
    Cold,
}

use cluster::Cluster;
use connection::{Attempt, Conn, Manager, Pool, PoolError, connection_survives, lock};

impl RedisCache {
    /// Closes the pool (at shutdown): idle connections are dropped at once, the ones in
    /// use when they come back, and later calls fail as unavailable.
    pub fn close(&self) {
        match &self.backend {
            Backend::Single(pool) => pool.close(),
            Backend::Cluster(cluster) => cluster.close(),
        }
    }

    /// Connections in use and idle, and operations waiting for one, now. On a cluster:
    /// its one multiplexed connection (in use while any operation runs on it, idle
    /// otherwise); nothing ever waits for it.
    pub fn pool_status(&self) -> PoolStatus {
        match &self.backend {
            Backend::Single(pool) => {
                let status = pool.status();
                PoolStatus::from_counts(
                    status.max_size,
                    status.size,
                    status.available,
                    status.waiting,
                )
            }
            Backend::Cluster(cluster) => cluster.status(),
        }
    }

    /// Builds a pool of at most `options.pool_size` connections to `url` (`redis://…`, or
    /// `rediss://…` for TLS, verified against the platform's roots or `options.ca_cert_pem`;
    /// `rediss://…` is not compiled in) and checks the server with one `PING`. Every key
    /// this cache writes starts with `key_prefix` (e.g. `auth:`).
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the server cannot be reached or does not answer
    /// within `options.timeout`; [`PortError::Unexpected`] when the URL does not parse or
    /// the server answers with an error. Messages never contain the URL's password.
    pub async fn connect(
        url: &str,
        key_prefix: &str,
        options: RedisOptions,
    ) -> Result<RedisCache, PortError> {
        let mut pool_config = PoolConfig::new(options.pool_size.max(1));
        pool_config.timeouts = Timeouts {
            wait: Some(options.timeout),
            create: Some(options.timeout),
            recycle: Some(options.timeout),
        };
        let config_error = |source: Box<dyn std::error::Error + Send + Sync>| {
            PortError::unexpected(Failure::Config {
                target: redact_url(url),
                source,
            })
        };
        if url.starts_with("rediss://") && rustls::crypto::CryptoProvider::get_default().is_none() {
            // The redis crate's TLS takes rustls' process-wide provider. Installing fails
            // only if another thread installed one meanwhile, which serves as well.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let client = match &options.ca_cert_pem {
            // `rediss://` verifies the server against this CA (and the host name).
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(url),
        }
        .map_err(|e| config_error(Box::new(e)))?;
        let last_failure = Arc::default();
        let warmth = Arc::new(Warmth::new());
        let manager = Manager {
            client,
            ping_number: Arc::default(),
            last_failure: Arc::clone(&last_failure),
            warmth: Arc::clone(&warmth),
        };
        let pool = Pool::builder(manager)
            .config(pool_config)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| config_error(Box::new(e)))?;
        let cache = RedisCache {
            backend: Backend::Single(pool),
            last_failure,
            warmth,
            prefix: key_prefix.to_owned(),
            timeout: options.timeout,
        };
        cache.ping_server().await?;
        Ok(cache)
    }

    /// The key prefix given to [`RedisCache::connect`].
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// `PING`; on a cluster, the script that asks the master of the revocation list's slot
    /// (the one server every verification needs) for its `run_id`.
    async fn ping_server(&self) -> Result<(), PortError> {
        if self.is_cluster() {
            return self.check_revocation_server().await;
        }
        self.run("PING", |mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// Takes a connection and runs `op` on it, the whole bounded by the timeout. After a
    /// connection fails, the pool checks each one before its next use; see [`Manager`].
    ///
    /// Traced as a `redis` span (`db.system`, `db.operation`: the command or the script's
    /// name, never a key or an argument) when it runs inside a request or a use case.
    async fn run<T, F, Fut>(&self, name: &'static str, op: F) -> Result<T, PortError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(async { self.once(op).await.map_err(Attempt::into_port) })
            .instrument(redis_span(name))
            .await
    }

    /// [`RedisCache::run`] for an operation that may run twice (a read): when the lent
    /// connection turns out broken (the server restarted since its last use), once more on
    /// a fresh one, so that a restart fails no verification.
    async fn run_idempotent<T, F, Fut>(&self, name: &'static str, op: F) -> Result<T, PortError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(async {
            match self.once(&op).await {
                Err(Attempt::Broken(_)) => self.once(&op).await,
                other => other,
            }
            .map_err(Attempt::into_port)
        })
        .instrument(redis_span(name))
        .await
    }

    /// `work`, bounded by the timeout. An operation that finds Redis unavailable means
    /// this instance could not reach it: another instance's revocation may have been lost
    /// meanwhile, so the revocation list is warmed again before this instance trusts it.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(PortError::unavailable(Failure::Timeout(self.timeout))),
        };
        if let Err(PortError::Unavailable(_)) = &result {
            self.warmth.lose(ColdReason::Unreachable);
        }
        result
    }

    async fn once<T, F, Fut>(&self, op: F) -> Result<T, Attempt>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        // The pooled connection goes back at once: a multiplexed connection carries any
        // number of operations at a time, so concurrent operations share one (their commands
        // pipelined on one socket, fewer system calls here and in Redis) instead of each
        // holding its own.
        let (conn, _busy) = match &self.backend {
            Backend::Single(pool) => (
                Conn::Single(MultiplexedConnection::clone(
                    &*pool.get().await.map_err(|e| Attempt::Pool(pool_error(e)))?,
                )),
                None,
            ),
            Backend::Cluster(cluster) => {
                let (conn, busy) = cluster.connection().map_err(Attempt::Pool)?;
                (Conn::Cluster(conn), Some(busy))
            }
        };
        match op(conn).await {
            Ok(value) => Ok(value),
            Err(err) if connection_survives(&err) => Err(Attempt::Answered(err)),
            Err(err) => {
                // Every pooled connection is checked before its next use.
                *lock(&self.last_failure) = Some(Instant::now());
                Err(Attempt::Broken(err))
            }
        }
    }

    fn key(&self, kind: &str, id: impl fmt::Display) -> String {
        format!("{}{kind}{id}", self.prefix)
    }

    /// A key of the revocation list (`kind`: `jti:`, `sid:`, `usr:`, `warm`, `epoch`): under
    /// `{p}rv:` on a single server, under `{p}{rv}:` on a cluster, where the hash tag puts
    /// the whole list (entries, marker and epoch) in one slot.
    fn revocation_key(&self, kind: &str, id: impl fmt::Display) -> String {
        match self.backend {
            Backend::Single(_) => format!("{}rv:{kind}{id}", self.prefix),
            Backend::Cluster(_) => format!("{}{{rv}}:{kind}{id}", self.prefix),
        }
    }

    fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }
}

impl Cache for RedisCache {
    /// `PING`; on a cluster, the master of the revocation list's slot asked for its
    /// `run_id` (a new one is a loss, see [`revocations`]).
    async fn ping(&self) -> Result<(), PortError> {
        self.ping_server().await
    }
}

/// The span of one Redis operation: a child of the current span, or none at all outside any
/// (the revocation keeper checks every second: a trace of its own each time would bury the
/// requests' traces).
fn redis_span(name: &'static str) -> tracing::Span {
    if tracing::Span::current().is_none() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: "auth_trace",
        "redis",
        otel.kind = "client",
        db.system = "redis",
        db.operation = name
    )
}

fn parse_millis(raw: &str) -> Result<i64, PortError> {
    raw.parse::<i64>()
        .map_err(|_| data("a stored time is not unix milliseconds".to_owned()))
}

fn timestamp(millis: i64) -> Result<Timestamp, PortError> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .ok_or_else(|| data(format!("time out of range: {millis} ms")))
}

fn count(value: i64) -> Result<u32, PortError> {
    u32::try_from(value).map_err(|_| data(format!("count out of range: {value}")))
}

fn data(message: String) -> PortError {
    PortError::unexpected(Failure::Data(message))
}

/// Connection, I/O and "server not ready" errors are `Unavailable`, and so on a cluster
/// are no connection to a slot's node and redirections still going on when the client
/// gave up (a resharding, a failover); the rest `Unexpected`.
fn redis_error(err: RedisError) -> PortError {
    let unavailable = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                )
        );
    if unavailable {
        PortError::unavailable(err)
    } else {
        PortError::unexpected(err)
    }
}

fn pool_error(err: PoolError) -> PortError {
    match err {
        PoolError::Backend(err) => redis_error(err),
        PoolError::Timeout(kind) => {
            PortError::unavailable(Failure::Pool(format!("timed out ({kind:?})")))
        }
        PoolError::Closed => PortError::unavailable(Failure::Pool("closed".to_owned())),
        other => PortError::unexpected(Failure::Pool(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_errors_that_pass_are_unavailable_and_a_cross_slot_call_is_unexpected() {
        let server = |kind: ServerErrorKind, code: &'static str| {
            RedisError::from((
                ErrorKind::Server(kind),
                code,
                "3999 127.0.0.1:7001".to_owned(),
            ))
        };
        for (err, unavailable) in [
            (
                RedisError::from((ErrorKind::ClusterConnectionNotFound, "no node for slot")),
                true,
            ),
            (server(ServerErrorKind::Moved, "MOVED"), true),
            (server(ServerErrorKind::Ask, "ASK"), true),
            (server(ServerErrorKind::ClusterDown, "CLUSTERDOWN"), true),
            (server(ServerErrorKind::TryAgain, "TRYAGAIN"), true),
            (server(ServerErrorKind::CrossSlot, "CROSSSLOT"), false),
        ] {
            let shown = err.to_string();
            assert_eq!(
                matches!(redis_error(err), PortError::Unavailable(_)),
                unavailable,
                "{shown}"
            );
        }
    }
}

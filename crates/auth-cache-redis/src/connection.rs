//! Connections: a pool of multiplexed connections whose manager skips the round trip
//! deadpool-redis makes before every checkout, and checks connections only after one was
//! found broken.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_domain::ports::PortError;

use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{self, Cmd, Pipeline, RedisError, RedisFuture, Value};

use crate::redis_error;
use crate::revocations::{self, Warmth};

pub(crate) type Pool = managed::Pool<Manager>;
pub(crate) type PoolError = managed::PoolError<RedisError>;

/// A connection used within this long is lent again without a check, unless an operation
/// failed on a broken connection since (see [`RedisCache::once`]). One idle for longer is
/// checked first.
pub(crate) const TRUSTED_FOR: Duration = Duration::from_secs(5);

/// deadpool-redis's manager without its round trip on every checkout: it sends `UNWATCH` +
/// `PING` before lending a connection, which doubled the cost of every cache operation
/// (`verify-token` made two round trips instead of one). Connections in steady use are
/// lent as they are; after an operation finds its connection broken (the server
/// restarted, say), every pooled connection is checked before its next use, and a broken
/// one replaced.
pub(crate) struct Manager {
    /// Opens connections (plain, or TLS for `rediss://`).
    pub(crate) client: redis::Client,
    /// Numbers the `PING`s of checks, so that an answer is known to be this check's.
    pub(crate) ping_number: Arc<std::sync::atomic::AtomicUsize>,
    /// When an operation last found its connection broken.
    pub(crate) last_failure: Arc<Mutex<Option<Instant>>>,
    /// Whether the revocation list can be trusted (a new server makes it cold).
    pub(crate) warmth: Arc<Warmth>,
}

impl managed::Manager for Manager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    /// A new connection, and one `INFO server` on it: a server with another `run_id`
    /// than the last one reached has restarted or failed over, and may have lost the
    /// latest revocations (see [`revocations`]). A server that refuses `INFO` is not
    /// compared.
    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        match redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut conn)
            .await
        {
            Ok(info) => {
                if let Some(id) = revocations::run_id(&info) {
                    self.warmth.reached(id);
                }
            }
            Err(err) if !connection_survives(&err) => return Err(err),
            Err(_) => {}
        }
        Ok(conn)
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        let last_lent = metrics.recycled.unwrap_or(metrics.created);
        let failed_since = lock(&self.last_failure).is_some_and(|failed| failed >= last_lent);
        if !failed_since && metrics.last_used() < TRUSTED_FOR {
            return Ok(());
        }
        // As deadpool-redis checks: UNWATCH (a connection left in a WATCH), then a PING
        // whose answer must be this check's, in one round trip.
        let number = self
            .ping_number
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_string();
        let (answer,) = redis::Pipeline::with_capacity(2)
            .cmd("UNWATCH")
            .ignore()
            .cmd("PING")
            .arg(&number)
            .query_async::<(String,)>(conn)
            .await?;
        if answer == number {
            Ok(())
        } else {
            Err(managed::RecycleError::message("invalid PING answer"))
        }
    }
}

/// A connection an operation runs on: one server's, or the cluster's (which sends each
/// command to the master of its keys' slot and follows `MOVED` and `ASK` redirections).
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How one attempt on a lent connection failed.
pub(crate) enum Attempt {
    /// No connection could be had.
    Pool(PortError),
    /// The connection broke (checked, and replaced, before its next use).
    Broken(RedisError),
    /// The server answered with an error; the connection is fine.
    Answered(RedisError),
}

impl Attempt {
    pub(crate) fn into_port(self) -> PortError {
        match self {
            Attempt::Pool(err) => err,
            Attempt::Broken(err) | Attempt::Answered(err) => redis_error(err),
        }
    }
}

/// Whether a connection is fit for the next command after this error: only when the
/// server itself answered (a script error, a wrong type).
pub(crate) fn connection_survives(err: &RedisError) -> bool {
    !(err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error())
}

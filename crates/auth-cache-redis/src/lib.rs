//! Redis cache adapter: the access-token revocation list, the rate limiter and the lockout
//! attempt counters, shared by every instance of the service through one Redis server.
//!
//! # Keys
//!
//! Every key starts with the prefix given to [`RedisCache::connect`] (`{p}`, e.g. `auth:`)
//! and carries a TTL, so nothing grows forever, except two small keys that say whether the
//! revocation list is complete (see [`revocations`]):
//!
//! | key | value | expires |
//! |---|---|---|
//! | `{p}rv:jti:{uuid}` | `1` | at the latest `until` asked for (`PEXPIREAT`) |
//! | `{p}rv:sid:{uuid}` | `1` | at the latest `until` asked for |
//! | `{p}rv:usr:{uuid}` | the latest "not before", unix ms | at the latest `until` asked for |
//! | `{p}rv:warm` | `1`: the list holds what storage held when it was last warmed | never |
//! | `{p}rv:epoch` | a random number, changed by an instance whose revocation write failed | never |
//! | `{p}rl:{key}` | GCRA theoretical arrival time, unix ms | when that time is reached |
//! | `{p}at:{key}` | hash `failures`, `last_failure`, `level`, `locked_until` (ms) | after [`LockoutPolicy::retention`] |
//!
//! # Atomicity
//!
//! Every write is one Lua script (`EVALSHA`, loaded on first use), so Redis applies it
//! atomically with respect to every other client: the revocation scripts keep the later
//! expiry and the later "not before" mark, [`RateLimiter::hit`] reproduces
//! [`auth_domain::policy::gcra`] and [`AttemptCounter::record_failure`] /
//! [`AttemptCounter::record_success`] reproduce [`LockoutPolicy::after_failure`] /
//! [`LockoutPolicy::after_success`], all in integer milliseconds. The rate limiter and the
//! counters judge time by the `now` they are given (truncated to the millisecond), never by
//! the server's clock; revocation entries expire by the server's clock at their `until`.
//!
//! # Failures
//!
//! Every operation (taking a pooled connection included) is bounded by
//! [`RedisOptions::timeout`]. A timeout, a connection or I/O failure, or a server that is
//! loading or down is [`PortError::Unavailable`]; anything else (an unexpected reply, a
//! script error, corrupt data) is [`PortError::Unexpected`]. Error messages never contain
//! the password of the Redis URL.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::LazyLock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_domain::model::ColdReason;
use auth_domain::policy::{
    AttemptReservation, AttemptState, LockoutPolicy, RateDecision, RateLimit,
};
use auth_domain::ports::{AttemptCounter, Cache, PortError, RateLimiter};
use auth_domain::types::Timestamp;
use chrono::{DateTime, Utc};
use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, ErrorKind, RedisError, Script, ServerErrorKind};
use deadpool_redis::{PoolConfig, Runtime, Timeouts};

mod revocations;

use revocations::Warmth;

/// Pool settings of a [`RedisCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// Most connections open at once (default 16).
    pub pool_size: usize,
    /// Bound on every operation, waiting for a connection included (default 2 s).
    pub timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: Duration::from_secs(2),
        }
    }
}

/// The Redis cache. Cloning is cheap: clones share one connection pool.
#[derive(Clone)]
pub struct RedisCache {
    pool: Pool,
    last_failure: Arc<Mutex<Option<Instant>>>,
    warmth: Arc<Warmth>,
    prefix: String,
    timeout: Duration,
}

/// Shows the prefix and the pool's size, never the URL (it may hold a password).
impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("pool_size", &self.pool.status().max_size)
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

type Pool = managed::Pool<Manager>;
type PoolError = managed::PoolError<RedisError>;

/// A connection used within this long is lent again without a check, unless an operation
/// failed on a broken connection since (see [`RedisCache::once`]). One idle for longer is
/// checked first.
const TRUSTED_FOR: Duration = Duration::from_secs(5);

/// deadpool-redis's manager without its round trip on every checkout: it sends `UNWATCH` +
/// `PING` before lending a connection, which doubled the cost of every cache operation
/// (`verify-token` made two round trips instead of one). Connections in steady use are
/// lent as they are; after an operation finds its connection broken (the server
/// restarted, say), every pooled connection is checked before its next use, and a broken
/// one replaced.
struct Manager {
    inner: deadpool_redis::Manager,
    last_failure: Arc<Mutex<Option<Instant>>>,
    warmth: Arc<Warmth>,
}

impl managed::Manager for Manager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    /// A new connection, and one `INFO server` on it: a server with another `run_id`
    /// than the last one reached has restarted or failed over, and may have lost the
    /// latest revocations (see [`revocations`]). A server that refuses `INFO` is not
    /// compared.
    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut conn = self.inner.create().await?;
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
        self.inner.recycle(conn, metrics).await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How one attempt on a lent connection failed.
enum Attempt {
    /// No connection could be had.
    Pool(PortError),
    /// The connection broke (checked, and replaced, before its next use).
    Broken(RedisError),
    /// The server answered with an error; the connection is fine.
    Answered(RedisError),
}

impl Attempt {
    fn into_port(self) -> PortError {
        match self {
            Attempt::Pool(err) => err,
            Attempt::Broken(err) | Attempt::Answered(err) => redis_error(err),
        }
    }
}

/// Whether a connection is fit for the next command after this error: only when the
/// server itself answered (a script error, a wrong type).
fn connection_survives(err: &RedisError) -> bool {
    !(err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error())
}

/// The connection pool at one moment, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    /// Most connections the pool opens.
    pub max_size: usize,
    /// Connections handed out to operations.
    pub in_use: usize,
    /// Open connections resting in the pool.
    pub idle: usize,
    /// Operations waiting for a connection.
    pub waiting: usize,
}

impl RedisCache {
    /// Runs [`FAILURE`] or [`RESERVE`] on the attempt hash of `key`.
    async fn failure(
        &self,
        script: &'static Script,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptReservation, PortError> {
        let key = self.key("at:", key);
        let now = now.timestamp_millis();
        let policy = *policy;
        let reply: (i64, i64, i64, i64, i64, i64) = self
            .run(|mut conn| async move {
                script
                    .key(key)
                    .arg(now)
                    .arg(policy.threshold)
                    .arg(policy.base_lock.num_milliseconds())
                    .arg(policy.max_lock.num_milliseconds())
                    .arg(policy.failure_window.num_milliseconds())
                    .arg(policy.memory.num_milliseconds())
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let (counted, failures, last_failure, level, locked, locked_until) = reply;
        Ok(AttemptReservation {
            counted: counted == 1,
            state: AttemptState {
                failures: count(failures)?,
                last_failure: if last_failure < 0 {
                    None
                } else {
                    Some(timestamp(last_failure)?)
                },
                level: count(level)?,
                locked_until: if locked == 1 {
                    Some(timestamp(locked_until)?)
                } else {
                    None
                },
            },
        })
    }

    /// Closes the pool (at shutdown): idle connections are dropped at once, the ones in
    /// use when they come back, and later calls fail as unavailable.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Connections in use and idle, and operations waiting for one, now.
    pub fn pool_status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            in_use: status.size.saturating_sub(status.available),
            idle: status.available,
            waiting: status.waiting,
        }
    }

    /// Builds a pool of at most `options.pool_size` connections to `url` (`redis://…`,
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
                target: redact(url),
                source,
            })
        };
        let manager = deadpool_redis::Manager::new(url).map_err(|e| config_error(Box::new(e)))?;
        let last_failure = Arc::default();
        let warmth = Arc::new(Warmth::new());
        let manager = Manager {
            inner: manager,
            last_failure: Arc::clone(&last_failure),
            warmth: Arc::clone(&warmth),
        };
        let pool = Pool::builder(manager)
            .config(pool_config)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| config_error(Box::new(e)))?;
        let cache = RedisCache {
            pool,
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

    async fn ping_server(&self) -> Result<(), PortError> {
        self.run(
            |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
        )
        .await
        .map(drop)
    }

    /// Takes a connection and runs `op` on it, the whole bounded by the timeout. After a
    /// connection fails, the pool checks each one before its next use; see [`Manager`].
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, PortError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(async { self.once(op).await.map_err(Attempt::into_port) })
            .await
    }

    /// [`RedisCache::run`] for an operation that may run twice (a read): when the lent
    /// connection turns out broken (the server restarted since its last use), once more on
    /// a fresh one, so that a restart fails no verification.
    async fn run_idempotent<T, F, Fut>(&self, op: F) -> Result<T, PortError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(async {
            match self.once(&op).await {
                Err(Attempt::Broken(_)) => self.once(&op).await,
                other => other,
            }
            .map_err(Attempt::into_port)
        })
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
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        // The pooled connection goes back at once: a multiplexed connection carries any
        // number of operations at a time, so concurrent operations share one (their commands
        // pipelined on one socket, fewer system calls here and in Redis) instead of each
        // holding its own.
        let conn = MultiplexedConnection::clone(
            &*self
                .pool
                .get()
                .await
                .map_err(|e| Attempt::Pool(pool_error(e)))?,
        );
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
}

/// Exact integer helpers shared by the scripts (Lua 5.1 numbers are doubles, exact for
/// integers below 2^53; `idiv` corrects any rounding of the float division).
const LUA_INT: &str = r"
local function idiv(a, b)
  local q = math.floor(a / b)
  while q * b > a do q = q - 1 end
  while (q + 1) * b <= a do q = q + 1 end
  return q
end
local function ceil_secs(ms)
  if ms < 0 then ms = 0 end
  return idiv(ms + 999, 1000)
end
local function int(x) return string.format('%d', x) end
";

/// `auth_domain::policy::gcra` on the TAT in `KEYS[1]`: `ARGV` = now (unix ms), limit,
/// window (ms). Returns `{allowed, remaining, reset_after_secs, retry_after_secs}`; an
/// allowed request stores the new TAT, expiring when it is reached.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LUA_INT}
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit < 1 then limit = 1 end
local window = tonumber(ARGV[3])
if window < 1 then window = 1 end
local interval = idiv(window, limit)
if interval < 1 then interval = 1 end
local tat = now
local stored = tonumber(redis.call('GET', KEYS[1]))
if stored and stored > now then tat = stored end
local span = interval * limit
local new_tat = tat + interval
local allow_at = new_tat - span
if allow_at > now then
  local retry = ceil_secs(allow_at - now)
  if retry < 1 then retry = 1 end
  return {{0, 0, ceil_secs(tat - now), retry}}
end
local remaining = idiv(span - (new_tat - now), interval)
if remaining < 0 then remaining = 0 end
redis.call('SET', KEYS[1], int(new_tat), 'PX', int(new_tat - now))
return {{1, remaining, ceil_secs(new_tat - now), 0}}
"
    ))
});

/// Lua: `retention(lu)` = `LockoutPolicy::retention` in ms, with `now`, `window` and
/// `memory` in scope.
const LUA_RETENTION: &str = r"
local function retention(lu)
  local keep = window
  if lu ~= nil then
    local left = lu - now + memory
    if left > keep then keep = left end
  end
  if keep < 1000 then keep = 1000 end
  return keep
end
local function save(failures, lf, level, lu)
  redis.call('HSET', KEYS[1], 'failures', int(failures), 'level', int(level))
  if lf ~= nil then
    redis.call('HSET', KEYS[1], 'last_failure', int(lf))
  else
    redis.call('HDEL', KEYS[1], 'last_failure')
  end
  if lu ~= nil then
    redis.call('HSET', KEYS[1], 'locked_until', int(lu))
  else
    redis.call('HDEL', KEYS[1], 'locked_until')
  end
  redis.call('PEXPIRE', KEYS[1], int(retention(lu)))
end
";

/// `LockoutPolicy::after_failure` on the hash `KEYS[1]`: `ARGV` = now, threshold,
/// base_lock, max_lock, failure_window, memory (ms). Keeps the result for
/// `LockoutPolicy::retention` and returns `{counted, failures, last_failure, level,
/// has_lock, locked_until}` (`last_failure` -1 when none). With `reserve`, a key locked at
/// `now` is left as it is and returned with `counted` 0 (`AttemptCounter::reserve_attempt`).
fn failure_script(reserve: bool) -> String {
    let guard = if reserve {
        "if lu ~= nil and lu > now then return {0, failures, lf or -1, level, 1, lu} end"
    } else {
        ""
    };
    format!(
        r"{LUA_INT}
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local max_lock = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local memory = tonumber(ARGV[6])
{LUA_RETENTION}
local h = redis.call('HMGET', KEYS[1], 'failures', 'last_failure', 'level', 'locked_until')
local failures = tonumber(h[1]) or 0
local lf = tonumber(h[2])
local level = tonumber(h[3]) or 0
local lu = tonumber(h[4])
{guard}
if lf == nil or now - lf > window then failures = 0 end
if lu == nil or now - lu > memory then level = 0 end
failures = failures + 1
lf = now
if failures >= threshold then
  if level < 4294967295 then level = level + 1 end
  local shift = level - 1
  if shift < 0 then shift = 0 end
  if shift > 40 then shift = 40 end
  local lock = base * (2 ^ shift)
  if lock > max_lock then lock = max_lock end
  lu = now + lock
  failures = 0
end
save(failures, lf, level, lu)
if lu == nil then
  return {{1, failures, lf, level, 0, 0}}
end
return {{1, failures, lf, level, 1, lu}}
"
    )
}

static FAILURE: LazyLock<Script> = LazyLock::new(|| Script::new(&failure_script(false)));
static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(&failure_script(true)));

/// `LockoutPolicy::after_success_lifting` on the hash `KEYS[1]`: `ARGV` = now,
/// failure_window, memory, lifted (ms; -1 for none). A missing key stays missing; a state
/// that becomes the default is deleted.
static SUCCESS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LUA_INT}
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local memory = tonumber(ARGV[3])
local lifted = tonumber(ARGV[4])
{LUA_RETENTION}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local h = redis.call('HMGET', KEYS[1], 'level', 'locked_until')
local level = tonumber(h[1]) or 0
local lu = tonumber(h[2])
if lifted >= 0 and lu == lifted then
  lu = nil
  if level > 0 then level = level - 1 end
end
if level == 0 and lu == nil then
  redis.call('DEL', KEYS[1])
  return 1
end
save(0, nil, level, lu)
return 1
"
    ))
});

impl RateLimiter for RedisCache {
    /// One script applies [`auth_domain::policy::gcra`] to the TAT in `{p}rl:{key}`, with
    /// `now` in whole milliseconds; an allowed request stores the new TAT with a TTL of
    /// `new TAT - now`.
    async fn hit(
        &self,
        key: &str,
        policy: RateLimit,
        now: Timestamp,
    ) -> Result<RateDecision, PortError> {
        let key = self.key("rl:", key);
        let now = now.timestamp_millis();
        let limit = i64::from(policy.limit);
        let window = policy.window.num_milliseconds();
        let reply: (i64, i64, i64, i64) = self
            .run(|mut conn| async move {
                GCRA.key(key)
                    .arg(now)
                    .arg(limit)
                    .arg(window)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let (allowed, remaining, reset_after, retry_after) = reply;
        Ok(RateDecision {
            policy,
            allowed: allowed == 1,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
            reset_after_secs: u64::try_from(reset_after).unwrap_or(0),
            retry_after_secs: u64::try_from(retry_after).unwrap_or(0),
        })
    }
}

impl AttemptCounter for RedisCache {
    /// `HGETALL {p}at:{key}`; the default when missing (Redis has dropped states past
    /// their retention).
    async fn attempts(&self, key: &str) -> Result<AttemptState, PortError> {
        let key = self.key("at:", key);
        let fields: HashMap<String, String> =
            self.run(|mut conn| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut conn).await
            })
            .await?;
        attempt_state(&fields)
    }

    /// One script applies [`LockoutPolicy::after_failure`] (policy durations in whole
    /// milliseconds) and keeps the result for [`LockoutPolicy::retention`].
    async fn record_failure(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptState, PortError> {
        Ok(self.failure(&FAILURE, key, policy, now).await?.state)
    }

    /// The same script as [`Self::record_failure`], which leaves a locked key alone.
    async fn reserve_attempt(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptReservation, PortError> {
        self.failure(&RESERVE, key, policy, now).await
    }

    /// One script applies [`LockoutPolicy::after_success_lifting`]: failures forgotten,
    /// level and lock kept (with a fresh retention) unless the lock is `lifted`; a state
    /// that becomes the default is deleted, and a missing key is not created.
    async fn record_success(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
        lifted: Option<Timestamp>,
    ) -> Result<(), PortError> {
        let key = self.key("at:", key);
        let now = now.timestamp_millis();
        let window = policy.failure_window.num_milliseconds();
        let memory = policy.memory.num_milliseconds();
        let lifted = lifted.map_or(-1, |t| t.timestamp_millis());
        self.run(|mut conn| async move {
            SUCCESS
                .key(key)
                .arg(now)
                .arg(window)
                .arg(memory)
                .arg(lifted)
                .invoke_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(drop)
    }
}

impl Cache for RedisCache {
    /// `PING`.
    async fn ping(&self) -> Result<(), PortError> {
        self.ping_server().await
    }
}

/// The state stored in an attempt hash.
fn attempt_state(fields: &HashMap<String, String>) -> Result<AttemptState, PortError> {
    let millis = |name: &str| {
        fields
            .get(name)
            .map(|raw| parse_millis(raw).and_then(timestamp))
            .transpose()
    };
    let number = |name: &str| {
        fields
            .get(name)
            .map(|raw| {
                raw.parse::<u32>()
                    .map_err(|_| data(format!("attempt field {name} is not a count")))
            })
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(AttemptState {
        failures: number("failures")?,
        last_failure: millis("last_failure")?,
        level: number("level")?,
        locked_until: millis("locked_until")?,
    })
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

/// Connection, I/O and "server not ready" errors are `Unavailable`; the rest `Unexpected`.
fn redis_error(err: RedisError) -> PortError {
    let unavailable = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
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

/// The URL without its user name and password (`redis://***@host:6379/0`).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable url>".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials_only() {
        assert_eq!(
            redact("redis://user:s3cret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://:p@ss@host/1?x=y"), "redis://***@host/1?x=y");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("s3cret"), "<unparsable url>");
    }

    #[test]
    fn missing_fields_are_the_default_state() {
        let state = attempt_state(&HashMap::new());
        assert!(state.is_ok_and(|s| s == AttemptState::default()));
        let corrupt = HashMap::from([("failures".to_owned(), "x".to_owned())]);
        assert!(matches!(
            attempt_state(&corrupt),
            Err(PortError::Unexpected(_))
        ));
    }
}

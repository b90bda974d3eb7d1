//! Read replicas: which reads may go to one, how fresh a replica is known to be, and how a
//! caller reads its own writes (decision record 0012).
//!
//! # How fresh a replica is
//!
//! A monitor task asks the primary for its WAL position (`pg_current_wal_lsn()`) every
//! [`Replicas::every`], and keeps those samples with the time each question was sent. Every
//! commit acknowledged before a sample's time lies before its position. Another task per
//! replica asks for the position it has replayed (`pg_last_wal_replay_lsn()`): the latest
//! sample at or below it says that the replica holds every commit acknowledged before that
//! sample's time, its *fresh-as-of* time. A replica serves a read only while that time is
//! within [`Replicas::max_lag`] of now, so a replica that stops replaying (an apply delay,
//! a lost primary, a crash) ages out by itself, between checks too. The bound needs no
//! privilege (`pg_stat_replication` and `pg_stat_wal_receiver` do) and holds when the
//! primary is idle: its position does not move, and the replica reaches it.
//!
//! # Reading one's own writes
//!
//! Every write of this store records, per account, when it ended. A routed read for that
//! account takes a replica only if the replica is fresh as of a time after that write
//! ended; otherwise the primary answers. The record of an account is dropped once it is
//! older than `max_lag`, since no replica older than that serves anyway. This holds within
//! one instance of the service; a write through another instance is seen by a replica read
//! at most `max_lag` later (see the decision record).
//!
//! # Failures
//!
//! A replica that cannot be reached, answers with an error or is not in recovery (promoted,
//! or a primary given as a replica) is skipped until a check finds it fresh again. A read
//! that fails on a replica is run again on the primary: a replica never makes a read fail.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use auth_domain::monitoring::PoolStatus;
use auth_domain::types::UserId;
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use uuid::Uuid;

use crate::pool::PgStore;

/// How often the primary's position is sampled and each replica checked, at most.
const MAX_EVERY: Duration = Duration::from_secs(1);
/// How often, at least (for a `max_lag` near zero).
const MIN_EVERY: Duration = Duration::from_millis(50);

/// The read replicas of a store.
pub(crate) struct Replicas {
    pub(crate) members: Vec<Replica>,
    /// How far behind now a replica's fresh-as-of time may be.
    pub(crate) max_lag: Duration,
    /// Between samples and checks.
    pub(crate) every: Duration,
    /// The primary's WAL positions, oldest first, with when each was asked for.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    /// When this store's last write for an account ended.
    written: Mutex<HashMap<Uuid, Instant>>,
    /// Where the round robin starts next.
    next: AtomicUsize,
    /// Reads that went to the primary because no replica was fresh enough for them.
    pub(crate) lagging: AtomicU64,
    /// Reads that went to the primary because their account was just written.
    pub(crate) own_writes: AtomicU64,
    closed: AtomicBool,
}

/// One replica: its own pool, and what its last check found.
pub(crate) struct Replica {
    /// `host:port/dbname`, for logs and metrics.
    pub(crate) name: String,
    pub(crate) store: PgStore,
    /// The replica holds every commit acknowledged before this time; `None`: unknown, or
    /// the last check or read failed.
    fresh_as_of: Mutex<Option<Instant>>,
    /// Reads it served.
    reads: AtomicU64,
    /// Checks and reads that failed on it.
    failures: AtomicU64,
}

/// One replica as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    /// `host:port/dbname`.
    pub name: String,
    /// Its connection pool.
    pub pool: PoolStatus,
    /// Whether it serves reads now.
    pub usable: bool,
    /// How far behind the primary it is known to be at most; `None` when unknown.
    pub lag: Option<Duration>,
    /// Reads it served since start.
    pub reads: u64,
    /// Checks and reads that failed on it since start.
    pub failures: u64,
}

/// Reads the replicas did not serve, since start, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrimaryReads {
    /// No replica was fresh enough (down, lagging, or not yet checked).
    pub lagging: u64,
    /// The account was written through this instance more recently than any replica is
    /// known to hold.
    pub own_writes: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Replicas {
    pub(crate) fn new(members: Vec<(String, PgStore)>, max_lag: Duration) -> Self {
        Self {
            members: members
                .into_iter()
                .map(|(name, store)| Replica {
                    name,
                    store,
                    fresh_as_of: Mutex::new(None),
                    reads: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                })
                .collect(),
            max_lag,
            every: (max_lag / 4).clamp(MIN_EVERY, MAX_EVERY),
            samples: Mutex::new(VecDeque::new()),
            written: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
            lagging: AtomicU64::new(0),
            own_writes: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Notes that a write for `user` just ended.
    pub(crate) fn wrote(&self, user: UserId) {
        let now = Instant::now();
        let mut written = lock(&self.written);
        if written.len() >= 4096 {
            let max_lag = self.max_lag;
            written.retain(|_, at| now.duration_since(*at) <= max_lag);
        }
        written.insert(user.0, now);
    }

    /// A replica fresh enough for a read of `user`'s data, in turn; `None`: the primary.
    pub(crate) fn pick(&self, user: UserId) -> Option<&Replica> {
        let now = Instant::now();
        let written = lock(&self.written).get(&user.0).copied();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.members.len();
        let mut fresh_but_behind_the_write = false;
        for offset in 0..count {
            let replica = &self.members[(start + offset) % count];
            let Some(fresh_as_of) = *lock(&replica.fresh_as_of) else {
                continue;
            };
            if now.saturating_duration_since(fresh_as_of) > self.max_lag {
                continue;
            }
            if written.is_some_and(|at| fresh_as_of <= at) {
                fresh_but_behind_the_write = true;
                continue;
            }
            return Some(replica);
        }
        let reason = if fresh_but_behind_the_write {
            &self.own_writes
        } else {
            &self.lagging
        };
        reason.fetch_add(1, Ordering::Relaxed);
        None
    }

    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        let now = Instant::now();
        self.members
            .iter()
            .map(|replica| {
                let lag = lock(&replica.fresh_as_of).map(|at| now.saturating_duration_since(at));
                ReplicaStatus {
                    name: replica.name.clone(),
                    pool: replica.store.pool_status(),
                    usable: lag.is_some_and(|lag| lag <= self.max_lag),
                    lag,
                    reads: replica.reads.load(Ordering::Relaxed),
                    failures: replica.failures.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    pub(crate) fn primary_reads(&self) -> PrimaryReads {
        PrimaryReads {
            lagging: self.lagging.load(Ordering::Relaxed),
            own_writes: self.own_writes.load(Ordering::Relaxed),
        }
    }

    /// Stops the monitor tasks and closes the replicas' pools.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for replica in &self.members {
            replica.store.close();
        }
    }

    /// Adds a sample of the primary's position, asked for at `asked`, and forgets the ones
    /// too old to make any replica fresh enough.
    fn sampled(&self, asked: Instant, position: u64) {
        let mut samples = lock(&self.samples);
        samples.push_back((asked, position));
        let keep = self.max_lag + 2 * self.every;
        while samples.len() > 1
            && samples
                .front()
                .is_some_and(|(at, _)| asked.duration_since(*at) > keep)
        {
            samples.pop_front();
        }
    }

    /// The time of the latest sample at or below `replayed`.
    fn fresh_as_of(&self, replayed: u64) -> Option<Instant> {
        lock(&self.samples)
            .iter()
            .rev()
            .find(|(_, position)| *position <= replayed)
            .map(|(at, _)| *at)
    }
}

impl Replica {
    pub(crate) fn served(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// A read or check failed here: skipped until a check finds it fresh again.
    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *lock(&self.fresh_as_of) = None;
    }
}

/// Starts the monitor: one task sampling the primary, one per replica checking it. They
/// end when the store is closed or dropped.
pub(crate) fn monitor(primary: &PgStore, replicas: &Arc<Replicas>) {
    let runtime = primary.runtime().clone();
    let every = replicas.every;
    let weak = Arc::downgrade(replicas);
    let primary = primary.clone();
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(replicas) = alive(&weak) else {
                return;
            };
            let asked = Instant::now();
            match tokio::time::timeout(MAX_EVERY.max(every), position(&primary, PRIMARY)).await {
                Ok(Ok(Some(position))) => replicas.sampled(asked, position),
                Ok(Ok(None)) => {}
                Ok(Err(err)) => tracing::debug!(error = %err, "postgres: cannot sample the primary's WAL position"),
                Err(_) => tracing::debug!("postgres: sampling the primary's WAL position timed out"),
            }
        }
    });
    for index in 0..replicas.members.len() {
        let weak = Arc::downgrade(replicas);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Whether the last check found it usable, to log changes only.
            let mut was_fresh = false;
            loop {
                ticks.tick().await;
                let Some(replicas) = alive(&weak) else {
                    return;
                };
                let Some(replica) = replicas.members.get(index) else {
                    return;
                };
                let store = replica.store.clone();
                let checked =
                    tokio::time::timeout(MAX_EVERY.max(every), position(&store, REPLICA)).await;
                let fresh = match checked {
                    Ok(Ok(Some(replayed))) => replicas.fresh_as_of(replayed),
                    Ok(Ok(None)) => {
                        if was_fresh {
                            tracing::warn!(replica = %replica.name, "postgres: the read replica is not in recovery (promoted, or not a replica): skipped");
                        }
                        None
                    }
                    Ok(Err(err)) => {
                        if was_fresh {
                            tracing::warn!(replica = %replica.name, error = %err, "postgres: the read replica cannot be reached: skipped");
                        }
                        replica.failures.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Err(_) => {
                        replica.failures.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                };
                // A fresh-as-of time only moves forward while the replica stays healthy.
                {
                    let mut current = lock(&replica.fresh_as_of);
                    *current = match (fresh, *current) {
                        (Some(new), Some(old)) => Some(new.max(old)),
                        (new, _) => new,
                    };
                }
                let now_fresh = fresh.is_some_and(|at| at.elapsed() <= replicas.max_lag);
                if now_fresh && !was_fresh {
                    tracing::info!(replica = %replica.name, "postgres: the read replica serves reads");
                } else if !now_fresh && was_fresh && fresh.is_some() {
                    tracing::warn!(replica = %replica.name, max_lag_ms = replicas.max_lag.as_millis() as u64, "postgres: the read replica lags: skipped");
                }
                was_fresh = now_fresh;
            }
        });
    }
}

fn alive(weak: &Weak<Replicas>) -> Option<Arc<Replicas>> {
    weak.upgrade()
        .filter(|replicas| !replicas.closed.load(Ordering::Relaxed))
}

/// The primary's current WAL position.
const PRIMARY: &str = "SELECT NOT pg_is_in_recovery() AS ok, pg_current_wal_lsn()::text AS lsn";
/// The position a replica has replayed (`ok` false: it is not a replica).
const REPLICA: &str = "SELECT pg_is_in_recovery() AS ok, \
     COALESCE(pg_last_wal_replay_lsn(), '0/0')::text AS lsn";

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Bool)]
    ok: bool,
    #[diesel(sql_type = Text)]
    lsn: String,
}

/// Runs `query` (one of the above) on `store`: the position, `None` if `ok` is false.
async fn position(
    store: &PgStore,
    query: &'static str,
) -> Result<Option<u64>, auth_domain::ports::PortError> {
    use diesel_async::RunQueryDsl;
    let row: Position = store
        .run("replica_position", move |conn| {
            Box::pin(async move { diesel::sql_query(query).get_result(conn).await })
        })
        .await?;
    if !row.ok {
        return Ok(None);
    }
    parse_lsn(&row.lsn).map(Some).ok_or_else(|| {
        auth_domain::ports::PortError::unexpected(format!("not a WAL position: {}", row.lsn))
    })
}

/// `16/B374D848` → its 64-bit position.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    (high <= u64::from(u32::MAX) && low <= u64::from(u32::MAX)).then_some((high << 32) | low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_positions_parse_as_postgresql_prints_them() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("nonsense"), None);
        assert_eq!(parse_lsn("1/"), None);
        assert_eq!(parse_lsn("100000000/0"), None);
    }
}

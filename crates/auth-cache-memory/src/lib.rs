//! In-process cache adapter: the access-token revocation list, the rate limiter, the
//! lockout attempt counters and short-lived values (pending second factors, WebAuthn
//! challenges, used TOTP steps), kept in hash maps behind locks.
//!
//! # Single instance only
//!
//! The state lives in the memory of one process. Several instances of the service behind a
//! load balancer would each see only their own revocations, rate-limit counts, failures and
//! short-lived values (a login's second factor must then reach the instance that saw its
//! password), and a restart forgets everything (the service re-learns session revocations and users'
//! "not before" marks from storage through `AuthService::warm_revocations`). Use a shared cache adapter when running more than one
//! instance.
//!
//! # Atomicity
//!
//! Every port method takes one lock and applies the domain's pure functions
//! ([`gcra`], [`LockoutPolicy::after_failure`], [`LockoutPolicy::after_success`],
//! [`LockoutPolicy::retention`]) under it, so concurrent calls on one key are serialized and
//! none is lost. No lock is held across an `.await`. A lock poisoned by a panic elsewhere is
//! recovered (every update leaves the maps consistent), never turned into a panic.
//!
//! # Time and expiry
//!
//! Each entry has an expiry: a rate-limit key lives until its theoretical arrival time
//! (TAT) passes, an attempt state for [`LockoutPolicy::retention`] after its last update,
//! a revocation until the `until` it was given, a short-lived value until the `expires_at`
//! it was given. Rate limits, attempt counters and short-lived values judge expiry by the
//! `now` their callers pass, and never read a clock. The revocation methods
//! carry no time, so the revocation list judges `until` against the system clock
//! ([`Utc::now`]): the service's clock must therefore be the system clock (as it is in
//! production) for revocations to be honoured for exactly as long as asked.
//!
//! Expired entries are ignored on read and removed by sweeps: opportunistically by a write
//! once more than `max(`[`MemoryCache::SWEEP_AFTER_WRITES`]`, live entries at the last
//! sweep)` writes reached that table since its last sweep (so a sweep costs amortized O(1)
//! per write and expired entries never outnumber the live ones by more than that), or
//! explicitly by [`MemoryCache::sweep`]. Memory therefore stays proportional to the live
//! entries.
#![forbid(unsafe_code)]

mod ephemeral;
mod limits;
mod revocations;

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use auth_domain::policy::AttemptState;
use auth_domain::ports::{Cache, PortError};
use auth_domain::types::{SessionId, Timestamp, UserId};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// The in-process cache. Cloning is cheap and clones share one state.
#[derive(Clone, Default)]
pub struct MemoryCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Read on every token verification: a read-write lock so readers never wait for each
    /// other, only for a writer.
    revocations: RwLock<RevocationTable>,
    rates: Mutex<RateTable>,
    attempts: Mutex<AttemptTable>,
    ephemeral: Mutex<EphemeralTable>,
}

impl MemoryCache {
    /// The minimum number of writes to a table between two opportunistic sweeps of it.
    pub const SWEEP_AFTER_WRITES: usize = 1024;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes every entry whose expiry is at or before `now`, from every table, and
    /// returns how many were removed. Optional: writes sweep on their own now and then; a
    /// periodic call only frees memory sooner.
    pub fn sweep(&self, now: Timestamp) -> usize {
        let revocations = write(&self.inner.revocations).sweep(now);
        let rates = lock(&self.inner.rates).sweep(now);
        let attempts = lock(&self.inner.attempts).sweep(now);
        let ephemeral = lock(&self.inner.ephemeral).sweep(now);
        revocations + rates + attempts + ephemeral
    }

    /// The number of entries stored in all tables, expired but not yet swept ones included.
    pub fn len(&self) -> usize {
        let revocations = read(&self.inner.revocations).len();
        let rates = lock(&self.inner.rates).len();
        let attempts = lock(&self.inner.attempts).len();
        let ephemeral = lock(&self.inner.ephemeral).len();
        revocations + rates + attempts + ephemeral
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Shows only the number of entries: keys are derived from personal data.
impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl Cache for MemoryCache {
    /// Always succeeds: there is nothing to reach.
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

/// When a table sweeps itself.
#[derive(Debug)]
struct SweepSchedule {
    writes: usize,
    threshold: usize,
}

impl Default for SweepSchedule {
    fn default() -> Self {
        Self {
            writes: 0,
            threshold: MemoryCache::SWEEP_AFTER_WRITES,
        }
    }
}

impl SweepSchedule {
    /// Counts a write; true when the table should sweep now.
    fn count(&mut self) -> bool {
        self.writes = self.writes.saturating_add(1);
        self.writes > self.threshold
    }

    /// Restarts the count after a sweep that left `remaining` entries.
    fn reset(&mut self, remaining: usize) {
        self.writes = 0;
        self.threshold = remaining.max(MemoryCache::SWEEP_AFTER_WRITES);
    }
}

#[derive(Debug, Clone, Copy)]
struct UserMark {
    not_before: Timestamp,
    until: Timestamp,
}

#[derive(Debug, Default)]
struct RevocationTable {
    tokens: HashMap<Uuid, Timestamp>,
    sessions: HashMap<SessionId, Timestamp>,
    users: HashMap<UserId, UserMark>,
    schedule: SweepSchedule,
}

impl RevocationTable {
    fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.users.len()
    }

    fn sweep(&mut self, now: Timestamp) -> usize {
        let removed = retain_live(&mut self.tokens, now, |until| *until)
            + retain_live(&mut self.sessions, now, |until| *until)
            + retain_live(&mut self.users, now, |mark| mark.until);
        self.schedule.reset(self.len());
        removed
    }

    fn after_write(&mut self, now: Timestamp) {
        if self.schedule.count() {
            self.sweep(now);
        }
    }
}

/// The TAT of each key; it is also the key's expiry.
#[derive(Debug, Default)]
struct RateTable {
    tats: HashMap<String, Timestamp>,
    schedule: SweepSchedule,
}

impl RateTable {
    fn len(&self) -> usize {
        self.tats.len()
    }

    fn sweep(&mut self, now: Timestamp) -> usize {
        let removed = retain_live(&mut self.tats, now, |tat| *tat);
        self.schedule.reset(self.len());
        removed
    }

    fn after_write(&mut self, now: Timestamp) {
        if self.schedule.count() {
            self.sweep(now);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct AttemptEntry {
    state: AttemptState,
    expires: Timestamp,
}

#[derive(Debug, Default)]
struct AttemptTable {
    states: HashMap<String, AttemptEntry>,
    schedule: SweepSchedule,
}

impl AttemptTable {
    fn len(&self) -> usize {
        self.states.len()
    }

    /// The state of `key` if it has not expired at `now`, else the default.
    fn live(&self, key: &str, now: Timestamp) -> AttemptState {
        self.states
            .get(key)
            .filter(|e| e.expires > now)
            .map(|e| e.state)
            .unwrap_or_default()
    }

    fn sweep(&mut self, now: Timestamp) -> usize {
        let removed = retain_live(&mut self.states, now, |e| e.expires);
        self.schedule.reset(self.len());
        removed
    }

    fn after_write(&mut self, now: Timestamp) {
        if self.schedule.count() {
            self.sweep(now);
        }
    }
}

/// A short-lived value (a claim's mark is empty, a counter its decimal digits).
#[derive(Debug, Clone)]
struct EphemeralEntry {
    value: Vec<u8>,
    expires: Timestamp,
}

#[derive(Debug, Default)]
struct EphemeralTable {
    entries: HashMap<String, EphemeralEntry>,
    schedule: SweepSchedule,
}

impl EphemeralTable {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn sweep(&mut self, now: Timestamp) -> usize {
        let removed = retain_live(&mut self.entries, now, |e| e.expires);
        self.schedule.reset(self.len());
        removed
    }

    fn after_write(&mut self, now: Timestamp) {
        if self.schedule.count() {
            self.sweep(now);
        }
    }
}

/// Stores `key` until `until`, or extends a live entry to the later of both; an expired
/// entry is replaced.
fn extend<K: Hash + Eq>(map: &mut HashMap<K, Timestamp>, key: K, until: Timestamp, now: Timestamp) {
    map.entry(key)
        .and_modify(|old| {
            *old = if *old > now { (*old).max(until) } else { until };
        })
        .or_insert(until);
}

/// Drops the entries whose expiry is at or before `now`, gives back memory when the map
/// has become mostly empty, and returns how many were dropped.
fn retain_live<K: Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    now: Timestamp,
    expiry: impl Fn(&V) -> Timestamp,
) -> usize {
    let before = map.len();
    map.retain(|_, value| expiry(value) > now);
    if map.capacity() > 64 && map.capacity() / 4 > map.len() {
        map.shrink_to(map.len().saturating_mul(2));
    }
    before - map.len()
}

/// `at + delta`, saturating instead of panicking at the end of representable time.
fn add(at: Timestamp, delta: TimeDelta) -> Timestamp {
    at.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_domain::policy::{LockoutPolicy, RateLimit};
    use auth_domain::ports::{AttemptCounter, EphemeralStore, RateLimiter, RevocationList};

    #[test]
    fn a_poisoned_lock_is_recovered_instead_of_panicking() {
        let cache = MemoryCache::new();
        let poisoner = cache.clone();
        let joined = std::thread::spawn(move || {
            let _guards = (
                write(&poisoner.inner.revocations),
                lock(&poisoner.inner.rates),
                lock(&poisoner.inner.attempts),
                lock(&poisoner.inner.ephemeral),
            );
            panic!("poison every lock");
        })
        .join();
        assert!(joined.is_err(), "the thread panicked holding the locks");
        assert!(cache.inner.rates.is_poisoned());

        let now = Utc::now();
        assert_eq!(cache.sweep(now), 0);
        assert!(cache.is_empty());
        let policy = RateLimit {
            name: "test",
            limit: 1,
            window: TimeDelta::minutes(1),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        let Ok(runtime) = runtime else {
            panic!("no runtime")
        };
        runtime.block_on(async {
            let decision = cache.hit("k", policy, now).await;
            assert!(decision.is_ok_and(|d| d.allowed));
            let revoked = cache
                .revoke_token(Uuid::nil(), now + TimeDelta::minutes(1))
                .await;
            assert!(revoked.is_ok());
            let counted = cache
                .record_failure("k", &LockoutPolicy::default(), now)
                .await;
            assert!(counted.is_ok_and(|s| s.failures == 1));
            let put = cache
                .put_ephemeral("k", b"v", now + TimeDelta::minutes(1), now)
                .await;
            assert!(put.is_ok());
        });
        assert_eq!(cache.len(), 4);
    }
}

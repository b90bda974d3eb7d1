//! Rate limits (GCRA) and lockout attempt counters.

use auth_domain::policy::{
    AttemptReservation, AttemptState, LockoutPolicy, RateDecision, RateLimit, gcra,
};
use auth_domain::ports::{AttemptCounter, PortError, RateLimiter};
use auth_domain::types::Timestamp;

use super::{AttemptEntry, AttemptTable, MemoryCache, add, lock};

impl RateLimiter for MemoryCache {
    /// Applies [`gcra`] to the key's TAT under the lock; a TAT at or before `now` counts as
    /// none. The key is kept until its new TAT.
    async fn hit(
        &self,
        key: &str,
        policy: RateLimit,
        now: Timestamp,
    ) -> Result<RateDecision, PortError> {
        let mut table = lock(&self.inner.rates);
        let stored = table.tats.get(key).copied().filter(|tat| *tat > now);
        let (tat, decision) = gcra(policy, stored, now);
        match table.tats.get_mut(key) {
            Some(slot) => *slot = tat,
            None => {
                table.tats.insert(key.to_owned(), tat);
            }
        }
        table.after_write(now);
        Ok(decision)
    }
}

/// Stores `state` under `key` for [`LockoutPolicy::retention`].
fn keep_attempts(
    table: &mut AttemptTable,
    key: &str,
    state: AttemptState,
    policy: &LockoutPolicy,
    now: Timestamp,
) {
    let entry = AttemptEntry {
        state,
        expires: add(now, policy.retention(&state, now)),
    };
    match table.states.get_mut(key) {
        Some(slot) => *slot = entry,
        None => {
            table.states.insert(key.to_owned(), entry);
        }
    }
    table.after_write(now);
}

impl AttemptCounter for MemoryCache {
    /// The stored state, or the default. Without a `now` this reads no clock: a state past
    /// its retention may still be returned until swept, which is harmless since by
    /// construction of [`LockoutPolicy::retention`] it is then equivalent to the default
    /// (failures stale, lock over, escalation forgotten).
    async fn attempts(&self, key: &str) -> Result<AttemptState, PortError> {
        let table = lock(&self.inner.attempts);
        Ok(table.states.get(key).map(|e| e.state).unwrap_or_default())
    }

    /// Applies [`LockoutPolicy::after_failure`] under the lock (an expired state counts as
    /// the default) and keeps the result for [`LockoutPolicy::retention`].
    async fn record_failure(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptState, PortError> {
        let mut table = lock(&self.inner.attempts);
        let state = table.live(key, now);
        let next = policy.after_failure(state, now);
        keep_attempts(&mut table, key, next, policy, now);
        Ok(next)
    }

    /// Under the lock: a key locked at `now` is left as it is; otherwise
    /// [`LockoutPolicy::after_failure`] is applied and kept, as in [`Self::record_failure`].
    async fn reserve_attempt(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptReservation, PortError> {
        let mut table = lock(&self.inner.attempts);
        let state = table.live(key, now);
        if state.locked_at(now).is_some() {
            return Ok(AttemptReservation {
                counted: false,
                state,
            });
        }
        let next = policy.after_failure(state, now);
        keep_attempts(&mut table, key, next, policy, now);
        Ok(AttemptReservation {
            counted: true,
            state: next,
        })
    }

    /// Applies [`LockoutPolicy::after_success_lifting`] under the lock. A key whose state
    /// becomes the default is removed, so successes alone never create entries.
    async fn record_success(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
        lifted: Option<Timestamp>,
    ) -> Result<(), PortError> {
        let mut table = lock(&self.inner.attempts);
        let next = policy.after_success_lifting(table.live(key, now), lifted);
        if next == AttemptState::default() {
            table.states.remove(key);
        } else if let Some(slot) = table.states.get_mut(key) {
            *slot = AttemptEntry {
                state: next,
                expires: add(now, policy.retention(&next, now)),
            };
        }
        table.after_write(now);
        Ok(())
    }
}

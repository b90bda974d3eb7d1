//! The rate limiter and the lockout attempt counters on Redis. Each update is one Lua script
//! (the files in `lua/`), run with `EVALSHA`, that reproduces the domain's pure function in
//! integer milliseconds: [`auth_domain::policy::gcra`], [`LockoutPolicy::after_failure`] and
//! [`LockoutPolicy::after_success_lifting`].

use std::collections::HashMap;
use std::sync::LazyLock;

use auth_domain::policy::{
    AttemptReservation, AttemptState, LockoutPolicy, RateDecision, RateLimit,
};
use auth_domain::ports::{AttemptCounter, PortError, RateLimiter};
use auth_domain::types::Timestamp;
use deadpool_redis::redis::{self, Script};

use crate::{RedisCache, count, data, parse_millis, timestamp};

/// Integer helpers every script starts with.
const LUA_INT: &str = include_str!("lua/int.lua");
/// `retention` and `save` of an attempt hash.
const LUA_RETENTION: &str = include_str!("lua/retention.lua");

/// A script: the integer helpers, then `body` with the retention helpers where it asks.
pub(crate) fn script(body: &str) -> Script {
    Script::new(&format!(
        "{LUA_INT}{}",
        body.replace("--@retention", LUA_RETENTION)
    ))
}

static GCRA: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/gcra.lua")));
static FAILURE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/failure.lua")));
static SUCCESS: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/success.lua")));

impl RedisCache {
    /// Runs [`FAILURE`] on the attempt hash of `key`; with `reserve`, a locked key is left
    /// alone (`counted: false`).
    async fn failure(
        &self,
        reserve: bool,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptReservation, PortError> {
        let key = self.key("at:", key);
        let now = now.timestamp_millis();
        let policy = *policy;
        let reply: (i64, i64, i64, i64, i64, i64) = self
            .run("EVALSHA failure", |mut conn| async move {
                FAILURE
                    .key(key)
                    .arg(now)
                    .arg(policy.threshold)
                    .arg(policy.base_lock.num_milliseconds())
                    .arg(policy.max_lock.num_milliseconds())
                    .arg(policy.failure_window.num_milliseconds())
                    .arg(policy.memory.num_milliseconds())
                    .arg(if reserve { "1" } else { "0" })
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
}

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
            .run("EVALSHA gcra", |mut conn| async move {
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
        let fields: HashMap<String, String> = self
            .run("HGETALL", |mut conn| async move {
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
        Ok(self.failure(false, key, policy, now).await?.state)
    }

    /// The same script as [`Self::record_failure`], which leaves a locked key alone.
    async fn reserve_attempt(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptReservation, PortError> {
        self.failure(true, key, policy, now).await
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
        self.run("EVALSHA success", |mut conn| async move {
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

#[cfg(test)]
mod tests {
    use super::*;

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

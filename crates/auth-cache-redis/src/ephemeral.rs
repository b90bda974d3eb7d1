//! Short-lived shared values on Redis ([`EphemeralStore`]): logins waiting for their second
//! factor, WebAuthn challenges, used TOTP steps, wrong-code counters.
//!
//! Each entry is one string key `{p}ep:{key}` holding `{expires_at}:{value}` (unix
//! milliseconds, a colon, then the value's bytes as they are), with a TTL of
//! `expires_at - now`. The TTL lets Redis drop the key by its own clock; the stored
//! `expires_at` is what every read judges against the `now` it is given (truncated to the
//! millisecond), so an entry is never returned at or after its expiry even when the caller's
//! clock runs ahead of the server's. A mark of [`EphemeralStore::claim_once`] is an empty
//! value, a counter of [`EphemeralStore::increment`] its decimal digits.
//!
//! Every operation is one command on one key, so one round trip, atomic, and fine on a
//! cluster (any slot): `SET … PX` (or `DEL` for a value already expired), `GET`, `GETDEL`
//! (single use: of concurrent takes, Redis gives the value to one), `DEL`, and a Lua script
//! each for the read-modify-write of a claim and of an increment.

use std::sync::LazyLock;

use auth_domain::ports::{EphemeralStore, PortError};
use auth_domain::types::Timestamp;
use deadpool_redis::redis::{self, Script};

use crate::limits::script;
use crate::{RedisCache, data};

/// Reading an entry (`entry_parts`) and storing a new one (`store_new`).
const LUA_EPHEMERAL: &str = include_str!("lua/ephemeral.lua");

static CLAIM: LazyLock<Script> =
    LazyLock::new(|| script(&format!("{LUA_EPHEMERAL}{}", include_str!("lua/claim.lua"))));
static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        "{LUA_EPHEMERAL}{}",
        include_str!("lua/increment.lua")
    ))
});

impl RedisCache {
    /// The key of an ephemeral entry: `{p}ep:{key}`.
    fn ephemeral_key(&self, key: &str) -> String {
        self.key("ep:", key)
    }

    /// Runs a read-modify-write script on the entry of `key` with `now`, `expires_at` and
    /// the TTL between them (ms), as the claim and increment scripts take them.
    async fn timed_script(
        &self,
        name: &'static str,
        script: &'static Script,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<i64, PortError> {
        let key = self.ephemeral_key(key);
        let (expires, now, ttl) = times(expires_at, now);
        self.run(name, |mut conn| async move {
            script
                .key(key)
                .arg(now)
                .arg(expires)
                .arg(ttl)
                .invoke_async(&mut conn)
                .await
        })
        .await
    }
}

/// `expires_at` and `now` in unix milliseconds, and the TTL between them (ms; zero or less
/// when the entry is dead already).
fn times(expires_at: Timestamp, now: Timestamp) -> (i64, i64, i64) {
    let (expires, now) = (expires_at.timestamp_millis(), now.timestamp_millis());
    (expires, now, expires.saturating_sub(now))
}

/// The stored form of a value: `{expires}:{value}`.
fn entry(expires: i64, value: &[u8]) -> Vec<u8> {
    let mut stored = format!("{expires}:").into_bytes();
    stored.extend_from_slice(value);
    stored
}

/// The value of a stored entry if it is live at `now` (unix ms).
fn live_value(stored: Option<Vec<u8>>, now: i64) -> Result<Option<Vec<u8>>, PortError> {
    let Some(mut stored) = stored else {
        return Ok(None);
    };
    let corrupt = || data("an ephemeral entry is not `{expires}:{value}`".to_owned());
    let sep = stored
        .iter()
        .position(|byte| *byte == b':')
        .ok_or_else(corrupt)?;
    let expires = std::str::from_utf8(&stored[..sep])
        .ok()
        .and_then(|digits| digits.parse::<i64>().ok())
        .ok_or_else(corrupt)?;
    if expires <= now {
        return Ok(None);
    }
    Ok(Some(stored.split_off(sep + 1)))
}

impl EphemeralStore for RedisCache {
    /// `SET {p}ep:{key} {expires_at}:{value} PX {expires_at - now}`, replacing what was
    /// there; a value already expired at `now` is not stored, and deletes the key (`DEL`).
    async fn put_ephemeral(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), PortError> {
        let key = self.ephemeral_key(key);
        let (expires, _, ttl) = times(expires_at, now);
        if ttl <= 0 {
            return self.remove_key(key).await;
        }
        let stored = entry(expires, value);
        self.run("SET", |mut conn| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(stored)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// `GET`; the value if its stored expiry is after `now`.
    async fn get_ephemeral(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, PortError> {
        let key = self.ephemeral_key(key);
        let stored: Option<Vec<u8>> = self
            .run_idempotent("GET", |mut conn| {
                let key = &key;
                async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
            })
            .await?;
        live_value(stored, now.timestamp_millis())
    }

    /// `GETDEL`: of concurrent calls, one gets the entry; its value if its stored expiry is
    /// after `now`. Not retried on a broken connection (a take that reached the server
    /// must not be repeated).
    async fn take_ephemeral(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Vec<u8>>, PortError> {
        let key = self.ephemeral_key(key);
        let stored: Option<Vec<u8>> = self
            .run("GETDEL", |mut conn| async move {
                redis::cmd("GETDEL").arg(key).query_async(&mut conn).await
            })
            .await?;
        live_value(stored, now.timestamp_millis())
    }

    /// One script (`lua/claim.lua`): an entry whose stored expiry is after `now` refuses;
    /// otherwise an empty mark is stored until `expires_at` (with its TTL).
    async fn claim_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, PortError> {
        let claimed = self
            .timed_script("EVALSHA claim", &CLAIM, key, expires_at, now)
            .await?;
        Ok(claimed == 1)
    }

    /// One script (`lua/increment.lua`): a counter whose stored expiry is after `now` goes
    /// up by one, its expiry and TTL kept (`KEEPTTL`); otherwise a new counter starts at 1
    /// until `expires_at`.
    async fn increment(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, PortError> {
        let count = self
            .timed_script("EVALSHA increment", &INCREMENT, key, expires_at, now)
            .await?;
        u64::try_from(count).map_err(|_| data(format!("counter out of range: {count}")))
    }

    /// `DEL` (idempotent).
    async fn remove_ephemeral(&self, key: &str) -> Result<(), PortError> {
        self.remove_key(self.ephemeral_key(key)).await
    }
}

impl RedisCache {
    /// `DEL key`.
    async fn remove_key(&self, key: String) -> Result<(), PortError> {
        self.run("DEL", |mut conn| async move {
            redis::cmd("DEL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_any_bytes_and_are_live_before_their_expiry_only() {
        let value = [0xff, b':', 0, b'9'];
        let stored = entry(1_000, &value);
        assert_eq!(&stored[..5], b"1000:");
        assert!(
            live_value(Some(stored.clone()), 999).is_ok_and(|v| v.as_deref() == Some(&value[..]))
        );
        assert!(live_value(Some(stored.clone()), 1_000).is_ok_and(|v| v.is_none()));
        assert!(live_value(None, 0).is_ok_and(|v| v.is_none()));
        assert!(live_value(Some(entry(-5, b"")), -6).is_ok_and(|v| v == Some(Vec::new())));
        for corrupt in [&b"no separator"[..], b"12x:3", b":x", b"\xff:1"] {
            assert!(matches!(
                live_value(Some(corrupt.to_vec()), 0),
                Err(PortError::Unexpected(_))
            ));
        }
    }
}

//! The revocation list in Redis, and how an instance knows whether it can trust it.
//!
//! Storage is the authority on revocations; Redis is what verification reads. Redis can
//! miss revocations that storage holds: a write fails after storage recorded the
//! revocation, or Redis loses its data (a restart of a server that keeps nothing on disk,
//! `FLUSHALL`, an eviction, a failover to a replica that lags). The list is therefore
//! trusted only while it is *warm*, and warmed again (from storage, by the service) after
//! any such loss:
//!
//! - **The marker** `{p}{rv}:warm` says "this Redis holds every revocation storage
//!   remembered when it was last warmed". It has no TTL, so a flush or a restart that
//!   loses the data loses the marker too. Verification reads it in the same `MGET` as the
//!   token's own keys (no extra round trip) and refuses (fails closed) without it.
//! - **The epoch** `{p}{rv}:epoch` is a random number. An instance whose revocation write
//!   failed gives it a new value and deletes the marker in one script before it warms
//!   again, so every instance refuses until one has warmed; a warming sets the marker back
//!   only if the epoch is still the one it saw before it read storage, so a warming that
//!   began before the lost write, or before a flush, cannot bless a list that lacks it.
//! - **What this instance saw**: a counter of losses (a failed write, Redis unreachable, a
//!   new server `run_id` behind a new connection, the marker gone), and the count the last
//!   warming covered. While losses outnumber it, this instance refuses too, whatever the
//!   marker says: after an outage it warms before it trusts Redis again.
//!
//! On a Redis Cluster the whole list (entries, marker, epoch) lives in one slot, so the
//! above holds of the master that owns it: a failover of that master to a replica that
//! lagged can lose the latest revocations but keep the marker. The cluster client follows
//! the failover by itself (new slot map, new connections), so no new connection of ours
//! shows the new `run_id`; instead every check for warming (the service's, each second)
//! first asks that master for its `run_id` (a script on the marker's key, so that a stale
//! slot map is corrected by `MOVED` rather than answered by the old master), and one that
//! changed is a loss. Operations that fail meanwhile (the master down before its
//! replica takes over) are losses anyway, as on one server.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use auth_domain::model::{ColdReason, RevocationState, WarmTicket};
use auth_domain::ports::{PortError, RevocationList};
use auth_domain::types::{SessionId, Timestamp, UserId};
use deadpool_redis::redis::{self, Script};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Failure, RedisCache, data, lock, parse_millis, timestamp};

/// The marker key, in the revocation list (see [`RedisCache::revocation_key`]).
const WARM: &str = "warm";
/// The epoch key, in the revocation list.
const EPOCH: &str = "epoch";

/// What this instance knows about whether the revocation list in Redis is complete. Shared
/// by the clones of a [`RedisCache`] and its connection manager.
#[derive(Debug)]
pub(crate) struct Warmth {
    /// Counts the events after which the list may lack revocations storage holds. Starts
    /// at 1: an instance has not warmed the list when it starts.
    lost: AtomicU64,
    /// The value of `lost` that the latest completed warming covered.
    warm: AtomicU64,
    /// A revocation write failed: the other instances must be made to refuse before the
    /// list is warmed again.
    write_lost: AtomicBool,
    /// The latest [`ColdReason`], as its index in [`REASONS`].
    reason: AtomicU8,
    /// Notified at each loss, so that whoever warms the list need not wait for its poll.
    signal: Arc<Notify>,
    /// The `run_id` of the server the latest new connection reached.
    server: Mutex<Option<String>>,
}

const REASONS: [ColdReason; 5] = [
    ColdReason::Unwarmed,
    ColdReason::Emptied,
    ColdReason::Replaced,
    ColdReason::Unreachable,
    ColdReason::WriteFailed,
];

impl Warmth {
    pub(crate) fn new() -> Self {
        Self {
            lost: AtomicU64::new(1),
            warm: AtomicU64::new(0),
            write_lost: AtomicBool::new(false),
            reason: AtomicU8::new(0),
            signal: Arc::new(Notify::new()),
            server: Mutex::new(None),
        }
    }

    /// Records an event after which the list may lack revocations.
    pub(crate) fn lose(&self, reason: ColdReason) {
        let index = REASONS.iter().position(|r| *r == reason).unwrap_or(0);
        self.reason
            .store(u8::try_from(index).unwrap_or(0), Ordering::SeqCst);
        self.lost.fetch_add(1, Ordering::SeqCst);
        self.signal.notify_one();
    }

    /// A revocation write failed (it may or may not have reached Redis).
    fn write_failed(&self) {
        self.write_lost.store(true, Ordering::SeqCst);
        self.lose(ColdReason::WriteFailed);
    }

    fn is_warm(&self) -> bool {
        self.lost.load(Ordering::SeqCst) <= self.warm.load(Ordering::SeqCst)
    }

    fn reason(&self) -> ColdReason {
        REASONS
            .get(usize::from(self.reason.load(Ordering::SeqCst)))
            .copied()
            .unwrap_or(ColdReason::Unwarmed)
    }

    /// Notes the `run_id` a new connection found: a different one than before means the
    /// server restarted or failed over, and may have lost the latest writes.
    pub(crate) fn reached(&self, run_id: &str) {
        let mut server = lock(&self.server);
        let changed = server.as_deref().is_some_and(|seen| seen != run_id);
        if server.as_deref() != Some(run_id) {
            *server = Some(run_id.to_owned());
        }
        drop(server);
        if changed {
            self.lose(ColdReason::Replaced);
        }
    }

    pub(crate) fn signal(&self) -> Arc<Notify> {
        Arc::clone(&self.signal)
    }
}

/// The `run_id` in the answer to `INFO server`.
pub(crate) fn run_id(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

/// Sets a denylist entry (`KEYS[1]`) until `ARGV[1]` (unix ms), or to the later of that and
/// its current expiry: an entry is never shortened. An `until` in the past with no entry
/// stores nothing (`PEXPIREAT` in the past deletes).
static REVOKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/revoke.lua")));

/// Sets a user's "not before" mark (`KEYS[1]`) to `ARGV[1]` (unix ms) until `ARGV[2]`,
/// keeping the later mark and the later expiry of a live entry: the mark never moves back.
static REVOKE_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/revoke_user.lua")));

/// Makes every instance refuse revocation checks until the list is warmed again: sets the
/// epoch (`KEYS[1]`) to a fresh random value (`ARGV[1]`) and deletes the marker (`KEYS[2]`),
/// atomically.
static INVALIDATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/invalidate.lua")));

/// Returns `{marker, epoch}` (`KEYS[2]`, `KEYS[1]`), first setting a missing epoch to a
/// fresh random value (`ARGV[1]`): a warming compares the epoch it saw here with the one at
/// its end, and a flush meanwhile must not look like "unchanged".
static OBSERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/observe.lua")));

/// Sets the marker (`KEYS[2]`) if the epoch (`KEYS[1]`) is still `ARGV[1]`, the one seen
/// before storage was read; returns whether it did.
static WARMED: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/warmed.lua")));

/// The `run_id` of the server that owns `KEYS[1]`'s slot; see `lua/server.lua`.
static SERVER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/server.lua")));

/// A fresh epoch: random, so that an epoch lost with the data is never seen again.
fn new_epoch() -> u64 {
    Uuid::new_v4().as_u64_pair().1
}

impl RedisCache {
    /// Notified whenever the revocation list may have lost something (a failed write,
    /// Redis unreachable, a new server, the marker gone): time to call
    /// `AuthService::reconcile_revocations`.
    pub fn revocations_lost(&self) -> Arc<Notify> {
        self.warmth.signal()
    }

    /// Runs one revocation write; a failure means the list may lack it.
    async fn revocation_write(
        &self,
        op: &'static str,
        script: &Script,
        key: String,
        args: &[i64],
    ) -> Result<(), PortError> {
        let result = self
            .run(op, |mut conn| async move {
                let mut call = script.key(key);
                for arg in args {
                    call.arg(*arg);
                }
                call.invoke_async::<i64>(&mut conn).await
            })
            .await;
        if result.is_err() {
            self.warmth.write_failed();
        }
        result.map(drop)
    }

    /// On a cluster, asks the master of the revocation list's slot for its `run_id` (one
    /// script, [`SERVER`]): a new one there (a failover, a restart, the slot moved) is a
    /// loss. A server whose `INFO` does not tell is not compared.
    pub(crate) async fn check_revocation_server(&self) -> Result<(), PortError> {
        let key = self.revocation_key(WARM, "");
        let id: Option<String> = self
            .run("EVALSHA server", |mut conn| async move {
                SERVER.key(key).invoke_async(&mut conn).await
            })
            .await?;
        if let Some(id) = id {
            self.warmth.reached(&id);
        }
        Ok(())
    }

    fn cold(&self) -> PortError {
        self.warmth.signal.notify_one();
        PortError::unavailable(Failure::Cold)
    }
}

impl RevocationList for RedisCache {
    /// One script: sets `{p}{rv}:jti:{jti}` expiring at the later of `until` and its current
    /// expiry.
    async fn revoke_token(&self, jti: Uuid, until: Timestamp) -> Result<(), PortError> {
        let key = self.revocation_key("jti:", jti);
        self.revocation_write("EVALSHA revoke", &REVOKE, key, &[until.timestamp_millis()])
            .await
    }

    /// One script: sets `{p}{rv}:sid:{id}` expiring at the later of `until` and its current
    /// expiry.
    async fn revoke_session(&self, id: SessionId, until: Timestamp) -> Result<(), PortError> {
        let key = self.revocation_key("sid:", id.0);
        self.revocation_write("EVALSHA revoke", &REVOKE, key, &[until.timestamp_millis()])
            .await
    }

    /// One script: `{p}{rv}:usr:{user}` holds the later of the stored and the given "not
    /// before" (unix ms) and expires at the later of both `until`s.
    async fn revoke_user_before(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> Result<(), PortError> {
        let key = self.revocation_key("usr:", user.0);
        let args = [not_before.timestamp_millis(), until.timestamp_millis()];
        self.revocation_write("EVALSHA revoke_user", &REVOKE_USER, key, &args)
            .await
    }

    /// Exactly one round trip: a single `MGET` of the token, session and user keys and the
    /// marker. Redis has already dropped entries past their `until` (by its own clock).
    /// Without the marker, or while this instance has seen a loss it has not warmed the
    /// list since, [`PortError::Unavailable`] (and no round trip in the latter case).
    async fn revocation_state(
        &self,
        jti: Uuid,
        session: SessionId,
        user: UserId,
    ) -> Result<RevocationState, PortError> {
        if !self.warmth.is_warm() {
            return Err(self.cold());
        }
        let keys = [
            self.revocation_key("jti:", jti),
            self.revocation_key("sid:", session.0),
            self.revocation_key("usr:", user.0),
            self.revocation_key(WARM, ""),
        ];
        let values: Vec<Option<String>> = self
            .run_idempotent("MGET", |mut conn| {
                let keys = &keys;
                async move {
                    redis::cmd("MGET")
                        .arg(&keys[..])
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let [token, session, user, warm] = <[Option<String>; 4]>::try_from(values)
            .map_err(|v| data(format!("MGET of 4 keys gave {} values", v.len())))?;
        if warm.is_none() {
            self.warmth.lose(ColdReason::Emptied);
            return Err(self.cold());
        }
        // A new connection made for this very MGET may have found a new server.
        if !self.warmth.is_warm() {
            return Err(self.cold());
        }
        let user_not_before = user
            .map(|raw| parse_millis(&raw).and_then(timestamp))
            .transpose()?;
        Ok(RevocationState {
            token_revoked: token.is_some(),
            session_revoked: session.is_some(),
            user_not_before,
        })
    }

    /// On a cluster, first compares the `run_id` of the list's master with the last one seen.
    /// After a failed revocation write, first gives the epoch a new value and deletes the
    /// marker (one script; on failure the next call tries again). Then one script reads the
    /// marker and the epoch (setting a missing epoch): a ticket when the marker is gone or
    /// this instance has seen a loss since it last warmed the list.
    async fn needs_warming(&self) -> Result<Option<WarmTicket>, PortError> {
        if self.is_cluster() {
            self.check_revocation_server().await?;
        }
        let keys = [
            self.revocation_key(EPOCH, ""),
            self.revocation_key(WARM, ""),
        ];
        if self.warmth.write_lost.swap(false, Ordering::SeqCst) {
            let invalidated = self
                .run("EVALSHA invalidate", |mut conn| {
                    let keys = &keys;
                    async move {
                        INVALIDATE
                            .key(&keys[..])
                            .arg(new_epoch().to_string())
                            .invoke_async::<i64>(&mut conn)
                            .await
                    }
                })
                .await;
            if let Err(err) = invalidated {
                self.warmth.write_lost.store(true, Ordering::SeqCst);
                return Err(err);
            }
        }
        let (warm, epoch): (Option<String>, String) = self
            .run("EVALSHA observe", |mut conn| {
                let keys = &keys;
                async move {
                    OBSERVE
                        .key(&keys[..])
                        .arg(new_epoch().to_string())
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        if warm.is_none() && self.warmth.is_warm() {
            self.warmth.lose(ColdReason::Emptied);
        }
        if self.warmth.is_warm() {
            return Ok(None);
        }
        let epoch = epoch
            .parse::<u64>()
            .map_err(|_| data("the revocation epoch is not a number".to_owned()))?;
        Ok(Some(WarmTicket {
            reason: self.warmth.reason(),
            stamp: [self.warmth.lost.load(Ordering::SeqCst), epoch],
        }))
    }

    /// One script sets the marker unless the epoch changed (a write was lost, the data was
    /// flushed) since the ticket was handed out; the list is then trusted by this instance
    /// unless it saw another loss meanwhile.
    async fn warmed(&self, ticket: WarmTicket) -> Result<bool, PortError> {
        let [covered, epoch] = ticket.stamp;
        let keys = [
            self.revocation_key(EPOCH, ""),
            self.revocation_key(WARM, ""),
        ];
        let set: i64 = self
            .run("EVALSHA warmed", |mut conn| async move {
                WARMED
                    .key(&keys[..])
                    .arg(epoch.to_string())
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        if set != 1 {
            return Ok(false);
        }
        self.warmth.warm.fetch_max(covered, Ordering::SeqCst);
        Ok(self.warmth.is_warm())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_id_is_read_from_the_server_section_of_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:4f1c0a\r\ntcp_port:6379\r\n";
        assert_eq!(run_id(info), Some("4f1c0a"));
        assert_eq!(run_id("# Server\r\nredis_version:7.0.15\r\n"), None);
    }

    #[test]
    fn a_new_server_is_a_loss_but_the_first_one_seen_is_not() {
        let warmth = Warmth::new();
        warmth.warm.store(1, Ordering::SeqCst);
        warmth.reached("a");
        warmth.reached("a");
        assert!(warmth.is_warm(), "the first server, then the same one");
        warmth.reached("b");
        assert!(!warmth.is_warm());
        assert_eq!(warmth.reason(), ColdReason::Replaced);
    }
}

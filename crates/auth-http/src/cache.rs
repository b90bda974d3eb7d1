//! The cache adapters this binary can run on, chosen at start by `REDIS_URL` (or
//! `REDIS_CLUSTER_NODES`), and the failure policy when Redis is down:
//!
//! - revocation (verify-token, logout, revoking sessions) fails closed: 503, never a revoked
//!   token accepted; after Redis returns, it keeps failing closed until the revocation list
//!   is warmed again from storage ([`crate::revocations`]), since revocations may have been
//!   lost meanwhile;
//! - rate limits and lockout counters fall back to this instance's in-process cache, so
//!   the service keeps limiting (per instance) instead of failing or letting everything
//!   through; each fallback is counted in `auth_cache_fallback_total`.

use auth_cache_memory::MemoryCache;
use auth_cache_redis::RedisCache;
use auth_domain::model::{RevocationState, WarmTicket};
use auth_domain::policy::{
    AttemptReservation, AttemptState, LockoutPolicy, RateDecision, RateLimit,
};
use auth_domain::ports::{
    AttemptCounter, Cache, EphemeralStore, PortError, RateLimiter, RevocationList,
};
use auth_domain::types::{SessionId, Timestamp, UserId};
use uuid::Uuid;

/// One cache adapter.
#[derive(Debug, Clone)]
pub enum CacheBackend {
    /// Single instance.
    Memory(MemoryCache),
    /// Shared by every instance; `fallback` limits this instance while Redis is down.
    Redis {
        /// The shared cache.
        redis: RedisCache,
        /// Rate limits and counters while Redis is unreachable.
        fallback: MemoryCache,
    },
}

impl CacheBackend {
    /// Closes the Redis pool, if any (at shutdown).
    pub fn close(&self) {
        if let Self::Redis { redis, .. } = self {
            redis.close();
        }
    }

    /// The Redis pool's load, if Redis is in use (for `/metrics`).
    pub fn pool_status(&self) -> Option<auth_domain::monitoring::PoolStatus> {
        match self {
            Self::Memory(_) => None,
            Self::Redis { redis, .. } => Some(redis.pool_status()),
        }
    }

    /// Notified when the shared revocation list may have lost something and must be
    /// warmed again (see [`crate::revocations`]); `None` for the in-process cache, which
    /// loses nothing while the process lives.
    pub fn revocations_lost(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        match self {
            Self::Memory(_) => None,
            Self::Redis { redis, .. } => Some(redis.revocations_lost()),
        }
    }

    /// Name for health output and the banner.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory(_) => "in-process",
            Self::Redis { .. } => "redis",
        }
    }
}

/// The `operation` labels of `auth_cache_fallback_total` (the `limited!` calls below).
pub const FALLBACK_OPERATIONS: [&str; 2] = ["attempts", "rate_limit"];

/// Runs `op` on Redis; when Redis is unavailable, runs `fallback` on the in-process cache
/// instead and counts it.
macro_rules! limited {
    ($self:ident, $what:literal, $c:ident => $call:expr) => {
        match $self {
            CacheBackend::Memory($c) => $call.await,
            CacheBackend::Redis { redis, fallback } => {
                let $c = redis;
                match $call.await {
                    Err(PortError::Unavailable(_)) => {
                        metrics::counter!("auth_cache_fallback_total", "operation" => $what).increment(1);
                        let $c = fallback;
                        $call.await
                    }
                    other => other,
                }
            }
        }
    };
}

/// Runs `op` on whichever cache is in use; no fallback (fail closed).
macro_rules! strict {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            CacheBackend::Memory($c) => $call.await,
            CacheBackend::Redis { redis: $c, .. } => $call.await,
        }
    };
}

impl RevocationList for CacheBackend {
    async fn revoke_token(&self, jti: Uuid, until: Timestamp) -> Result<(), PortError> {
        strict!(self, c => c.revoke_token(jti, until))
    }
    async fn revoke_session(&self, id: SessionId, until: Timestamp) -> Result<(), PortError> {
        strict!(self, c => c.revoke_session(id, until))
    }
    async fn revoke_user_before(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> Result<(), PortError> {
        strict!(self, c => c.revoke_user_before(user, not_before, until))
    }
    async fn revocation_state(
        &self,
        jti: Uuid,
        session: SessionId,
        user: UserId,
    ) -> Result<RevocationState, PortError> {
        strict!(self, c => c.revocation_state(jti, session, user))
    }
    async fn needs_warming(&self) -> Result<Option<WarmTicket>, PortError> {
        strict!(self, c => c.needs_warming())
    }
    async fn warmed(&self, ticket: WarmTicket) -> Result<bool, PortError> {
        strict!(self, c => c.warmed(ticket))
    }
}

impl RateLimiter for CacheBackend {
    async fn hit(
        &self,
        key: &str,
        policy: RateLimit,
        now: Timestamp,
    ) -> Result<RateDecision, PortError> {
        limited!(self, "rate_limit", c => c.hit(key, policy, now))
    }
}

impl AttemptCounter for CacheBackend {
    async fn attempts(&self, key: &str) -> Result<AttemptState, PortError> {
        limited!(self, "attempts", c => c.attempts(key))
    }
    async fn record_failure(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptState, PortError> {
        limited!(self, "attempts", c => c.record_failure(key, policy, now))
    }
    async fn reserve_attempt(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> Result<AttemptReservation, PortError> {
        limited!(self, "attempts", c => c.reserve_attempt(key, policy, now))
    }
    async fn record_success(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
        lifted: Option<Timestamp>,
    ) -> Result<(), PortError> {
        limited!(self, "attempts", c => c.record_success(key, policy, now, lifted))
    }
}

/// Logins waiting for their second factor, WebAuthn challenges and used TOTP steps must be
/// shared by every instance (a code accepted by one must be refused by the others): no
/// fallback, a Redis outage fails these closed (503).
impl EphemeralStore for CacheBackend {
    async fn put_ephemeral(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), PortError> {
        strict!(self, c => c.put_ephemeral(key, value, expires_at, now))
    }
    async fn get_ephemeral(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, PortError> {
        strict!(self, c => c.get_ephemeral(key, now))
    }
    async fn take_ephemeral(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Vec<u8>>, PortError> {
        strict!(self, c => c.take_ephemeral(key, now))
    }
    async fn claim_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, PortError> {
        strict!(self, c => c.claim_once(key, expires_at, now))
    }
    async fn increment(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, PortError> {
        strict!(self, c => c.increment(key, expires_at, now))
    }
    async fn remove_ephemeral(&self, key: &str) -> Result<(), PortError> {
        strict!(self, c => c.remove_ephemeral(key))
    }
}

impl Cache for CacheBackend {
    async fn ping(&self) -> Result<(), PortError> {
        strict!(self, c => Cache::ping(c))
    }
}

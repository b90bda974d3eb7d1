//! What only the in-process cache promises: revocations judged against the system clock,
//! sweeps that keep memory proportional to the live entries, shared state between clones.
//! The `Cache` contract (revocation state, GCRA decisions, lockout counters, races) is
//! tested once for every cache adapter by the contract test-kit:
//! `cargo test -p auth-testkit --test contract_memory_cache`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_cache_memory::MemoryCache;
use auth_domain::policy::{LockoutPolicy, RateLimit};
use auth_domain::ports::{AttemptCounter, Cache, RateLimiter, RevocationList};
use auth_domain::types::{SessionId, Timestamp, UserId};
use chrono::{TimeDelta, Utc};
use uuid::Uuid;

fn limit(limit: u32, window_secs: i64) -> RateLimit {
    RateLimit {
        name: "test",
        limit,
        window: TimeDelta::seconds(window_secs),
    }
}

fn lockout(threshold: u32) -> LockoutPolicy {
    LockoutPolicy {
        threshold,
        ..LockoutPolicy::default()
    }
}

fn ids() -> (Uuid, SessionId, UserId) {
    (
        Uuid::new_v4(),
        SessionId(Uuid::new_v4()),
        UserId(Uuid::new_v4()),
    )
}

fn in_secs(secs: i64) -> Timestamp {
    Utc::now() + TimeDelta::seconds(secs)
}

#[tokio::test]
async fn revocations_past_their_until_no_longer_count() {
    let cache = MemoryCache::new();
    let (jti, session, user) = ids();
    let past = in_secs(-1);
    cache.revoke_token(jti, past).await.unwrap();
    cache.revoke_session(session, past).await.unwrap();
    cache
        .revoke_user_before(user, past - TimeDelta::seconds(60), past)
        .await
        .unwrap();
    assert_eq!(
        cache.revocation_state(jti, session, user).await.unwrap(),
        Default::default()
    );

    let until = in_secs(900);
    let mark = past - TimeDelta::seconds(120);
    cache.revoke_user_before(user, mark, until).await.unwrap();
    let state = cache.revocation_state(jti, session, user).await.unwrap();
    assert_eq!(
        state.user_not_before,
        Some(mark),
        "an expired mark does not hold back a new one"
    );
}

#[tokio::test]
async fn sweep_removes_expired_entries() {
    let cache = MemoryCache::new();
    let now = Utc::now();
    let past = now - TimeDelta::hours(48);
    let (jti, session, user) = ids();

    cache.revoke_token(jti, in_secs(900)).await.unwrap();
    cache
        .revoke_token(Uuid::new_v4(), in_secs(-1))
        .await
        .unwrap();
    cache.revoke_session(session, in_secs(-1)).await.unwrap();
    cache
        .revoke_user_before(user, in_secs(-10), in_secs(-1))
        .await
        .unwrap();
    cache.hit("old", limit(10, 60), past).await.unwrap();
    cache.hit("new", limit(10, 60), now).await.unwrap();
    cache
        .record_failure("lock:old", &lockout(5), past)
        .await
        .unwrap();
    cache
        .record_failure("lock:new", &lockout(5), now)
        .await
        .unwrap();
    assert_eq!(cache.len(), 8);

    assert_eq!(cache.sweep(now), 5);
    assert_eq!(cache.len(), 3, "one live entry per table is left");
    assert!(
        cache
            .revocation_state(jti, session, user)
            .await
            .unwrap()
            .token_revoked
    );
    assert_eq!(cache.attempts("lock:new").await.unwrap().failures, 1);
    assert_eq!(cache.sweep(now), 0);
}

#[tokio::test]
async fn writes_sweep_expired_entries_on_their_own() {
    let cache = MemoryCache::new();
    let writes = 3 * MemoryCache::SWEEP_AFTER_WRITES;
    for _ in 0..writes {
        cache
            .revoke_token(Uuid::new_v4(), in_secs(-1))
            .await
            .unwrap();
    }
    assert!(
        cache.len() <= MemoryCache::SWEEP_AFTER_WRITES,
        "{} entries left of {writes} expired ones",
        cache.len()
    );
}

#[tokio::test]
async fn successes_alone_store_nothing_and_clones_share_state() {
    let cache = MemoryCache::new();
    let now = Utc::now();
    cache
        .record_success("lock:x", &lockout(5), now, None)
        .await
        .unwrap();
    assert!(cache.is_empty());

    let clone = cache.clone();
    clone.hit("k", limit(1, 60), now).await.unwrap();
    assert_eq!(cache.len(), 1);
    assert!(Cache::ping(&cache).await.is_ok());
}

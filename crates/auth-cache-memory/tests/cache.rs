#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_cache_memory::MemoryCache;
use auth_domain::policy::{AttemptState, LockoutPolicy, RateLimit};
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
async fn rate_limit_allows_a_burst_of_the_limit_then_refuses_with_a_retry_after() {
    let cache = MemoryCache::new();
    let policy = limit(5, 60);
    let now = Utc::now();
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let decision = cache.hit("ip:1", policy, now).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.retry_after_secs, 0);
        remaining.push(decision.remaining);
    }
    assert_eq!(remaining, vec![4, 3, 2, 1, 0]);

    let refused = cache.hit("ip:1", policy, now).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, 12, "one slot every 60/5 s");

    let later = cache
        .hit("ip:1", policy, now + TimeDelta::seconds(12))
        .await
        .unwrap();
    assert!(later.allowed, "a slot is free after the retry-after");
}

#[tokio::test]
async fn separate_rate_limit_keys_are_independent() {
    let cache = MemoryCache::new();
    let policy = limit(1, 60);
    let now = Utc::now();
    assert!(cache.hit("a", policy, now).await.unwrap().allowed);
    assert!(!cache.hit("a", policy, now).await.unwrap().allowed);
    assert!(cache.hit("b", policy, now).await.unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_hits_on_one_key_with_a_limit_of_ten_allow_exactly_ten() {
    let cache = MemoryCache::new();
    let policy = limit(10, 60);
    let now = Utc::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.hit("hot", policy, now).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        if task.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
}

#[tokio::test]
async fn lockout_locks_after_the_threshold_and_a_success_clears_failures() {
    let cache = MemoryCache::new();
    let policy = lockout(3);
    let now = Utc::now();

    for _ in 0..2 {
        cache.record_failure("lock:a", &policy, now).await.unwrap();
    }
    assert_eq!(cache.attempts("lock:a").await.unwrap().failures, 2);
    cache.record_success("lock:a", &policy, now).await.unwrap();
    assert_eq!(
        cache.attempts("lock:a").await.unwrap(),
        AttemptState::default(),
        "failures forgotten"
    );

    let mut last = AttemptState::default();
    for _ in 0..3 {
        last = cache.record_failure("lock:a", &policy, now).await.unwrap();
    }
    let until = now + policy.base_lock;
    assert_eq!(last.locked_at(now), Some(until), "the third failure locks");
    assert_eq!(
        cache.attempts("lock:a").await.unwrap().locked_at(now),
        Some(until)
    );
    assert_eq!(
        cache.attempts("lock:b").await.unwrap(),
        AttemptState::default(),
        "an unknown key is the default"
    );

    cache.record_success("lock:a", &policy, now).await.unwrap();
    assert_eq!(
        cache.attempts("lock:a").await.unwrap().level,
        1,
        "a success keeps the escalation level"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_are_all_counted() {
    let cache = MemoryCache::new();
    let policy = lockout(1000);
    let now = Utc::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.record_failure("lock:c", &policy, now).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(cache.attempts("lock:c").await.unwrap().failures, 100);
}

#[tokio::test]
async fn revoked_tokens_sessions_and_users_show_in_the_revocation_state() {
    let cache = MemoryCache::new();
    let (jti, session, user) = ids();
    let until = in_secs(900);
    assert_eq!(
        cache.revocation_state(jti, session, user).await.unwrap(),
        Default::default()
    );

    cache.revoke_token(jti, until).await.unwrap();
    let state = cache.revocation_state(jti, session, user).await.unwrap();
    assert!(state.token_revoked);
    assert!(!state.session_revoked);
    assert_eq!(state.user_not_before, None);

    cache.revoke_session(session, until).await.unwrap();
    let mark = Utc::now();
    cache.revoke_user_before(user, mark, until).await.unwrap();
    let state = cache.revocation_state(jti, session, user).await.unwrap();
    assert!(state.token_revoked);
    assert!(state.session_revoked);
    assert_eq!(state.user_not_before, Some(mark));

    let (other_jti, other_session, other_user) = ids();
    assert_eq!(
        cache
            .revocation_state(other_jti, other_session, other_user)
            .await
            .unwrap(),
        Default::default(),
        "other ids are unaffected"
    );
}

#[tokio::test]
async fn a_users_not_before_mark_never_moves_back() {
    let cache = MemoryCache::new();
    let (jti, session, user) = ids();
    let until = in_secs(900);
    let later = Utc::now();
    let earlier = later - TimeDelta::seconds(60);

    cache.revoke_user_before(user, later, until).await.unwrap();
    cache
        .revoke_user_before(user, earlier, until)
        .await
        .unwrap();
    let state = cache.revocation_state(jti, session, user).await.unwrap();
    assert_eq!(
        state.user_not_before,
        Some(later),
        "an earlier mark is ignored"
    );

    let latest = later + TimeDelta::seconds(1);
    cache.revoke_user_before(user, latest, until).await.unwrap();
    let state = cache.revocation_state(jti, session, user).await.unwrap();
    assert_eq!(
        state.user_not_before,
        Some(latest),
        "a later mark moves it forward"
    );
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
async fn a_later_until_extends_a_revocation() {
    let cache = MemoryCache::new();
    let (jti, session, user) = ids();
    cache.revoke_token(jti, in_secs(900)).await.unwrap();
    cache.revoke_token(jti, in_secs(-1)).await.unwrap();
    let state = cache.revocation_state(jti, session, user).await.unwrap();
    assert!(state.token_revoked, "an earlier until does not shorten it");
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
        .record_success("lock:x", &lockout(5), now)
        .await
        .unwrap();
    assert!(cache.is_empty());

    let clone = cache.clone();
    clone.hit("k", limit(1, 60), now).await.unwrap();
    assert_eq!(cache.len(), 1);
    assert!(Cache::ping(&cache).await.is_ok());
}

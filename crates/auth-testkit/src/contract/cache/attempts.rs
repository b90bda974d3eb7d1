//! [`AttemptCounter`](auth_domain::ports::AttemptCounter): each call applies the
//! [`LockoutPolicy`] exactly and atomically.

use auth_domain::policy::{AttemptState, LockoutPolicy};
use auth_domain::ports::Cache;

use crate::contract::{Must, fixtures, race};

fn lockout(threshold: u32) -> LockoutPolicy {
    LockoutPolicy {
        threshold,
        ..LockoutPolicy::default()
    }
}

/// An unknown key has the default state; each failure gives the state
/// [`LockoutPolicy::after_failure`] gives, and the one that reaches the threshold locks.
pub async fn failures_up_to_the_threshold_lock_the_key<C: Cache>(cache: &C) {
    let (policy, key, now) = (lockout(3), fixtures::key("lock"), fixtures::now());
    let found = cache.attempts(&key).await.must("attempts");
    assert_eq!(found, AttemptState::default(), "an unknown key");

    let mut expected = AttemptState::default();
    for n in 1..=3 {
        expected = policy.after_failure(expected, now);
        let state = cache
            .record_failure(&key, &policy, now)
            .await
            .must("record_failure");
        assert_eq!(state, expected, "failure {n}: as the policy says");
        let found = cache.attempts(&key).await.must("attempts");
        assert_eq!(found, expected, "failure {n}: stored");
        if n < 3 {
            assert_eq!(state.locked_at(now), None, "failure {n}: not locked yet");
        }
    }
    assert_eq!(
        expected.locked_at(now),
        Some(now + policy.base_lock),
        "the third failure locks"
    );
    let other = cache
        .attempts(&fixtures::key("lock"))
        .await
        .must("attempts");
    assert_eq!(other, AttemptState::default(), "other keys are untouched");
}

/// A success forgets the failures; after a lock it keeps the escalation level (and the
/// lock), as [`LockoutPolicy::after_success`] says.
pub async fn a_success_clears_failures_but_keeps_the_escalation_level<C: Cache>(cache: &C) {
    let (policy, key, now) = (lockout(3), fixtures::key("lock"), fixtures::now());
    for _ in 0..2 {
        cache
            .record_failure(&key, &policy, now)
            .await
            .must("record_failure");
    }
    cache
        .record_success(&key, &policy, now)
        .await
        .must("record_success");
    let found = cache.attempts(&key).await.must("attempts");
    assert_eq!(found, AttemptState::default(), "failures forgotten");

    let mut locked = AttemptState::default();
    for _ in 0..3 {
        locked = cache
            .record_failure(&key, &policy, now)
            .await
            .must("record_failure");
    }
    assert!(locked.locked_at(now).is_some(), "setup: locked");
    cache
        .record_success(&key, &policy, now)
        .await
        .must("record_success");
    let found = cache.attempts(&key).await.must("attempts");
    assert_eq!(found, policy.after_success(locked), "as the policy says");
    assert_eq!(found.level, 1, "the escalation level stays");
}

/// Of fifty concurrent failures on one key, each is counted once: they return the counts
/// 1 to 50, and the key ends at 50.
pub async fn concurrent_failures_are_all_counted<C: Cache>(cache: &C) {
    let (policy, key, now) = (lockout(1000), fixtures::key("lock"), fixtures::now());
    let states = race(50, |_| cache.record_failure(&key, &policy, now));
    let mut counts: Vec<u32> = states
        .into_iter()
        .map(|state| state.must("record_failure").failures)
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<_>>(), "no failure lost");
    let found = cache.attempts(&key).await.must("attempts");
    assert_eq!(found.failures, 50);
}

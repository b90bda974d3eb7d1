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
        .record_success(&key, &policy, now, None)
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
        .record_success(&key, &policy, now, None)
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

/// A reserved attempt counts as a failure at once (the last one allowed locks the key);
/// once the key is locked, a reservation is not counted and changes nothing.
pub async fn a_reservation_counts_at_once_and_a_locked_key_refuses_it<C: Cache>(cache: &C) {
    let (policy, key, now) = (lockout(3), fixtures::key("lock"), fixtures::now());
    let mut expected = AttemptState::default();
    for n in 1..=3 {
        expected = policy.after_failure(expected, now);
        let reserved = cache
            .reserve_attempt(&key, &policy, now)
            .await
            .must("reserve_attempt");
        assert!(reserved.counted, "reservation {n} is counted");
        assert_eq!(
            reserved.state, expected,
            "reservation {n}: as the policy says"
        );
    }
    assert!(expected.locked_at(now).is_some(), "the third locks");
    let refused = cache
        .reserve_attempt(&key, &policy, now)
        .await
        .must("reserve_attempt");
    assert!(!refused.counted, "a locked key refuses");
    assert_eq!(refused.state, expected, "and is left as it was");
    assert_eq!(cache.attempts(&key).await.must("attempts"), expected);
}

/// Of fifty concurrent reservations with a threshold of five, exactly five are counted: no
/// more guesses than the threshold are ever checked.
pub async fn of_fifty_concurrent_reservations_only_the_threshold_are_counted<C: Cache>(cache: &C) {
    let (policy, key, now) = (lockout(5), fixtures::key("lock"), fixtures::now());
    let reservations = race(50, |_| cache.reserve_attempt(&key, &policy, now));
    let counted = reservations
        .into_iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.counted))
        .count();
    assert_eq!(counted, 5);
    let found = cache.attempts(&key).await.must("attempts");
    assert!(found.locked_at(now).is_some(), "locked by the fifth");
}

/// A success after the reservation that locked the key lifts that lock and its
/// escalation; a success whose reservation locked nothing leaves a lock set by others.
pub async fn a_success_lifts_only_the_lock_its_own_reservation_set<C: Cache>(cache: &C) {
    let (policy, key, now) = (lockout(2), fixtures::key("lock"), fixtures::now());
    cache
        .reserve_attempt(&key, &policy, now)
        .await
        .must("reserve_attempt");
    let last = cache
        .reserve_attempt(&key, &policy, now)
        .await
        .must("reserve_attempt");
    let lock = last.lock_set(now);
    assert!(lock.is_some(), "the second reservation locks");
    cache
        .record_success(&key, &policy, now, lock)
        .await
        .must("record_success");
    let found = cache.attempts(&key).await.must("attempts");
    assert_eq!(found, AttemptState::default(), "lock and level undone");

    let other = fixtures::key("lock");
    for _ in 0..2 {
        cache
            .record_failure(&other, &policy, now)
            .await
            .must("record_failure");
    }
    let locked = cache.attempts(&other).await.must("attempts");
    cache
        .record_success(&other, &policy, now, None)
        .await
        .must("record_success");
    let found = cache.attempts(&other).await.must("attempts");
    assert_eq!(
        found.locked_until, locked.locked_until,
        "a lock set by others stays"
    );
}
